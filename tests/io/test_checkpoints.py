"""Verified checkpoints: exact round trips, and every kind of damage refused by name."""

import json
import os
import re
import shutil
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroctl.io.checkpoints as ckpt
from neuroctl.io import CheckpointError, load_verified, save_verified, tree_checksum


class Params(eqx.Module):
    w: jax.Array  # float32
    v: jax.Array  # float64
    n: jax.Array  # int32
    extra: dict


def make_params(scale: float = 1.0) -> Params:
    w = jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(3, 4) * scale
    return Params(
        w=w,
        v=jnp.array([np.pi, np.e, 1e-300], dtype=jnp.float64),
        n=jnp.array([-(2**31), 0, 2**31 - 1], dtype=jnp.int32),
        extra={"gain": np.float32(0.1), "half": jnp.ones((2,), jnp.bfloat16) / 3},
    )


META = {"config": {"lr": 0.01, "layers": [16]}, "git_commit": "abc123", "acc": 0.999}


@pytest.fixture
def saved(tmp_path) -> Path:
    return save_verified(tmp_path / "ckpt", make_params(), META)


def chunk_file(folder: Path) -> Path:
    """The largest Orbax data chunk (a file in a `d/` folder)."""
    chunks = [p for p in folder.rglob("*") if p.is_file() and p.parent.name == "d"]
    return max(chunks, key=lambda p: p.stat().st_size)


def rel(folder: Path, path: Path) -> str:
    return re.escape(path.relative_to(folder).as_posix())


def assert_identical(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def test_round_trip_is_bit_identical(saved):
    params = make_params()
    tree, meta = load_verified(saved, like=params, expected_metadata={"acc": 0.999})
    assert isinstance(tree, Params) and meta == META
    assert_identical(tree, params)
    flat, _ = load_verified(saved)  # no `like`: the flat dict of named leaves
    assert sorted(flat) == ["extra/gain", "extra/half", "n", "v", "w"]
    assert tree_checksum(flat) == tree_checksum(params) == tree_checksum(tree)


def test_filtered_equinox_model_round_trip(tmp_path):
    mlp = eqx.nn.MLP(3, 1, 16, 1, activation=jnp.tanh, key=jax.random.key(0))
    arrays, static = eqx.partition(mlp, eqx.is_array)
    with pytest.raises(CheckpointError, match="activation"):  # functions are no arrays
        save_verified(tmp_path / "raw", mlp, {})
    path = save_verified(tmp_path / "mlp", arrays, {})
    loaded, _ = load_verified(path, like=arrays)
    restored = eqx.combine(loaded, static)
    x = jnp.ones(3)
    assert np.array_equal(restored(x), mlp(x))


def flip_bytes(folder: Path) -> str:
    path = chunk_file(folder)
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 4):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return rel(folder, path)


def truncate(folder: Path) -> str:
    path = chunk_file(folder)
    path.write_bytes(path.read_bytes()[:-7])
    return rel(folder, path)


def add_extra(folder: Path) -> str:
    (folder / "arrays" / "notes.txt").write_text("hello")
    return re.escape("arrays/notes.txt")


def remove_file(folder: Path) -> str:
    path = chunk_file(folder)
    path.unlink()
    return rel(folder, path)


def symlink_to_copy(folder: Path) -> str:
    path = chunk_file(folder)
    outside = folder.parent / "identical_copy"
    shutil.copyfile(path, outside)
    path.unlink()
    path.symlink_to(outside)
    return rel(folder, path) + ".*symlink"


@pytest.mark.parametrize(
    "damage", [flip_bytes, truncate, add_extra, remove_file, symlink_to_copy]
)
def test_damaged_files_are_refused_by_name(saved, damage):
    pattern = damage(saved)
    with pytest.raises(CheckpointError, match=pattern) as info:
        load_verified(saved, like=make_params())
    assert "re-download" in str(info.value) or "remove it" in str(info.value)


def test_symlinked_folder_is_refused(saved, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(saved)
    with pytest.raises(CheckpointError, match="symlink"):
        load_verified(link)


def test_edited_manifest_is_refused(saved):
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["metadata"]["acc"] = 1.0
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="manifest.json.*corrupted"):
        load_verified(saved)


