"""The scaling network, built identically in neuroctl and in Jaxley 0.14.

N identical three-branch cells (root "soma" branch 0 with two children, one
compartment each: length 10 µm, radius 1 µm, Ra 100 Ω·cm, cm 1 µF/cm²), NEURON's
``hh`` (Hodgkin–Huxley at 6.3 °C) on every branch. Sparse graded synapses (Abbott &
Marder, as in the paper RNN): every cell receives `FAN_IN` synapses from distinct
other cells, soma (pre) -> branch 1 (post); a presynaptic cell with index divisible
by 5 is inhibitory (e_syn -75 mV), the others excitatory (0 mV). Stimulus: one
current per cell into its soma [nA]; recordings: the somata of the first
`N_RECORD` cells. Jaxley's node indices skip the hidden branch-point nodes, so the
Jaxley side maps compartment -> node as `peers.build_jaxley_evidence_network` does.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import peers

FAN_IN = 5  # synapses per postsynaptic cell [1]
N_RECORD = 20  # recorded somata (the first cells) [1]
G_SYN = 5e-4  # [µS]
K_MINUS = 1.0  # [1/ms]
E_EXC, E_INH = 0.0, -75.0  # [mV]
LENGTH, RADIUS, RA, CM = 10.0, 1.0, 100.0, 1.0  # [µm], [µm], [Ω·cm], [µF/cm²]
SEED = 0


def pairs(n: int, fan_in: int = FAN_IN, seed: int = SEED) -> np.ndarray:
    """(n·k, 2) int array of (pre, post) cell pairs; k = min(fan_in, n - 1)."""
    rng = np.random.default_rng(seed)
    k = min(fan_in, n - 1)
    out = []
    for post in range(n):
        pre = rng.choice(n - 1, size=k, replace=False)
        pre = pre + (pre >= post)  # skip the post cell itself
        out += [(int(a), post) for a in np.sort(pre)]
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def e_syn(pre: np.ndarray) -> np.ndarray:
    return np.where(pre % 5 == 0, E_INH, E_EXC)


def currents(n: int, T: int, seed: int = 0) -> np.ndarray:
    """Deterministic input (T, n) [nA]: mean 0.02, sd 0.01 (spikes in most cells)."""
    rng = np.random.default_rng(seed)
    return 0.02 + 0.01 * rng.standard_normal((T, n))


def ours(n: int):
    """The neuroctl `Network`."""
    import neuroctl.biophysics as bp

    morph = bp.Morphology.from_parents(
        [-1, 0, 0], length=LENGTH, radius=RADIUS, axial_resistivity=RA, capacitance=CM
    )
    cell = bp.Cell(morph).insert(bp.HH())
    pp = pairs(n)
    cons = [
        bp.Connection(
            bp.GradedSynapse(g=G_SYN, e_syn=float(e), k_minus=K_MINUS),
            bp.Site(int(a), 0),
            bp.Site(int(b), 1),
        )
        for (a, b), e in zip(pp, e_syn(pp[:, 0]), strict=True)
    ]
    return bp.Network.build(
        [cell] * n,
        cons,
        stimuli=[bp.Site(i, 0) for i in range(n)],
        recordings=[bp.Site(i, 0) for i in range(min(n, N_RECORD))],
    )


def jaxley(n: int):
    """The Jaxley network (float64 tables), its build time [s], whether cached.

    Cached across worker processes (`_harness.cached`): the build of N = 10,000
    takes ~2 min, unpickling < 1 s.
    """
    from benchmarks import _harness

    (net, build_s), hit = _harness.cached(
        f"hh_jaxley_{n}", lambda: _jaxley_timed(n), [__file__, peers.__file__]
    )
    peers._numpyify_int_arrays(net)
    return net, build_s, hit


def _jaxley_timed(n: int):
    import jax

    with jax.enable_x64(True):
        t0 = time.perf_counter()
        net = _jaxley_build(n)
        build_s = time.perf_counter() - t0
    return net, build_s


def _jaxley_build(n: int):
    import jaxley as jx
    from jaxley.channels import HH

    branch = jx.Branch(jx.Compartment(), ncomp=1)
    cell = jx.Cell([branch] * 3, parents=[-1, 0, 0])
    cell.set("length", LENGTH)
    cell.set("radius", RADIUS)
    cell.set("axial_resistivity", RA)
    cell.set("capacitance", CM)
    cell.insert(HH())
    net = jx.Network([cell] * n)
    comp2node = dict(
        zip(
            net.nodes["global_comp_index"].to_numpy().tolist(),
            net.nodes.index.to_numpy().tolist(),
            strict=True,
        )
    )
    pp = pairs(n)
    pre = [comp2node[3 * a] for a in pp[:, 0]]
    post = [comp2node[3 * b + 1] for b in pp[:, 1]]
    net._append_multiple_synapses(
        net.nodes.loc[pre], net.nodes.loc[post], peers.GradedSynapse()
    )
    edges = net.select(edges="all")
    edges.set("GradedSynapse_e_syn", e_syn(pp[:, 0]))
    edges.set("GradedSynapse_k_minus", K_MINUS)
    edges.set("GradedSynapse_gS", G_SYN)
    edges.set("GradedSynapse_s", peers.S0_DEFAULT)
    net.set("v", peers.V_INIT)
    net.init_states()
    net.delete_recordings()
    somata = [comp2node[3 * i] for i in range(n)]
    net.select(nodes=somata[:N_RECORD]).record("v", verbose=False)
    net._peer_stim_nodes = somata
    return net


def jaxley_runner(net, T: int, dtype: str, dt: float = 0.025):
    """Jitted ``f(currents (n, T) nA) -> (N_RECORD, T + 1) mV`` under `dtype`."""
    import jax
    import jaxley as jx

    stim_view = net.select(nodes=net._peer_stim_nodes)

    def f(x):
        ds = stim_view.data_stimulate(x[:, :T], None)
        return jx.integrate(net, data_stimuli=ds, delta_t=dt)

    return peers._PrecisionFn(jax.jit(f), dtype, n_cast_args=1, net=net)


def ours_runner(net, dtype, dt: float = 0.025):
    """Jitted ``f(currents (T, n) nA) -> (T, N_RECORD) mV`` at `dtype`."""
    import jax

    import neuroctl.biophysics as bp

    p = net.cast_params(net.default_params, dtype)
    s = bp.init_state(net, p, peers.V_INIT, dtype)
    return jax.jit(lambda x: bp.simulate(net, p, s, x, dt)[1])
