"""`neuroctl train`: any registered env, a report, resumable, clear errors."""

import dataclasses
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from neuroctl.cli.train import TrainArgs, format_report, parse_pairs, train
from neuroctl.errors import ConfigError
from neuroctl.train import bptt

TINY = {
    "iterations": 2,
    "batch": 2,
    "eval_episodes": 4,
    "sweep_points": 3,
    "sweep_episodes": 2,
    "progress": False,
}
SHORT_TRIAL = ("plant=untrained", "trial_ms=10.0", "response_window_ms=[8.0, 10.0]")
OPTIONS = {
    "SpikeRate-v0": ("episode_ms=10.0",),
    "SpikeRateBallStick-v0": ("episode_ms=10.0",),
    "EvidenceStim-v0": SHORT_TRIAL,
    "EvidenceStimElectrodes-v0": (*SHORT_TRIAL, "pulse_width_ms=0.1"),
    "BetaSuppression-v0": ("episode_ms=40", "warm_start_ms=20", "n_warm=2"),
}


def test_every_registered_env_is_covered():
    from neuroctl.envs.registry import names

    assert sorted(OPTIONS) == names()


@pytest.mark.parametrize("env", sorted(OPTIONS))
def test_train_runs_on_every_registered_env(env, tmp_path):
    report = train(TrainArgs(env=env, env_option=OPTIONS[env], out=tmp_path, **TINY))
    assert report["iterations"] == 2
    for key in ("policy", "best_constant"):
        assert np.isfinite(report[key]["return"])
    d = report["difference"]  # paired over the same held-out episodes
    gap = report["policy"]["return"] - report["best_constant"]["return"]
    assert d["episodes"] == TINY["eval_episodes"] and d["return_sem"] >= 0
    assert d["return"] == pytest.approx(gap, rel=1e-9, abs=1e-12)
    assert "paired over the same 4 episodes" in format_report(report)
    if env.startswith("Evidence"):
        assert 0 <= report["policy"]["accuracy"] <= 1
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["spec"]["env"] == env
    assert (tmp_path / "example_episode.png").stat().st_size > 10_000
    assert (tmp_path / "training_curve.png").stat().st_size > 10_000
    best = max(saved["sweep"], key=lambda s: s["return"])
    assert saved["best_constant"]["action"] == best["action"]


def test_train_composes_wrappers_around_the_policy(tmp_path):
    """--wrap builds the shipped feedback profile's structure on the generic env;
    a wrapper whose field the env does not observe is one clear error."""
    from neuroctl.train.runs import load_run

    observe = ("observe_evidence=True", "observe_stimulus=True")
    wraps = ("readout_feedback", "current_shaping", "evidence_switch")
    args = TrainArgs(
        env="EvidenceStim-v0",
        env_option=(*SHORT_TRIAL, *observe),
        policy="open_loop",
        wrap=wraps,
        precision="float64",
        out=tmp_path / "w",
        **TINY,
    )
    report = train(args)
    assert np.isfinite(report["policy"]["return"])
    saved = json.loads((tmp_path / "w" / "config.json").read_text())
    assert saved["spec"]["wrap"] == list(wraps)
    parts = load_run(tmp_path / "w")[3]
    assert "EvidenceSwitch" in str(parts.graphdef)
    assert "ReadoutFeedback" in str(parts.graphdef)
    res = _cli(
        "--env",
        "EvidenceStim-v0",
        *(x for o in SHORT_TRIAL for x in ("--env-option", o)),
        "--wrap",
        "evidence_switch",
        "--out",
        "r",
        tmp_path=tmp_path,
    )
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "mean_stimulus" in res.stderr and "EvidenceSwitch" in res.stderr


