"""Verified checkpoints: Orbax writes the arrays, a manifest makes them trustworthy.

Orbax 0.12.8 writes atomically, but on restore it casts float32 into a bf16/int32
target silently, its chunk files carry no checksum (flipped bytes load as wrong
values), and it follows a chunk file that is a symlink out of the folder. This
module keeps Orbax for the array serialisation and adds a verification layer.

Layout of a checkpoint folder::

    <directory>/
      arrays/         an Orbax `StandardCheckpointHandler` checkpoint
      manifest.json   written last: every file's size and SHA-256, every leaf's
                      name, shape and dtype, a checksum of the tree, user metadata

Tree format: any pytree whose leaves are arrays (`jax.Array`, `np.ndarray`, NumPy
scalars). Each leaf is named by its key path, one segment per level joined with
"/": dict keys and dataclass/`eqx.Module` attribute names as written, sequence
indices as numbers (e.g. `layers/0/weight`; a bare array is `<root>`). Orbax stores
the flat dict `{name: np.ndarray}`, so a checkpoint does not depend on Python
classes. `load_verified(like=tree)` rebuilds `like`'s structure; without `like` it
returns that flat dict. Leaves always come back as NumPy arrays with the stored
dtype (never cast, also not by a disabled `jax_enable_x64`). For an `eqx.Module`
with non-array fields (activation functions), save `eqx.filter(model, eqx.is_array)`
and recombine the loaded arrays with `eqx.combine(arrays, static)`.
"""

import asyncio
import contextlib
import errno
import gc
import glob
import hashlib
import json
import os
import shutil
import time
import traceback
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

FORMAT = "neuroctl-verified-checkpoint"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays"
ROOT_NAME = "<root>"
_CHUNK = 1 << 20  # bytes read per hashing step
_REFETCH = "re-download the checkpoint, or re-train and save it again"


class CheckpointError(ValueError):
    """A checkpoint cannot be written or is not trustworthy to load.

    Messages name the file, leaf or metadata key, the problem and how to fix it.
    """


# ----------------------------------------------------------------- leaf names


def _segment(key: Any) -> str:
    """One key-path entry as a name segment."""
    for attr in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _leaf_name(path: tuple) -> str:
    return "/".join(_segment(k) for k in path) if path else ROOT_NAME


