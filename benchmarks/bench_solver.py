"""Side-by-side solver benchmark: neuroctl vs Jaxley 0.14 (and NEURON 9), one script.

Usage (needs the `ref` extra):  python -m benchmarks.bench_solver [--quick] [--write]

Network: the Jaxley paper's evidence-integration RNN shape (20 three-branch Hay-channel
cells + 2 readouts = 62 compartments, 82 nodes with branch points, 69 + 40 = 109
graded synapses), identical connectivity in both simulators. Prints, per precision:
forward µs/step at batch 1 and 32, compile time, gradient time (checkpointed BPTT over
20,800 steps w.r.t. the 109 conductances), XLA memory of forward vs gradient, peak
process memory of each run, and the ratios. Then 100 batched ball-and-stick runs vs 100
sequential NEURON runs (traces checked against each other first). With --write the
table goes to results/benchmarks.md.
"""

import argparse
import os
import platform
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import neuroctl.biophysics as bp  # noqa: E402
from benchmarks import peers  # noqa: E402
from neuroctl.plants.evidence_net import build_network  # noqa: E402

DT = 0.025  # [ms]
T_FULL = 20_800  # one 520-ms trial
LOSS_WINDOW = 800  # steps (the 20-ms response window)
LEVELS = 2  # checkpointing levels for both solvers (sqrt(T) memory, one recompute)


def our_network() -> bp.Network:
    return build_network(pairs=peers.evidence_pairs())


def our_forward(net, T, batch, dtype):
    p = net.cast_params(net.default_params, dtype)
    s = bp.init_state(net, p, -65.0, dtype)
    sim = jax.vmap(lambda x: bp.simulate(net, p, s, x, DT)[1])
    return jax.jit(sim)


def our_grad(net, T, batch, dtype, lengths=None):
    lengths = lengths or bp.checkpoint_lengths_for(T, LEVELS)
    s = bp.init_state(net, net.default_params, -65.0, dtype)

    def loss(g, x):
        p = net.with_param(net.default_params, bp.GradedSynapse, "g", g)
        p = net.cast_params(p, dtype)
        rec = jax.vmap(
            lambda xi: bp.simulate(net, p, s, xi, DT, checkpoint_lengths=lengths)[1]
        )(x)
        return rec[:, -LOSS_WINDOW:, :2].mean()

    return jax.jit(jax.value_and_grad(loss))


def currents(batch, T, dtype, layout):
    x = peers.example_currents(batch, T, seed=0)  # (batch, 20, T) nA
    if layout == "ours":
        x = np.swapaxes(x, 1, 2)  # (batch, T, 20)
    return jnp.asarray(x, dtype)


def mem_ours(T=T_FULL, batch=1, dtype="float32", grad=False):
    """`peak_memory_of` factory: set up (build, compile) and return the run closure."""
    dt = jnp.dtype(dtype)
    net = our_network()
    x = currents(batch, T, dt, "ours")
    if grad:
        f = our_grad(net, T, batch, dt)
        g0 = jnp.asarray(net.default_params.synapses[0].g, dt)
        jax.block_until_ready(f(g0, x))
        return lambda: f(g0, x)
    f = our_forward(net, T, batch, dt)
    jax.block_until_ready(f(x))
    return lambda: f(x)


def row(name, ours, theirs, unit, better="lower"):
    ratio = theirs / ours if better == "lower" else ours / theirs
    return f"| {name} | {ours:.3g} {unit} | {theirs:.3g} {unit} | **{ratio:.1f}x** |"


