"""Sealed artefact folders: verified whole on every load, written atomically."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from neuroctl.errors import ConfigError
from neuroctl.io import artefacts
from neuroctl.io.artefacts import (
    check_destination,
    open_artefact,
    seal,
    shipped_root,
    write_artefact,
)
from neuroctl.io.checkpoints import CheckpointError

SPEC = 'kind = "toy"\nname = "toy"\ndt = 0.025\n'
TREE = {"w": np.arange(3.0)}


def _write(folder: Path, spec: str = SPEC, card=None, overwrite=False) -> Path:
    card = {"accuracy": 1.0} if card is None else card
    return write_artefact(folder, "plant", spec, card, TREE, {}, overwrite=overwrite)


def test_a_written_folder_opens_with_its_spec_and_card(tmp_path):
    folder = _write(tmp_path / "p")
    art = open_artefact(folder, "plant")
    assert art.spec == {"kind": "toy", "name": "toy", "dt": 0.025}
    assert art.card == {"accuracy": 1.0}
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint",
        "metrics.json",
        "seal.json",
        "spec.toml",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no staging left


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda f: _replace(f / "spec.toml", "0.025", "0.125"), "spec.toml"),
        (lambda f: _replace(f / "metrics.json", "1.0", "2.0"), "metrics.json"),
        (lambda f: (f / "extra.txt").write_text("x"), "extra.txt"),
        (lambda f: (f / "metrics.json").unlink(), "metrics.json"),
        (lambda f: _flip_checkpoint_byte(f), "checkpoint/"),
    ],
    ids=["spec-edit", "card-edit", "added-file", "missing-card", "checkpoint-flip"],
)
def test_any_change_after_sealing_is_refused_naming_the_file(tmp_path, edit, match):
    folder = _write(tmp_path / "p")
    edit(folder)
    with pytest.raises(CheckpointError, match=match):
        open_artefact(folder, "plant")


def _replace(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def _flip_checkpoint_byte(folder: Path) -> None:
    biggest = max(
        (p for p in (folder / "checkpoint").rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 1
    biggest.write_bytes(bytes(data))


def test_symlinks_are_refused(tmp_path):
    folder = _write(tmp_path / "p")
    link = tmp_path / "link"
    link.symlink_to(folder)
    with pytest.raises(CheckpointError, match="symlink"):
        open_artefact(link, "plant")
    outside = tmp_path / "outside.toml"
    outside.write_text(SPEC)
    (folder / "spec.toml").unlink()
    (folder / "spec.toml").symlink_to(outside)
    with pytest.raises(CheckpointError, match="symlink"):
        open_artefact(folder, "plant")


def test_an_unsealed_or_wrong_kind_folder_is_refused(tmp_path):
    folder = _write(tmp_path / "p")
    with pytest.raises(CheckpointError, match="expected a policy"):
        open_artefact(folder, "policy")
    (folder / "seal.json").unlink()
    with pytest.raises(CheckpointError, match="never sealed"):
        open_artefact(folder, "plant")
    seal(folder, "plant")
    (folder / "seal.json").write_text(
        (folder / "seal.json").read_text().replace('"plant"', '"policy"')
    )
    with pytest.raises(CheckpointError, match="corrupted"):
        open_artefact(folder, "plant")


def test_an_unparsable_spec_names_spec_toml(tmp_path):
    folder = _write(tmp_path / "p")
    (folder / "spec.toml").write_bytes(b'kind = "toy"\nname = \xff\n')
    seal(folder, "plant")  # sealed as it is: the parse must still fail clearly
    with pytest.raises(ConfigError, match=r"spec\.toml: not valid UTF-8 TOML"):
        open_artefact(folder, "plant")
    (folder / "spec.toml").write_text('name = "toy"\n')
    seal(folder, "plant")
    with pytest.raises(ConfigError, match=r"spec\.toml: field 'kind'"):
        open_artefact(folder, "plant")


def test_an_existing_folder_is_replaced_only_with_overwrite(tmp_path):
    folder = _write(tmp_path / "p")
    with pytest.raises(ConfigError, match="--overwrite"):
        _write(folder, card={"accuracy": 0.5})
    assert open_artefact(folder, "plant").card == {"accuracy": 1.0}
    _write(folder, card={"accuracy": 0.5}, overwrite=True)
    assert open_artefact(folder, "plant").card == {"accuracy": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["p"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a plant folder"):
        _write(tmp_path / "notes", overwrite=True)


def test_a_write_killed_midway_leaves_the_old_folder_whole(tmp_path, monkeypatch):
    folder = _write(tmp_path / "p")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill during the checkpoint write

    monkeypatch.setattr(artefacts, "save_verified", killed)
    with pytest.raises(KeyboardInterrupt):
        _write(folder, card={"accuracy": 0.5}, overwrite=True)
    assert open_artefact(folder, "plant").card == {"accuracy": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["p"]


KILL_BETWEEN_RENAMES = """
import os, signal, sys
import numpy as np
from neuroctl.io import checkpoints
from neuroctl.io.artefacts import write_artefact

