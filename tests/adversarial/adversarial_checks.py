"""Adversarial checks shared by tests/adversarial and scripts/reliability.py.

Every check returns `Outcome`s: one per attempt, `handled` when neuroctl refused
the input with a clear error (naming what was wrong) or when the input provably
changed nothing. The tests run each area at small counts and assert every outcome
handled; the script runs them at larger counts and tabulates them.

Areas (see each section): artefact edits (bit flips / byte edits of every file of
a shipped folder), hostile files (truncation, empty, missing, symlinks, FIFOs,
extra files, pickle payloads, forged seals), kill -9 during `write_artefact` and
during training, CLI options with bad values, hypothesis over solver constructors
and env actions/params, seeded rollouts across fresh processes.
"""

import functools
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import strategies as st


@dataclass(frozen=True)
class Outcome:
    """One adversarial attempt: what was tried, whether it was handled, and why."""

    area: str
    case: str
    handled: bool
    reason: str = ""


def summarise(outcomes: Iterable[Outcome]) -> str:
    """The unhandled outcomes, one per line (for assertion messages)."""
    bad = [o for o in outcomes if not o.handled]
    return "\n".join(f"{o.area} | {o.case} | {o.reason}" for o in bad[:20])


# ------------------------------------------------------------ shipped folders


def shipped_folders() -> list[tuple[str, Path]]:
    """``(artefact, folder)`` of the shipped folders the checks edit copies of."""
    from neuroctl.io.artefacts import shipped_root

    envs, policies = shipped_root("envs"), shipped_root("policies")
    plants = [envs / n for n in ("evidence_integration", "beta_parkinsonian")]
    out = [("plant", p) for p in plants if (p / "seal.json").is_file()]
    pols = sorted(p.parent for p in policies.glob("*/seal.json"))
    return out + [("policy", p) for p in pols]


def files_of(folder: Path) -> list[str]:
    """Every regular file below `folder`, as sorted relative posix paths."""
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
    )


def load_artefact(artefact: str, folder: Path):
    """Load a folder the way users do (`plants.load` / `load_policy`)."""
    if artefact == "plant":
        from neuroctl.plants import load

        return load(folder)
    from neuroctl.policies.shipped import load_policy

    return load_policy(folder)


def fingerprint(artefact: str, loaded) -> str:
    """SHA-256 of everything a load returns: arrays, spec and card."""
    import dataclasses

    import equinox as eqx

    from neuroctl.io.checkpoints import tree_checksum

    if artefact == "plant":
        arrays, rest = eqx.filter(loaded, eqx.is_array), repr(_task_of(loaded))
    else:
        module, spec, card = loaded
        arrays = eqx.filter(module, eqx.is_array)
        rest = json.dumps([dataclasses.asdict(spec), card], sort_keys=True)
    body = tree_checksum(arrays) + rest
    return hashlib.sha256(body.encode()).hexdigest()


@functools.cache
def base_of(artefact: str, folder: Path) -> str:
    """The fingerprint of the unedited folder (cached)."""
    return fingerprint(artefact, load_artefact(artefact, folder))


def _task_of(plant) -> object:
    return getattr(plant, "task", None)


def classify_load(area: str, case: str, load: Callable, names: Iterable[str], base):
    """Outcome of one load of an edited folder.

    Handled: a `CheckpointError`/`ConfigError` whose message contains one of
    `names` (the edited file), or a load whose fingerprint equals `base`.
    """
    from neuroctl.errors import ConfigError
    from neuroctl.io.checkpoints import CheckpointError

    try:
        got = load()
    except (CheckpointError, ConfigError) as err:
        message = str(err)
        if any(n in message for n in names):
            return Outcome(area, case, True, "refused")
        return Outcome(area, case, False, f"refused without naming it: {message}")
    except Exception as err:  # noqa: BLE001 — anything else is a finding
        return Outcome(area, case, False, f"{type(err).__name__}: {err}"[:400])
    if base is not None and got == base:
        return Outcome(area, case, True, "loaded identical content")
    return Outcome(area, case, False, "SILENT LOAD of different content")


# ------------------------------------------------------------- artefact edits


def _edit_byte(data: bytes, pos: int, kind: str, rng) -> bytes:
    edited = bytearray(data)
    if kind == "bitflip":
        edited[pos] ^= 1 << int(rng.integers(8))
    else:  # any other byte value
        edited[pos] = (edited[pos] + int(rng.integers(1, 256))) % 256
    return bytes(edited)


def edit_positions(size: int, n: int | None, rng) -> list[int]:
    """`n` distinct positions in ``[0, size)`` (every one if `n` is None)."""
    if n is None or n >= size:
        return list(range(size))
    return sorted(int(i) for i in rng.choice(size, n, replace=False))


def artefact_edits(
    workdir: Path, per_file: Callable[[str], int | None], seed: int = 0
) -> list[Outcome]:
    """Single-bit flips and single-byte edits of every file of every shipped folder.

    Each shipped folder is copied into `workdir`; each of its files gets
    ``per_file(rel)`` positions (None: every byte), each edited twice (a bit flip
    and a byte replacement), loaded, and restored.
    """
    rng = np.random.default_rng(seed)
    outcomes = []
    for artefact, src in shipped_folders():
        copy = workdir / src.name
        shutil.copytree(src, copy)
        base = fingerprint(artefact, load_artefact(artefact, copy))
        for rel in files_of(copy):
            outcomes += _edit_file(artefact, copy, rel, per_file(rel), rng, base)
        shutil.rmtree(copy)
    return outcomes


