"""Measuring discipline shared by the benchmark drivers and their workers.

On a 2-core machine an unpinned JAX process times 2x apart from run to run (XLA's
thread scheduling; see ../shared/FACTS.md, "Benchmarking on this 2-core machine").
So every measured process is a fresh worker pinned to one core
(``taskset -c CORE python -m benchmarks.<worker> '<case json>'``); drivers alternate
the simulators' workers (A, B, A, B, ...) over rounds and keep the minimum; inside a
worker each measurement is repeated `REPS` times, each repetition running the
function for at least `MIN_S` seconds, and the minimum is kept.

Also here: kernel counts from compiled HLO, the machine's load and core-0
activity, and the provenance (date, commit, versions) that goes with every table.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

CORE = 1  # the core measured processes are pinned to (others test on core 0)
MIN_S = 1.0  # each repetition runs at least this long [s]
REPS = 3  # repetitions per measurement inside a worker (minimum kept)
ROOT = Path(__file__).resolve().parents[1]
RESULT_TAG = "@@RESULT@@"
TRIVIAL_OPS = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast"}


# --------------------------------------------------------------------------- #
# Inside a worker
# --------------------------------------------------------------------------- #
# XLA:CPU's mark on a loop it compiled into one function (`neuroctl.small_loops`)
SMALL_CALL = "xla_cpu_small_call"


def block(x):
    import jax

    return jax.block_until_ready(x)


def time_min(fn, *args, min_s: float = MIN_S, reps: int = REPS) -> dict:
    """Per-call wall time [s] of ``fn(*args)``: min over `reps` runs of ≥ `min_s` s.

    The first call (trace + compile + run) and a second, warm call are timed apart;
    ``compile_s`` = first − second. Every call is blocked on before the next.
    """
    t0 = time.perf_counter()
    block(fn(*args))
    t1 = time.perf_counter()
    block(fn(*args))
    t2 = time.perf_counter()
    per_call, counts = [], []
    for _ in range(reps):  # each repetition: whole calls until >= min_s elapsed
        calls, s0 = 0, time.perf_counter()
        while True:
            block(fn(*args))
            calls += 1
            elapsed = time.perf_counter() - s0
            if elapsed >= min_s:
                break
        per_call.append(elapsed / calls)
        counts.append(calls)
    return {
        "s": min(per_call),
        "s_all": per_call,
        "calls_per_rep": counts,
        "first_call_s": t1 - t0,
        "compile_s": (t1 - t0) - (t2 - t1),
    }


def worker_main(run_case) -> None:
    """Entry point of a worker: ``run_case(case: dict) -> dict`` printed as JSON."""
    case = json.loads(sys.argv[1])
    t0 = time.perf_counter()
    res = run_case(case)
    res.update(
        case=case,
        worker_s=time.perf_counter() - t0,
        affinity=sorted(os.sched_getaffinity(0)),
        load_end=os.getloadavg(),
    )
    print(RESULT_TAG + json.dumps(res, default=_plain), flush=True)


def _plain(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


# --------------------------------------------------------------------------- #
# Kernel counts from compiled HLO
# --------------------------------------------------------------------------- #
_HEADER = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s+\(.*->.*\{\s*$")
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(.*)$")
_OPCODE = re.compile(r"(?:^|[\s}\]])([a-z][a-z0-9\-]*)\(")
_BODY = re.compile(r"\bbody=%?([\w.\-]+)")
_COND = re.compile(r"\bcondition=%?([\w.\-]+)")
_CALLEE = re.compile(r"\bto_apply=%?([\w.\-]+)")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')


def hlo_computations(text: str) -> dict[str, list[tuple[str, str]]]:
    """Computation name -> (opcode, instruction text) of its instructions."""
    comps: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            current = comps.setdefault(m.group(1), [])
            continue
        if line.strip() == "}":
            current = None
            continue
        m = _INSTR.match(line) if current is not None else None
        if m:
            op = _OPCODE.search(m.group(1))
            current.append((op.group(1) if op else "?", m.group(1)))
    return comps


class _Loops:
    """While loops of one HLO module, with static and dynamic kernel counts.

    static: non-trivial instructions of a computation (a fusion or a `call` is
    one; not parameter / get-tuple-element / tuple / constant / bitcast).
    dynamic: kernels launched per execution, with `call`s inlined and nested
    loops multiplied by their known trip counts (condition included).
    """

    def __init__(self, text: str):
        self.comps = hlo_computations(text)
        self._dyn: dict[str, int] = {}

    def static(self, name: str) -> int:
        return sum(op not in TRIVIAL_OPS for op, _ in self.comps.get(name, []))

    def dynamic(self, name: str) -> int:
        if name not in self._dyn:
            self._dyn[name] = 0  # guards recursion
            total = 0
            for op, ins in self.comps.get(name, []):
                if op == "while":
                    body, cond, trip = _while_parts(ins)
                    total += (trip or 1) * (self.dynamic(body) + self.dynamic(cond))
                elif op == "call":
                    total += self.dynamic(_CALLEE.search(ins).group(1))
                elif op not in TRIVIAL_OPS:
                    total += 1
            self._dyn[name] = total
        return self._dyn[name]

    def loops(self) -> list[tuple[str, int | None]]:
        return [
            _while_parts(ins)[0::2]
            for ops in self.comps.values()
            for op, ins in ops
            if op == "while"
        ]

    def has_time_loop(self, name: str, trips: set[int]) -> bool:
        for op, ins in self.comps.get(name, []):
            if op == "while" and _while_parts(ins)[2] in trips:
                return True
            callee = _CALLEE.search(ins) if op == "call" else None
            if callee and self.has_time_loop(callee.group(1), trips):
                return True
        return False


def _while_parts(ins: str) -> tuple[str, str, int | None]:
    trip = _TRIP.search(ins)
    return (
        _BODY.search(ins).group(1),
        _COND.search(ins).group(1),
        int(trip.group(1)) if trip else None,
    )


def step_bodies(text: str, trips) -> list[dict]:
    """The time-step loop bodies of a compiled module and their kernel counts.

    `trips` are the time loops' lengths (T for a scan; the checkpoint lengths
    for nested scans). A time-step body is the body of a loop with one of those
    trip counts that contains no such loop itself (calls followed): one step of
    a scan; for checkpointed scans, the innermost level (forward recomputation
    and backward). ``static`` is the instruction count the issue asks for;
    ``dynamic`` adds what the body's `call`s and inner loops (e.g. Jaxley's
    per-node DHS sweeps) launch per step.
    """
    lp, trips = _Loops(text), set(trips)
    out = []
    for body, trip in lp.loops():
        if trip in trips and not lp.has_time_loop(body, trips):
            ops: dict[str, int] = {}
            for op, _ in lp.comps.get(body, []):
                if op not in TRIVIAL_OPS:
                    ops[op] = ops.get(op, 0) + 1
            out.append(
                {
                    "trip": trip,
                    "static": lp.static(body),
                    "dynamic": lp.dynamic(body),
                    "ops": ops,
                }
            )
    return sorted(out, key=lambda b: b["dynamic"])


# --------------------------------------------------------------------------- #
# In the driver
# --------------------------------------------------------------------------- #
def core_ticks(core: int = 0) -> tuple[int, int]:
    """(busy, total) jiffies of `core` from /proc/stat."""
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + v[4]  # idle + iowait
                return sum(v) - idle, sum(v)
    return 0, 0


def run_worker(
    module: str,
    case: dict,
    timeout: float = 1800.0,
    root: Path = ROOT,
    env: dict | None = None,
) -> dict:
    """Run ``benchmarks.<module>`` on `case`, pinned to `CORE`; its JSON result.

    `root` is the source tree the worker imports neuroctl from (this checkout, or
    a clean export of HEAD from `export_head`); `env`: extra environment
    variables (e.g. XLA_FLAGS, read when the worker's JAX starts). Adds the wall
    time, the load averages before and after and the fraction of the time core 0
    (the other core) was busy meanwhile. A failure returns ``{"error": ...}`` instead of
    raising, so one broken case does not end a run.
    """
    cmd = ["taskset", "-c", str(CORE), sys.executable, "-m", f"benchmarks.{module}"]
    env = dict(
        os.environ, PYTHONPATH=str(root), TF_CPP_MIN_LOG_LEVEL="2", **(env or {})
    )
    load0, busy0, t0 = os.getloadavg(), core_ticks(0), time.perf_counter()
    try:
        p = subprocess.run(
            [*cmd, json.dumps(case)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        res = _parse(p)
    except subprocess.TimeoutExpired:
        res = {"error": f"timed out after {timeout:.0f} s"}
    busy1 = core_ticks(0)
    d_busy, d_all = busy1[0] - busy0[0], busy1[1] - busy0[1]
    res.update(
        wall_s=time.perf_counter() - t0,
        load_start=load0,
        load_after=os.getloadavg(),
        core0_busy=d_busy / d_all if d_all else float("nan"),
    )
    return res


def _parse(p: subprocess.CompletedProcess) -> dict:
    for line in reversed(p.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    return {"error": f"rc {p.returncode}: {(p.stderr or p.stdout)[-2000:]}"}


def git(*args: str) -> str:
    """``git <args>`` in this checkout; its stripped stdout ("" on failure)."""
    r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip()


def export_head(dest: Path, rev: str = "HEAD") -> Path:
    """A clean copy of the committed tree at `rev` (``git archive``) with this
    checkout's benchmarks/ on top, so a worker can time it while others edit
    the working tree (no checkout, stash or reset). Returns `dest`."""
    import shutil

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", rev], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    (dest / "benchmarks").mkdir(exist_ok=True)
    for src in (ROOT / "benchmarks").glob("*.py"):
        shutil.copy2(src, dest / "benchmarks" / src.name)
    return dest


def pin_statement() -> str:
    return (
        f"every measured process was a fresh worker pinned to core {CORE} "
        f"(`taskset -c {CORE}`); simulators alternated A,B,A,B over rounds; each "
        f"measurement repeated {REPS}x with each repetition >= {MIN_S:g} s, "
        "minimum kept (and the minimum over rounds)"
    )


def provenance() -> dict:
    """Date, commit, dirtiness, versions, CPU, load (for the results header)."""

    dirty = [ln for ln in git("status", "--porcelain").splitlines() if ln.strip()]
    versions = {}
    for pkg in ("jax", "jaxlib", "jaxley", "jaxley-mech", "neuron"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": dirty,
        "versions": versions,
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "load": os.getloadavg(),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def load_note(results: list[dict]) -> str:
    """'load a–b, core 0 busy x–y %' over `results`, and whether it was busy."""
    loads = [r[k][0] for r in results for k in ("load_start", "load_after") if k in r]
    busy = [r["core0_busy"] for r in results if "core0_busy" in r]
    if not loads:
        return "load not recorded"
    text = f"1-min load {min(loads):.2f}–{max(loads):.2f}"
    if busy:
        text += f", core 0 busy {100 * min(busy):.0f}–{100 * max(busy):.0f} %"
        if max(busy) > 0.2:
            text += " (**the other core was busy** during some of these runs)"
        else:
            text += " (the other core was mostly idle)"
    return text


CACHE = Path(os.environ.get("NEUROCTL_BENCH_CACHE", "/tmp/neuroctl-bench-cache"))


def cached(name: str, build, sources=()):
    """``build()``'s result, pickled (cloudpickle) under `CACHE` for later workers.

    The key is `name` plus a hash of the `sources` files (the builder's code), so
    editing the builder rebuilds. Returns ``(value, from_cache)``. Jaxley network
    builds take minutes (pandas); unpickling takes < 1 s.
    """
    import hashlib

    import cloudpickle

    h = hashlib.sha1(name.encode())
    for src in sources:
        h.update(Path(src).read_bytes())
    path = CACHE / f"{name}-{h.hexdigest()[:12]}.pkl"
    if path.is_file():
        with open(path, "rb") as fh:
            return cloudpickle.load(fh), True
    value = build()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        cloudpickle.dump(value, fh)
    os.replace(tmp, path)
    return value, False