def _named_leaves(tree: Any) -> tuple[list[tuple[str, Any]], Any]:
    """Leaves of `tree` with their "/"-joined names (flatten order), and the treedef."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    named = [(_leaf_name(path), leaf) for path, leaf in pairs]
    seen: set[str] = set()
    for name, _ in named:
        if name in seen:
            raise CheckpointError(
                f"leaf {name!r}: two leaves share this name (a key containing '/' "
                "collides with a nested key); rename one of the keys"
            )
        seen.add(name)
    return named, treedef


def _as_array(name: str, leaf: Any) -> np.ndarray:
    """Host copy of one leaf, refusing anything that is not a plain array."""
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        raise CheckpointError(
            f"leaf {name!r}: got a typed PRNG key array (dtype {leaf.dtype}), "
            "expected numeric data; save jax.random.key_data(key) instead"
        )
    if not isinstance(leaf, jax.Array | np.ndarray | np.generic):
        raise CheckpointError(
            f"leaf {name!r}: got {leaf!r} (type {type(leaf).__name__}), expected an "
            "array; save eqx.filter(tree, eqx.is_array) or wrap numbers in np.asarray"
        )
    array = np.asarray(jax.device_get(leaf))
    if array.dtype.hasobject:
        raise CheckpointError(f"leaf {name!r}: object arrays cannot be checkpointed")
    return array


def _named_arrays(tree: Any) -> dict[str, np.ndarray]:
    named, _ = _named_leaves(tree)
    return {name: _as_array(name, leaf) for name, leaf in named}


def _leaf_entry(name: str, array: Any) -> dict:
    dtype = np.dtype(array.dtype).name
    return {"path": name, "shape": list(array.shape), "dtype": dtype}


def tree_checksum(tree: Any) -> str:
    """SHA-256 (hex) over every leaf's name, shape, dtype and bytes.

    Leaves are taken in name order, so the checksum depends on leaf names (see the
    module docstring), not on the container types: a model and the flat dict that
    `load_verified` returns for it have the same checksum. Store it in a policy's
    metadata to tie the policy to the exact plant parameters it was trained on.
    """
    digest = hashlib.sha256()
    for name, array in sorted(_named_arrays(tree).items()):
        header = json.dumps(_leaf_entry(name, array), sort_keys=True)  # sets byte count
        digest.update(header.encode() + b"\n")
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- file hashing


def _open_no_follow(path: Path) -> int:
    """Read-only descriptor; fails on a symlink swapped in after the folder scan."""
    return os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with os.fdopen(_open_no_follow(path), "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _walk(root: Path, rel: str = "") -> Iterator[tuple[str, os.DirEntry]]:
    """(relative posix path, entry) for everything below `root`; links not followed."""
    with os.scandir(root / rel if rel else root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            name = f"{rel}/{entry.name}" if rel else entry.name
            yield name, entry
            if entry.is_dir(follow_symlinks=False) and not entry.is_symlink():
                yield from _walk(root, name)


def _scan_folder(root: Path) -> dict[str, int]:
    """Sizes of all regular files below `root`; refuses symlinks and special files."""
    if root.is_symlink() or not root.is_dir():
        what = "is a symlink" if root.is_symlink() else "is missing or not a folder"
        raise CheckpointError(
            f"checkpoint {root}: {what}; pass the real checkpoint folder ({_REFETCH})"
        )
    sizes = {}
    for rel, entry in _walk(root):
        if entry.is_symlink():
            target = os.readlink(entry.path)
            raise CheckpointError(
                f"checkpoint {root}: {rel!r} is a symlink (to {target!r}); checkpoint "
                f"files must be regular files inside the folder; {_REFETCH}"
            )
        if entry.is_file(follow_symlinks=False):
            sizes[rel] = entry.stat(follow_symlinks=False).st_size
        elif not entry.is_dir(follow_symlinks=False):
            raise CheckpointError(
                f"checkpoint {root}: {rel!r} is neither a regular file nor a folder; "
                f"remove it and {_REFETCH}"
            )
    return sizes


# -------------------------------------------------------------------- manifest


def _canonical(body: dict) -> bytes:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.encode()


def _json_metadata(metadata: Any, what: str) -> dict:
    """`metadata` after a strict JSON round trip (tuples become lists)."""
    if not isinstance(metadata, dict):
        raise CheckpointError(
            f"{what}: got {type(metadata).__name__}, expected a dict of JSON values"
        )
    try:
        return json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"{what} is not strict JSON ({err}); convert arrays with .tolist(), "
            "paths with str(), and NaN/inf to None or a string"
        ) from err


def _build_manifest(folder: Path, arrays: dict[str, Any], metadata: dict) -> dict:
    files = [
        {"path": rel, "size": size, "sha256": _sha256_file(folder / rel)}
        for rel, size in sorted(_scan_folder(folder).items())
        if rel != MANIFEST
    ]
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "orbax_version": ocp.__version__,
        "leaves": [_leaf_entry(name, a) for name, a in arrays.items()],
        "tree_sha256": tree_checksum(arrays),
        "files": files,
        "metadata": metadata,
    }
    return {**body, "manifest_sha256": hashlib.sha256(_canonical(body)).hexdigest()}


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_manifest(folder: Path, manifest: dict) -> None:
    """Write `manifest.json` atomically: temporary file, fsync, `os.replace`."""
    tmp = folder / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)
    _fsync_dir(folder)


def _read_manifest(root: Path, sizes: dict[str, int]) -> dict:
    if MANIFEST not in sizes:
        raise CheckpointError(
            f"checkpoint {root}: {MANIFEST!r} is missing, so the save never completed "
            f"or this is not a verified checkpoint; {_REFETCH}"
        )
    try:
        with os.fdopen(_open_no_follow(root / MANIFEST), "rb") as f:
            manifest = json.loads(f.read().decode("utf-8"))
        body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
        ok = manifest["manifest_sha256"] == hashlib.sha256(_canonical(body)).hexdigest()
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(
            f"checkpoint {root}: {MANIFEST!r} is unreadable ({err!r}); {_REFETCH}"
        ) from err
    if not ok or manifest.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {root}: {MANIFEST!r} is corrupted; {_REFETCH}"
        )
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {root}: {MANIFEST!r} has format_version "
            f"{manifest.get('format_version')!r}, this neuroctl reads "
            f"{FORMAT_VERSION}; "
            "use the neuroctl version that wrote it, or re-save the checkpoint"
        )
    _check_schema(root, manifest)
    return manifest


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _is_dtype(x: Any) -> bool:
    try:
        return isinstance(x, str) and np.dtype(x).name == x
    except TypeError:
        return False


_ENTRY_FIELDS = {  # manifest list -> {field: check}
    "files": {
        "path": lambda x: isinstance(x, str),
        "size": _is_int,
        "sha256": lambda x: isinstance(x, str),
    },
    "leaves": {
        "path": lambda x: isinstance(x, str),
        "shape": lambda x: isinstance(x, list) and all(map(_is_int, x)),
        "dtype": _is_dtype,
    },
}


def _check_schema(root: Path, manifest: dict) -> None:
    """Every key `load_verified` reads is there, with its type.

    So even a manifest whose checksum was forged raises only `CheckpointError`.
    """

    def bad(where: str, value: Any) -> CheckpointError:
        return CheckpointError(
            f"checkpoint {root}: {MANIFEST!r}: {where} is {value!r}, not what "
            f"save_verified writes (malformed or forged manifest); {_REFETCH}"
        )

    if not isinstance(manifest.get("tree_sha256"), str):
        raise bad("'tree_sha256'", manifest.get("tree_sha256"))
    if not isinstance(manifest.get("metadata"), dict):
        raise bad("'metadata'", manifest.get("metadata"))
    for key, fields in _ENTRY_FIELDS.items():
        entries = manifest.get(key)
        if not isinstance(entries, list):
            raise bad(repr(key), entries)
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise bad(f"{key}[{i}]", entry)
            for field, ok in fields.items():
                if not ok(entry.get(field)):
                    raise bad(f"{key}[{i}].{field}", entry.get(field))


def _check_files(root: Path, listed: list[dict], sizes: dict[str, int]) -> None:
    """Every listed file present with its size and SHA-256; nothing unlisted."""
    expected = {entry["path"]: entry for entry in listed}
    unlisted = sorted(set(sizes) - set(expected) - {MANIFEST})
    if unlisted:
        raise CheckpointError(
            f"checkpoint {root}: {unlisted[0]!r} is not listed in {MANIFEST} "
            f"(unexpected file); remove it if you know where it came from, "
            f"otherwise {_REFETCH}"
        )
    for rel, entry in expected.items():
        if rel not in sizes:
            problem = "is listed in the manifest but missing"
        elif sizes[rel] != entry["size"]:
            problem = f"has {sizes[rel]} bytes, the manifest says {entry['size']}"
        elif _sha256_file(root / rel) != entry["sha256"]:
            problem = "has the right size but the wrong SHA-256 (corrupted/modified)"
        else:
            continue
        raise CheckpointError(f"checkpoint {root}: file {rel!r} {problem}; {_REFETCH}")


# ----------------------------------------------------------------- leaf checks


def _describe(shape: Any, dtype: Any) -> str:
    return f"shape {tuple(shape)} dtype {np.dtype(dtype).name}"


def _check_like(root: Path, like: Any, leaves: list[dict]) -> tuple[list[str], Any]:
    """Names of `like`'s leaves (flatten order), checked against the manifest."""
    named, treedef = _named_leaves(like)
    stored = {leaf["path"]: leaf for leaf in leaves}
    absent = sorted(set(stored) - {name for name, _ in named})
    if absent:
        raise CheckpointError(
            f"checkpoint {root}: leaf {absent[0]!r} is stored but absent from `like`; "
            "pass a `like` with the structure that was saved"
        )
    for name, target in named:
        is_array = hasattr(target, "shape") and hasattr(target, "dtype")
        if name not in stored or not is_array:
            problem = "is not in the checkpoint" if is_array else "is not an array"
            raise CheckpointError(
                f"checkpoint {root}: leaf {name!r} of `like` {problem}; pass a `like` "
                "with the saved structure (arrays or jax.ShapeDtypeStruct leaves)"
            )
        entry, found = stored[name], (tuple(target.shape), np.dtype(target.dtype).name)
        if found != (tuple(entry["shape"]), entry["dtype"]):
            raise CheckpointError(
                f"checkpoint {root}: leaf {name!r}: stored "
                f"{_describe(entry['shape'], entry['dtype'])}, `like` expects "
                f"{_describe(*found)}; nothing is cast silently: load with a matching "
                "`like` (or none) and convert explicitly with .astype if intended"
            )
    return [name for name, _ in named], treedef


