"""`neuroctl evaluate` finds the shipped policy by name from any directory."""

import subprocess
import sys


def test_evaluate_default_policy_from_another_directory(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "neuroctl.cli", "evaluate", "--trials", "2"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "policy" in res.stdout and "Traceback" not in res.stderr