def _edit_file(artefact, folder, rel, n, rng, base) -> list[Outcome]:
    path = folder / rel
    original = path.read_bytes()
    outcomes = []
    try:
        for pos in edit_positions(len(original), n, rng):
            for kind in ("bitflip", "byte"):
                path.write_bytes(_edit_byte(original, pos, kind, rng))
                case = f"{folder.name}/{rel}@{pos} {kind}"
                outcomes.append(
                    _load_outcome("artefact edits", case, artefact, folder, [rel], base)
                )
    finally:
        path.write_bytes(original)
    return outcomes


def _load_outcome(area, case, artefact, folder, names, base) -> Outcome:
    def load():
        return fingerprint(artefact, load_artefact(artefact, folder))

    return classify_load(area, case, load, names, base)


def forged_checkpoint_edits(
    workdir: Path,
    per_file: int,
    seed: int = 0,
    names: Iterable[str] | None = None,
    skip: Iterable[str] = (),
) -> list[Outcome]:
    """Bit flips and byte edits of checkpoint files behind a forged seal.

    The seal and the checkpoint manifest are recomputed over each edit (what an
    attacker with write access can do), so only the inner checks stand: the
    Orbax restore, shapes and dtypes, ``tree_sha256`` and the expected metadata.
    Each edit must still be refused, or load identical content (e.g. a timestamp).
    `names` limits the folders, `skip` leaves out files (relative paths).
    """
    rng = np.random.default_rng(seed)
    outcomes = []
    for artefact, src in shipped_folders():
        if names is not None and src.name not in names:
            continue
        copy = workdir / src.name
        shutil.copytree(src, copy)
        base = base_of(artefact, src)
        rels = [r for r in files_of(src) if r.startswith("checkpoint/")]
        for rel in [r for r in rels if r not in skip]:
            outcomes += _forge_file(artefact, copy, rel, per_file, rng, base)
        shutil.rmtree(copy)
    return outcomes


def _forge_file(artefact, folder, rel, n, rng, base) -> list[Outcome]:
    path = folder / rel
    original = {r: (folder / r).read_bytes() for r in ("seal.json", rel)}
    manifest = folder / "checkpoint" / "manifest.json"
    original[manifest.relative_to(folder).as_posix()] = manifest.read_bytes()
    outcomes = []
    try:
        for pos in edit_positions(len(original[rel]), n, rng):
            for kind in ("bitflip", "byte"):
                path.write_bytes(_edit_byte(original[rel], pos, kind, rng))
                reseal(folder, artefact)
                case = f"{folder.name}/{rel}@{pos} {kind} (forged seal)"
                names = ["checkpoint"]
                outcomes.append(
                    _load_outcome(
                        "forged-seal edits", case, artefact, folder, names, base
                    )
                )
                for r, data in original.items():
                    (folder / r).write_bytes(data)
    finally:
        for r, data in original.items():
            (folder / r).write_bytes(data)
    return outcomes


# ------------------------------------------------------------- hostile files

_AUDIT: dict = {"watch": None, "seen": []}


def _audit(event: str, args: tuple) -> None:
    watch = _AUDIT["watch"]
    if watch is None or event not in ("open", "os.scandir", "os.listdir"):
        return
    path = args[0] if args else None
    if isinstance(path, str | bytes | os.PathLike):
        text = os.fsdecode(path)
        if text.startswith(watch):
            _AUDIT["seen"].append((event, text))


def watch_outside(folder: Path) -> None:
    """Record every Python-level open/scandir of a path under `folder` from now on."""
    if not _AUDIT.get("installed"):
        sys.addaudithook(_audit)
        _AUDIT["installed"] = True
    _AUDIT["watch"], _AUDIT["seen"] = str(folder), []


def outside_reads() -> list:
    """What `watch_outside` recorded since it was called."""
    return list(_AUDIT["seen"])