def bench_precision(dtype_name, quick, jnet, out):
    dt = jnp.dtype(dtype_name)
    T = 2000 if quick else T_FULL
    net = our_network()
    lines = [
        f"\n### {dtype_name}\n",
        "| measure | neuroctl | Jaxley 0.14 | speed-up |",
        "|---|---|---|---|",
    ]
    for batch in (1, 32):
        Tb = T if batch == 1 else min(T, 2000)
        ours = our_forward(net, Tb, batch, dt)
        xo = currents(batch, Tb, dt, "ours")
        c_ours = peers.time_compile(ours, xo) if batch == 1 else None
        t_ours = peers.time_run(ours, xo, repeats=3) / Tb * 1e6
        theirs = peers.jaxley_runner(jnet, Tb, DT, batch, dtype_name)
        xj = theirs.prepare(currents(batch, Tb, dt, "jaxley"))
        c_theirs = peers.time_compile(theirs, xj) if batch == 1 else None
        t_theirs = peers.time_run(theirs, xj, repeats=3) / Tb * 1e6
        lines.append(
            row(f"forward, batch {batch} (µs/step, T={Tb})", t_ours, t_theirs, "µs")
        )
        if c_ours is not None:
            lines.append(row(f"forward compile (T={Tb})", c_ours, c_theirs, "s"))
        out[f"{dtype_name}_fwd_b{batch}"] = (t_ours, t_theirs)
        if c_ours is not None:
            out[f"{dtype_name}_compile"] = (c_ours, c_theirs)
    g_ours = our_grad(net, T, 1, dt)
    g0 = jnp.asarray(net.default_params.synapses[0].g, dt)
    x1 = currents(1, T, dt, "ours")
    cg_ours = peers.time_compile(g_ours, g0, x1)
    tg_ours = peers.time_run(g_ours, g0, x1, repeats=2)
    g_theirs = peers.jaxley_grad_runner(
        jnet,
        T,
        DT,
        1,
        dtype_name,
        loss_window=LOSS_WINDOW,
        checkpoint_lengths=list(bp.checkpoint_lengths_for(T, LEVELS)),
    )
    xj1 = g_theirs.prepare(currents(1, T, dt, "jaxley"), g_theirs.params0)
    cg_theirs = peers.time_compile(g_theirs, *xj1)
    tg_theirs = peers.time_run(g_theirs, *xj1, repeats=2)
    fwd_ours = out[f"{dtype_name}_fwd_b1"][0] * T * 1e-6
    fwd_theirs = out[f"{dtype_name}_fwd_b1"][1] * T * 1e-6
    lines += [
        row(f"gradient, checkpointed (s, T={T})", tg_ours, tg_theirs, "s"),
        row("gradient compile", cg_ours, cg_theirs, "s"),
        f"| gradient / forward time | {tg_ours / fwd_ours:.2f} | "
        f"{tg_theirs / fwd_theirs:.2f} | |",
    ]
    mem_f = peers.xla_memory_analysis(our_forward(net, T, 1, dt), x1)
    mem_g = peers.xla_memory_analysis(g_ours, g0, x1)
    mf, mg = _xla_total(mem_f), _xla_total(mem_g)
    lines.append(
        f"| XLA memory: forward / gradient (MB) | {mf:.2f} / {mg:.2f} "
        f"(ratio {mg / mf:.2f}) | | |"
    )
    out[f"{dtype_name}_grad"] = (tg_ours, tg_theirs, tg_ours / fwd_ours, mg / mf)
    return lines


def _xla_total(m):
    return (
        m["temp_size_in_bytes"]
        + m["output_size_in_bytes"]
        + m["argument_size_in_bytes"]
    ) / 2**20


def bench_memory(quick):
    T = 2000 if quick else T_FULL
    res = {}
    for grad in (False, True):
        spec = {
            "target": "benchmarks.bench_solver:mem_ours",
            "x64": True,
            "kwargs": {"T": T, "dtype": "float32", "grad": grad},
        }
        res[f"ours_{'grad' if grad else 'fwd'}"] = peers.peak_memory_of(spec)
    return res


def ball_and_stick_net():
    morph = bp.Morphology.ball_and_stick()
    cell = bp.Cell(morph).insert(bp.HH(), 0).insert(bp.Leak(g=0.1, e=-65.0), 1)
    return bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])


def bench_ball_and_stick(n=100, tstop=100.0):
    ref = peers.neuron_ball_and_stick_sequential(n=n, tstop_ms=tstop, dt=DT)
    net = ball_and_stick_net()
    steps = int(round(tstop / DT))
    t_mid = (np.arange(steps) + 0.5) * DT
    pulse = ((t_mid >= 5.0) & (t_mid < 95.0)).astype(float)[:, None]
    amps = np.asarray(ref["amps"])
    lines = []
    for dtype in (jnp.float64, jnp.float32):
        p = net.cast_params(net.default_params, dtype)
        s = bp.init_state(net, p, -65.0, dtype)
        x = jnp.asarray(pulse, dtype)

        def soma(a, p=p, s=s, x=x):
            return bp.simulate(net, p, s, a * x, DT)[1][:, 0]

        f = jax.jit(jax.vmap(soma))
        a = jnp.asarray(amps, dtype)
        v = np.asarray(f(a))
        err = np.abs(v - np.asarray(ref["v_soma"])[:, 1:]).max()
        t = peers.time_run(f, a, repeats=3)
        lines.append(
            f"| 100 ball-and-stick runs, {jnp.dtype(dtype).name} | {t:.3g} s | "
            f"{ref['wall_s']:.3g} s | **{ref['wall_s'] / t:.0f}x** | "
            f"max dV vs NEURON {err:.1e} mV |"
        )
    return lines


