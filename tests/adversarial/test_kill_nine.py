"""kill -9 during `write_artefact` and during training: never a mixed folder, and a
resumed run equals an uninterrupted one bit for bit."""

import shutil

import numpy as np
import pytest
from adversarial_checks import (
    _check_generation,
    crash_windows,
    kill_during_training,
    kill_during_write,
    summarise,
)


def test_a_killed_overwrite_leaves_the_old_or_the_new_artefact(tmp_path):
    outcomes = kill_during_write(tmp_path, trials=4, seed=5)
    assert all(o.handled for o in outcomes), summarise(outcomes)


def test_a_killed_training_run_resumes_bit_identically(tmp_path):
    outcomes = kill_during_training(tmp_path, trials=2, iterations=5, seed=6, kills=1)
    assert all(o.handled for o in outcomes), summarise(outcomes)


def test_kills_in_the_crash_windows_leave_the_old_or_the_new_artefact(tmp_path):
    """Forced: after the atomic swap, and between the two renames of the fallback."""
    outcomes = crash_windows(tmp_path)
    assert len(outcomes) == 2 and all(o.handled for o in outcomes), summarise(outcomes)


@pytest.mark.slow
def test_many_kills_during_write_and_training(tmp_path):
    outcomes = kill_during_write(tmp_path / "w", trials=25, seed=7)
    outcomes += kill_during_training(tmp_path / "t", trials=6, iterations=8, seed=8)
    assert all(o.handled for o in outcomes), summarise(outcomes)


def test_the_check_sees_a_mixed_folder(tmp_path):
    """Arrays of one generation under a spec of another: reported as MIXED."""
    from neuroctl.io.artefacts import write_artefact

    folder = tmp_path / "artefact"
    tree = {"w0": np.full(3, 1.0, np.float32)}
    write_artefact(
        folder,
        "plant",
        'kind = "toy"\ngeneration = 2\n',
        {"generation": 2},
        tree,
        {"generation": 2},
    )
    outcome, _ = _check_generation(folder, 1, "self-test")
    assert not outcome.handled and "MIXED" in outcome.reason
    shutil.rmtree(folder)