class Payload:
    """Unpickling this runs `touch marker` (a safe loader never unpickles)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def pickle_payload(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker), protocol=2)


def reseal(folder: Path, artefact: str) -> None:
    """Forge the seal (and the checkpoint manifest) over the folder as it is now.

    What an attacker with write access can do: the seal is integrity, not a
    signature, so a forged folder must still fail on its content.
    """
    from neuroctl.io import checkpoints as ck
    from neuroctl.io.artefacts import seal

    ckpt = folder / "checkpoint"
    manifest_path = ckpt / ck.MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
        body["files"] = [
            {"path": rel, "size": size, "sha256": ck._sha256_file(ckpt / rel)}
            for rel, size in sorted(ck._scan_folder(ckpt).items())
            if rel != ck.MANIFEST
        ]
        digest = hashlib.sha256(ck._canonical(body)).hexdigest()
        manifest_path.write_text(json.dumps({**body, "manifest_sha256": digest}))
    except (OSError, ValueError, ck.CheckpointError):
        pass  # the manifest itself is the damaged file: leave it damaged
    seal(folder, artefact)


def _truncate(folder, rel, outside, rng):
    data = (folder / rel).read_bytes()
    (folder / rel).write_bytes(data[: int(rng.integers(0, max(len(data), 1)))])


def _empty(folder, rel, outside, rng):
    (folder / rel).write_bytes(b"")


def _missing(folder, rel, outside, rng):
    (folder / rel).unlink()


def _symlink_out(folder, rel, outside, rng):
    target = outside / rel.replace("/", "_")
    shutil.copyfile(folder / rel, target)  # identical bytes: only the link is wrong
    (folder / rel).unlink()
    (folder / rel).symlink_to(target)


def _fifo(folder, rel, outside, rng):
    (folder / rel).unlink()
    os.mkfifo(folder / rel)


def _pickle_in_place(folder, rel, outside, rng):
    (folder / rel).write_bytes(pickle_payload(outside / "MARKER"))


PER_FILE = {
    "truncated": _truncate,
    "empty": _empty,
    "missing": _missing,
    "symlink-outside": _symlink_out,
    "fifo": _fifo,
    "pickle-in-place": _pickle_in_place,
}


def hostile_files(workdir: Path, seed: int = 0, repeats: int = 1) -> list[Outcome]:
    """Per-file and per-folder hostile changes to copies of every shipped folder."""
    rng = np.random.default_rng(seed)
    outcomes = []
    for artefact, src in shipped_folders():
        for _ in range(repeats):
            for rel in files_of(src):
                for name, change in PER_FILE.items():
                    outcomes.append(
                        _hostile(workdir, artefact, src, rel, name, change, rng)
                    )
                outcomes.append(_forged(workdir, artefact, src, rel, rng))
        outcomes += _folder_level(workdir, artefact, src)
    return outcomes


def _fresh(workdir: Path, src: Path) -> tuple[Path, Path]:
    case = Path(tempfile.mkdtemp(dir=workdir))
    outside = case / "outside"
    outside.mkdir()
    shutil.copytree(src, case / src.name)
    return case / src.name, outside


def _hostile(workdir, artefact, src, rel, name, change, rng) -> Outcome:
    folder, outside = _fresh(workdir, src)
    change(folder, rel, outside, rng)
    case = f"{src.name}/{rel} {name}"
    outcome = _guarded_load(
        "hostile files", case, artefact, folder, [rel], outside, base_of(artefact, src)
    )
    shutil.rmtree(folder.parent)
    return outcome


def _guarded_load(area, case, artefact, folder, names, outside, base=None):
    """`classify_load` with a timeout (FIFOs), an outside-read audit and a marker."""
    import signal

    def timeout(*_):
        raise TimeoutError("the load blocked for 20 s (read a FIFO?)")

    watch_outside(outside)
    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(20)
    try:
        outcome = classify_load(
            area,
            case,
            lambda: fingerprint(artefact, load_artefact(artefact, folder)),
            names,
            base,
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        _AUDIT["watch"] = None
    problems = []
    if outside_reads():
        problems.append(f"read outside the folder: {outside_reads()[:3]}")
    if (outside / "MARKER").exists():
        problems.append("A PICKLE WAS EXECUTED (marker file created)")
    if problems:
        return Outcome(area, case, False, "; ".join(problems + [outcome.reason]))
    return outcome


def _forged(workdir, artefact, src, rel, rng) -> Outcome:
    """A pickle in place of `rel`, with the seal and manifest forged around it."""
    folder, outside = _fresh(workdir, src)
    (folder / rel).write_bytes(pickle_payload(outside / "MARKER"))
    reseal(folder, artefact)
    names = [rel, Path(rel).name, "checkpoint", "arrays"]
    case = f"{src.name}/{rel} pickle+forged seal"
    base = base_of(artefact, src)  # e.g. seal.json: rewritten whole by the forgery
    outcome = _guarded_load(
        "hostile files", case, artefact, folder, names, outside, base
    )
    shutil.rmtree(folder.parent)
    return outcome


def _folder_level(workdir: Path, artefact: str, src: Path) -> list[Outcome]:
    outcomes = []
    for name, change, names in (
        ("folder is a symlink", _link_folder, ["symlink"]),
        ("checkpoint/ is a symlink", _link_checkpoint, ["symlink"]),
        ("extra pickle at root", _extra("payload.pkl"), ["payload.pkl"]),
        ("extra pickle in checkpoint/", _extra("checkpoint/x.pkl"), ["x.pkl"]),
        (
            "extra pickle in arrays/",
            _extra("checkpoint/arrays/d/x.pkl"),
            ["x.pkl"],
        ),
        ("extra FIFO at root", _extra_fifo, ["pipe"]),
        ("extra empty folder", _extra_dir, ["empty"]),
    ):
        folder, outside = _fresh(workdir, src)
        target = change(folder, outside)
        case = f"{src.name} {name}"
        base = base_of(artefact, src)
        outcomes.append(
            _guarded_load("hostile files", case, artefact, target, names, outside, base)
        )
        shutil.rmtree(folder.parent)
    return outcomes


def _link_folder(folder: Path, outside: Path) -> Path:
    real = outside / folder.name
    shutil.move(folder, real)
    folder.symlink_to(real, target_is_directory=True)
    return folder


def _link_checkpoint(folder: Path, outside: Path) -> Path:
    shutil.move(folder / "checkpoint", outside / "checkpoint")
    (folder / "checkpoint").symlink_to(outside / "checkpoint", target_is_directory=True)
    return folder


def _extra(rel: str) -> Callable:
    def change(folder: Path, outside: Path) -> Path:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(pickle_payload(outside / "MARKER"))
        return folder

    return change


def _extra_fifo(folder: Path, outside: Path) -> Path:
    os.mkfifo(folder / "pipe")
    return folder


def _extra_dir(folder: Path, outside: Path) -> Path:
    (folder / "checkpoint" / "empty").mkdir()
    return folder


# ------------------------------------------------------------------- kill -9

WRITER = """
import sys
import numpy as np
from neuroctl.io.artefacts import write_artefact

folder, gen, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
while True:
    gen += 1
    tree = {f"w{i}": np.full(n, gen, np.float32) for i in range(4)}
    spec = f'kind = "toy"\\ngeneration = {gen}\\n'
    write_artefact(folder, "plant", spec, {"generation": gen}, tree,
                   {"generation": gen}, overwrite=True)
    print(gen, flush=True)
