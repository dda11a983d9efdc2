"""GPU benchmark of the fused multi-step kernel (`neuroctl.biophysics.fused`).

Usage (on a machine with a CUDA GPU and ``pip install -e .[dev,ref]``)::

    python -m benchmarks.bench_fused --write          # results/benchmarks_gpu.md
    python -m benchmarks.bench_fused --write --grad-cells 10   # gradient rows on 10
        # HH cells: a short GPU session skips the paper network's ~15-min backward build
    python -m benchmarks.bench_fused --interpret --quick   # CPU check of this script

On the paper network (float32, T steps) it times, per batch size, the XLA solver
(``jit(vmap(simulate))``), the fused kernel (`simulate_fused`, one Pallas/Triton
kernel per block of trials) and Jaxley 0.14 where installed, interleaved over
rounds (A, B, C, A, B, C, ...), each the minimum of `_harness.REPS` repetitions of
at least `_harness.MIN_S` s; the same on N-cell HH networks at batch 1; the
gradient (batch 1 and 64) of XLA and of the fused kernel with either backward
(the backward kernel, or `simulate`'s VJP per segment); and one BPTT policy
iteration (`neuroctl train`'s step, XLA solver). Before timing it checks in
float64 on this device that the fused kernel's recordings and gradient equal
`simulate`'s. No pinning: the GPU runs the work, one process.

``--interpret`` runs everything on the CPU with Pallas' interpreter on a small
network and tiny sizes: it checks this script, not speed (the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness as H
from benchmarks import hh_nets, peers

DT = 0.025  # [ms]
OUT = H.ROOT / "results" / "benchmarks_gpu.md"
BATCHES = (1, 8, 64, 256, 1024, 4096)


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    ap.add_argument("--steps", type=int, default=2000, help="T per forward call")
    ap.add_argument("--grad-steps", type=int, default=2000, help="T per gradient")
    ap.add_argument(
        "--cells",
        type=int,
        nargs="+",
        default=[10, 100, 1000, 10000],
        help="N of the N-cell HH networks (batch 1)",
    )
    ap.add_argument(
        "--fused-max-cells",
        type=int,
        default=100,
        help="largest N run fused (the kernel is unrolled over nodes)",
    )
    ap.add_argument(
        "--grad-cells",
        type=int,
        default=0,
        help="gradient rows on N HH cells instead of the paper network (0): the "
        "paper network's backward kernel takes ~15 min to build (offline, Triton 3.9)",
    )
    ap.add_argument("--block", type=int, default=1, help="trials per program")
    ap.add_argument("--num-warps", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-jaxley", action="store_true")
    ap.add_argument("--interpret", action="store_true", help="CPU check, not speed")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    ap.add_argument("--write", action="store_true", help=f"write {OUT.name}")
    ap.add_argument("--json", type=Path, help="also dump the raw results here")
    args = ap.parse_args(argv)
    if args.quick:
        args.batches, args.steps, args.grad_steps, args.rounds = [1, 4], 20, 20, 1
        args.cells = [2, 3]
    if args.interpret:
        args.no_jaxley = True
    return args


def _network(args):
    if args.interpret:  # the paper network takes ~30 s per interpreted compile
        return hh_nets.ours(2), "2 three-branch HH cells (interpret check)"
    from neuroctl.plants.evidence_net import build_network

    return build_network(pairs=peers.evidence_pairs()), "paper network (82 nodes)"


def _inputs(net, batch: int, steps: int, dtype):
    """Parameters, `batch` resting states and input currents [nA] (B, T, sites)."""
    import neuroctl.biophysics as bp

    p = net.cast_params(net.default_params, dtype)
    s = bp.init_state(net, p, peers.V_INIT, dtype)
    s = jax.tree.map(lambda x: jnp.broadcast_to(x, (batch, *x.shape)), s)
    rng = np.random.default_rng(0)  # [nA], as peers.example_currents
    u = 0.02 + 0.01 * rng.standard_normal((batch, steps, net.n_stimuli))
    return p, s, jnp.asarray(u, dtype)


def _fused(net, params, args, segment=None, backward="fused"):
    """``(state, stimulus) -> recordings`` through the fused kernel."""
    from neuroctl.biophysics.fused import simulate_fused

    def run(state, stimulus):
        return simulate_fused(
            net,
            params,
            state,
            stimulus,
            DT,
            segment=segment,
            block=args.block,
            num_warps=args.num_warps,
            interpret=args.interpret,
            backward=backward,
        )[1]

    return run


def _xla(net, params, lengths=None):
    """``(state, stimulus) -> recordings`` through ``vmap(simulate)``."""
    import neuroctl.biophysics as bp

    def run(state, stimulus):
        return jax.vmap(
            lambda s, u: bp.simulate(net, params, s, u, DT, checkpoint_lengths=lengths)[
                1
            ]
        )(state, stimulus)

    return run


def check(net, grad_net, args) -> dict:
    """Float64 on this device: max |fused − simulate| [mV] of the recordings on
    `net`, and the largest relative difference of the fused gradient (backward
    kernel) from `simulate`'s on `grad_net`."""
    with jax.enable_x64(True):
        steps = min(400, args.steps)
        p, s, u = _inputs(net, 4, steps, jnp.float64)
        a = jax.jit(_xla(net, p))(s, u)
        b = jax.jit(_fused(net, p, args))(s, u)
        p, s, u = _inputs(grad_net, 4, steps, jnp.float64)
        g = [
            _grad(grad_net, p, s, u, fn)[0](p.synapses[0].g)
            for fn in (lambda q: _xla(grad_net, q), lambda q: _fused(grad_net, q, args))
        ]
        scale = float(jnp.abs(g[0]).max())
        return {
            "mv": float(jnp.abs(a - b).max()),
            "grad_rel": float(jnp.abs(g[1] - g[0]).max()) / scale,
        }