def _cli(*args, tmp_path):
    return subprocess.run(
        [sys.executable, "-m", "neuroctl.cli", "train", *args, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )


def test_cli_trains_resumes_and_reports(tmp_path):
    args = ["--env", "neuroctl/SpikeRate-v0", "--env-option", "episode_ms=10"]
    args += ["--iterations", "2", "--batch", "2", "--eval-episodes", "4"]
    args += ["--sweep-points", "3", "--sweep-episodes", "2", "--out", "run"]
    first = _cli(*args, tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "trained policy: return" in first.stdout
    again = _cli(*args, tmp_path=tmp_path)  # finished run without --resume
    assert again.returncode != 0 and "--resume" in again.stderr
    assert "Traceback" not in again.stderr
    more = _cli(
        *args[:-4], "--iterations", "3", "--out", "run", "--resume", tmp_path=tmp_path
    )
    assert more.returncode == 0, more.stderr
    assert (
        json.loads((tmp_path / "run" / "metrics.json").read_text())["iterations"] == 3
    )


def test_init_from_starts_at_another_runs_best_policy(tmp_path):
    """--init-from takes a finished run's best trainable weights (fine-tuning); a
    policy of another size is one clear error; a run recorded before the option
    existed still resumes."""
    from neuroctl.cli.train import spec_and_options
    from neuroctl.train.runs import RunOptions, RunSpec, load_run, train_run

    args = TrainArgs(env="SpikeRate-v0", init_from=tmp_path / "a", out=tmp_path / "b")
    assert spec_and_options(args)[0].init_from == str(tmp_path / "a")  # the CLI edge
    spec = RunSpec(
        "SpikeRate-v0", {"episode_ms": 10.0}, train=bptt.BPTTConfig(batch=2, lr=0.05)
    )
    opts = {"progress": False, "validate_every": 1, "validate_episodes": 2}
    source = train_run(spec, RunOptions(tmp_path / "a", 2, **opts))
    assert source.best_iteration > 0  # a's best is not its starting point
    start = dataclasses.replace(spec, init_from=str(tmp_path / "a"))
    got = train_run(start, RunOptions(tmp_path / "b", 0, **opts)).best_params
    fresh = train_run(spec, RunOptions(tmp_path / "z", 0, **opts)).best_params
    leaves = jax.tree.leaves
    for a, b in zip(leaves(source.best_params), leaves(got), strict=True):
        np.testing.assert_array_equal(a, b)  # b starts at a's best
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(leaves(fresh), leaves(got), strict=True)
    )
    record = json.loads((tmp_path / "b" / "config.json").read_text())
    assert record["spec"]["init_from"] == str(tmp_path / "a")
    with pytest.raises(ConfigError, match="init_from"):
        other = dataclasses.replace(start, hidden=8)
        train_run(other, RunOptions(tmp_path / "c", 0, **opts))
    path = tmp_path / "a" / "config.json"
    old = json.loads(path.read_text())
    del old["spec"]["init_from"]  # as written before the option existed
    path.write_text(json.dumps(old))
    more = train_run(spec, RunOptions(tmp_path / "a", 3, resume=True, **opts))
    assert int(more.state.step) == 3
    assert load_run(tmp_path / "a")[0].init_from is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "nope=1"], "env param 'nope'"),
        (["--env-option", "colour=blue"], "unknown options ['colour']"),
        (["--env", "Nope-v0"], "registered envs are"),
        (["--iterations", "-1"], "--iterations"),
        (["--env-option", "episode_ms"], "key=value"),
    ],
)
def test_bad_options_are_one_clear_line(args, message, tmp_path):
    res = _cli("--env-option", "episode_ms=10", *args, "--out", "r", tmp_path=tmp_path)
    assert res.returncode != 0
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_pairs_parse_as_toml_values_else_text():
    got = parse_pairs("--x", ("a=1", "b=0.5", "c=true", "d=[1, 2]", "e=sign"))
    assert got == {"a": 1, "b": 0.5, "c": True, "d": (1, 2), "e": "sign"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_pairs("--x", ("=3",))


def test_every_subcommand_has_a_summary():
    from helpers import cli_help

    text = cli_help()
    names = ["train", "train-policy", "evaluate", "ship-policy", "demo"]
    names += ["train-plant", "evaluate-plant", "freeze-plant"]
    for name in names:
        line = next(x for x in text.splitlines() if f"• {name} " in x)
        assert len(line.split(f"• {name}")[1].strip(" │")) > 10, line


def test_devices_are_checked_before_the_work(tmp_path):
    """--devices must divide --batch and --validate-episodes and exist (this test
    process has one CPU device; tests/train/test_sharding.py runs on eight)."""
    with pytest.raises(ConfigError, match=r"--batch: got 8 .* multiple of the 3 dev"):
        train(TrainArgs(devices=3, batch=8, out=tmp_path, **_no_batch(TINY)))
    with pytest.raises(ConfigError, match=r"--validate-episodes: got 16 .* use --v"):
        train(TrainArgs(devices=3, batch=3, out=tmp_path, **_no_batch(TINY)))
    with pytest.raises(ConfigError, match=r"--devices: got 2 .*device_count=2"):
        train(TrainArgs(devices=2, batch=2, out=tmp_path, **_no_batch(TINY)))


def _no_batch(options: dict) -> dict:
    return {k: v for k, v in options.items() if k != "batch"}
