"""Side-by-side solver benchmark: neuroctl vs Jaxley 0.14 (and NEURON 9), pinned.

Usage (needs the `ref` extra)::

    python -m benchmarks.bench_solver [--quick] [--write] [--rounds 3] [--skip ...]

Every measurement runs in a fresh worker process pinned to one core
(``taskset -c 1 python -m benchmarks.solver_worker '<case>'``, see `_harness`);
the two simulators' workers alternate (neuroctl, Jaxley, neuroctl, Jaxley, ...)
over `--rounds` rounds; inside a worker each configuration is repeated 3 times,
each repetition running >= 1 s, and the minimum is kept; the table shows the
minimum over rounds. The machine's load and how busy the other core was are
printed with every table.

Tables:

* forward scaling with batch (1, 8, 64, 256, 1,024; float32, and batch 1 in
  float64) on the Jaxley paper's evidence-integration RNN (20 three-branch Hay
  cells + 2 readouts = 62 compartments, 109 graded synapses): µs/step and ns per
  compartment-step;
* forward scaling with network size: N = 10 ... 10,000 identical three-branch HH
  cells with sparse graded synapses (`hh_nets`), checked in float64 first (max
  |Δv| between the simulators);
* checkpointed gradient (2 levels, w.r.t. the 109 conductances) vs forward on the
  paper network, T = 20,800 steps, with compile times and XLA memory; and the
  same gradient of neuroctl differentiated straight through the tree elimination
  instead of by its transposed-solve adjoint (`lax.custom_linear_solve`), without
  per-step rematerialisation, and with one checkpointing level (every step's
  state saved: more memory, no second forward pass): A/B;
* the compute floor of a forward step (float32): this core's ns per multiply/
  add, divide and exp as XLA:CPU compiles them (vectorised, data in cache) times
  the step's flops, divides and transcendentals per compartment (XLA's cost
  analysis and HLO), next to the measured ns per compartment-step;
* `simulate_batch` (every per-node array laid out as (nodes, trials)) against
  vmap's layout and Jaxley, paper network at batch >= 8;
* kernels per forward step and per backward step, counted in the compiled HLO's
  innermost while bodies (`_harness.while_body_kernels`);
* an A/B of the forward step rewritten for fewer kernels
  (`solver_worker._fused_formulation`) against the shipped one, batch 1 and 64;
* 100 ball-and-sticks in one vmapped call vs 100 sequential NEURON runs;
* one BPTT policy iteration (`neuroctl.train.bptt`, 8 trials of EvidenceStim-v0,
  float64): the baseline later speed work must beat.

``--write`` replaces the solver section of results/benchmarks.md (the environment
section, written by bench_envs, is kept). ``--quick`` is a few-minute smoke run
(short scans, small batches/networks, one round, no BPTT).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks import _harness as H
from benchmarks.peers import PAPER_COMPS

WORKER = "solver_worker"
SIMS = ("neuroctl", "jaxley")
# neuroctl-only A/B variants of the gradient group: key -> (worker case fields,
# (what the variant is, what the default has that it lacks))
VARIANTS = {
    "paper_grad_direct": (
        {"solve": "direct"},
        ("through the elimination, no transposed-solve adjoint", "adjoint"),
    ),
    "paper_grad_saved": (
        {"remat_steps": False},
        ("without per-step rematerialisation", "step remat"),
    ),
    "paper_grad_flat": (
        {"nested": False},
        ("with one level: every step's state saved", "2-level nesting"),
    ),
}
# neuroctl-only forward A/B: the step rewritten for fewer kernels
# (`solver_worker._fused_formulation`), at these (batch, dtype) of the paper table
FUSED = "paper_fwd_fused"
FUSED_CONFIGS = ((1, "float32"), (64, "float32"))
FLOOR = "floor"  # the compute floor: this core's op rates × a step's op counts
# neuroctl-only forward: `simulate_batch` (trials as the last axis) at these batches
BATCH = "paper_fwd_batch"
BATCH_MIN = 8
NEUROCTL_ONLY = {*VARIANTS, FUSED, FLOOR, BATCH}
# opt-in `neuroctl.small_loops`: the same cases with XLA:CPU's small-loop threshold
# raised, for neuroctl and (same flag, fairness) Jaxley: label -> worker "sim"
SMALL_SIMS = {"neuroctl+small": "neuroctl", "jaxley+small": "jaxley"}
SMALL_KEYS = ("paper_fwd", "paper_grad", "paper_grad_flat")  # and every hh_<N>
RESULTS = Path("results/benchmarks.md")
ENV_SECTION = "# Environment benchmarks (CPU)"
GRAD = "gradient, 2-level checkpointing (s)"


@dataclass(frozen=True)
class Plan:
    """What to measure (full run or --quick)."""

    paper_configs: tuple  # (batch, dtype, T)
    hh: tuple  # (N, T)
    grad_T: int
    check_T: int = 800
    rounds: int = 3
    bptt: bool = True
    skip: tuple = ()
    bptt_options: dict = field(default_factory=dict)
    bptt_baseline: str = "HEAD"  # revision the BPTT step is timed against
    small: bool = True  # also time with `neuroctl.small_loops` (opt-in) on


FULL = Plan(
    paper_configs=(
        (1, "float32", 4000),
        (8, "float32", 2000),
        (64, "float32", 400),
        (256, "float32", 200),
        (1024, "float32", 100),
        (1, "float64", 4000),
    ),
    hh=((10, 4000), (100, 4000), (1000, 1000), (10_000, 200)),
    grad_T=20_800,
)
QUICK = Plan(
    paper_configs=((1, "float32", 1000), (64, "float32", 100), (1, "float64", 1000)),
    hh=((10, 1000), (100, 1000)),
    grad_T=2000,
    check_T=400,
    rounds=1,
    bptt=False,
)


def plan_from_args(argv=None) -> tuple[Plan, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few-minute smoke run")
    ap.add_argument("--write", action="store_true", help="update " + str(RESULTS))
    ap.add_argument("--rounds", type=int, help="rounds of A,B alternation")
    ap.add_argument("--max-n", type=int, help="largest N of the HH scaling table")
    ap.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["paper_fwd", "paper_grad", "hh", "bas", "bptt", "small", "floor"],
    )
    ap.add_argument("--bptt", action="store_true", help="time BPTT in --quick too")
    ap.add_argument(
        "--bptt-baseline",
        default="HEAD",
        help="git revision whose BPTT step (a clean `git archive` export) is timed "
        "against the working tree's (default HEAD: uncommitted changes)",
    )
    ap.add_argument("--json", type=Path, help="also dump the raw results here")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    updates = {
        "skip": tuple(args.skip),
        "bptt_baseline": args.bptt_baseline,
        "small": "small" not in args.skip,
    }
    if args.rounds:
        updates["rounds"] = args.rounds
    if args.max_n:
        updates["hh"] = tuple(c for c in plan.hh if c[0] <= args.max_n)
    if args.bptt:
        updates["bptt"] = True
    return Plan(**{**plan.__dict__, **updates}), args


# --------------------------------------------------------------------------- #
# Running
# --------------------------------------------------------------------------- #
def groups(plan: Plan, first_round: bool) -> list[tuple[str, dict]]:
    """(key, case without "sim") of one round, in order."""
    out = []
    if "paper_fwd" not in plan.skip:
        out.append(("paper_fwd", {"kind": "paper_fwd", "configs": plan.paper_configs}))
        fused = [c for c in plan.paper_configs if tuple(c[:2]) in FUSED_CONFIGS]
        case = {"kind": "paper_fwd", "configs": fused, "formulation": "fused"}
        out.append((FUSED, {**case, "kernels": first_round}))
        wide = [c for c in plan.paper_configs if c[0] >= BATCH_MIN]
        if wide:
            case = {"kind": "paper_fwd", "configs": wide, "layout": "batch"}
            out.append((BATCH, case))
    if "paper_grad" not in plan.skip:
        case = {"kind": "paper_grad", "dtype": "float32", "T": plan.grad_T}
        out.append(("paper_grad", {**case, "kernels": first_round}))
        for key, (extra, _label) in VARIANTS.items():  # neuroctl only
            out.append((key, {**case, "kernels": first_round, **extra}))
    if "hh" not in plan.skip:
        for n, T in plan.hh:
            out.append(
                (f"hh_{n}", {"kind": "hh_fwd", "n": n, "T": T, "dtype": "float32"})
            )
    if FLOOR not in plan.skip:
        ns = [n for n, _ in plan.hh] if "hh" not in plan.skip else []
        out.append((FLOOR, {"kind": "floor", "ns": ns, "dtype": "float32"}))
    return out


def run(plan: Plan, log=print) -> dict:
    """All measurements of `plan`: {key: {sim: [result per round]}}, plus checks."""
    res: dict = {"checks": {}, "runs": {}}
    if "hh" not in plan.skip:
        for n, _ in plan.hh:
            r = H.run_worker(
                WORKER, {"kind": "hh_check", "sim": "both", "n": n, "T": plan.check_T}
            )
            res["checks"][f"hh_{n}"] = r
            log(f"check N={n}: {_brief(r)}")
    for rnd in range(plan.rounds):
        for key, case in groups(plan, rnd == 0):
            for label, sim, env in _sims(plan, key):
                r = H.run_worker(WORKER, {**case, "sim": sim}, env=env)
                res["runs"].setdefault(key, {}).setdefault(label, []).append(r)
                log(f"round {rnd + 1} {key} {label}: {_brief(r)}")
        if "bas" not in plan.skip:
            for lab, sim, env in _sims(plan, "bas"):
                case = {"kind": "bas", "sim": sim, "dtypes": ["float64", "float32"]}
                r = H.run_worker(WORKER, {**case, "check": rnd == 0}, env=env)
                res["runs"].setdefault("bas", {}).setdefault(lab, []).append(r)
                log(f"round {rnd + 1} bas {lab}: {_brief(r)}")
    if plan.bptt and "bptt" not in plan.skip:
        res["runs"]["bptt"], res["bptt_revision"] = run_bptt(plan, log)
    return res


def small_env() -> dict:
    """The environment that turns `neuroctl.small_loops` on in a worker (for Jaxley
    too: the same XLA flag, which neuroctl's option is)."""
    from neuroctl import small_loops

    return {"XLA_FLAGS": small_loops.xla_flags()}


def _sims(plan: Plan, key: str) -> list[tuple[str, str, dict | None]]:
    """(label, worker sim, extra env) of each measurement of `key` in a round."""
    base = ("neuroctl",) if key in NEUROCTL_ONLY else SIMS
    if key == "bas":
        base = ("neuroctl", "neuron")
    out = [(sim, sim, None) for sim in base]
    if plan.small and (key in SMALL_KEYS or key == "bas" or key.startswith("hh_")):
        out += [
            (lab, sim, small_env()) for lab, sim in SMALL_SIMS.items() if sim in base
        ]
    return out


def run_bptt(plan: Plan, log) -> tuple[dict, str]:
    """The BPTT step at the baseline revision (clean export) and in the working
    tree, alternated: ``{"baseline": [...], "tree": [...]}`` and the revision."""
    import tempfile

    rev = plan.bptt_baseline
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"baseline": H.export_head(Path(tmp) / "base", rev), "tree": H.ROOT}
        envs = {"baseline": None, "tree": None}
        if plan.small:
            roots["tree+small"], envs["tree+small"] = H.ROOT, small_env()
        sha = H.git("rev-parse", "--short", rev)
        out: dict = {}
        case = {"kind": "bptt", "sim": "neuroctl", **plan.bptt_options}
        for rnd in range(plan.rounds):
            for where, root in roots.items():
                r = H.run_worker(WORKER, case, root=root, env=envs[where])
                out.setdefault(where, []).append(r)
                log(f"round {rnd + 1} bptt {where}: {_brief(r)}")
    return out, rev if rev == sha else f"{rev} ({sha})"


