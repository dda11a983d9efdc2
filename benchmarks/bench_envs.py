"""Env throughput: control steps per second, functional (jit∘vmap) and via Gymnasium.

Rows:

* ``scan``: ``jit(scan(vmap(env.step)))`` over `--steps` control steps at batch B
  (auto-reset inside; what a JAX RL loop such as rejax/purejaxrl sees); ``scan,
  step_env``: the same without auto-reset (what BPTT sees; EvidenceStim's reset
  draws a 20,800-step trial, which auto-reset computes every step under vmap);
* ``loop``: a Python loop calling ``jit(vmap(env.step))`` once per control step
  (dispatch and host transfer included);
* ``gym``: `GymEnv` (B = 1) and `GymVectorEnv` (B > 1) through their NumPy API.

One control step = 1 ms of simulated time = 40 solver steps at dt 0.025 ms. Steps
per call are capped at ``--budget`` env steps (batch × steps). EvidenceStim uses the
untrained plant (same network and cost as the shipped one, no float64 needed); so
does EvidenceStimElectrodes (4 electrodes, currents held over the control period).

Measuring (`_harness`): each (env, batch) row runs in a fresh worker pinned to core
1 (``taskset -c 1 python -m benchmarks.env_worker '<case>'``); each rate is the
minimum of 3 repetitions of >= 1 s; with ``--rounds R`` the rows are run R times in
turn (row 1, row 2, ..., row 1, row 2, ...) and the minimum time is kept. The load
and how busy the other core was are printed with the table. float32 unless
``--float64``. Run: ``python -m benchmarks.bench_envs [--batches 1 64 1024]
[--steps 200] [--quick] [--write]``; ``--write`` replaces the environment section of
results/benchmarks.md (the solver section, written by bench_solver, is kept).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks import _harness as H

ENVS = [
    "SpikeRate-v0",
    "SpikeRateBallStick-v0",
    "EvidenceStim-v0",
    "EvidenceStimElectrodes-v0",
]
MODES = ("scan", "scan_step_env", "loop", "gym")
RESULTS = Path("results/benchmarks.md")
SECTION = "# Environment benchmarks (CPU)"


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--envs", nargs="+", default=ENVS)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64, 1024])
    ap.add_argument("--steps", type=int, default=200, help="control steps per call")
    ap.add_argument("--gym-steps", type=int, default=50)
    ap.add_argument("--budget", type=int, default=10_240, help="max env steps a call")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--quick", action="store_true", help="SpikeRate-v0, batch 1, 8")
    ap.add_argument("--write", action="store_true", help="update " + str(RESULTS))
    args = ap.parse_args(argv)
    if args.quick:
        args.envs, args.batches, args.steps, args.gym_steps = (
            ["SpikeRate-v0"],
            [1, 8],
            50,
            10,
        )
    return args


def cases(args) -> list[dict]:
    out = []
    for name in args.envs:
        for b in args.batches:
            out.append(
                {
                    "env": name,
                    "batch": b,
                    "steps": max(10, min(args.steps, args.budget // b)),
                    "gym_steps": max(5, min(args.gym_steps, args.budget // b)),
                    "dtype": "float64" if args.float64 else "float32",
                }
            )
    return out


def run(args, log=print) -> dict:
    """{(env, batch): [worker result per round]}."""
    res: dict = {}
    for rnd in range(args.rounds):
        for case in cases(args):
            r = H.run_worker("env_worker", case)
            res.setdefault((case["env"], case["batch"]), []).append(r)
            status = r.get("error", "")[-400:] or f"ok in {r['wall_s']:.0f} s"
            log(f"round {rnd + 1} {case['env']} batch {case['batch']}: {status}")
    return res


def row(key, rs: list[dict]) -> str:
    good = [r for r in rs if "error" not in r]
    if not good:
        return f"| {key[0]} | {key[1]} | failed: {rs[-1]['error'][-200:]!r} | | | |"
    cells = []
    for m in MODES:
        rates = [r[m]["rate"] for r in good if "rate" in r[m]]
        errors = [r[m]["error"] for r in good if "error" in r[m]]
        cells.append(f"{max(rates):,.0f}" if rates else f"failed: {errors[0]}")
    return f"| {key[0]} | {key[1]} | {' | '.join(cells)} |"


def table(res: dict, args, prov: dict, wall_s: float, argv: str) -> list[str]:
    flat = [r for rs in res.values() for r in rs]
    dtype = "float64" if args.float64 else "float32"
    lines = [
        f"Run {prov['date']}, commit {prov['commit']}"
        + (" (dirty tree: others edit it concurrently)" if prov["dirty"] else "")
        + f"; jax {prov['versions']['jax']}, {prov['cpu']}, {prov['cores']} cores; "
        f"{dtype}; env steps/s (1 step = 1 ms = 40 solver steps); {args.rounds} "
        f"round(s), {wall_s / 60:.1f} min. Command: `{argv}`.",
        "",
        f"Pinned to core {H.CORE}: each row a fresh worker (`taskset -c {H.CORE}`), "
        f"each rate the best of {H.REPS} repetitions of >= {H.MIN_S:g} s; "
        f"load at start {prov['load'][0]:.2f}; " + H.load_note(flat),
        "",
        "| env | batch | scan (jit∘vmap) | scan, step_env | loop | Gymnasium |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    return lines + [row(k, rs) for k, rs in res.items()]


def write(lines: list[str]) -> None:
    """Replace the environment section of `RESULTS` (everything from `SECTION`)."""
    text = RESULTS.read_text() if RESULTS.is_file() else ""
    head = text.split(SECTION)[0].rstrip()
    body = [
        SECTION,
        "",
        "Regenerate: `python -m benchmarks.bench_envs --write`. Rows as described in "
        "benchmarks/bench_envs.py: scan = `jit(scan(vmap(step)))` with auto-reset, "
        "step_env = without (BPTT), loop = a Python loop over `jit(vmap(step))`, "
        "Gymnasium = `GymEnv` (batch 1) or `GymVectorEnv` (NumPy API).",
        "",
        *lines,
    ]
    RESULTS.write_text((head + "\n\n" if head else "") + "\n".join(body) + "\n")


def main(argv=None) -> None:
    import sys

    args = parse(argv)
    prov = H.provenance()
    print(f"load at start {prov['load'][0]:.2f}; pinned to core {H.CORE}", flush=True)
    t0 = time.perf_counter()
    res = run(args, log=lambda s: print(s, flush=True))
    cmd = "python -m benchmarks.bench_envs " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    lines = table(res, args, prov, time.perf_counter() - t0, cmd.strip())
    lines += ["", f"Load average at the end: {H.provenance()['load'][0]:.2f}"]
    print("\n".join(lines), flush=True)
    if args.write:
        write(lines)


if __name__ == "__main__":
    main()