real = os.rename


def rename(src, dst):
    real(src, dst)
    if ".replaced-" in str(dst):  # the old folder set aside, the new one not yet in
        os.kill(os.getpid(), signal.SIGKILL)


os.rename = rename
checkpoints._exchange = lambda a, b: False  # a system without an atomic swap
write_artefact(sys.argv[1], "plant", 'kind = "toy"\\n', {"accuracy": 0.5},
               {"w": np.arange(3.0)}, {}, overwrite=True)
"""


def test_an_overwrite_swaps_the_folders_in_one_step(tmp_path, monkeypatch):
    """Linux: renameat2(RENAME_EXCHANGE); the old folder is never renamed aside."""
    from neuroctl.io import checkpoints

    folder = _write(tmp_path / "p")
    renames, real = [], checkpoints.os.rename
    monkeypatch.setattr(
        checkpoints.os, "rename", lambda a, b: (renames.append(str(b)), real(a, b))
    )
    _write(folder, card={"accuracy": 0.5}, overwrite=True)
    assert open_artefact(folder, "plant").card == {"accuracy": 0.5}
    assert not [b for b in renames if ".replaced-" in b]
    assert [p.name for p in tmp_path.iterdir()] == ["p"]


def test_a_kill_between_the_two_renames_is_recovered_on_open(tmp_path):
    """Without the atomic swap a kill -9 between the renames leaves no folder;
    the next open (or write) renames the old one back, whole."""
    import subprocess
    import sys

    folder = _write(tmp_path / "p")
    proc = subprocess.run(
        [sys.executable, "-c", KILL_BETWEEN_RENAMES, str(folder)], timeout=300
    )
    assert proc.returncode == -9
    assert not folder.exists()  # the crash window really was hit
    assert any(".replaced-" in p.name for p in tmp_path.iterdir())
    assert open_artefact(folder, "plant").card == {"accuracy": 1.0}
    _write(folder, card={"accuracy": 0.25}, overwrite=True)
    assert open_artefact(folder, "plant").card == {"accuracy": 0.25}
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # staging cleaned up


def test_staging_left_by_a_dead_process_is_removed_by_the_next_write(tmp_path):
    folder = _write(tmp_path / "p")
    dead = tmp_path / ".p.shipping-999999999-abc"  # no such pid
    (dead / "checkpoint").mkdir(parents=True)
    alive = tmp_path / f".p.saving-{__import__('os').getpid()}-abc"
    alive.mkdir()  # a write in progress in a running process: left alone
    _write(folder, card={"accuracy": 0.5}, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["p", alive.name])


def test_a_destination_is_checked_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        check_destination(tmp_path / "file", "policy", overwrite=True)
    with pytest.raises(ConfigError, match="cannot create"):
        check_destination("/proc/neuroctl/x", "policy", overwrite=False)


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="evidence_integration"):
        open_artefact("evidence_integraton", "plant")


def test_every_shipped_artefact_is_sealed_and_whole():
    for artefact, root in (("plant", "envs"), ("policy", "policies")):
        folders = sorted(p.parent for p in shipped_root(root).glob("*/spec.toml"))
        assert folders, f"no shipped {artefact}s found"
        for folder in folders:
            art = open_artefact(folder, artefact)
            assert art.spec["kind"] and json.dumps(art.card)


def test_a_shipped_plant_with_an_edited_spec_does_not_load(tmp_path):
    from neuroctl.plants import load

    copy = tmp_path / "evidence_integration"
    shutil.copytree(shipped_root("envs") / "evidence_integration", copy)
    _replace(copy / "spec.toml", "dt = 0.025", "dt = 0.125")
    with pytest.raises(CheckpointError, match="spec.toml"):
        load(copy)


def test_the_plant_loader_names_an_unknown_kind(tmp_path):
    from neuroctl.plants import load

    folder = _write(tmp_path / "p")  # kind = "toy": no such plant family
    with pytest.raises(ConfigError, match=r"spec\.toml: field 'kind': got 'toy'"):
        load(folder)