"""


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def kill_during_write(workdir: Path, trials: int, seed: int = 0, n=1 << 19):
    """kill -9 a loop of `write_artefact(..., overwrite=True)` at random moments.

    After each kill the folder must open and be one generation whole (spec, card,
    metadata and every array agree), the last one printed or the one after it.
    """
    import time

    rng = np.random.default_rng(seed)
    folder, gen, outcomes = workdir / "artefact", 0, []
    for trial in range(trials):
        proc = _python(WRITER, folder, gen, n)
        first = proc.stdout.readline()  # one whole write: the kill lands later
        t0 = time.perf_counter()
        second = proc.stdout.readline()
        period = time.perf_counter() - t0
        time.sleep(float(rng.uniform(0.0, 1.5 * period)))
        proc.kill()
        out, err = proc.communicate()
        printed = [int(x) for x in (first + second + out).split()]
        if not printed:
            outcomes.append(
                Outcome("kill -9 write", f"trial {trial}", False, err[-400:])
            )
            continue
        outcome, gen = _check_generation(folder, printed[-1], f"trial {trial}")
        outcomes.append(outcome)
    return outcomes


def _check_generation(folder: Path, last: int, case: str) -> tuple[Outcome, int]:
    from neuroctl.io.artefacts import open_artefact
    from neuroctl.io.checkpoints import load_verified

    area = "kill -9 write"
    leftovers = sorted(p.name for p in folder.parent.iterdir() if p != folder)
    try:
        art = open_artefact(folder, "plant")
        tree, meta = load_verified(art.checkpoint)
    except Exception as err:  # noqa: BLE001
        reason = f"folder does not open: {type(err).__name__}: {err}"
        return Outcome(area, case, False, f"{reason}; siblings {leftovers}"), last
    gens = {art.spec["generation"], art.card["generation"], meta["generation"]}
    gens |= {float(v) for a in tree.values() for v in np.unique(a)}
    if len(gens) != 1 or next(iter(gens)) not in (last, last + 1):
        return Outcome(area, case, False, f"MIXED: {gens}, last printed {last}"), last
    case = f"{case} ({len(leftovers)} hidden staging folders beside it)"
    return Outcome(area, case, True, "whole: old or new"), int(next(iter(gens)))


TRAINER = """
import hashlib, json, sys
from pathlib import Path
import jax, numpy as np
from neuroctl.io.runs import read_log
from neuroctl.train import bptt
from neuroctl.train.runs import RunOptions, RunSpec, train_run

out, iterations = Path(sys.argv[1]), int(sys.argv[2])
spec = RunSpec(env="SpikeRate-v0", env_options={"episode_ms": 5.0},
               precision="float64", hidden=4, train=bptt.BPTTConfig(batch=2, lr=0.05))
opts = RunOptions(out, iterations, save_every=1, keep=2, resume=True,
                  progress=False, validate_every=2, validate_episodes=2)
print("started", flush=True)
run = train_run(spec, opts)
digest = hashlib.sha256()
for leaf in jax.tree.leaves((run.state, run.best_params)):
    digest.update(np.asarray(leaf).tobytes())
log = [{k: v for k, v in x.items() if k not in ("step_s", "wall_s")}
       for x in read_log(out / "log.jsonl")]
digest.update(json.dumps([log, run.best_iteration, run.best_return]).encode())
print("DONE", int(run.state.step), digest.hexdigest(), flush=True)
"""


def _train(out: Path, iterations: int, kill_after: float | None):
    """Run `TRAINER`; kill -9 it `kill_after` seconds after it reports "started"."""
    import time

    proc = _python(TRAINER, out, iterations)
    if kill_after is None:
        stdout, stderr = proc.communicate(timeout=600)
        return stdout, stderr
    proc.stdout.readline()
    time.sleep(kill_after)
    proc.kill()
    return proc.communicate()


CRASH_WINDOW = """
import os, signal, sys
import numpy as np
from neuroctl.io import checkpoints
from neuroctl.io.artefacts import write_artefact

folder, window = sys.argv[1], sys.argv[2]
real_rename, real_discard = os.rename, checkpoints._discard


def rename(src, dst):
    real_rename(src, dst)
    if ".replaced-" in str(dst):  # the old folder moved aside, the new not yet in
        os.kill(os.getpid(), signal.SIGKILL)


def discard(path):
    if ".shipping-" in str(path):  # swapped: the old folder waits to be removed
        os.kill(os.getpid(), signal.SIGKILL)
    real_discard(path)


if window == "between renames":  # a system without the atomic swap
    checkpoints._exchange = lambda a, b: False
    os.rename = rename
else:
    checkpoints._discard = discard
spec = 'kind = "toy"\\ngeneration = 2\\n'
write_artefact(folder, "plant", spec, {"generation": 2},
               {"w0": np.full(8, 2.0, np.float32)}, {"generation": 2}, overwrite=True)