def targets(out: dict, bas_speedup: float) -> list[str]:
    """The issue's targets (float32 unless stated), met or not, from this run."""
    fwd = out["float32_fwd_b1"][1] / out["float32_fwd_b1"][0]
    comp = out["float32_compile"][1] / out["float32_compile"][0]
    _, _, grad_ratio, mem_ratio = out["float32_grad"]
    rows = [
        ("forward >= 4x faster than Jaxley (batch 1)", f"{fwd:.1f}x", fwd >= 4),
        ("compile >= 10x faster (forward)", f"{comp:.1f}x", comp >= 10),
        ("gradient / forward time <= 3", f"{grad_ratio:.2f}", grad_ratio <= 3),
        (
            "checkpointed BPTT memory <= 2x forward (XLA)",
            f"{mem_ratio:.2f}x",
            mem_ratio <= 2,
        ),
        (
            "100 batched ball-and-stick >= 20x NEURON (float64)",
            f"{bas_speedup:.0f}x",
            bas_speedup >= 20,
        ),
    ]
    return ["| target | measured | met |", "|---|---|---|"] + [
        f"| {name} | {value} | {'yes' if ok else '**no**'} |"
        for name, value, ok in rows
    ]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                line.split(":", 1)[1].strip()
                for line in fh
                if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores visible, jax {jax.__version__} "
        f"({jax.default_backend()}), Python {platform.python_version()}, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="T = 2,000 steps everywhere")
    ap.add_argument("--write", action="store_true", help="write results/benchmarks.md")
    args = ap.parse_args()
    header = [f"Machine: {machine()}", ""]
    t0 = time.perf_counter()
    jnet, info = peers.build_jaxley_evidence_network("float32")
    t_build_j = time.perf_counter() - t0
    t0 = time.perf_counter()
    our_network()
    t_build_o = time.perf_counter() - t0
    lines = [
        "| measure | neuroctl | Jaxley 0.14 | speed-up |",
        "|---|---|---|---|",
        row("network build (s)", t_build_o, t_build_j, "s"),
    ]
    out = {}
    for dtype_name in ("float32", "float64"):
        lines += bench_precision(dtype_name, args.quick, jnet, out)
        print("\n".join(lines[-12:]), flush=True)
    mem = bench_memory(args.quick)
    lines += [
        "",
        "Peak process memory of one run (fresh subprocess, float32, batch 1, "
        f"T={2000 if args.quick else T_FULL}): forward "
        f"{mem['ours_fwd']['run_peak_delta_mb']:.1f} MB, checkpointed gradient "
        f"{mem['ours_grad']['run_peak_delta_mb']:.1f} MB above the "
        f"{mem['ours_fwd']['rss_before_run_mb']:.0f} MB resident after setup.",
        "",
    ]
    lines += [
        "| ball-and-stick (100 ms each) | neuroctl, one vmapped call | NEURON, "
        "100 sequential runs | speed-up | check |",
        "|---|---|---|---|---|",
    ]
    bas = bench_ball_and_stick()
    lines += bas
    lines += [
        "",
        *targets(out, bas_speedup=float(bas[0].split("**")[1].rstrip("x"))),
        "",
        f"Load average at the end: {os.getloadavg()[0]:.2f}",
    ]
    text = "\n".join(header + lines)
    print(text)
    if args.write:
        _write(text)


def _write(text: str) -> None:
    from pathlib import Path

    path = Path("results/benchmarks.md")
    path.parent.mkdir(exist_ok=True)
    envs = "# Environment benchmarks (CPU)"  # bench_envs' section, kept
    old = path.read_text() if path.is_file() else ""
    tail = "\n" + envs + old.split(envs, 1)[1] if envs in old else ""
    path.write_text(
        "# Solver benchmarks (CPU)\n\nRegenerate: `python -m benchmarks."
        "bench_solver --write` (needs `pip install -e .[ref]`).\n\n"
        + text
        + "\n"
        + tail
    )


if __name__ == "__main__":
    main()
