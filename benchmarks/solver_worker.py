"""One pinned measurement process of `bench_solver` (not meant to be run by hand).

``python -m benchmarks.solver_worker '<case json>'`` runs one case and prints its
result as one JSON line (``@@RESULT@@{...}``). A case names a ``kind`` and a
``sim`` ("neuroctl", "jaxley", "neuron" or "both"); see `CASES`. Each worker
builds its network once and measures all the configurations of its case with it
(`_harness.time_min`: min of 3 repetitions of >= 1 s each).
"""

from __future__ import annotations

import re
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness as H
from benchmarks import hh_nets, peers

DT = 0.025  # [ms]
PAPER_COMPS = peers.PAPER_COMPS
LEVELS = 2  # checkpointing levels of the gradient, both solvers


# --------------------------------------------------------------------------- #
# Paper network: forward at several batch sizes and precisions
# --------------------------------------------------------------------------- #
def paper_fwd(case: dict) -> dict:
    """``configs``: [[batch, dtype, T], ...] -> µs/step and ns/compartment-step."""
    if case.get("formulation") == "fused":
        _fused_formulation()
    t0 = time.perf_counter()
    net = _paper_net(case["sim"])
    out = {"build_s": getattr(net, "_peer_build_s", time.perf_counter() - t0)}
    out["rows"] = []
    for batch, dtype, T in case["configs"]:
        f, x = _paper_forward(case["sim"], net, batch, dtype, T, case.get("layout"))
        m = H.time_min(f, x)
        m.update(batch=batch, dtype=dtype, T=T, us_per_step=m["s"] / T * 1e6)
        if case.get("kernels") and batch == 1:  # the table counts batch 1's
            m["kernels"] = H.step_bodies(f.lower(x).compile().as_text(), [T])
        if _small_loops():  # not timed: one more compile of the same program
            m["one_function"] = _one_function(f, x)
        m["ns_per_comp_step"] = m["us_per_step"] * 1e3 / (batch * PAPER_COMPS)
        out["rows"].append(m)
        del f, x
    return out


def _fused_formulation(patch=setattr) -> None:
    """This worker's neuroctl step rewritten for fewer kernels (forward A/B).

    XLA's CPU fusion starts a new kernel wherever an expensive value (exp,
    divide, ...) has several users, and does not fuse a concatenate of such
    values. So: (1) each gate's update is written ``x + (x_inf − x)(−expm1(−k·dt))``,
    which uses ``x_inf`` and ``k`` once; (2) the gate vector is a sum of padded
    per-gate updates instead of a concatenate; (3) the tree elimination and the
    calcium update use pads and selects instead of in-place slice updates. Same
    maths; the step compiles to fewer kernels, and the benchmark measures whether
    that makes it faster. `patch(module, name, value)` installs each piece (a test
    passes pytest's ``monkeypatch.setattr`` to undo them).
    """
    from neuroctl.biophysics import calcium, solver, synapses

    def relax(x, x_inf, rate, dt):
        return x + (x_inf - x) * -jnp.expm1(-dt * rate)

    for module in (solver, calcium, synapses):
        patch(module, "relax", relax)

    def mask(where: slice, n: int) -> np.ndarray:
        m = np.zeros(n, bool)
        m[where] = True
        return m

    def advance_gates(net, params, state, v, cai, dt):
        gates, out, offset = state.gates, jnp.zeros_like(state.gates), 0
        for b, ch in zip(net.channel_blocks, params.channels, strict=True):
            n = b.hi - b.lo
            x_inf, rate = ch.gate_dynamics(v[b.lo : b.hi], cai[b.lo : b.hi])
            for xi, k in zip(x_inf, rate, strict=True):
                new = jnp.broadcast_to(relax(gates[offset : offset + n], xi, k, dt), n)
                out = out + jnp.pad(new, (offset, out.shape[0] - offset - n))
                offset += n
        return out

    def advance_calcium(net, params, state, ica, dt):
        cai, eca = state.cai, state.eca
        for b, ca in zip(net.calcium_block, params.calcium, strict=True):
            sl = slice(b.lo, b.hi)
            new = ca.advance(cai[sl], ica[sl], dt)
            m = mask(sl, cai.shape[0])
            m[sl] &= np.asarray(b.mask, bool)
            cai = jnp.where(m, solver._spread(new, sl, cai), cai)
            eca = jnp.where(m, solver._spread(ca.reversal(new), sl, eca), eca)
        return cai, eca

    def eliminate(net, diag, rhs):
        g = solver._const(net.axial_g, diag)
        d, r = diag, rhs
        for level in reversed(net.levels):
            assert all(isinstance(grp.children, slice) for grp in level)
            f = [g[grp.children] / d[grp.children] for grp in level]
            dd = [
                solver._spread(fi * g[grp.children], grp.parents, d)
                for fi, grp in zip(f, level, strict=True)
            ]
            rr = [
                solver._spread(fi * r[grp.children], grp.parents, d)
                for fi, grp in zip(f, level, strict=True)
            ]
            d, r = d - sum(dd), r + sum(rr)
        x = r / d
        for level in net.levels:
            for grp in level:
                c, p = grp.children, grp.parents
                new = (r[c] + g[c] * x[p]) / d[c]
                x = jnp.where(mask(c, x.shape[0]), solver._spread(new, c, x), x)
        return x

    patch(solver, "_advance_gates", advance_gates)
    patch(solver, "_advance_calcium", advance_calcium)
    patch(solver, "_hines_eliminate", eliminate)