def _brief(r: dict) -> str:
    if "error" in r:
        return "ERROR " + r["error"][-600:]
    load, busy = r["load_after"][0], 100 * r["core0_busy"]
    return f"ok in {r['wall_s']:.0f} s, load {load:.2f}, core0 {busy:.0f} %"


# --------------------------------------------------------------------------- #
# Reducing: minimum over rounds
# --------------------------------------------------------------------------- #
def ok(rs: list[dict]) -> list[dict]:
    return [r for r in rs if "error" not in r]


def best(rs: list[dict], get) -> float | None:
    vals = [get(r) for r in ok(rs)]
    vals = [v for v in vals if v is not None]
    return min(vals) if vals else None


def paper_rows(runs: dict) -> dict:
    """(batch, dtype) -> {sim: min µs/step}."""
    out: dict = {}
    for sim, rs in runs.items():
        for r in ok(rs):
            for row in r["rows"]:
                key = (row["batch"], row["dtype"], row["T"])
                cur = out.setdefault(key, {}).get(sim)
                if cur is None or row["us_per_step"] < cur:
                    out[key][sim] = row["us_per_step"]
    return out


# --------------------------------------------------------------------------- #
# Tables
# --------------------------------------------------------------------------- #
def fmt(x, spec=".3g", unit="") -> str:
    return "n/a" if x is None else f"{x:{spec}}{unit}"


