import subprocess
import sys


def test_demo_writes_the_figure_and_the_plant_decides_correctly(tmp_path):
    out = tmp_path / "demo.png"
    res = subprocess.run(
        [sys.executable, "-m", "neuroctl.cli", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert out.stat().st_size > 10_000
    assert "labels [0, 1] → decisions [0, 1]" in res.stdout


def test_demo_refuses_a_non_positive_dt(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "neuroctl.cli",
            "demo",
            "--dt",
            "0",
            "--out",
            str(tmp_path / "x.png"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode != 0 and "neuroctl: error: --dt:" in res.stderr
    assert "Traceback" not in res.stderr
