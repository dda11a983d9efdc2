"""Smoke runs of the result scripts (scripts/) and of plant training through the CLI.

The multi-hour scripts need not rerun, but they must still run: each one runs here
as a user runs it (``python scripts/<name>.py``, from the repository root) with the
tiniest budget its options allow, writing into a temporary folder, and must exit 0
having written its table, JSON and figures with finite numbers. The repository's
own results/ and runs/ files are checked untouched.

CPU time of each smoke run (one core, measured 2026-12-05) is noted on its test;
the not-slow ones take ~3.2 min of CPU together. `slow` (not in CI): the three
that stay above ~60 s at the tiniest budget (full 520-ms trials with BPTT or many
compiled programs; toolkit.py ~5 min).
"""

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def _run(
    *argv: str | Path, timeout: float = 900, ok: bool = True
) -> subprocess.CompletedProcess:
    """`argv` (a script path or ``-m module`` and its options) in a fresh Python;
    asserts it exits 0 (with ``ok=False``: that it fails with a message, no
    traceback)."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    res = subprocess.run(
        [sys.executable, *map(str, argv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if not ok:
        assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
        return res
    assert res.returncode == 0, f"{argv}\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
    return res


@contextmanager
def _untouched(*paths: str) -> Iterator[None]:
    """The repository's `paths` (files or folders) are neither written nor created."""

    def snapshot():
        out = {}
        for p in paths:
            path = ROOT / p
            files = path.rglob("*") if path.is_dir() else [path]
            out |= {f: f.stat().st_mtime_ns for f in files if f.is_file()}
        return out

    before = snapshot()
    yield
    assert snapshot() == before, f"a smoke run wrote into {paths}"


def _numbers(x) -> Iterator[float]:
    if isinstance(x, dict):
        x = list(x.values())
    if isinstance(x, list):
        for v in x:
            yield from _numbers(v)
    elif isinstance(x, float):
        yield x


def _json(path: Path) -> dict | list:
    """The JSON file at `path`, every number in it finite."""
    data = json.loads(path.read_text())
    assert list(_numbers(data)), f"{path} holds no number"
    assert all(math.isfinite(v) for v in _numbers(data)), f"{path}: non-finite"
    return data


def _markdown(path: Path, table: bool = True) -> str:
    text = path.read_text()
    assert text.startswith("# "), path
    if table:
        assert "|---" in text, f"{path} has no table"
    assert not re.search(r"\b(nan|inf)\b", text, re.IGNORECASE), path
    return text


def _png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000, path


def test_policy_late_gate(tmp_path):
    """~22 s CPU: five open-loop gates on 4 held-out 520-ms trials."""
    args = ["--trials", "4", "--onsets-ms", "0", "--gains", "1"]
    args += ["--evidence-gates", "340", "0.4", "--shaped-gates", "340", "0.4"]
    args += ["--check-trials", "0", "--results", tmp_path]
    with _untouched("results/policy_late_gate.json"):
        _run("scripts/policy_late_gate.py", *args)
    record = _json(tmp_path / "policy_late_gate.json")
    assert record["trials"] == 4 and len(record["current_shaped"]) == 1
    _markdown(tmp_path / "policy_late_gate.md")
    _png(tmp_path / "policy_late_gate.png")
    args[1] = "1"  # one trial holds one label: per-label accuracy is refused
    res = _run("scripts/policy_late_gate.py", *args, ok=False)
    assert "needs both labels" in res.stderr