def _one_function(f, *args) -> bool:
    """Whether XLA compiled `f`'s time loop into one function (one more compile:
    not timed)."""
    return H.SMALL_CALL in f.lower(*args).compile().as_text()


def _small_loops() -> bool:
    """Whether this worker runs with XLA:CPU's small-loop threshold raised."""
    from neuroctl import small_loops

    return small_loops.active()


def _paper_net(sim: str):
    if sim == "jaxley":  # cached across workers; build time kept from the build
        (net, info), _ = H.cached(
            "paper_jaxley",
            lambda: peers.build_jaxley_evidence_network("float32"),
            [peers.__file__],
        )
        peers._numpyify_int_arrays(net)
        net._peer_build_s = info["build_s"]
        return net
    from neuroctl.plants.evidence_net import build_network

    return build_network(pairs=peers.evidence_pairs())


def _paper_forward(sim, net, batch, dtype, T, layout=None):
    """The jitted forward of `batch` trials and its input; ``layout="batch"``:
    neuroctl's `simulate_batch` (trials as the last axis) instead of vmap."""
    x = peers.example_currents(batch, T, seed=0)  # (batch, 20, T) nA
    if sim == "jaxley":
        f = peers.jaxley_runner(net, T, DT, batch, dtype)
        return f, f.prepare(x)
    import neuroctl.biophysics as bp

    dt = jnp.dtype(dtype)
    p = net.cast_params(net.default_params, dt)
    s = bp.init_state(net, p, peers.V_INIT, dt)
    if layout == "batch":
        f = jax.jit(lambda xs: bp.simulate_batch(net, p, s, xs, DT)[1])
    else:
        f = jax.jit(jax.vmap(lambda xi: bp.simulate(net, p, s, xi, DT)[1]))
    return f, jax.device_put(jnp.asarray(np.swapaxes(x, 1, 2), dt))


# --------------------------------------------------------------------------- #
# Paper network: checkpointed gradient vs forward, kernel counts
# --------------------------------------------------------------------------- #
def paper_grad(case: dict) -> dict:
    """Forward and checkpointed-gradient time at batch 1, T steps; kernel counts."""
    sim, dtype, T = case["sim"], case["dtype"], case["T"]
    if case.get("solve") == "direct":
        _differentiate_through_the_elimination()
    t0 = time.perf_counter()
    net = _paper_net(sim)
    build_s = getattr(net, "_peer_build_s", time.perf_counter() - t0)
    out = {"build_s": build_s, "dtype": dtype, "T": T}
    f, x = _paper_forward(sim, net, 1, dtype, T)
    out["fwd"] = H.time_min(f, x)
    g, args = _paper_gradient(
        sim, net, dtype, T, case.get("remat_steps", True), case.get("nested", True)
    )
    out["grad"] = H.time_min(g, *args)
    out["grad_over_fwd"] = out["grad"]["s"] / out["fwd"]["s"]
    out["xla_mb"] = {"fwd": _xla_mb(f, x), "grad": _xla_mb(g, *args)}
    if case.get("kernels"):
        out["kernels"] = _kernels(f, (x,), g, args, T, case.get("nested", True))
    return out