def _restore_arrays(root: Path, leaves: list[dict]) -> dict[str, np.ndarray]:
    """Restore the flat dict with explicit `StandardRestore` args (NumPy leaves)."""
    abstract = {
        leaf["path"]: jax.ShapeDtypeStruct(
            tuple(leaf["shape"]), jnp.dtype(leaf["dtype"])
        )
        for leaf in leaves
    }
    try:
        with _checkpointer() as checkpointer:
            restored = checkpointer.restore(
                root / ARRAYS, args=ocp.args.StandardRestore(abstract)
            )
    except Exception as err:  # files verified, yet Orbax fails: report it as ours
        _drop_orbax_frames(err)
        raise CheckpointError(
            f"checkpoint {root}: Orbax could not restore {ARRAYS!r} "
            f"({type(err).__name__}: {_first_line(err)}); {_REFETCH}"
        ) from err
    return {name: np.asarray(restored[name]) for name in abstract}


@contextlib.contextmanager
def _checkpointer() -> Iterator[ocp.Checkpointer]:
    """The Orbax checkpointer of `arrays/`, its event loops draining on close."""
    with (
        _draining_event_loops(),
        ocp.Checkpointer(ocp.StandardCheckpointHandler()) as checkpointer,
    ):
        yield checkpointer


@contextlib.contextmanager
def _draining_event_loops() -> Iterator[None]:
    """Event loops created inside the block finish their tasks before closing.

    Orbax runs each save and restore in a fresh asyncio loop and closes it as soon
    as the gathered reads raise, e.g. on the first corrupted chunk. The reads still
    in flight then complete into the closed loop, and Python prints "Exception
    ignored ... RuntimeError: Event loop is closed" tracebacks after the clean
    `CheckpointError`. Loops made here run their pending tasks to the end (they
    take milliseconds; at most `_DRAIN_S`) before closing, and mark the errors of
    those leftover tasks as seen: the first error is the one Orbax raised and we
    report. The policy is swapped only for the block; without asyncio policies
    (Python ≥ 3.16) this is a no-op.
    """
    get, set_ = (
        getattr(asyncio, "get_event_loop_policy", None),
        getattr(asyncio, "set_event_loop_policy", None),
    )
    if get is None or set_ is None:
        yield
        return
    with warnings.catch_warnings():  # the policy API is deprecated from 3.14
        warnings.simplefilter("ignore", DeprecationWarning)
        previous = get()
        set_(_draining_policy(type(previous))())
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            set_(previous)


