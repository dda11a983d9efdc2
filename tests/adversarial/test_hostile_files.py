"""Truncated, empty, missing, linked, special, extra and pickled files in a shipped
folder: always refused naming the file, 0 reads outside it, 0 code executed."""

import shutil

import pytest
from adversarial_checks import (
    hostile_files,
    outside_reads,
    pickle_payload,
    shipped_folders,
    summarise,
    watch_outside,
)


def test_hostile_files_in_every_shipped_folder_are_refused(tmp_path):
    outcomes = hostile_files(tmp_path, seed=3)
    assert len(outcomes) > 8 * 7 * 10
    assert all(o.handled for o in outcomes), summarise(outcomes)


@pytest.mark.slow
def test_hostile_files_with_more_truncation_lengths(tmp_path):
    outcomes = hostile_files(tmp_path, seed=4, repeats=4)
    assert all(o.handled for o in outcomes), summarise(outcomes)


def test_the_payload_and_the_audit_would_notice(tmp_path):
    """The payload does run when unpickled, and an outside read is recorded."""
    import pickle

    marker = tmp_path / "MARKER"
    pickle.loads(pickle_payload(marker))  # noqa: S301 — the point of the test
    assert marker.exists()
    watch_outside(tmp_path)
    (tmp_path / "x").write_text("x")
    (tmp_path / "x").read_text()
    assert outside_reads()


def test_a_symlinked_shipped_folder_is_not_followed(tmp_path):
    from neuroctl.io.checkpoints import CheckpointError
    from neuroctl.plants import load

    _, src = shipped_folders()[0]
    real = tmp_path / "outside" / src.name
    shutil.copytree(src, real)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    watch_outside(tmp_path / "outside")
    with pytest.raises(CheckpointError, match="symlink"):
        load(link)
    assert outside_reads() == []