@pytest.mark.slow
def test_policy_pareto(tmp_path):
    """~58 s CPU: the constant g = 1 point, one MLP stage of one iteration (full
    520-ms trials, BPTT), its 2-trial evaluation, the table and the example trial."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    args = ["--kinds", "mlp", "--max-stages", "1", "--max-iterations", "1"]
    args += ["--batch", "1", "--trials", "2", "--table-trials", "2"]
    args += ["--constant-gains", "1", "--runs", runs, "--results", results]
    with _untouched("results/policy_pareto.json", "runs/pareto"):
        _run("scripts/policy_pareto.py", *args)
    record = _json(results / "policy_pareto.json")
    assert [p["kind"] for p in record["points"]] == ["constant", "mlp"]
    log = (runs / "mlp_l0.3" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in log] == [1]
    assert "mlp_l0.3" in _markdown(results / "policy_table.md")
    _png(results / "policy_pareto.png")
    _png(results / "policy_example_trial.png")


@pytest.mark.slow
def test_policy_designed_profile(tmp_path):
    """~76 s CPU: one 10x design (1 Adam step), its three policies on 4 held-out
    520-ms trials (one of label 0), the validation pick, the check and the ship."""
    results, ship = tmp_path / "results", tmp_path / "policy"
    args = ["--reductions", "10", "--iterations", "1", "--warm-iterations", "1"]
    args += ["--check-reduction", "0", "--trials", "4", "--validation-trials", "4"]
    args += ["--check-trials", "4", "--max-checks", "1"]
    args += ["--ship", ship, "--results", results]
    with _untouched("results/policy_designed_profile.json", "policies"):
        _run("scripts/policy_designed_profile.py", *args)
    record = _json(results / "policy_designed_profile.json")
    assert [d["reduction"] for d in record["designs"]] == [10.0]
    assert {c["stage"] for c in record["final_checks"]} == {"validation", "table"}
    _markdown(results / "policy_designed_profile.md")
    _png(results / "policy_designed_profile.png")
    _png(results / "policy_designed_example_trial.png")
    assert _json(ship / "metrics.json")["designed_by"].startswith("scripts/")


@pytest.mark.slow
def test_toolkit(tmp_path):
    """~11 min CPU (660 s): --quick runs all eleven `neuroctl train` rows (2
    iterations of batch 2, 2-episode sweeps and evaluations, 20-ms spike episodes,
    30-ms evidence trials); each row still compiles its sweep, training, validation
    and evaluation programs, and toolkit.md needs every row."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    with _untouched("results/toolkit.json", "runs/toolkit"):
        _run("scripts/toolkit.py", "--quick", "--runs", runs, "--results", results)
    reports = _json(results / "toolkit.json")
    assert all(r["iterations"] == 2 for r in reports.values())
    text = _markdown(results / "toolkit.md")
    for name in reports:
        assert f"**{name}**" in text
        _png(results / f"toolkit_{name}.png")
        _png(results / f"toolkit_{name}_training.png")


def test_analysis_applications(tmp_path):
    """~64 s CPU: --quick (0.1-s exponents, 2 closed-loop trials, 1 gradient trial)."""
    with _untouched("results/analysis_applications.json"):
        _run("scripts/analysis_applications.py", "--quick", "--out", tmp_path)
    record = _json(tmp_path / "analysis_applications.json")
    assert len(record["open_loop"]) == 6 and record["conductances"]
    _markdown(tmp_path / "analysis_applications.md")
    for name in ("exponents", "stimulation_sensitivity", "conductances"):
        _png(tmp_path / f"analysis_{name}.png")


def test_dbs_plant(tmp_path):
    """~30 s CPU: --quick (one seed, 1-s runs), without --ship."""
    with _untouched("results/dbs_plant.md", "envs/beta_healthy"):
        _run("scripts/dbs_plant.py", "--quick", "--out", tmp_path)
    _markdown(tmp_path / "dbs_plant.md")
    for name in ("rasters", "spectra", "tc", "dbs_sweep", "lfp"):
        _png(tmp_path / f"dbs_plant_{name}.png")


def test_plant_generalisation(tmp_path):
    """~8 s CPU: one held-out 1040-ms trial (2x), none at 5x."""
    out = tmp_path / "plant_generalisation"
    args = ["--trials-2x", "1", "--trials-5x", "0", "--out", out]
    with _untouched("results/plant_generalisation.json"):
        _run("scripts/plant_generalisation.py", *args)
    record = _json(out.with_suffix(".json"))
    assert [c["factor"] for c in record["conditions"]] == [2]
    _markdown(out.with_suffix(".md"))


def test_analysis_scale(tmp_path):
    """~9 s CPU: one 0.2-s horizon (8,000 steps) in its own process."""
    out = tmp_path / "analysis_scale.md"
    with _untouched("results/analysis_scale.md"):
        _run("scripts/analysis_scale.py", "--seconds", "0.2", "--out", out)
    row = next(x for x in _markdown(out).splitlines() if x.startswith("| 0.2 s"))
    assert math.isfinite(float(row.split("|")[4]))  # λ_max [1/ms]