def _differentiate_through_the_elimination() -> None:
    """This worker's neuroctl without the tree solve's custom adjoint: `hines_solve`
    becomes the plain elimination, so autodiff goes through it (A/B of the
    transposed-solve adjoint, `lax.custom_linear_solve`)."""
    from neuroctl.biophysics import solver

    solver.hines_solve = lambda net, diag, rhs: solver._hines_eliminate(net, diag, rhs)


def _paper_gradient(sim, net, dtype, T, remat_steps=True, nested=True):
    import neuroctl.biophysics as bp

    lengths = list(bp.checkpoint_lengths_for(T, LEVELS)) if nested else None
    x = peers.example_currents(1, T, seed=0)
    if sim == "jaxley":
        g = peers.jaxley_grad_runner(
            net, T, DT, 1, dtype, checkpoint_lengths=lengths, loss_window=800
        )
        return g, g.prepare(x, g.params0)
    dt = jnp.dtype(dtype)
    s = bp.init_state(net, net.default_params, peers.V_INIT, dt)

    def loss(gs, xs):
        p = net.with_param(net.default_params, bp.GradedSynapse, "g", gs)
        p = net.cast_params(p, dt)
        rec = jax.vmap(
            lambda xi: bp.simulate(
                net, p, s, xi, DT, checkpoint_lengths=lengths, remat_steps=remat_steps
            )[1]
        )(xs)
        return rec[:, -800:, : peers.N_OUT].mean()

    g0 = jnp.asarray(net.default_params.synapses[0].g, dt)
    xs = jnp.asarray(np.swapaxes(x, 1, 2), dt)
    return jax.jit(jax.value_and_grad(loss)), (g0, xs)


def _xla_mb(fn, *args) -> float | None:
    m = peers.xla_memory_analysis(fn, *args)
    if m is None:
        return None
    keys = ("temp_size_in_bytes", "output_size_in_bytes", "argument_size_in_bytes")
    return sum(m[k] for k in keys) / 2**20


def _kernels(f, fargs, g, gargs, T, nested=True) -> dict:
    import neuroctl.biophysics as bp

    lengths = bp.checkpoint_lengths_for(T, LEVELS) if nested else (T,)
    fwd = H.step_bodies(f.lower(*fargs).compile().as_text(), [T])
    grad = H.step_bodies(g.lower(*gargs).compile().as_text(), lengths)
    return {"forward": fwd, "gradient": grad, "lengths": list(lengths)}


# --------------------------------------------------------------------------- #
# HH networks of N cells
# --------------------------------------------------------------------------- #
def hh_fwd(case: dict) -> dict:
    """Forward µs/step (batch 1) of the N-cell HH network."""
    n, T, dtype, sim = case["n"], case["T"], case["dtype"], case["sim"]
    t0 = time.perf_counter()
    if sim == "jaxley":
        net, build_s, hit = hh_nets.jaxley(n)
    else:
        net, build_s, hit = hh_nets.ours(n), time.perf_counter() - t0, False
    out = {"build_s": build_s, "cached": hit, "n": n, "T": T, "dtype": dtype}
    x = hh_nets.currents(n, T)
    if sim == "jaxley":
        f = hh_nets.jaxley_runner(net, T, dtype, DT)
        x = f.prepare(x.T)
    else:
        f = hh_nets.ours_runner(net, jnp.dtype(dtype), DT)
        x = jax.device_put(jnp.asarray(x, dtype))
    m = H.time_min(f, x)
    m["us_per_step"] = m["s"] / T * 1e6
    m["ns_per_comp_step"] = m["us_per_step"] * 1e3 / (3 * n)
    if _small_loops():
        m["one_function"] = _one_function(f, x)
    out["fwd"] = m
    return out


def hh_check(case: dict) -> dict:
    """Both simulators on the same input in float64: max |Δv| [mV] (not timed)."""
    n, T = case["n"], case["T"]
    x = hh_nets.currents(n, T)
    ours = np.asarray(hh_nets.ours_runner(hh_nets.ours(n), jnp.float64, DT)(x))
    jnet, build_s, _ = hh_nets.jaxley(n)
    theirs = np.asarray(hh_nets.jaxley_runner(jnet, T, "float64", DT)(x.T))
    theirs = theirs[:, 1:].T  # drop the initial state; (T, n_rec)
    spikes = int((np.diff((ours > 0).astype(int), axis=0) == 1).sum())
    return {
        "n": n,
        "T": T,
        "max_abs_dv_mv": float(np.abs(ours - theirs).max()),
        "spikes_recorded": spikes,
        "jaxley_build_s": build_s,
    }