"""

CRASH_WINDOWS = ("between renames", "after the swap")


def crash_windows(workdir: Path) -> list[Outcome]:
    """kill -9 exactly in the two windows of `_move_into_place` (forced).

    "after the swap": the atomic exchange done, the old folder (now in the staging
    sibling) not yet removed. "between renames": on a system without the atomic
    swap, the old folder renamed aside and the new one not yet in; the next open
    renames the old one back.
    """
    from neuroctl.io.artefacts import write_artefact

    outcomes = []
    for window in CRASH_WINDOWS:
        folder = workdir / window.replace(" ", "_") / "artefact"
        tree = {"w0": np.full(8, 1.0, np.float32)}
        spec = 'kind = "toy"\ngeneration = 1\n'
        meta = {"generation": 1}
        write_artefact(folder, "plant", spec, meta, tree, meta)
        proc = _python(CRASH_WINDOW, folder, window)
        proc.communicate(timeout=300)
        if proc.returncode != -9:
            reason = f"the window was not reached (exit {proc.returncode})"
            outcomes.append(Outcome("crash windows (forced)", window, False, reason))
            continue
        outcome, _ = _check_generation(folder, 1, f"kill {window}")
        outcomes.append(
            Outcome(
                "crash windows (forced)", outcome.case, outcome.handled, outcome.reason
            )
        )
    return outcomes


def training_reference(workdir: Path, iterations: int) -> tuple[str, float]:
    """The digest of an uninterrupted run and its wall time after start-up [s]."""
    import time

    t0 = time.perf_counter()
    stdout, stderr = _train(workdir / "reference", iterations, None)
    done = [x for x in stdout.splitlines() if x.startswith("DONE")]
    if not done:
        raise RuntimeError(f"the reference training run failed: {stderr[-2000:]}")
    return done[0], time.perf_counter() - t0


def kill_during_training(
    workdir: Path, trials: int, iterations: int = 6, seed: int = 0, kills: int = 2
) -> list[Outcome]:
    """kill -9 `neuroctl.train.runs.train_run` at random moments, resume, compare.

    Each trial kills up to `kills` times at a random moment, then resumes to the
    end; the final state, best params, log and best iteration must equal an
    uninterrupted run's bit for bit.
    """
    rng = np.random.default_rng(seed)
    reference, wall = training_reference(workdir, iterations)
    outcomes = []
    for trial in range(trials):
        out = workdir / f"killed{trial}"
        moments = rng.uniform(0.0, wall, size=int(rng.integers(1, kills + 1)))
        for moment in moments:
            _train(out, iterations, float(moment))
        stdout, stderr = _train(out, iterations, None)
        done = [x for x in stdout.splitlines() if x.startswith("DONE")]
        case = f"trial {trial}: killed at {np.round(moments, 2).tolist()} s"
        if not done:
            reason = f"resume failed: {stderr[-600:]}"
        elif done[0] != reference:
            reason = f"NOT BIT-IDENTICAL: {done[0]} vs {reference}"
        else:
            reason = ""
        outcomes.append(Outcome("kill -9 training", case, not reason, reason or "same"))
    return outcomes


# ------------------------------------------------------------------------ CLI

HUGE_INT = "99999999999999999999"  # > 2**64
FILE, PROC, MISSING, FOLDER = "<file>", "/proc/neuroctl/x", "/nonexistent/x", "<dir>"
INT_POS = ("0", "-1", "nan", HUGE_INT)
INT_NONNEG = ("-1", "nan", HUGE_INT)
POS_FLOAT = ("0", "-1", "nan", "inf", "-inf")
NONNEG_FLOAT = ("-1", "nan", "inf", "-inf")
FRACTION = ("-0.5", "1.5", "nan", "inf")
OUT_DIR = (FILE, PROC)  # a run/artefact folder to write
OUT_FILE = (FOLDER, PROC + ".png")  # a file to write
IN_DIR = (FILE, MISSING)  # a folder to read

#: subcommand -> (arguments that keep a run tiny, {option: bad values})
CLI = {
    "train": (
        "--env-option episode_ms=2 --iterations 1 --batch 1 --eval-episodes 1 "
        "--sweep-points 2 --sweep-episodes 1 --validate-episodes 1 --no-progress",
        {
            "hidden": INT_POS,
            "n-bins": INT_POS,
            "init-fraction": FRACTION,
            "seed": ("-1", HUGE_INT, "nan"),
            "iterations": INT_NONNEG,
            "batch": INT_POS,
            "lr": POS_FLOAT,
            "decay-steps": INT_NONNEG,
            "clip-norm": POS_FLOAT,
            "truncation": INT_NONNEG,
            "out": OUT_DIR,
            "save-every": INT_POS,
            "validate-every": INT_POS,
            "validate-episodes": INT_POS,
            "eval-episodes": INT_POS,
            "sweep-points": ("1", *INT_POS),
            "sweep-episodes": INT_POS,
        },
    ),
    "train-policy": (
        "--iterations 1 --batch 1 --eval-trials 0 --no-progress --out run",
        {
            "hidden": INT_POS,
            "n-bins": INT_POS,
            "g-max": POS_FLOAT,
            "g-init": ("-1", "nan", "inf", "3.0"),
            "seed": ("-1", HUGE_INT, "nan"),
            "iterations": INT_POS,
            "batch": INT_POS,
            "lr": POS_FLOAT,
            "decay-steps": INT_NONNEG,
            "clip-norm": POS_FLOAT,
            "lambda-gain": NONNEG_FLOAT,
            "lambda-current": NONNEG_FLOAT,
            "lambda-charge": NONNEG_FLOAT,
            "ce-scale": POS_FLOAT,
            "control-ms": POS_FLOAT,
            "truncation": INT_NONNEG,
            "out": OUT_DIR,
            "save-every": INT_POS,
            "eval-trials": INT_NONNEG,
            "figure": OUT_FILE,
            "init-from": IN_DIR,
            "ship": OUT_DIR,
        },
    ),
    "evaluate": (
        "--trials 1 --no-progress",
        {
            "policy": IN_DIR,
            "trials": INT_POS,
            "seed": ("-1", HUGE_INT, "nan"),
            "out": OUT_FILE,
            "figure": OUT_FILE,
        },
    ),
    "ship": (  # --out/--trials need a finished run to reach: tests/cli cover them
        "--run <run> --out shipped",
        {"run": IN_DIR},
    ),
    "ship-policy": (
        "--run <run>",
        {"run": IN_DIR, "out": OUT_DIR, "trials": INT_POS},
    ),
    "demo": (
        "--duration-ms 1",
        {
            "out": OUT_FILE,
            "duration-ms": POS_FLOAT,
            "dt": POS_FLOAT,
            "seed": ("-1", HUGE_INT, "nan"),
        },
    ),
    "train-plant": (
        "--iterations 1 --trial-ms 2 --response-window-ms 1 2 --out run",
        {
            "seed": ("-1", HUGE_INT, "nan"),
            "iterations": INT_POS,
            "batch": INT_POS,
            "lr": POS_FLOAT,
            "out": OUT_DIR,
            "save-every": INT_POS,
            "keep": INT_POS,
            "trial-ms": POS_FLOAT,
            "response-window-ms": ("nan 2", "-1 2", "2 1", "1 inf", "1 99"),
            "checkpoint-lengths": ("0", "-1", "1 1"),
            "init-syn-fraction": FRACTION,
        },
    ),
    "evaluate-plant": (
        "--trials 1",
        {
            "trials": INT_POS,
            "seed": ("-1", HUGE_INT, "nan"),
            "chunk": INT_POS,
            "root": IN_DIR,
        },
    ),
    "freeze-plant": (
        "--run <fakerun> --trials 1",
        {
            "run": IN_DIR,
            "out": OUT_DIR,
            "step": ("-1", HUGE_INT, "nan"),
            "trials": INT_POS,
            "chunk": INT_POS,
        },
    ),
}


def cli_cases() -> list[tuple[str, str, str]]:
    """Every ``(subcommand, option, bad value)`` of `CLI`."""
    return [
        (command, option, value)
        for command, (_, options) in CLI.items()
        for option, values in options.items()
        for value in values
    ]


def cli_argv(command: str, option: str, value: str, cwd: Path) -> list[str]:
    """The argument list of one case; placeholders become paths under `cwd`."""
    (cwd / "a_file").write_text("not a folder\n")
    (cwd / "a_dir").mkdir(exist_ok=True)
    (cwd / "fakerun" / "checkpoints").mkdir(parents=True, exist_ok=True)
    (cwd / "emptyrun").mkdir(exist_ok=True)
    places = {
        FILE: str(cwd / "a_file"),
        FOLDER: str(cwd / "a_dir"),
        "<fakerun>": str(cwd / "fakerun"),
        "<run>": str(cwd / "emptyrun"),
    }
    base = [places.get(x, x) for x in CLI[command][0].split()]
    values = [places.get(value, value)] if " " not in value else value.split()
    return [command, *base, f"--{option}", *values]


class _Timeout(BaseException):
    """Raised by the alarm: a case that ran instead of refusing."""


def run_cli(argv: list[str], cwd: Path, timeout: int = 60) -> tuple[object, str]:
    """Run ``neuroctl <argv>`` in this process: ``(exit code, stderr)``.

    What the real process would print is reproduced: a `SystemExit` message goes
    to stderr, any other exception is a traceback. JAX's x64 flag (commands set
    it), sys.argv and the working directory are restored.
    """
    import contextlib
    import io
    import signal
    import traceback

    import jax

    from neuroctl.cli import main

    def alarm(*_):
        raise _Timeout

    x64, old_argv, old_cwd = jax.config.jax_enable_x64, sys.argv, os.getcwd()
    err = io.StringIO()
    sys.argv = ["neuroctl", *argv]
    os.chdir(cwd)
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(timeout)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
        if isinstance(code, str):
            err.write(code + "\n")
            code = 1
    except _Timeout:
        code = "timeout"
    except Exception:  # noqa: BLE001 — the real process would print this
        err.write(traceback.format_exc())
        code = 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        sys.argv = old_argv
        os.chdir(old_cwd)
        jax.config.update("jax_enable_x64", x64)
    return (0 if code is None else code), err.getvalue()


def classify_cli(case: str, option: str, code, stderr: str) -> Outcome:
    """Handled: a non-zero exit, no traceback, a message naming the option."""
    area, field = "CLI bad values", option.replace("-", "_")
    named = f"--{option}" in stderr or f"{field}:" in stderr or f"{option}:" in stderr
    if code == "timeout":
        return Outcome(area, case, False, "accepted: still running at the timeout")
    if code == 0:
        return Outcome(area, case, False, "accepted: exit 0")
    if "Traceback" in stderr:
        lines = [x for x in stderr.splitlines() if x[:1].isalpha() and ": " in x]
        last = lines[-1] if lines else stderr.strip().splitlines()[-1]
        return Outcome(area, case, False, f"Traceback: {last}"[:300])
    if not named:
        text = " ".join(stderr.split())
        return Outcome(
            area, case, False, f"message does not name --{option}: {text}"[:300]
        )
    return Outcome(area, case, True, "refused")


def cli_bad_values(workdir: Path, cases=None, timeout: int = 60) -> list[Outcome]:
    """Every (or the given) CLI case in this process, each in a fresh folder."""
    outcomes = []
    for i, (command, option, value) in enumerate(cases or cli_cases()):
        cwd = workdir / f"cli{i}"
        cwd.mkdir()
        code, stderr = run_cli(cli_argv(command, option, value, cwd), cwd, timeout)
        case = f"{command} --{option} {value}"
        outcomes.append(classify_cli(case, option, code, stderr))
    return outcomes


def cli_subprocess(workdir: Path, command: str, option: str, value: str) -> Outcome:
    """One case through the real ``python -m neuroctl.cli`` (no in-process harness)."""
    cwd = workdir / f"sub-{command}-{option}"
    cwd.mkdir()
    res = subprocess.run(
        [sys.executable, "-m", "neuroctl.cli", *cli_argv(command, option, value, cwd)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    return classify_cli(
        f"{command} --{option} {value} (process)", option, res.returncode, res.stderr
    )


# --------------------------------------------------- seeded rollouts, processes

ROLLOUT = """
import hashlib, json, sys
import gymnasium, jax, numpy as np
jax.config.update("jax_enable_x64", True)  # the shipped evidence plant is float64
import neuroctl
from neuroctl.envs import names