def test_reevaluate_shipped(tmp_path):
    """~16 s CPU: one shipped policy on 2 of its card's held-out trials."""
    out, cache = tmp_path / "shipped_reevaluation", tmp_path / "cache"
    args = ["--trials", "2", "--policies", "evidence_gain_mlp"]
    args += ["--out", out, "--cache", cache]
    with _untouched("results/shipped_reevaluation.json", "runs/reevaluation"):
        _run("scripts/reevaluate_shipped.py", *args)
    (result,) = _json(out.with_suffix(".json"))
    assert result["name"] == "evidence_gain_mlp"
    assert result["now"]["policy"]["trials"] == 2
    assert "`evidence_gain_mlp`" in _markdown(out.with_suffix(".md"))
    assert (cache / "evidence_gain_mlp_2.json").is_file()


def test_train_freeze_and_evaluate_plant_cli(tmp_path):
    """~40 s CPU: `neuroctl train-plant` (2 iterations of one 2-ms trial), then
    `freeze-plant` and `evaluate-plant` on the frozen folder."""
    run, plants = tmp_path / "run", tmp_path / "plants"
    args = ["--iterations", "2", "--batch", "1", "--save-every", "1"]
    args += ["--trial-ms", "2", "--response-window-ms", "1", "2", "--out", run]
    with _untouched("runs/plant", "envs/evidence_integration"):
        _run("-m", "neuroctl.cli", "train-plant", *args)
        freeze = ["--run", run, "--out", plants / "smoke", "--trials", "2"]
        _run("-m", "neuroctl.cli", "freeze-plant", *freeze, "--chunk", "2")
        evaluate = ["smoke", "--root", plants, "--trials", "2", "--chunk", "2"]
        res = _run("-m", "neuroctl.cli", "evaluate-plant", *evaluate)
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in log] == [1, 2]
    assert all(math.isfinite(x["loss"]) for x in log)
    card = _json(plants / "smoke" / "metrics.json")
    assert card["eval_trials"] == 2 and 0.0 <= card["accuracy"] <= 1.0
    assert "smoke: accuracy" in res.stdout


@pytest.mark.slow
def test_dbs_extracellular(tmp_path):
    """~3 min CPU: --quick (46-ms episodes, 2 + 2 episodes, 2 BPTT iterations)."""
    out, runs = tmp_path / "results", tmp_path / "runs"
    with _untouched("results/dbs_extracellular.json", "runs/dbs_extracellular"):
        _run("scripts/dbs_extracellular.py", "--quick", "--out", out, "--runs", runs)
    record = _json(out / "dbs_extracellular.json")
    names = [r["name"] for r in record["rows"]]
    weights = (10, 100, 300, 1000, 3000, 10000, 30000)
    raised = [f"BPTT MLP, {k}x charge weight" for k in weights]
    assert names[-8:] == ["BPTT MLP", *raised]
    chained = record["rows"][-1]["params"]  # each raised weight starts from the last
    assert "started from the bptt_mlp_charge10000 row's policy" in chained
    assert len(record["sweep"]) == 18
    _markdown(out / "dbs_extracellular.md")
    _png(out / "dbs_extracellular.png")


@pytest.mark.slow
def test_dbs_intermittent(tmp_path):
    """~2 min CPU: --quick (46-ms episodes, 2 episodes, 2 open-loop + 2 on/off)."""
    with _untouched("results/dbs_intermittent.json"):
        _run("scripts/dbs_intermittent.py", "--quick", "--out", tmp_path)
    record = _json(tmp_path / "dbs_intermittent.json")
    kinds = [r["kind"] for r in record["rows"]]
    assert kinds == ["open-loop", "open-loop", "on/off", "on/off"]
    hf = record["rows"][1]
    assert hf["amplitude"] == 10.0 and hf["energy_pct"] == pytest.approx(100.0)
    text = _markdown(tmp_path / "dbs_intermittent.md")
    assert "Settings at ≤ HF-DBS's beta and ≤ 10 % of its energy" in text
    _png(tmp_path / "dbs_intermittent.png")
