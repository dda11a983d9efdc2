"""A wheel (not an editable install) carries the shipped plant and policies, and
loads and verifies them from wherever it is installed."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = """
import jax
jax.config.update("jax_enable_x64", True)
import neuroctl
from neuroctl.plants import load
from neuroctl.policies import load_policy
plant = load("evidence_integration")
policy, spec, card = load_policy("evidence_gain_mlp")
print(neuroctl.__file__)
print(plant.name, spec.plant, card["evaluation"]["trials"])
"""


def test_a_wheel_ships_and_verifies_the_artefacts(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path, ROOT],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("neuroctl-*.whl")
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "-t", site, wheel],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    run = subprocess.run(
        [sys.executable, "-c", CODE],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,  # nowhere near the checkout
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    where, loaded = run.stdout.splitlines()[-2:]
    assert where.startswith(str(site))
    assert loaded == "evidence_integration evidence_integration 1000"
    assert (site / "neuroctl" / "_shipped" / "policies" / "evidence_gain_mlp").is_dir()