# --------------------------------------------------------------------------- #
# 100 ball-and-sticks vs NEURON
# --------------------------------------------------------------------------- #
def bas(case: dict) -> dict:
    """NEURON: 100 sequential runs (one measurement per process: NEURON keeps
    every section it ever made, so a second call would simulate two cells).
    neuroctl: one vmapped call over the 100 amplitudes, per dtype."""
    n, tstop = case.get("n", 100), case.get("tstop", 100.0)
    if case["sim"] == "neuron":
        ref = peers.neuron_ball_and_stick_sequential(n=n, tstop_ms=tstop, dt=DT)
        return {"s": ref["wall_s"], "n": n}
    ref = None
    if case.get("check"):
        ref = peers.neuron_ball_and_stick_sequential(n=n, tstop_ms=tstop, dt=DT)
    out = {"n": n}
    for dtype in case["dtypes"]:
        f, a = _bas_fn(n, tstop, jnp.dtype(dtype))
        out[dtype] = H.time_min(f, a)
        if _small_loops():  # not timed: one more compile of the same program
            out[dtype]["one_function"] = _one_function(f, a)
        if ref is not None:
            v = np.asarray(f(a))
            dv = np.abs(v - np.asarray(ref["v_soma"])[:, 1:]).max()
            out[dtype]["max_abs_dv_mv"] = float(dv)
    return out


def _bas_fn(n, tstop, dtype):
    import neuroctl.biophysics as bp

    morph = bp.Morphology.ball_and_stick()
    cell = bp.Cell(morph).insert(bp.HH(), 0).insert(bp.Leak(g=0.1, e=-65.0), 1)
    net = bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])
    steps = int(round(tstop / DT))
    t_mid = (np.arange(steps) + 0.5) * DT
    pulse = ((t_mid >= 5.0) & (t_mid < 95.0)).astype(float)[:, None]
    p = net.cast_params(net.default_params, dtype)
    s = bp.init_state(net, p, peers.V_INIT, dtype)
    x = jnp.asarray(pulse, dtype)

    def soma(a):
        return bp.simulate(net, p, s, a * x, DT)[1][:, 0]

    amps = jnp.asarray(np.linspace(0.05, 0.5, n), dtype)
    return jax.jit(jax.vmap(soma)), amps


# --------------------------------------------------------------------------- #
# BPTT policy iteration
# --------------------------------------------------------------------------- #
def bptt(case: dict) -> dict:
    """One `neuroctl.train.bptt` train step (MLP policy, EvidenceStim-v0)."""
    from neuroctl.train import bptt as tb
    from neuroctl.train.runs import RunSpec, build_env, new_policy, policy_io_for

    spec = RunSpec(
        env=case.get("env", "EvidenceStim-v0"),
        env_options=case.get("env_options", {}),
        policy=case.get("policy", "mlp"),
        precision=case.get("dtype", "float64"),
        train=tb.BPTTConfig(batch=case.get("batch", 8)),
    )
    t0 = time.perf_counter()
    env, env_params = build_env(spec)
    io = policy_io_for(env, env_params, spec)
    from neuroctl.policies.base import split

    parts, params = split(new_policy(spec, io, env))
    state = tb.init_state(params, spec.train)
    step = tb.make_train_step(env, env_params, parts, spec.train)
    setup_s = time.perf_counter() - t0
    m = H.time_min(step, state, min_s=case.get("min_s", H.MIN_S))
    return {
        "setup_s": setup_s,
        "step": m,
        "env": spec.env,
        "batch": spec.train.batch,
        "dtype": spec.precision,
    }


# --------------------------------------------------------------------------- #
# Compute floor: the step's arithmetic at this core's rates
# --------------------------------------------------------------------------- #
RATE_ELEMENTS = 1 << 14  # [1] elements per op: 64 KiB in float32, in L2
RATE_CHAIN = 16  # [1] independent ops per element and iteration
RATE_ITERS = 20  # [1] loop iterations per call (launch cost amortised)
_HLO_OP = re.compile(r"= (f16|bf16|f32|f64)\[([\d,]*)\]\S* (\w+)\(")


