"""One-off migration: give every shipped plant/policy folder a `kind` and a seal.

Before neuroctl's sealed artefacts, a shipped folder's spec.toml and metrics.json
were outside the checkpoint's manifest. This script, run once on a checkout:

1. verifies each folder's checkpoint (`load_verified`; its arrays are not touched,
   so every checksum, e.g. a policy's recorded plant checksum, stays valid),
2. adds ``kind = "<family>"`` to spec.toml if it is missing, and checks that the
   family's parser accepts the spec,
3. writes ``seal.json`` over every file (`neuroctl.io.artefacts.seal`), and
4. loads the folder back through the sealed loader.

Usage: python scripts/seal_artefacts.py [--check]   (--check: verify only)
"""

import sys
import tomllib
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from neuroctl.io.artefacts import SEAL, SPEC, open_artefact, seal  # noqa: E402
from neuroctl.io.checkpoints import load_verified  # noqa: E402
from neuroctl.plants import evidence  # noqa: E402
from neuroctl.policies import shipped  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {
    "plant": (ROOT / "envs", evidence.KIND, evidence.spec_from_dict),
    "policy": (ROOT / "policies", shipped.KIND, shipped.parse_spec),
}


def migrate(folder: Path, artefact: str, kind: str, parse) -> None:
    load_verified(folder / "checkpoint")
    text = (folder / SPEC).read_text()
    if "kind" not in tomllib.loads(text):
        lines = text.splitlines(keepends=True)
        at = 1 if lines and lines[0].startswith("#") else 0
        text = "".join(lines[:at] + [f'kind = "{kind}"\n'] + lines[at:])
        (folder / SPEC).write_text(text)
    parse(tomllib.loads(text))
    seal(folder, artefact)


def main(check: bool) -> None:
    for artefact, (root, kind, parse) in FAMILIES.items():
        for folder in sorted(p.parent for p in root.glob(f"*/{SPEC}")):
            if not check and not (folder / SEAL).is_file():
                migrate(folder, artefact, kind, parse)
                print(f"sealed {folder.relative_to(ROOT)}")
            art = open_artefact(folder, artefact)
            print(f"ok {artefact} {folder.name} (kind {art.spec['kind']})")


if __name__ == "__main__":
    main("--check" in sys.argv[1:])