def _forge(folder: Path, edit) -> None:
    """Edit the manifest and recompute its checksum, as a forger would."""
    import hashlib

    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    manifest["manifest_sha256"] = hashlib.sha256(ckpt._canonical(body)).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "edit, where",
    [
        (lambda m: m["leaves"][0].pop("shape"), r"leaves\[0\]\.shape"),
        (lambda m: m.pop("tree_sha256"), "'tree_sha256'"),
        (lambda m: m["leaves"][1].update(dtype="float99"), r"leaves\[1\]\.dtype"),
        (lambda m: m["files"][0].update(size=-1), r"files\[0\]\.size"),
        (lambda m: m.update(leaves={"a": 1}), "'leaves'"),
        (lambda m: m.update(metadata=[1]), "'metadata'"),
    ],
)
def test_a_forged_manifest_with_a_bad_key_is_a_checkpoint_error(saved, edit, where):
    """A valid checksum over a malformed body: CheckpointError naming the key, never
    a KeyError or TypeError."""
    _forge(saved, edit)
    with pytest.raises(CheckpointError, match=f"manifest.json'?: {where}"):
        load_verified(saved)


@pytest.mark.parametrize("target", ["manifest.ocdbt", "chunk", "_METADATA"])
def test_orbax_failure_behind_a_forged_manifest_leaves_no_stray_traceback(
    saved, target, monkeypatch
):
    """Orbax closes its event loop on the first failed read; the reads still in
    flight must not print "Exception ignored ... Event loop is closed" (or "Task
    exception was never retrieved") after our CheckpointError, and an unknown value
    type in Orbax's metadata no "coroutine ... was never awaited" warning."""
    import gc
    import hashlib
    import logging
    import sys
    import time
    import warnings

    if target == "manifest.ocdbt":
        paths = [saved / "arrays" / "manifest.ocdbt"]
    elif target == "chunk":
        paths = [p for p in saved.rglob("*") if p.is_file() and p.parent.name == "d"]
    else:
        paths = [saved / "arrays" / "_METADATA"]
        text = paths[0].read_text()
        last = text.rindex('"np.ndarray"')  # the last leaf's type: not a known one
        paths[0].write_text(text[:last] + '"np.ndarrax"' + text[last + 12 :])
    for path in paths if target != "_METADATA" else []:  # every leaf's read fails
        data = bytearray(path.read_bytes())
        for i in range(16, len(data), 7):
            data[i] ^= 0x5A
        path.write_bytes(bytes(data))
    edited = {p.relative_to(saved).as_posix(): p for p in paths}

    def refile(manifest):
        for entry in manifest["files"]:
            if entry["path"] in edited:
                data = edited[entry["path"]].read_bytes()
                entry["sha256"] = hashlib.sha256(data).hexdigest()

    _forge(saved, refile)
    stray = []
    monkeypatch.setattr(sys, "unraisablehook", stray.append)
    seen = logging.Handler()
    seen.emit = stray.append
    logging.getLogger("asyncio").addHandler(seen)
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            for _ in range(3):
                with pytest.raises(CheckpointError, match="Orbax could not restore"):
                    load_verified(saved, like=make_params())
            time.sleep(0.2)  # late reads land; leftover tasks are collected
            gc.collect()
    finally:
        logging.getLogger("asyncio").removeHandler(seen)
    assert stray == [], [getattr(u, "exc_value", u) for u in stray]
    assert [str(w.message) for w in warned] == []


def test_draining_loops_finish_leftover_reads_but_never_hang(monkeypatch):
    """A loop made during an Orbax call runs the tasks a failed gather left behind
    before closing (their errors marked seen), and gives up on a hung one."""
    import asyncio
    import time

    monkeypatch.setattr(ckpt, "_DRAIN_S", 0.3)
    with ckpt._draining_event_loops():
        loop = asyncio.new_event_loop()
    finished = []

    async def late_read():
        await asyncio.sleep(0.02)
        finished.append("late")
        raise ValueError("a second corrupted chunk")

    async def hung_read():
        await asyncio.sleep(30.0)

    async def restore():
        loop.create_task(late_read())
        loop.create_task(hung_read())
        await asyncio.sleep(0)
        raise RuntimeError("the first corrupted chunk")

    with pytest.raises(RuntimeError, match="first"):
        loop.run_until_complete(restore())
    t0 = time.monotonic()
    loop.close()
    assert loop.is_closed() and finished == ["late"]
    assert time.monotonic() - t0 < 3.0  # the hung read is left behind


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.bfloat16, jnp.int32])
def test_wrong_dtype_in_like_is_refused(saved, dtype):
    params = make_params()
    like = eqx.tree_at(lambda p: p.w, params, params.w.astype(dtype))
    name = jnp.dtype(dtype).name
    with pytest.raises(CheckpointError, match=f"leaf 'w'.*float32.*{name}.*cast"):
        load_verified(saved, like=like)


