"""Every Python block of README.md and results/README.md runs as pasted.

Each block runs in a fresh process with JAX's default config (a block that needs
float64 says so itself), in a temporary directory. A block that needs the `rl`
extra says "needs the rl extra" and is skipped only where that extra is absent.
"""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "results/README.md")


def _blocks() -> list[tuple[str, int, str]]:
    out = []
    for doc in DOCS:
        text = (ROOT / doc).read_text()
        for i, m in enumerate(re.finditer(r"```python\n(.*?)```", text, re.S)):
            out.append((doc, i, m.group(1)))
    return out


BLOCKS = _blocks()


def test_the_docs_have_python_blocks():
    assert sum(doc == "README.md" for doc, _, _ in BLOCKS) >= 3
    assert sum(doc != "README.md" for doc, _, _ in BLOCKS) >= 4


@pytest.mark.parametrize(("doc", "index", "code"), BLOCKS, ids=lambda x: str(x)[:20])
def test_doc_block_runs_as_pasted(doc, index, code, tmp_path):
    if (
        "needs the rl extra" in code
        and importlib.util.find_spec("stable_baselines3") is None
    ):
        pytest.skip("needs the rl extra (pip install -e '.[rl]')")
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert res.returncode == 0, f"{doc} block {index}:\n{res.stderr[-3000:]}"