SHORT = {"trial_ms": 4.0, "response_window_ms": (2.0, 4.0)}
OPTIONS = {  # short episodes where the env allows (only 4 steps are taken anyway)
    "EvidenceStim-v0": SHORT,
    "EvidenceStimElectrodes-v0": SHORT,
    "SpikeRate-v0": {"episode_ms": 5.0},
    "SpikeRateBallStick-v0": {"episode_ms": 5.0},
}
for name in names():  # an env registered later runs with its defaults
    env = gymnasium.make(f"neuroctl/{name}", **OPTIONS.get(name, {}))
    digest = hashlib.sha256()
    obs, _ = env.reset(seed=1234)
    env.action_space.seed(99)
    digest.update(np.asarray(obs).tobytes())
    for _ in range(4):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        digest.update(np.asarray(obs).tobytes() + np.float64(r).tobytes())
        digest.update(bytes([bool(term), bool(trunc)]))
        if term or trunc:
            obs, _ = env.reset()
    print(name, digest.hexdigest(), flush=True)
"""


def rollout_digests(cwd: Path, processes: int = 3, parallel: int = 2) -> list[dict]:
    """``{env name: digest}`` of a seeded rollout in each of `processes` fresh
    processes, `parallel` at a time."""
    runs, pending = [], list(range(processes))
    while pending:
        batch = [_python(ROLLOUT, cwd=cwd) for _ in pending[:parallel]]
        pending = pending[parallel:]
        for proc in batch:
            stdout, stderr = proc.communicate(timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(f"rollout process failed: {stderr[-2000:]}")
            runs.append(dict(line.split() for line in stdout.splitlines()))
    return runs


def rollouts_across_processes(workdir: Path, processes: int = 3) -> list[Outcome]:
    """Every registered env's seeded rollout, bit-identical in `processes` processes."""
    runs = rollout_digests(workdir, processes)
    outcomes = []
    for name in sorted(set().union(*runs)):
        digests = {run.get(name) for run in runs}
        ok = len(digests) == 1 and None not in digests
        reason = "identical" if ok else f"DIFFERENT: {sorted(map(str, digests))}"
        outcomes.append(Outcome("rollouts across processes", name, ok, reason))
    return outcomes