def test_wrong_shape_or_structure_in_like_is_refused(saved):
    params = make_params()
    like = eqx.tree_at(lambda p: p.v, params, jax.ShapeDtypeStruct((4,), jnp.float64))
    with pytest.raises(CheckpointError, match=r"leaf 'v'.*\(3,\).*\(4,\)"):
        load_verified(saved, like=like)
    missing = eqx.tree_at(lambda p: p.extra, params, {"gain": params.extra["gain"]})
    with pytest.raises(CheckpointError, match="leaf 'extra/half'"):
        load_verified(saved, like=missing)


def test_expected_metadata_mismatch_is_refused(saved):
    with pytest.raises(CheckpointError, match="'git_commit'.*abc123.*def456"):
        load_verified(saved, expected_metadata={"git_commit": "def456"})
    with pytest.raises(CheckpointError, match="'plant_sha256' is missing"):
        load_verified(saved, expected_metadata={"plant_sha256": "0" * 64})


def fail(*args):
    raise RuntimeError("simulated crash before the manifest")


def test_interrupted_save_leaves_nothing_loadable(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "_write_manifest", fail)
    with pytest.raises(RuntimeError, match="simulated"):
        save_verified(tmp_path / "ckpt", make_params(), META)
    assert list(tmp_path.iterdir()) == []  # staging folder cleaned up
    monkeypatch.setattr(ckpt, "_discard", lambda path: None)  # a kill: no clean-up
    with pytest.raises(RuntimeError, match="simulated"):
        save_verified(tmp_path / "ckpt", make_params(), META)
    (staging,) = tmp_path.iterdir()
    assert not (tmp_path / "ckpt").exists()
    with pytest.raises(CheckpointError, match="manifest.json.*missing"):
        load_verified(staging)
    (tmp_path / "empty").mkdir()  # Orbax lists such a folder as a step
    with pytest.raises(CheckpointError, match="manifest.json.*missing"):
        load_verified(tmp_path / "empty")


def test_interrupted_overwrite_keeps_the_good_checkpoint(saved, monkeypatch):
    monkeypatch.setattr(ckpt, "_write_manifest", fail)
    with pytest.raises(RuntimeError, match="simulated"):
        save_verified(saved, make_params(scale=2.0), META, overwrite=True)
    tree, _ = load_verified(saved, like=make_params())
    assert_identical(tree, make_params())
    assert sorted(os.listdir(saved.parent)) == ["ckpt"]


def test_overwrite_rules(saved, tmp_path):
    with pytest.raises(CheckpointError, match="overwrite=True"):
        save_verified(saved, make_params(scale=2.0), META)
    save_verified(saved, make_params(scale=2.0), {"run": 2}, overwrite=True)
    tree, meta = load_verified(saved, like=make_params())
    assert meta == {"run": 2} and np.array_equal(tree.w, make_params(2.0).w)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.md").write_text("keep me")
    with pytest.raises(CheckpointError, match="not a verified checkpoint"):
        save_verified(tmp_path / "results", make_params(), {}, overwrite=True)


def test_tree_checksum_sees_one_value_dtype_and_name():
    params = make_params()
    base = tree_checksum(params)
    assert tree_checksum(make_params()) == base
    bumped = eqx.tree_at(lambda p: p.n, params, params.n.at[1].set(1))
    assert tree_checksum(bumped) != base
    assert tree_checksum({"a": np.zeros(2, np.float32)}) != tree_checksum(
        {"a": np.zeros(2, np.int32)}
    )
    assert tree_checksum({"a": np.zeros(2)}) != tree_checksum({"b": np.zeros(2)})
