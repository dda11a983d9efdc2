"""Run directories: config checks naming the field, damaged checkpoints, atomic JSON."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from neuroctl.errors import ConfigError
from neuroctl.io.runs import RunDir, record_diff, write_json_atomic

STATE = {"w": jnp.arange(3.0), "step": jnp.asarray(0)}


def test_record_diff_names_every_dotted_field():
    saved = {"train": {"lr": 0.1, "batch": 8}, "env": "A"}
    wanted = {"train": {"lr": 0.2, "batch": 8}, "env": "A", "new": 1}
    assert record_diff(saved, wanted) == [
        "new: saved '<absent>', requested 1",
        "train.lr: saved 0.1, requested 0.2",
    ]


def test_resume_falls_back_past_a_damaged_checkpoint(tmp_path):
    with RunDir(tmp_path, {"a": 1}, resume=False, keep=3) as run:
        for step in (1, 2):
            run.save(step, {**STATE, "step": jnp.asarray(step)})
            run.log(step, {"loss": float(step)}, 0.1)
    for f in (tmp_path / "checkpoints" / "2").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "metadata" not in f.name:
            f.write_bytes(b"\0" * f.stat().st_size)  # wreck the newest step
    with RunDir(tmp_path, {"a": 1}, resume=True, keep=3) as run:
        state, notes = run.restore(STATE)
    assert int(state["step"]) == 1 and notes and "checkpoint 2" in notes[0]
    assert [
        json.loads(x)["iteration"]
        for x in (tmp_path / "log.jsonl").read_text().splitlines()
    ] == [1]


def test_a_different_record_or_a_missing_resume_is_refused(tmp_path):
    with RunDir(tmp_path, {"a": 1}, resume=False) as run:
        run.save(1, STATE)
    with pytest.raises(ConfigError, match="a: saved 1, requested 2"):
        RunDir(tmp_path, {"a": 2}, resume=True)
    with pytest.raises(ConfigError, match="--resume"):
        RunDir(tmp_path, {"a": 1}, resume=False)
    with pytest.raises(ConfigError, match="no checkpoints"):
        RunDir(tmp_path / "empty", {"a": 1}, resume=True, write=False)


def test_json_is_written_atomically(tmp_path):
    path = write_json_atomic(
        tmp_path / "m.json", {"x": (1, 2), "y": np.float64(0.5).item()}
    )
    assert json.loads(path.read_text()) == {"x": [1, 2], "y": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_a_file_as_run_directory_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        RunDir(tmp_path / "f", {}, resume=False)