def _min_s(args) -> float:
    return 0.05 if args.quick else H.MIN_S


def _interleaved(runners: dict, args) -> dict:
    """Per runner, the fastest `time_min` over `args.rounds` interleaved rounds."""
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, (f, a) in runners.items():
            m = H.time_min(f, *a, min_s=_min_s(args))
            if name not in best or m["s"] < best[name]["s"]:
                best[name] = m
    return best


def _per_step(best: dict, steps: int) -> dict:
    return {
        k: {"us_per_step": m["s"] / steps * 1e6, "compile_s": m["compile_s"]}
        for k, m in best.items()
    }


def forward_rows(net, args) -> list[dict]:
    """The paper network at every batch size: XLA, fused, Jaxley."""
    rows = []
    for batch in args.batches:
        p, s, u = _inputs(net, batch, args.steps, jnp.float32)
        r = {
            "xla": (jax.jit(_xla(net, p)), (s, u)),
            "fused": (jax.jit(_fused(net, p, args)), (s, u)),
        }
        if not args.no_jaxley:
            r["jaxley"] = _jaxley(batch, args.steps)
        row = {"batch": batch, "T": args.steps}
        row.update(_per_step(_interleaved(r, args), args.steps))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _jaxley(batch: int, steps: int):
    (net, _), _ = H.cached(
        "paper_jaxley",
        lambda: peers.build_jaxley_evidence_network("float32"),
        [peers.__file__],
    )
    peers._numpyify_int_arrays(net)
    f = peers.jaxley_runner(net, steps, DT, batch, "float32")
    return f, (f.prepare(peers.example_currents(batch, steps, seed=0)),)