def ratio(theirs, ours) -> str:
    return "n/a" if theirs is None or ours is None else f"**{theirs / ours:.2f}x**"


def all_results(res: dict, keys) -> list[dict]:
    return [r for k in keys for rs in res["runs"].get(k, {}).values() for r in rs]


def header(title: str, res: dict, keys) -> list[str]:
    return [
        f"### {title}",
        "",
        f"Pinned to core {H.CORE}, fresh worker per measurement; "
        + H.load_note(all_results(res, keys)),
        "",
    ]


def table_paper(res: dict, n_comp=PAPER_COMPS) -> tuple[list[str], dict]:
    runs = res["runs"].get("paper_fwd")
    if not runs:
        return [], {}
    rows = paper_rows(runs)
    lines = header(
        "Forward vs batch: paper network (62 compartments, 109 synapses)",
        res,
        ["paper_fwd"],
    )
    lines += [
        "| batch | dtype | T | neuroctl µs/step | neuroctl ns/comp-step "
        "| Jaxley µs/step | Jaxley ns/comp-step | Jaxley / neuroctl |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    found = {}
    for (b, dt, T), v in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        o, j = v.get("neuroctl"), v.get("jaxley")
        lines.append(
            f"| {b:,} | {dt} | {T:,} | {fmt(o)} | {fmt(_ns(o, b, n_comp), '.1f')} "
            f"| {fmt(j)} | {fmt(_ns(j, b, n_comp), '.1f')} | {ratio(j, o)} |"
        )
        found[(b, dt)] = (o, j)
    b = [r for r in ok(runs.get("jaxley", [])) if "build_s" in r]
    if b:
        lines += [
            "",
            f"Jaxley network build: {min(r['build_s'] for r in b):.1f} s "
            f"(built once, pickled for later workers; neuroctl "
            f"{best(runs.get('neuroctl', []), lambda r: r['build_s']):.2f} s).",
        ]
    return lines + [""], found


def _ns(us, batch, n_comp):
    return None if us is None else us * 1e3 / (batch * n_comp)


def table_hh(res: dict, plan: Plan) -> tuple[list[str], dict]:
    keys = [f"hh_{n}" for n, _ in plan.hh]
    if "hh" in plan.skip or not plan.hh:
        return [], {}
    lines = header(
        "Forward vs network size: N three-branch HH cells, 5 graded synapses per cell "
        "(float32, batch 1)",
        res,
        keys,
    )
    lines += [
        "| N | compartments | synapses | T | f64 check max abs dv (mV) "
        "| neuroctl µs/step | ns/comp-step | Jaxley µs/step | ns/comp-step "
        "| Jaxley / neuroctl | Jaxley build (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    found = {}
    for n, T in plan.hh:
        runs = res["runs"].get(f"hh_{n}", {})
        o = best(runs.get("neuroctl", []), lambda r: r["fwd"]["us_per_step"])
        j = best(runs.get("jaxley", []), lambda r: r["fwd"]["us_per_step"])
        build = best(runs.get("jaxley", []), lambda r: r["build_s"])
        chk = res["checks"].get(f"hh_{n}", {})
        dv = chk.get("max_abs_dv_mv")
        syn = n * min(5, n - 1)
        lines.append(
            f"| {n:,} | {3 * n:,} | {syn:,} | {T:,} | {fmt(dv, '.1e')} | {fmt(o)} "
            f"| {fmt(_ns(o, 1, 3 * n), '.1f')} | {fmt(j)} "
            f"| {fmt(_ns(j, 1, 3 * n), '.1f')} "
            f"| {ratio(j, o)} | {fmt(build, '.1f')} |"
        )
        found[n] = (o, j)
        for sim in SIMS:
            errs = [r["error"][-300:] for r in runs.get(sim, []) if "error" in r]
            if errs:
                lines.append(f"|  | {sim} failed: {errs[0]!r} | | | | | | | | | |")
        if "error" in chk:
            lines.append(
                f"|  | check failed: {chk['error'][-300:]!r} | | | | | | | | | |"
            )
    return lines + [""], found


def table_grad(res: dict) -> tuple[list[str], dict]:
    runs = res["runs"].get("paper_grad")
    if not runs:
        return [], {}
    T = ok(runs.get("neuroctl", []) + runs.get("jaxley", []))
    T = T[0]["T"] if T else "?"
    lines = header(
        f"Checkpointed gradient vs forward: paper network, float32, batch 1, T = {T:,}",
        res,
        ["paper_grad"],
    )
    lines += [
        "| measure | neuroctl | Jaxley 0.14 | Jaxley / neuroctl |",
        "|---|---:|---:|---:|",
    ]
    got = {}
    for label, get, _unit in (
        ("forward (s)", lambda r: r["fwd"]["s"], "s"),
        (GRAD, lambda r: r["grad"]["s"], "s"),
        ("forward compile (s)", lambda r: r["fwd"]["compile_s"], "s"),
        ("gradient compile (s)", lambda r: r["grad"]["compile_s"], "s"),
    ):
        o = best(runs.get("neuroctl", []), get)
        j = best(runs.get("jaxley", []), get)
        got[label] = (o, j)
        lines.append(f"| {label} | {fmt(o)} | {fmt(j)} | {ratio(j, o)} |")
    gf = {
        s: (got[GRAD][i] / got["forward (s)"][i])
        if got["forward (s)"][i] and got[GRAD][i]
        else None
        for i, s in enumerate(SIMS)
    }
    lines.append(
        f"| gradient / forward (min / min) | {fmt(gf['neuroctl'], '.2f')} "
        f"| {fmt(gf['jaxley'], '.2f')} | |"
    )
    fwd = got["forward (s)"][0]
    for key, (_extra, (what, saver)) in VARIANTS.items():
        d = best(res["runs"].get(key, {}).get("neuroctl", []), lambda r: r["grad"]["s"])
        if d is None:
            continue
        lines.append(
            f"| gradient {what} (s) | {fmt(d)} | | {_effect(saver, got[GRAD][0], d)} |"
        )
        lines.append(
            f"| gradient / forward {what} | {fmt(d / fwd if fwd else None, '.2f')} "
            "| | |"
        )
        rs = ok(res["runs"].get(key, {}).get("neuroctl", []))
        if rs and rs[0].get("xla_mb"):
            lines.append(
                f"| XLA memory, gradient {what} (MB) "
                f"| {fmt(rs[0]['xla_mb'].get('grad'), '.2f')} | | |"
            )
    mem = {}
    for sim in SIMS:
        rs = ok(runs.get(sim, []))
        mem[sim] = rs[0]["xla_mb"] if rs else {}
    lines.append(
        "| XLA memory forward / gradient (MB) | "
        + " | ".join(
            f"{fmt(mem[s].get('fwd'), '.2f')} / {fmt(mem[s].get('grad'), '.2f')}"
            for s in SIMS
        )
        + " | |"
    )
    return lines + [""], {"grad_over_fwd": gf, "mem": mem}


def _one_function(records: list[dict]) -> str:
    """ "yes" if every record compiled its time loop into one function, "no" if
    one did not, "n/a" if none says (the worker records it with small loops on)."""
    flags = {r["one_function"] for r in records if "one_function" in r}
    return "n/a" if not flags else ("yes" if flags == {True} else "no")


def table_small(res: dict, plan: Plan) -> tuple[list[str], dict]:
    """Default vs `neuroctl.small_loops` (opt-in), and Jaxley with and without the
    same XLA flag; returns the lines and {case: (neuroctl+small, best Jaxley)}."""
    keys = [*SMALL_KEYS, *(f"hh_{n}" for n, _ in plan.hh)]
    if not plan.small or not any(
        "neuroctl+small" in res["runs"].get(k, {}) for k in keys
    ):
        return [], {}
    lines = header(
        "Small loops (opt-in `NEUROCTL_XLA_SMALL_LOOPS=1`): one compiled function "
        "per time loop",
        res,
        keys,
    )
    lines += [
        "`neuroctl.small_loops` raises XLA:CPU's small-while-loop threshold "
        f"(XLA_FLAGS `{small_env()['XLA_FLAGS']}`): a loop touching fewer bytes "
        "than that per iteration, with no scatter, sort or library call inside, "
        "compiles into one function instead of a kernel launch per fusion; the "
        "solver then sums per node (synaptic, axial and electrode currents) and "
        "transposes its gathers without scatters. Jaxley was timed "
        "with the same flag too (its loops hold scatters, so they stay as they "
        "are); the last column takes the faster of its two. One function = the "
        "time loop was compiled into one function (first round).",
        "",
        "| case | neuroctl default | neuroctl small loops | one function "
        "| small loops speed-up | Jaxley | Jaxley, same flag "
        "| Jaxley / neuroctl small loops |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    found: dict = {}

    def row(name, get, runs, unit, key=None):
        v = {lab: best(runs.get(lab, []), get) for lab in (*SIMS, *SMALL_SIMS)}
        o, small = v["neuroctl"], v["neuroctl+small"]
        jax_best = min((x for x in (v["jaxley"], v["jaxley+small"]) if x), default=None)
        one = _one_function(ok(runs.get("neuroctl+small", [])))
        lines.append(
            f"| {name} | {fmt(o, unit=unit)} | {fmt(small, unit=unit)} | {one} "
            f"| {ratio(o, small)} | {fmt(v['jaxley'], unit=unit)} "
            f"| {fmt(v['jaxley+small'], unit=unit)} | {ratio(jax_best, small)} |"
        )
        if key is not None:
            found[key] = (small, jax_best)

    pr = res["runs"].get("paper_fwd", {})
    for b, dt, _T in plan.paper_configs:
        sub = {
            lab: [
                x
                for r in ok(rs)
                for x in r["rows"]
                if (x["batch"], x["dtype"]) == (b, dt)
            ]
            for lab, rs in pr.items()
        }
        row(
            f"paper network forward, batch {b:,}, {dt} (µs/step)",
            lambda x: x["us_per_step"],
            sub,
            "",
            key=(b, dt),
        )
    for n, _T in plan.hh:
        runs = res["runs"].get(f"hh_{n}", {})
        sub = {lab: [r["fwd"] for r in ok(rs)] for lab, rs in runs.items()}
        row(
            f"{n:,} HH cells forward, batch 1, float32 (µs/step)",
            lambda x: x["us_per_step"],
            sub,
            "",
            key=("hh", n),
        )
    g = res["runs"].get("paper_grad", {})
    row(f"paper network {GRAD}", lambda r: r["grad"]["s"], g, "", key="grad")
    row(
        "paper network forward, same worker (s)",
        lambda r: r["fwd"]["s"],
        g,
        "",
        key="grad_fwd",
    )
    flat = res["runs"].get("paper_grad_flat", {})
    row(
        "paper network gradient, one level (s)",
        lambda r: r["grad"]["s"],
        flat,
        "",
    )
    ratios = [
        (
            lab,
            best(g.get(lab, []), lambda r: r["grad"]["s"]),
            best(g.get(lab, []), lambda r: r["fwd"]["s"]),
        )
        for lab in ("neuroctl", "neuroctl+small")
    ]
    lines.append(
        "| gradient / forward (min / min) | "
        + " | ".join(fmt(gr / fw if gr and fw else None, ".2f") for _, gr, fw in ratios)
        + " | | | | | |"
    )
    gs, fs = ratios[1][1], ratios[1][2]
    found["grad_over_fwd"] = gs / fs if gs and fs else None
    return lines + [""], found


def _effect(what: str, default: float | None, variant: float) -> str:
    """'<what> saves x %' (the default is faster) or 'costs x %' (it is slower)."""
    if default is None:
        return ""
    if default <= variant:
        return f"{what} saves {fmt(1.0 - default / variant, '.0%')}"
    return f"{what} costs {fmt(default / variant - 1.0, '.0%')}"


def table_fused(res: dict) -> list[str]:
    """Forward A/B: the default step vs the one rewritten for fewer kernels."""
    fused = res["runs"].get(FUSED, {}).get("neuroctl", [])
    if not ok(fused):
        return []
    default = paper_rows(
        {"neuroctl": res["runs"].get("paper_fwd", {}).get("neuroctl", [])}
    )
    mine = paper_rows({"neuroctl": fused})
    grad_runs = [
        r
        for r in ok(res["runs"].get("paper_grad", {}).get("neuroctl", []))
        if r.get("kernels")
    ]
    k_default = _kcell(grad_runs[0]["kernels"], "forward", True) if grad_runs else "n/a"
    k_fused = "n/a"
    for r in ok(fused):
        for row in r["rows"]:
            if row.get("kernels") and row["batch"] == 1:
                k_fused = ", ".join(
                    f"{b['static']} ({b['dynamic']})" for b in row["kernels"]
                )
    keys = sorted(k for k in mine if (k[0], k[1]) in FUSED_CONFIGS)
    lines = header(
        "Fewer kernels is not faster: the step rewritten for XLA fusion (A/B, "
        "paper network, forward)",
        res,
        ["paper_fwd", FUSED],
    )
    lines += [
        "Fused = `solver_worker._fused_formulation`: gate updates as "
        "`x + (x_inf - x)(-expm1(-k dt))` (each of `x_inf`, `k` used once), the gate "
        "vector as a sum of padded per-gate updates instead of a concatenate, and "
        "the tree elimination and calcium update as pads and selects instead of "
        "in-place slice updates. Same maths (tests/test_bench_smoke.py: equal to "
        "1e-8 mV in float64). XLA then fuses every gate into one kernel, yet the "
        "step is slower, most at batch 64 where arithmetic dominates: consistent "
        "with a fused pad evaluating its operand over the whole padded vector "
        "(each gate's rate functions for all 280 gate entries) and with cheap "
        "producers duplicated into the many consumers a pad-based elimination "
        "has (not isolated further).",
        "",
        "| formulation | kernels per forward step, static (dynamic) | "
        + " | ".join(f"batch {b} µs/step" for b, _d, _t in keys)
        + " |",
        "|---|---:|" + "---:|" * len(keys),
        f"| default (neuroctl as shipped) | {k_default} | "
        + " | ".join(fmt(default.get(k, {}).get("neuroctl")) for k in keys)
        + " |",
        f"| fused | {k_fused} | "
        + " | ".join(fmt(mine[k].get("neuroctl")) for k in keys)
        + " |",
        "| fused / default time | | "
        + " | ".join(
            fmt(
                mine[k]["neuroctl"] / default[k]["neuroctl"]
                if default.get(k, {}).get("neuroctl")
                else None,
                ".2f",
                "x",
            )
            for k in keys
        )
        + " |",
    ]
    return lines + [""]


def table_kernels(res: dict) -> list[str]:
    runs = res["runs"].get("paper_grad", {})
    k = {}
    for sim in SIMS:
        rs = [r for r in ok(runs.get(sim, [])) if r.get("kernels")]
        k[sim] = rs[0]["kernels"] if rs else None
    if not any(k.values()):
        return []
    lines = [
        "### Kernels per time step (compiled HLO, paper network, float32, batch 1)",
        "",
        "Static = instructions in the time-step `while` body of "
        "`jax.jit(f).lower(...).compile().as_text()` other than parameter / "
        "get-tuple-element / tuple / constant / bitcast (a fusion or a call counts "
        "once). Dynamic = kernels launched per step, with calls inlined and inner "
        "loops multiplied by their trip counts (Jaxley's step calls two per-node "
        "DHS sweep loops of 60 iterations). Backward step = the largest innermost "
        "time-step body of the 2-level checkpointed gradient; the last row lists "
        "all of them (forward recomputation, forward-with-residuals, backward).",
        "",
        "| per step | neuroctl static (dynamic) | Jaxley 0.14 static (dynamic) |",
        "|---|---:|---:|",
    ]
    lines.append(
        "| forward step | "
        + " | ".join(_kcell(k[s], "forward", last=True) for s in SIMS)
        + " |"
    )
    lines.append(
        "| backward step (checkpointed gradient) | "
        + " | ".join(_kcell(k[s], "gradient", last=True) for s in SIMS)
        + " |"
    )
    for key, (_extra, (what, _saver)) in VARIANTS.items():
        runs_k = ok(res["runs"].get(key, {}).get("neuroctl", []))
        rs = [r for r in runs_k if r.get("kernels")]
        if rs:
            cell = _kcell(rs[0]["kernels"], "gradient", last=True)
            lines.append(f"| backward step, {what} | {cell} | |")
    lines.append(
        "| gradient: all time-step bodies | "
        + " | ".join(_kcell(k[s], "gradient", last=False) for s in SIMS)
        + " |"
    )
    for sim in SIMS:
        bodies = (k[sim] or {}).get("forward") or []
        if bodies:
            ops = sorted(bodies[-1]["ops"].items(), key=lambda kv: -kv[1])
            text = ", ".join(f"{n} {op}" for op, n in ops)
            cells = [text, ""] if sim == "neuroctl" else ["", text]
            lines.append(f"| forward step by opcode, {sim} | {cells[0]} | {cells[1]} |")
    return lines + [""]


def _kcell(k: dict | None, which: str, last: bool) -> str:
    bodies = sorted((k or {}).get(which) or [], key=lambda b: b["static"])
    if not bodies:
        return "n/a"
    chosen = bodies[-1:] if last else bodies
    return ", ".join(f"{b['static']} ({b['dynamic']})" for b in chosen)


def table_bas(res: dict) -> tuple[list[str], dict]:
    """The table and the float64 speed-ups {"neuroctl": x, "neuroctl+small": x}."""
    runs = res["runs"].get("bas")
    if not runs:
        return [], {}
    lines = header("100 ball-and-sticks (100 ms each) vs NEURON", res, ["bas"])
    lines += [
        "| neuroctl | dtype | neuroctl, one vmapped call (s) | NEURON, 100 "
        "sequential runs, float64 (s) | speed-up | max abs dv vs NEURON (mV) "
        "| one function |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    neuron = best(runs.get("neuron", []), lambda r: r["s"])
    speed64 = {}
    for lab, name in (("neuroctl", "default"), ("neuroctl+small", "small loops")):
        if not ok(runs.get(lab, [])):
            continue
        for dt in ("float64", "float32"):
            o = best(runs[lab], lambda r, dt=dt: r[dt]["s"])
            dv = best(runs[lab], lambda r, dt=dt: r[dt].get("max_abs_dv_mv"))
            one = _one_function([r[dt] for r in ok(runs[lab])])
            lines.append(
                f"| {name} | {dt} | {fmt(o)} | {fmt(neuron)} | {ratio(neuron, o)} "
                f"| {fmt(dv, '.1e')} | {one} |"
            )
            if dt == "float64" and o and neuron:
                speed64[lab] = neuron / o
    lines += [
        "",
        'Small loops = the opt-in `NEUROCTL_XLA_SMALL_LOOPS=1` (section "Small '
        "loops\"): the 100 cells' time loop compiles into one function (the "
        "dendrite's 11-compartment cable sums its axial currents by a segment sum "
        "instead of a scatter there).",
    ]
    return lines + [""], speed64


def table_bptt(res: dict) -> tuple[list[str], float | None]:
    runs = res["runs"].get("bptt", {})
    if not runs:
        return [], None
    lines = header(
        "BPTT policy iteration: working tree vs a baseline revision", res, ["bptt"]
    )
    lines += [
        "| source | env | trials | dtype | s / iteration (min) | median (s) "
        "| all reps (s) | compile (s) | setup (s) |",
        "|---|---|---:|---|---:|---:|---|---:|---:|",
    ]
    head = tree = None
    medians = {}
    rev = res.get("bptt_revision", "HEAD")
    for where, rs in runs.items():
        good = ok(rs)
        if not good:
            lines.append(
                f"| {where} | failed: {rs[-1]['error'][-300:]!r} | | | | | | | |"
            )
            continue
        r = min(good, key=lambda r: r["step"]["s"])
        s = r["step"]
        all_reps = [x for g in good for x in g["step"]["s_all"]]
        reps = ", ".join(f"{x:.3g}" for x in all_reps)
        medians[where] = float(np.median(all_reps))
        label = (
            f"{rev}, clean `git archive` export"
            if where in ("baseline", "HEAD")
            else _SOURCES.get(where, where)
        )
        lines.append(
            f"| {label} | {r['env']} | {r['batch']} "
            f"| {r['dtype']} | **{s['s']:.3g}** | {medians[where]:.3g} | {reps} "
            f"| {s['compile_s']:.1f} "
            f"| {r['setup_s']:.1f} |"
        )
        head = s["s"] if where in ("baseline", "HEAD") else head
        tree = s["s"] if where == "tree" else tree
    speedup = head / tree if head and tree else None
    lines += [
        "",
        "One `neuroctl.train.bptt.make_train_step` call (value_and_grad over 8 "
        "closed-loop episodes of the MLP policy + Adam), built as `neuroctl train` "
        "builds it (`train.runs.build_env` / `new_policy`, shipped plant). The "
        "sources alternate over the rounds; each rep is one call (> 1 s)."
        + (
            f" The working tree is **{speedup:.2f}x** as fast as {rev} (min over "
            f"reps, the target's measure); by the medians "
            f"{_median_ratio(medians)}."
            if speedup
            else ""
        )
        + (
            f" With `neuroctl.small_loops` on: **{small:.2f}x** as fast as {rev}."
            if (small := bptt_speedup(res, "tree+small"))
            else ""
        ),
    ]
    return lines + [""], speedup


def _median_ratio(medians: dict) -> str:
    base = medians.get("baseline", medians.get("HEAD"))
    tree = medians.get("tree")
    return f"{base / tree:.2f}x" if base and tree else "n/a"


def table_batch(res: dict, peers_rows: dict) -> tuple[list[str], dict]:
    """vmap of `simulate` vs `simulate_batch` vs Jaxley on the paper network
    (`peers_rows`: `paper_rows` of the paper_fwd group); returns the lines and
    {(batch, dtype): (simulate_batch µs/step, Jaxley µs/step)}."""
    mine = paper_rows({"neuroctl": res["runs"].get(BATCH, {}).get("neuroctl", [])})
    if not mine:
        return [], {}
    lines = header(
        "Trials as the last axis: `simulate_batch` (paper network, forward)",
        res,
        ["paper_fwd", BATCH],
    )
    lines += [
        "`bp.simulate_batch` runs B trials of one network with every per-node "
        "array laid out as (nodes, trials), so each operation of the step runs over "
        "contiguous rows of B values; `jax.vmap` of `simulate` (the other tables' "
        "neuroctl) lays them out as (trials, nodes). Same results "
        "(tests/biophysics/test_simulate_batch.py: 1e-9 mV, gradients 1e-9 "
        "relative, float64).",
        "",
        "| batch | dtype | vmap µs/step | simulate_batch µs/step "
        "| simulate_batch ns/comp-step | speed-up | Jaxley µs/step "
        "| Jaxley / simulate_batch |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    found = {}
    for (b, dt, T), v in sorted(mine.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        o = v["neuroctl"]
        others = peers_rows.get((b, dt, T), {})
        vm, j = others.get("neuroctl"), others.get("jaxley")
        lines.append(
            f"| {b:,} | {dt} | {fmt(vm)} | {fmt(o)} "
            f"| {fmt(_ns(o, b, PAPER_COMPS), '.1f')} | {ratio(vm, o)} | {fmt(j)} "
            f"| {ratio(j, o)} |"
        )
        found[(b, dt)] = (o, j)
    return lines + [""], found


def table_floor(
    res: dict, paper: dict, hh: dict, small: dict, batch: dict | None = None
) -> tuple[list[str], dict]:
    """Measured ns/compartment-step against the compute floor; returns the lines
    and {case: (neuroctl / floor, small loops / floor, simulate_batch / floor)}
    for the targets (case = (batch, dtype) of the paper network or ("hh", N))."""
    batch = batch or {}
    runs = ok(res["runs"].get(FLOOR, {}).get("neuroctl", []))
    if not runs:
        return [], {}
    rates = {k: min(r["rates_ns"][k] for r in runs) for k in ("arith", "divide", "exp")}
    counts = runs[0]["nets"]
    floor_of = {k: min(r["nets"][k]["floor_ns"] for r in runs) for k in counts}
    lines = header(
        "Compute floor: each forward step against its own arithmetic (float32)",
        res,
        [FLOOR],
    )
    lines += [
        "floor = the step's flops, divides and transcendentals per compartment "
        "(XLA's cost analysis of one compiled step at batch 1; the divides are the "
        "element counts of its HLO `divide` ops) at this core's rates, as XLA:CPU "
        "compiles each op vectorised over 64 KiB in cache in a loop "
        "(`solver_worker._op_rates`; min over rounds): "
        f"multiply/add {rates['arith']:.4f} ns, divide {rates['divide']:.3f} ns, "
        f"exp {rates['exp']:.3f} ns per element. It leaves out memory traffic "
        "between kernels and kernel launches: it is what the compiled step's "
        "arithmetic alone takes on this core. Measured times are the tables' "
        "above (min over rounds).",
        "",
        "| network | case | flops / comp-step | divides | transcendentals "
        "| floor (ns/comp-step) | neuroctl (ns/comp-step) | neuroctl / floor "
        "| small loops / floor | simulate_batch / floor | Jaxley (ns/comp-step) "
        "| Jaxley / floor |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    found: dict = {}

    def row(name, what, key, case, pair, to_ns):
        c, fl = counts[key], floor_of[key]
        o, j = (to_ns(x) for x in (pair or (None, None)))
        sm = to_ns((small.get(case) or (None, None))[0])
        sb = to_ns((batch.get(case) or (None, None))[0])
        over = [None if x is None else x / fl for x in (o, sm, sb, j)]
        lines.append(
            f"| {name} | {what} | {c['flops']:.1f} | {c['divides']:.1f} "
            f"| {c['transcendentals']:.1f} | {fl:.1f} | {fmt(o, '.1f')} | "
            + " | ".join(fmt(x, ".2f", "x") for x in over[:3])
            + f" | {fmt(j, '.1f')} | {fmt(over[3], '.2f', 'x')} |"
        )
        found[case] = tuple(over[:3])

    if "paper" in counts:
        for b, dt in sorted(k for k in paper if k[1] == "float32"):
            row(
                "paper network",
                f"batch {b:,}",
                "paper",
                (b, dt),
                paper[(b, dt)],
                lambda us, b=b: _ns(us, b, PAPER_COMPS),
            )
    for n in sorted(hh):
        if f"hh_{n}" in counts:
            row(
                f"{n:,} HH cells",
                "batch 1",
                f"hh_{n}",
                ("hh", n),
                hh[n],
                lambda us, n=n: _ns(us, 1, 3 * n),
            )
    return lines + [""], found


_SOURCES = {
    "HEAD": "HEAD (clean `git archive` export)",
    "tree": "working tree (this checkout; the header says if it was dirty)",
    "tree+small": "working tree, `neuroctl.small_loops` on (opt-in)",
}


def targets(
    paper, hh, grad, bas_speed, bptt=None, small=None, floor=None, batch=None
) -> list[str]:
    """The issue's targets, measured; with `small` (`table_small`'s found, and
    "bptt"), a column for the opt-in `neuroctl.small_loops` too; with `floor`
    (`table_floor`'s found), the distance to the compute floor beyond batch 64
    and N = 1,000."""
    small, bas_speed, floor = small or {}, bas_speed or {}, floor or {}
    batch, far = batch or {}, (None, None, None)

    def speed(pair):
        o, j = pair if pair else (None, None)
        return None if not (o and j) else j / o

    rows = [
        (
            "forward vs Jaxley >= 4x at batch 1 (float32)",
            speed(paper.get((1, "float32"))),
            speed(small.get((1, "float32"))),
            4,
            "x",
            True,
        ),
        (
            "forward vs Jaxley >= 3x at batch 64 (float32)",
            speed(paper.get((64, "float32"))),
            speed(small.get((64, "float32"))),
            3,
            "x",
            True,
        ),
        (
            "forward vs Jaxley >= 3x at batch 64 (float32), `simulate_batch`",
            speed(batch.get((64, "float32"))),
            None,
            3,
            "x",
            True,
        ),
        (
            "forward vs Jaxley >= 3x at N = 1,000 (float32)",
            speed(hh.get(1000)),
            speed(small.get(("hh", 1000))),
            3,
            "x",
            True,
        ),
        (
            "forward within 2x of the compute floor at batch 1,024 (float32)",
            floor.get((1024, "float32"), far)[0],
            floor.get((1024, "float32"), far)[1],
            2,
            "x",
            False,
        ),
        (
            "forward within 2x of the compute floor at batch 1,024 (float32), "
            "`simulate_batch`",
            floor.get((1024, "float32"), far)[2],
            None,
            2,
            "x",
            False,
        ),
        (
            "forward within 2x of the compute floor at N = 10,000 (float32)",
            floor.get(("hh", 10_000), far)[0],
            floor.get(("hh", 10_000), far)[1],
            2,
            "x",
            False,
        ),
        (
            "gradient / forward <= 3 (paper network, float32)",
            (grad or {}).get("grad_over_fwd", {}).get("neuroctl"),
            small.get("grad_over_fwd"),
            3,
            "",
            False,
        ),
        (
            "100 ball-and-sticks >= 20x NEURON (float64)",
            bas_speed.get("neuroctl"),
            bas_speed.get("neuroctl+small"),
            20,
            "x",
            True,
        ),
        (
            "BPTT policy iteration >= 2x as fast as the baseline revision",
            bptt,
            small.get("bptt"),
            2,
            "x",
            True,
        ),
    ]
    lines = [
        "### Targets (for later work; measured now)",
        "",
        "Default settings; the last two columns with the opt-in "
        "`NEUROCTL_XLA_SMALL_LOOPS=1` (against Jaxley's faster run, with or without "
        'the same XLA flag; section "Small loops").',
        "",
        "| target | measured | met | small loops (opt-in) | met |",
        "|---|---:|---|---:|---|",
    ]

    def cell(v, goal, unit, higher):
        if v is None:
            return "not measured | n/a"
        met = v >= goal if higher else v <= goal
        return f"{v:.2f}{unit} | {'met' if met else '**missed**'}"

    for name, v, vs, goal, unit, higher in rows:
        lines.append(
            f"| {name} | {cell(v, goal, unit, higher)} "
            f"| {cell(vs, goal, unit, higher)} |"
        )
    return lines + [""]


def bptt_speedup(res: dict, where: str) -> float | None:
    """Baseline / `where` BPTT step time (min over reps), or None."""
    runs = res["runs"].get("bptt", {})

    def fastest(k):
        return best(runs.get(k, []), lambda r: r["step"]["s"])

    base = fastest("baseline") or fastest("HEAD")
    mine = fastest(where)
    return base / mine if base and mine else None


def report(
    res: dict, plan: Plan, prov: dict, prov_end: dict, wall_s: float, argv: str
) -> str:
    paper_lines, paper = table_paper(res)
    hh_lines, hh = table_hh(res, plan)
    grad_lines, grad = table_grad(res)
    bas_lines, bas_speed = table_bas(res)
    bptt_lines, bptt_speed = table_bptt(res)
    small_lines, small = table_small(res, plan)
    small["bptt"] = bptt_speedup(res, "tree+small")
    batch_lines, batch = table_batch(res, paper_rows(res["runs"].get("paper_fwd", {})))
    floor_lines, floor = table_floor(res, paper, hh, small, batch)
    v = prov["versions"]
    dirty = (
        f"; the working tree was **dirty** ({len(prov['dirty'])} changed files, "
        "others edit it concurrently; benchmarks/ changes are this run's own)"
        if prov["dirty"]
        else "; clean tree"
    )
    head = [
        f"Run {prov['date']}, commit {prov['commit']}{dirty}. {prov['cpu']}, "
        f"{prov['cores']} cores; Python {prov['python']}, jax {v['jax']}, jaxlib "
        f"{v['jaxlib']}, jaxley {v['jaxley']}, jaxley-mech {v['jaxley-mech']}, "
        f"NEURON {v['neuron']}; CPU backend.",
        "",
        f"Pinning: {H.pin_statement()}; {plan.rounds} round(s). Load average "
        f"(1/5/15 min) at start {_load(prov['load'])}, at end "
        f"{_load(prov_end['load'])}. "
        f"Total run time {wall_s / 60:.1f} min. Command: `{argv}`.",
        "",
    ]
    body = (
        head
        + targets(paper, hh, grad, bas_speed, bptt_speed, small, floor, batch)
        + paper_lines
        + batch_lines
        + hh_lines
        + floor_lines
        + grad_lines
        + table_kernels(res)
        + table_fused(res)
        + small_lines
        + bas_lines
        + bptt_lines
    )
    return "\n".join(body)


def _load(load) -> str:
    return "/".join(f"{x:.2f}" for x in load)


def write(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.is_file() else ""
    tail = (
        "\n" + ENV_SECTION + old.split(ENV_SECTION, 1)[1] if ENV_SECTION in old else ""
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        "# Solver benchmarks (CPU)\n\nRegenerate: `python -m benchmarks.bench_solver "
        "--write` (needs `pip install -e .[dev,ref]`; ~20 min; `--quick` for a "
        "smoke run).\n\n" + text + "\n" + tail
    )


def main(argv=None) -> None:
    import sys

    plan, args = plan_from_args(argv)
    prov = H.provenance()
    print(f"load at start {_load(prov['load'])}; {H.pin_statement()}", flush=True)
    t0 = time.perf_counter()
    res = run(plan, log=lambda s: print(s, flush=True))
    wall = time.perf_counter() - t0
    cmd = "python -m benchmarks.bench_solver " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = report(res, plan, prov, H.provenance(), wall, cmd.strip())
    print(text, flush=True)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    if args.write:
        write(text)


if __name__ == "__main__":
    main()