# ------------------------------------------------------ solver and env inputs

NAN, INF = float("nan"), float("inf")
EXTREMES = (0.0, -1.0, 1e-300, -1e-300, 1e300, -1e300, NAN, INF, -INF, 1e6, -1e6)


def simulate_finite(net, steps: int = 40, amp: float = 0.1) -> bool:
    """Whether a short current-clamp run of `net` stays finite."""
    import jax.numpy as jnp

    import neuroctl.biophysics as bp

    state = bp.init_state(net, net.default_params)
    n_stim = len(net.stimuli) if hasattr(net, "stimuli") else 1
    _, out = bp.simulate(
        net, net.default_params, state, jnp.full((steps, n_stim), amp), 0.025
    )
    return bool(np.all(np.isfinite(np.asarray(out))))


def classify_build(area: str, case: str, build: Callable) -> Outcome:
    """Handled: a `ConfigError` at construction, or a finite simulation."""
    from neuroctl.errors import ConfigError

    try:
        net = build()
    except ConfigError:
        return Outcome(area, case, True, "refused")
    except Exception as err:  # noqa: BLE001
        return Outcome(area, case, False, f"{type(err).__name__}: {err}"[:300])
    try:
        finite = simulate_finite(net)
    except Exception as err:  # noqa: BLE001
        return Outcome(
            area, case, False, f"simulate: {type(err).__name__}: {err}"[:300]
        )
    if finite:
        return Outcome(area, case, True, "finite")
    return Outcome(area, case, False, "NON-FINITE voltages, no error")


def morphology_net(parents, **geometry):
    import neuroctl.biophysics as bp

    cell = bp.Cell(bp.Morphology.from_parents(parents, **geometry)).insert(bp.HH())
    return bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])


def mechanism_net(cls_name: str, field: str, value):
    """One Hay-style compartment with `cls_name(field=value)` inserted."""
    import neuroctl.biophysics as bp

    mech = getattr(bp, cls_name)(**{field: value})
    cell = bp.Cell(bp.Morphology.single_compartment(18.8, 9.4))
    if cls_name in ("CaHVA", "CaLVA", "SKE2", "CalciumDynamics"):
        cell = cell.insert(bp.CaHVA() if cls_name != "CaHVA" else mech)
        if cls_name != "CalciumDynamics":
            cell = cell.insert(bp.CalciumDynamics())
    if cls_name not in ("CaHVA",):
        cell = cell.insert(mech)
    cell = cell.insert(bp.Leak()) if cls_name != "Leak" else cell
    return bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])


def synapse_net(field: str, value):
    import neuroctl.biophysics as bp

    cell = bp.Cell(bp.Morphology.single_compartment(18.8, 9.4)).insert(bp.HH())
    syn = bp.GradedSynapse(**{field: value})
    cons = [bp.Connection(syn, bp.Site(0), bp.Site(1))]
    return bp.Network.build(
        [cell, cell], cons, stimuli=[bp.Site(0)], recordings=[bp.Site(0), bp.Site(1)]
    )


MECHANISMS = ("Leak", "HH", "NaTs2T", "SKv3_1", "M", "H", "CaHVA", "CaLVA", "SKE2")
MECHANISMS += ("CalciumDynamics",)


def mechanism_fields(cls_name: str) -> list[str]:
    """The numeric parameters of a mechanism class (static fields excluded)."""
    import dataclasses

    import neuroctl.biophysics as bp

    cls = getattr(bp, cls_name)
    return [f.name for f in dataclasses.fields(cls) if not f.metadata.get("static")]


def _finite_tree(tree) -> bool:
    import jax

    leaves = [np.asarray(x) for x in jax.tree.leaves(tree)]
    return all(np.all(np.isfinite(x)) for x in leaves if x.dtype.kind in "fc")