def network_rows(args) -> list[dict]:
    """Batch 1 on N three-branch HH cells (`hh_nets`): XLA, fused, Jaxley."""
    rows = []
    for n in args.cells:
        steps = args.steps if n <= 100 else max(args.steps // 10, 20)
        net = hh_nets.ours(n)
        p, s, _ = _inputs(net, 1, steps, jnp.float32)
        u = jnp.asarray(hh_nets.currents(n, steps), jnp.float32)[None]  # [nA]
        r = {"xla": (jax.jit(_xla(net, p)), (s, u))}
        if n <= args.fused_max_cells:  # the kernel is unrolled over the nodes
            r["fused"] = (jax.jit(_fused(net, p, args)), (s, u))
        if not args.no_jaxley:
            jnet, _, _ = hh_nets.jaxley(n)
            jf = hh_nets.jaxley_runner(jnet, steps, "float32", DT)
            r["jaxley"] = (jf, (u[0].T,))
        row = {"cells": n, "compartments": 3 * n, "T": steps}
        row.update(_per_step(_interleaved(r, args), steps))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def gradient_rows(net, args) -> list[dict]:
    """Gradient of the mean recording w.r.t. the synaptic conductances [µS]."""
    import neuroctl.biophysics as bp

    steps = args.grad_steps
    lengths = tuple(bp.checkpoint_lengths_for(steps, 2))
    rows = []
    for batch in [b for b in (1, 64) if b in args.batches or args.quick]:
        p, s, u = _inputs(net, batch, steps, jnp.float32)
        r = {
            "xla": _grad(net, p, s, u, lambda q: _xla(net, q, lengths)),
            "fused": _grad(net, p, s, u, lambda q: _fused(net, q, args, lengths[-1])),
            "fused_xla_bwd": _grad(
                net, p, s, u, lambda q: _fused(net, q, args, lengths[-1], "xla")
            ),
            "xla_fwd": (jax.jit(_xla(net, p)), (s, u)),
            "fused_fwd": (jax.jit(_fused(net, p, args)), (s, u)),
        }
        best = _interleaved(r, args)
        row = {"batch": batch, "T": steps, "lengths": list(lengths)}
        row.update({k: m["s"] for k, m in best.items()})
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


#: (env, env options, episodes per iteration, dtype) of the policy-iteration rows
POLICY = (("EvidenceStim-v0", {}, 8, "float64"), ("EvidenceStim-v0", {}, 64, "float32"))
QUICK_POLICY = (("SpikeRate-v0", {"episode_ms": 5.0}, 2, "float32"),)


def policy_rows(args) -> list[dict]:
    """One BPTT policy iteration as `neuroctl train` builds it (XLA solver)."""
    from benchmarks.solver_worker import bptt

    rows = []
    for env, options, batch, dtype in QUICK_POLICY if args.quick else POLICY:
        case = {"env": env, "env_options": options, "batch": batch, "dtype": dtype}
        with jax.enable_x64(dtype == "float64"):
            r = bptt(case | {"min_s": _min_s(args)})
        row = case | {k: r["step"][k] for k in ("s", "compile_s")}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _grad(net, params, state, stimulus, runner):
    """(jit(grad of the mean recording w.r.t. the synaptic g), (g0,))."""
    import neuroctl.biophysics as bp

    def loss(g):
        q = net.with_param(params, bp.GradedSynapse, "g", g)
        return runner(q)(state, stimulus).mean()

    return jax.jit(jax.grad(loss)), (params.synapses[0].g,)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _num(x, fmt=".3g", missing="not run") -> str:
    return missing if x is None else format(x, fmt)


def _ratio(a, b) -> str:
    return "" if a is None or b is None else f"**{a / b:.2f}x**"


def _us(r: dict, name: str):
    return r.get(name, {}).get("us_per_step")


def _times(r: dict, xla_over: str, jaxley_over: str) -> list[str]:
    """µs/step of XLA, fused, Jaxley; XLA / `xla_over`; Jaxley / `jaxley_over`."""
    us = {k: _us(r, k) for k in ("xla", "fused", "jaxley")}
    return [_num(v) for v in us.values()] + [
        _ratio(us["xla"], us[xla_over]),
        _ratio(us["jaxley"], us[jaxley_over]),
    ]


def markdown(res: dict) -> str:
    """results/benchmarks_gpu.md from a `main` result."""
    prov = res["provenance"]
    tree = " (dirty tree)" if prov["dirty"] else "; clean tree"
    head = [
        "# Fused kernel benchmarks (GPU)",
        "",
        "Regenerate: `python -m benchmarks.bench_fused --write` (needs a CUDA GPU).",
        "",
        f"Run {prov['date']}, commit {prov['commit']}{tree}. Device: {res['device']};"
        f" jax {prov['versions']['jax']}. Network: {res['network']}, float32."
        f" Block {res['block']} trials per kernel instance,"
        f" {res['num_warps']} warp(s).",
        "",
        "Check first (float64, batch 4): max |fused − simulate| ="
        f" {res['check']['mv']:.1e} mV; gradient (backward kernel) vs `simulate`'s"
        f" on {res['grad_network']}: {res['check']['grad_rel']:.1e} relative.",
        "",
        "Each entry: min over interleaved rounds of the min of "
        f"{H.REPS} repetitions of >= {res['min_s']:g} s.",
        "",
        "### Forward, µs per step (whole batch)",
        "",
    ]
    cols = ["XLA `simulate`", "fused kernel", "Jaxley 0.14"]
    fwd = [
        [f"{r['batch']:,}", f"{r['T']:,}", *_times(r, "fused", "fused")]
        for r in res["forward"]
    ]
    nets = [
        [f"{r['cells']:,}", f"{r['compartments']:,}", f"{r['T']:,}"]
        + _times(r, "fused", "xla")
        for r in res["networks"]
    ]
    grad = [
        [
            str(r["batch"]),
            f"{r['T']:,}",
            _num(r["xla"]),
            _num(r["fused"]),
            _num(r["fused_xla_bwd"]),
            f"{r['xla'] / r['xla_fwd']:.2f}",
            f"{r['fused'] / r['fused_fwd']:.2f}",
            f"{r['fused_xla_bwd'] / r['fused_fwd']:.2f}",
        ]
        for r in res["gradient"]
    ]
    policy = [
        [r["env"], str(r["batch"]), r["dtype"], _num(r["s"]), _num(r["compile_s"])]
        for r in res["policy"]
    ]
    lines = head + _table(["batch", "T", *cols, "XLA / fused", "Jaxley / fused"], fwd)
    lines += [
        "",
        "### Forward vs network size: N three-branch HH cells, batch 1, µs per step",
        "",
        *_table(["N", "compartments", "T", *cols, "XLA / fused", "Jaxley / XLA"], nets),
        "",
        "### Gradient (w.r.t. every synaptic conductance) vs forward",
        "",
        f"Network: {res['grad_network']}.",
        "",
        "XLA: 2-level checkpointing (`checkpoint_lengths`). Fused: the kernel stores "
        "the state every inner length; its backward is one more kernel (replay and "
        "the step's VJP per segment, `backward='fused'`) or `simulate`'s VJP per "
        "segment (`backward='xla'`).",
        "",
        *_table(
            [
                "batch",
                "T",
                "XLA grad (s)",
                "fused grad (s)",
                "fused, XLA backward (s)",
                "XLA grad / fwd",
                "fused grad / fwd",
                "fused, XLA backward / fwd",
            ],
            grad,
        ),
        "",
        "### BPTT policy iteration (`neuroctl train`'s train step, MLP policy)",
        "",
        "On the XLA solver: the envs do not run the fused kernel (yet).",
        "",
        *_table(["env", "episodes", "dtype", "s / iteration", "compile (s)"], policy),
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    args = parse(argv)
    device = jax.devices()[0]
    if device.platform != "gpu" and not args.interpret:
        sys.exit(
            f"bench_fused needs a CUDA GPU (jax.devices()[0] is {device}); "
            "`--interpret --quick` checks this script on the CPU."
        )
    t0 = time.perf_counter()
    net, name = _network(args)
    grad_net = hh_nets.ours(args.grad_cells) if args.grad_cells else net
    res = {
        "provenance": H.provenance(),
        "device": getattr(device, "device_kind", str(device)),
        "network": name,
        "block": args.block,
        "num_warps": args.num_warps,
        "min_s": _min_s(args),
        "check": check(net, grad_net, args),
    }
    print(f"check (float64): {res['check']}", flush=True)
    res["forward"] = forward_rows(net, args)
    res["networks"] = network_rows(args)
    res["grad_network"] = f"{args.grad_cells} HH cells" if args.grad_cells else name
    res["gradient"] = gradient_rows(grad_net, args)
    res["policy"] = policy_rows(args)
    res["wall_s"] = time.perf_counter() - t0
    text = markdown(res)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=H._plain))
    if args.write:
        OUT.write_text(text)
    return res


if __name__ == "__main__":
    main()