_DRAIN_S = 10.0  # [s] at most, waiting for a failed call's leftover reads


def _draining_policy(base: type) -> type:
    """`base` (an event loop policy class) whose new loops drain before closing."""

    class Draining(base):
        def new_event_loop(self):
            loop = super().new_event_loop()
            tasks: list[asyncio.Task] = []

            def track(loop, coro, **kwargs):
                task = asyncio.Task(coro, loop=loop, **kwargs)
                tasks.append(task)
                return task

            loop.set_task_factory(track)
            close = loop.close

            def drain_then_close():
                deadline = time.monotonic() + _DRAIN_S
                while not loop.is_running() and not loop.is_closed():
                    pending = [t for t in tasks if not t.done()]
                    left = deadline - time.monotonic()
                    if not pending or left <= 0:  # a hung read is left behind
                        break
                    loop.run_until_complete(asyncio.wait(pending, timeout=left))
                for task in tasks:  # leftovers of a failed gather: seen, not logged
                    if task.done() and not task.cancelled():
                        task.exception()
                tasks.clear()
                close()

            loop.close = drain_then_close
            return loop

    return Draining


def _drop_orbax_frames(err: BaseException) -> None:
    """Free the locals of a failed restore's frames, quietly.

    On some malformed metadata Orbax builds a coroutine per leaf and raises before
    awaiting them; the traceback keeps them alive until the user drops our error,
    and Python then warns "coroutine ... was never awaited". Clearing the frames
    (the traceback's lines stay) frees them here, where that warning is expected.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="coroutine .* was never awaited", category=RuntimeWarning
        )
        traceback.clear_frames(err.__traceback__)
        gc.collect()


def _first_line(err: BaseException, limit: int = 200) -> str:
    """The gist of an exception: its first line, at most `limit` characters."""
    text = (str(err).strip().splitlines() or [""])[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_restored(root: Path, arrays: dict, manifest: dict) -> None:
    for leaf in manifest["leaves"]:
        got = arrays[leaf["path"]]
        if (list(got.shape), got.dtype.name) != (leaf["shape"], leaf["dtype"]):
            raise CheckpointError(
                f"checkpoint {root}: leaf {leaf['path']!r} restored as "
                f"{_describe(got.shape, got.dtype)}, the manifest says "
                f"{_describe(leaf['shape'], leaf['dtype'])}; {_REFETCH}"
            )
    if tree_checksum(arrays) != manifest["tree_sha256"]:
        raise CheckpointError(
            f"checkpoint {root}: restored values do not match tree_sha256 in "
            f"{MANIFEST}; {_REFETCH}"
        )


def _check_expected(root: Path, metadata: dict, expected: dict | None) -> None:
    if expected is None:
        return
    for key, value in _json_metadata(expected, "expected_metadata").items():
        if key not in metadata:
            raise CheckpointError(
                f"checkpoint {root}: metadata key {key!r} is missing (expected "
                f"{value!r}); load a checkpoint saved with it, or re-train and save"
            )
        if metadata[key] != value:
            raise CheckpointError(
                f"checkpoint {root}: metadata {key!r} is {metadata[key]!r}, expected "
                f"{value!r}; this checkpoint belongs to something else: load the "
                "matching checkpoint, or re-train against the current one"
            )


# ------------------------------------------------------------------ public API


def _check_destination(final: Path, overwrite: bool) -> None:
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise CheckpointError(
            f"checkpoint {final}: exists and is not a folder; choose another path"
        )
    if not final.exists():
        return
    if not overwrite:
        raise CheckpointError(
            f"checkpoint {final}: already exists; pass overwrite=True to replace it "
            "or choose another path"
        )
    if any(final.iterdir()) and not (final / MANIFEST).is_file():
        raise CheckpointError(
            f"checkpoint {final}: exists but has no {MANIFEST}, so it is not a "
            "verified checkpoint; refusing to overwrite it: remove it yourself or "
            "choose another path"
        )


def _discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


_RENAME_EXCHANGE = 2  # renameat2 flag (Linux >= 3.15): swap two paths atomically
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap the folders `a` and `b` in one atomic step; False where unsupported.

    Linux's ``renameat2(RENAME_EXCHANGE)`` (glibc >= 2.28) through ctypes; other
    systems (or file systems without it) fall back to two renames, whose crash
    window `recover_interrupted` closes on the next open or write.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    status = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE
    )
    if status == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # not supported here: use the two-rename path
    raise OSError(code, os.strerror(code), str(b))


def _siblings(final: Path, tag: str) -> list[Path]:
    return sorted(final.parent.glob(f".{glob.escape(final.name)}.{tag}-*"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def staging_folder(final: Path, tag: str) -> Path:
    """A fresh hidden sibling ``.<name>.<tag>-<pid>-<hex>`` to build `final` in."""
    return final.with_name(f".{final.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex}")


def recover_interrupted(final: Path) -> None:
    """Finish or undo what a killed write left beside `final`.

    A write builds the new folder in a hidden sibling (``.<name>.saving-<pid>-…``
    or ``.shipping-…``) and swaps it in; where the atomic swap is unsupported the
    old folder is first renamed aside (``.<name>.replaced-…``). A kill between
    those two renames leaves no `final`: the old folder is renamed back, whole.
    Staging siblings of processes that no longer run are removed, as are set-aside
    old folders once `final` exists again.
    """
    final = Path(final).absolute()
    if not final.parent.is_dir():
        return
    replaced = _siblings(final, "replaced")
    if replaced and not (final.exists() or final.is_symlink()):
        os.rename(replaced[-1], final)  # the previous version, as it was
        _fsync_dir(final.parent)
        replaced = replaced[:-1]
    for old in replaced:
        _discard(old)
    for tag in ("saving", "shipping"):
        for stale in _siblings(final, tag):
            pid = stale.name.rsplit(f".{tag}-", 1)[1].split("-")[0]
            if not pid.isdigit() or not _pid_alive(int(pid)):
                _discard(stale)


def recover_if_interrupted(final: Path) -> None:
    """`recover_interrupted` for a reader; no error where that is not allowed.

    A missing folder whose old version a killed overwrite set aside is renamed back.
    """
    try:
        recover_interrupted(final)
    except OSError:
        pass  # read-only place: the open fails below and names the folder


def _move_into_place(staging: Path, final: Path) -> None:
    """Rename the complete `staging` folder to `final`, replacing an old one.

    An existing `final` is swapped with `staging` atomically (`_exchange`), so a
    reader sees the old folder or the new one; the old one, now at `staging`, is
    then removed. Without the atomic swap: two renames (see `recover_interrupted`).
    """
    if not final.exists():
        os.rename(staging, final)
    elif _exchange(staging, final):
        _discard(staging)  # now holds the old folder
    else:
        old = final.with_name(f".{final.name}.replaced-{uuid.uuid4().hex}")
        os.rename(final, old)  # a crash here: `recover_interrupted` renames it back
        os.rename(staging, final)
        _discard(old)
    _fsync_dir(final.parent)


def save_verified(
    directory: str | os.PathLike, tree: Any, metadata: dict, *, overwrite: bool = False
) -> Path:
    """Save `tree` with Orbax plus a `manifest.json` that `load_verified` checks.

    The checkpoint is written into a hidden sibling folder and renamed to
    `directory` only once the arrays and the manifest (written last, atomically)
    are complete; an interrupted save leaves `directory` as it was.

    Args:
        directory: the checkpoint folder to create.
        tree: a pytree of arrays (see the module docstring for names and formats).
        metadata: JSON-serialisable facts to keep with the arrays: config, code
            version, git commit, metrics, `tree_checksum` of the plant, ...
        overwrite: replace an existing verified checkpoint at `directory`.

    Returns:
        The absolute path of the checkpoint folder.
    """
    final = Path(directory).absolute()
    arrays = _named_arrays(tree)
    if not arrays:
        raise CheckpointError(
            f"checkpoint {final}: `tree` has no array leaves; pass a pytree of arrays"
        )
    metadata = _json_metadata(metadata, "metadata")
    recover_interrupted(final)
    _check_destination(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(final, "saving")
    staging.mkdir()
    try:
        with _checkpointer() as checkpointer:
            checkpointer.save(staging / ARRAYS, args=ocp.args.StandardSave(arrays))
        _write_manifest(staging, _build_manifest(staging, arrays, metadata))
        _move_into_place(staging, final)
    except BaseException:
        _discard(staging)
        raise
    return final


def leaf_names(tree: Any) -> list[str]:
    """The checkpoint names of `tree`'s leaves, in flatten order (module docstring)."""
    return [name for name, _ in _named_leaves(tree)[0]]