@functools.cache
def spike_rate_env():
    """SpikeRate-v0 on a 2-ms episode, and a jitted reset + two steps."""
    import jax

    from neuroctl.envs import make

    env = make("SpikeRate-v0", episode_ms=2.0, dtype="float64")

    @jax.jit
    def episode(params, action):
        obs0, state = env.reset(jax.random.key(0), params)
        out = [obs0]
        for i in (1, 2):
            obs, state, reward, done, info = env.step_env(
                jax.random.key(i), state, action, params
            )
            out.append((obs, reward, info, state))
        return out

    return env, episode


def env_outputs_outcome(area: str, case: str, outputs, params_finite: bool):
    """Handled: obs, reward, info and state finite; non-finite params flagged.

    On a step flagged as diverged, ``info.action`` (the action as clipped to the
    bounds, NaN if a bound is NaN) is not required to be finite.
    """
    import dataclasses

    obs0, *steps = outputs
    if not _finite_tree(obs0):
        return Outcome(area, case, False, "NON-FINITE observation after reset")
    for i, (obs, reward, info, state) in enumerate(steps, 1):
        diverged = bool(info.diverged)
        shown = dataclasses.replace(info, action=0.0) if diverged else info
        if not _finite_tree((obs, reward, shown, state.sim)):
            return Outcome(
                area,
                case,
                False,
                f"NON-FINITE output at step {i} "
                f"(diverged={diverged}, reward={float(reward)})",
            )
        if not params_finite and not diverged:
            reason = f"non-finite params, step {i} not flagged"
            return Outcome(area, case, False, reason)
    return Outcome(area, case, True, "finite")


def env_action_outcome(action) -> Outcome:
    """One hostile action on SpikeRate-v0 (eager step: also odd types and shapes)."""
    import jax

    from neuroctl.errors import ConfigError

    env, episode = spike_rate_env()
    case = f"SpikeRate-v0 action {action!r}"[:120]
    area = "env actions"
    try:
        obs, state = env.reset(jax.random.key(0), env.default_params)
        out = env.step_env(jax.random.key(1), state, action, env.default_params)
    except ConfigError:
        return Outcome(area, case, True, "refused")
    except Exception as err:  # noqa: BLE001
        return Outcome(area, case, False, f"{type(err).__name__}: {err}"[:300])
    obs1, state1, reward, done, info = out
    return env_outputs_outcome(area, case, [obs, (obs1, reward, info, state1)], True)


def env_param_outcome(name: str, value: float, traced: bool) -> Outcome:
    """SpikeRate-v0 with param `name` = `value`: eagerly set (may be refused) or
    traced under jit (must be flagged as diverged when non-finite)."""
    import equinox as eqx
    import jax.numpy as jnp

    from neuroctl.envs.params import get_param, override_params
    from neuroctl.errors import ConfigError

    env, episode = spike_rate_env()
    area = "env params"
    case = f"SpikeRate-v0 {name}={value!r} ({'traced' if traced else 'override'})"
    params = env.default_params
    try:
        if traced:
            old = jnp.asarray(get_param(params, name))
            new = jnp.full_like(old, value) if old.dtype.kind == "f" else old
            params = eqx.tree_at(lambda p: get_param(p, name), params, new)
        else:
            params = override_params(params, {name: value}, env.param_aliases())
        outputs = episode(env.prepare_params(params), jnp.array([0.2]))
    except ConfigError:
        return Outcome(area, case, True, "refused")
    except Exception as err:  # noqa: BLE001
        return Outcome(area, case, False, f"{type(err).__name__}: {err}"[:300])
    return env_outputs_outcome(area, case, outputs, _finite_tree(params))


def env_param_names() -> list[str]:
    from neuroctl.envs.params import numeric_params

    env, _ = spike_rate_env()
    return sorted(numeric_params(env.default_params))


# ------------------------------------------------------ hypothesis strategies


def _float32(x: float) -> np.float32:
    with np.errstate(over="ignore"):  # 1e300 becomes inf: that is the point
        return np.float32(x)


def hostile_floats(limit: float = np.inf):
    bounded = st.floats(-limit, limit) if np.isfinite(limit) else st.floats()
    special = st.sampled_from([x for x in EXTREMES if not abs(x) > limit])
    plain = st.floats(-1e3, 1e3)
    value = st.one_of(special, plain, bounded)
    as_numpy = value.map(np.float64) | value.map(_float32)
    return value | as_numpy


def geometry(limit: float = np.inf):
    """Keyword arguments of Morphology.from_parents: scalars or per-branch lists."""
    parents = st.sampled_from([[-1], [-1, 0], [-1, 0, 0], [-1, 0, 1]])
    fields = ("length", "radius", "axial_resistivity", "capacitance")

    @st.composite
    def draw(draw_):
        p = draw_(parents)
        kwargs = {}
        for name in draw_(st.sets(st.sampled_from(fields), min_size=1)):
            one = hostile_floats(limit)
            kwargs[name] = draw_(one | st.lists(one, min_size=len(p), max_size=len(p)))
        ncomp = st.integers(-1, 3) | st.sampled_from([np.int64(2), 1.5, float("nan")])
        if draw_(st.booleans()):
            kwargs["ncomp"] = draw_(ncomp)
        return p, kwargs

    return draw()


@st.composite
def mechanism_case(draw, limit=np.inf):
    name = draw(st.sampled_from(MECHANISMS))
    field = draw(st.sampled_from(mechanism_fields(name)))
    return name, field, draw(hostile_floats(limit))


def hostile_actions():
    """Actions of any value, shape and type (object, string, complex arrays too)."""
    value = hostile_floats()
    arrays = st.lists(value, min_size=1, max_size=1).map(np.asarray)
    odd = ["0.2", [0.1, 0.2], np.zeros((1, 1)), None, np.array([True])]
    odd += [np.array([object()], dtype=object), np.array(["0.2"]), np.array([0.2j])]
    return value | arrays | st.sampled_from(odd)