def floor(case: dict) -> dict:
    """Compute floor of a forward step [ns per compartment-step] on this core.

    rates_ns: ns per element of one arithmetic op, one divide and one exp as
    XLA:CPU compiles them here, vectorised over data in cache (`_op_rates`).
    Per network, per compartment-step: XLA's cost analysis of one compiled step
    (flops, transcendentals) and the divides among its flops (element counts of
    the ``divide`` ops of its HLO). floor = arithmetic · (flops − divides) +
    divide · divides + exp · transcendentals: the step's arithmetic alone, with
    no memory traffic between kernels and no launches.
    """
    dtype = jnp.dtype(case.get("dtype", "float32"))
    rates = _op_rates(dtype)
    nets = {"paper": (_paper_net("neuroctl"), PAPER_COMPS)}
    for n in case["ns"]:
        nets[f"hh_{n}"] = (hh_nets.ours(n), 3 * n)
    out: dict = {"dtype": str(dtype), "rates_ns": rates, "nets": {}}
    for key, (net, n_comp) in nets.items():
        c = _step_counts(net, dtype, n_comp)
        c["floor_ns"] = (
            rates["arith"] * (c["flops"] - c["divides"])
            + rates["divide"] * c["divides"]
            + rates["exp"] * c["transcendentals"]
        )
        out["nets"][key] = c
    return out


def _op_rates(dtype) -> dict:
    """ns per element-op: ``arith`` (multiply/add), ``divide``, ``exp``.

    Each loop iteration computes, per element, the mean of `RATE_CHAIN`
    independent ``op(y·c_k)``: ``op`` = square (1 multiply), ``exp(−u)`` or
    ``1/(1 + u)`` (an add and a divide), so an element costs 3 arithmetic ops
    per k for the square and 2 around the exp and the divide's 3; those are
    subtracted at the square's rate.
    """
    ops = {
        "square": lambda u: u * u,
        "exp": lambda u: jnp.exp(-u),
        "div": lambda u: 1.0 / (1.0 + u),
    }
    x = jnp.linspace(0.1, 0.9, RATE_ELEMENTS, dtype=dtype)
    per = {}
    for name, op in ops.items():

        def body(_, y, op=op):
            terms = [op(y * (0.5 + 0.03 * k)) for k in range(RATE_CHAIN)]
            return sum(terms) * (1.0 / RATE_CHAIN)

        f = jax.jit(lambda x, body=body: jax.lax.fori_loop(0, RATE_ITERS, body, x))
        s = H.time_min(f, x)["s"]
        per[name] = s * 1e9 / (RATE_ELEMENTS * RATE_CHAIN * RATE_ITERS)
    arith = per["square"] / 3
    return {
        "arith": arith,
        "divide": max(per["div"] - 3 * arith, 0.0),
        "exp": max(per["exp"] - 2 * arith, 0.0),
        "measured": per,
    }


def _step_counts(net, dtype, n_comp: int) -> dict:
    """flops, divides, transcendentals and bytes accessed of one compiled forward
    step (batch 1, parameters closed over as in the timed runs), per compartment."""
    import neuroctl.biophysics as bp

    p = net.cast_params(net.default_params, dtype)
    s = bp.init_state(net, p, peers.V_INIT, dtype)
    x = jnp.zeros(net.n_stimuli, dtype)
    c = jax.jit(lambda s, x: bp.step(net, p, s, x, DT)).lower(s, x).compile()
    ca = c.cost_analysis()
    ca = ca[0] if isinstance(ca, list | tuple) else ca
    divides = sum(
        int(np.prod([int(d) for d in m.group(2).split(",") if d]))
        for m in _HLO_OP.finditer(c.as_text())
        if m.group(3) == "divide"
    )
    return {
        "flops": ca["flops"] / n_comp,
        "divides": divides / n_comp,
        "transcendentals": ca["transcendentals"] / n_comp,
        "bytes": ca["bytes accessed"] / n_comp,
    }


CASES = {
    "paper_fwd": paper_fwd,
    "paper_grad": paper_grad,
    "hh_fwd": hh_fwd,
    "hh_check": hh_check,
    "bas": bas,
    "bptt": bptt,
    "floor": floor,
}


def run_case(case: dict) -> dict:
    return CASES[case["kind"]](case)


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)  # before any array: f64 cases need it
    H.worker_main(run_case)