def tree_like(directory: str | os.PathLike, flat: dict, like: Any) -> Any:
    """`flat` in `like`'s structure, checked as `load_verified(like=...)` checks.

    `flat` is ``{leaf name: array}``, as `load_verified` returns without `like`:
    names, shapes and dtypes must match `like`'s exactly. For a tree whose leaves
    were renamed after loading (an older checkpoint format); `directory` only names
    the checkpoint in errors.
    """
    root = Path(directory).absolute()
    entries = [_leaf_entry(name, np.asarray(a)) for name, a in flat.items()]
    names, treedef = _check_like(root, like, entries)
    return jax.tree_util.tree_unflatten(treedef, [flat[name] for name in names])


def load_verified(
    directory: str | os.PathLike,
    like: Any = None,
    *,
    expected_metadata: dict | None = None,
) -> tuple[Any, dict]:
    """Load a checkpoint written by `save_verified`, after checking everything.

    Checks, in order: no symlinks or special files anywhere in the folder; every file
    in the manifest present with its size and SHA-256, and no other files;
    `expected_metadata` keys equal to the stored ones; `like`'s leaf names, shapes
    and dtypes equal to the stored ones (nothing is cast); after the Orbax restore
    (explicit `StandardRestore` args), shapes, dtypes and the tree checksum again.

    Args:
        directory: the checkpoint folder.
        like: optional pytree (arrays or `jax.ShapeDtypeStruct` leaves) with the
            target structure, e.g. `eqx.filter(model, eqx.is_array)`.
        expected_metadata: keys whose stored values must equal these (e.g. the
            `tree_checksum` of the plant a policy was trained on).

    Returns:
        `(tree, metadata)`: `tree` has `like`'s structure, or is the flat dict
        `{leaf name: array}` without `like`; leaves are NumPy arrays.

    Raises:
        CheckpointError: naming the file, leaf or key, the problem and the fix.
    """
    root = Path(directory).absolute()
    if not root.exists():
        recover_if_interrupted(root)
    sizes = _scan_folder(root)
    manifest = _read_manifest(root, sizes)
    _check_files(root, manifest["files"], sizes)
    _check_expected(root, manifest["metadata"], expected_metadata)
    if like is not None:
        names, treedef = _check_like(root, like, manifest["leaves"])
    arrays = _restore_arrays(root, manifest["leaves"])
    _check_restored(root, arrays, manifest)
    if like is None:
        return arrays, manifest["metadata"]
    tree = jax.tree_util.tree_unflatten(treedef, [arrays[name] for name in names])
    return tree, manifest["metadata"]
