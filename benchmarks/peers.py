"""Peer side of the solver benchmark: Jaxley 0.14 and NEURON 9 reference runs,
plus measuring helpers meant to be used for *both* our solver and the peers.

Contents
--------
Network (the Jaxley paper's evidence-integration RNN, fig5_rnn):
    evidence_pairs(n=20, p=0.2, seed=3) -> list[(pre, post)]
    build_jaxley_evidence_network(dtype="float64", g_rec=..., g_out=...) -> (net, info)
    GradedSynapse                      Abbott–Marder graded synapse (jaxley Synapse)
Runners (jitted; dtype chosen per runner, see "float32 / float64" below):
    jaxley_runner(net, T_steps, dt=0.025, batch=1, dtype=None) -> f(currents)
    jaxley_grad_runner(net, T_steps, dt=0.025, batch=1, dtype=None,
                       checkpoint_lengths="auto", loss_window=800)
                       -> g(currents, params)
    checkpoint_lengths_for(T, levels=3)
Measuring helpers (solver-agnostic):
    time_compile(fn, *args) -> seconds (first call - second call)
    time_run(fn, *args, repeats=5) -> median seconds (block_until_ready)
    xla_memory_analysis(fn, *args) -> dict (XLA's compiled buffer sizes)
    peak_memory_of(spec, timeout=...) -> dict (peak RSS in a fresh subprocess)
NEURON reference:
    neuron_ball_and_stick_sequential(n=100, tstop_ms=100.0, dt=0.025, amps=None)

float32 / float64
-----------------
Jaxley turns its pandas tables into jnp arrays *at trace time*, so the precision of a
simulation is the value of ``jax_enable_x64`` while the function is traced and run.
Every runner here therefore takes ``dtype`` ("float32" or "float64") and wraps its
jitted function so that each trace / call / ``.lower`` happens inside
``jax.enable_x64(dtype == "float64")``.  This lets one script time both precisions
side by side, with one caveat: the first trace in a precision other than the previous
trace's calls ``jax.clear_caches()`` (JAX's trace caches ignore the x64 mode and
Jaxley then fails with an int32/int64 mismatch), so finish compile + timing of one
runner before creating the next in the other precision, or use one precision per
process.  Arguments are converted to ``dtype`` if needed; for timing, prepare
arguments once with ``runner.prepare(x)`` so no conversion happens inside the loop.
(Setting ``jax.config.update("jax_enable_x64", True)`` at the top of the caller
script is still recommended, so that arrays made outside the runners are float64.)
The network itself is dtype-agnostic: its initial states are computed in float64 at
build time and stored in Jaxley's float64 pandas tables.

Peak memory
-----------
``peak_memory_of`` runs ``factory(**kwargs)`` in a fresh ``python`` subprocess.  The
factory does any setup (build, compile, first call) and returns a zero-argument
callable ``run``.  The child then resets the kernel's high-water mark
(``echo 5 > /proc/self/clear_refs``, Linux), calls ``run()`` (result
block_until_ready), and reports ``VmHWM`` - i.e. the peak resident memory of the run
alone - plus the baseline RSS before ``run`` and ``ru_maxrss`` of the whole child
(setup included).  ``run_peak_delta_mb = hwm_run - rss_before_run`` is the number to
compare.  XLA's own ``memory_analysis()`` (``xla_memory_analysis``) is more precise for
temporaries and is independent of allocator behaviour; report both.
"""

from __future__ import annotations

import functools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

# --------------------------------------------------------------------------- #
# Paper constants (see /work/shared/FACTS.md, "The paper's evidence-integration RNN")
# --------------------------------------------------------------------------- #
N_REC = 20
N_EXC = 10  # cells 0..9 excitatory (e_syn 0 mV), 10..19 inhibitory (e_syn -75 mV)
N_OUT = 2
PAPER_COMPS = 62  # compartments (branch points excluded)
P_CONN = 0.2
CONN_SEED = 3
V_INIT = -65.0

# distance 0 for the apical H density: (-0.8696 + 2.087*exp(0*0.0031)) * 8e-5
G_H_APICAL = (-0.8696 + 2.087 * math.exp(0.0 * 0.0031)) * 8e-5  # 9.7392e-5 S/cm^2

CHANNELS = {  # branch -> {jaxley param name: value (S/cm^2 unless noted)}
    "apical": {
        "NaTs2T_gNaTs2T": 0.026145,
        "SKv3_1_gSKv3_1": 0.004226,
        "M_gM": 0.000143,
        "H_gH": G_H_APICAL,
    },
    "soma": {
        "CaHVA_gCaHVA": 0.000994,
        "CaLVA_gCaLVA": 0.000333,
        "SKv3_1_gSKv3_1": 0.303472,
        "SKE2_gSKE2": 0.008407,
        "NaTs2T_gNaTs2T": 0.983955,
        "CaPump_gamma": 0.000609,
        "CaPump_decay": 210.485,
    },
    "basal": {"H_gH": 8e-5},
}
E_NA, E_K = 50.0, -85.0
G_LEAK, E_LEAK = 3e-5, -75.0
G_LEAK_OUT = 3e-2
CA_T_KELVIN, CA_I0, CA_E = 307.15, 5e-5, 2.0

SYN = dict(
    v_th=-35.0, delta=10.0, k_minus_rec=1.0, k_minus_out=0.025, e_exc=0.0, e_inh=-75.0
)
# Benchmark default synaptic conductances [uS] (the paper trains them; any fixed
# values work for timing, but both solvers must use the same ones: see info["gS"]).
G_REC_DEFAULT = 1e-3
G_OUT_DEFAULT = 1e-3


def _s_inf(v_pre: float) -> float:
    return 1.0 / (1.0 + math.exp((SYN["v_th"] - v_pre) / SYN["delta"]))


S0_DEFAULT = _s_inf(V_INIT)  # synapse state at rest: 1/(1+e^3) = 0.047426


def evidence_pairs(n: int = N_REC, p: float = P_CONN, seed: int = CONN_SEED):
    """Recurrent soma(pre) -> apical(post) pairs, sorted by (pre, post).

    Exactly::

        rng = np.random.default_rng(seed)
        mask = rng.binomial(1, p, size=(n, n)).astype(bool)   # mask[pre, post]
        np.fill_diagonal(mask, False)                          # no self-connections
        pre, post = np.nonzero(mask)                           # row-major order

    At seed 3 this gives 69 pairs, the paper's count (rng.random(...) < p gives 70).
    """
    rng = np.random.default_rng(seed)
    mask = rng.binomial(1, p, size=(n, n)).astype(bool)
    np.fill_diagonal(mask, False)
    pre, post = np.nonzero(mask)
    return [(int(a), int(b)) for a, b in zip(pre, post, strict=True)]


def _x64(dtype) -> bool:
    name = np.dtype(dtype).name
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return name == "float64"


# --------------------------------------------------------------------------- #
# Jaxley network
# --------------------------------------------------------------------------- #
@functools.cache
def _graded_synapse_cls():
    from jaxley.solver_gate import save_exp
    from jaxley.synapses.synapse import Synapse

    class GradedSynapse(Synapse):
        """Graded ionotropic synapse (Abbott & Marder 1998).

        s_inf = 1/(1+exp((v_th - v_pre)/delta)), tau_s = (1 - s_inf)/k_minus,
        exponential Euler: s <- s*exp(-dt/tau_s) + s_inf*(1 - exp(-dt/tau_s));
        I = gS * s * (v_post - e_syn)  [nA, gS in uS].
        """

        def __init__(self, name=None):
            super().__init__(name)
            p = self._name
            self.synapse_params = {
                f"{p}_gS": G_REC_DEFAULT,
                f"{p}_e_syn": 0.0,
                f"{p}_k_minus": SYN["k_minus_rec"],
                f"{p}_v_th": SYN["v_th"],
                f"{p}_delta": SYN["delta"],
            }
            self.synapse_states = {f"{p}_s": S0_DEFAULT}

        def update_states(self, states, delta_t, pre_voltage, post_voltage, params):
            p = self._name
            s_inf = 1.0 / (
                1.0
                + save_exp((params[f"{p}_v_th"] - pre_voltage) / params[f"{p}_delta"])
            )
            tau_s = (1.0 - s_inf) / params[f"{p}_k_minus"]
            decay = save_exp(-delta_t / tau_s)
            return {f"{p}_s": states[f"{p}_s"] * decay + s_inf * (1.0 - decay)}

        def compute_current(self, states, pre_voltage, post_voltage, params):
            p = self._name
            g = params[f"{p}_gS"] * states[f"{p}_s"]
            return g * (post_voltage - params[f"{p}_e_syn"])

    return GradedSynapse


def __getattr__(name):  # lazy: keep `import benchmarks.peers` free of jaxley
    if name == "GradedSynapse":
        return _graded_synapse_cls()
    raise AttributeError(name)


def build_jaxley_evidence_network(
    dtype="float64",
    g_rec=G_REC_DEFAULT,
    g_out=G_OUT_DEFAULT,
    seed=CONN_SEED,
    verbose=False,
):
    """Build the paper's EI RNN in Jaxley.  Returns ``(net, info)``.

    Layout (global compartment index; NOT Jaxley's node index, which skips hidden
    branch-point nodes - map with ``info["jaxley_node_of_comp"]``):
        recurrent cell i (0..19): apical 3i, soma 3i+1, basal 3i+2
        readout r (0, 1): node 60 + r
    Edges (= order of ``info["gS"]`` and of the trainable ``GradedSynapse_gS``):
        first the recurrent pairs in ``info["pairs"]`` order (soma pre -> apical post),
        then soma i -> readout 0 for i = 0..19, then soma i -> readout 1 for i = 0..19.
    Channel insertion order (= Jaxley's per-step update order):
        Leak, NaTs2T, SKv3_1, M, H, CaHVA, CaLVA, SKE2, CaPump, CaNernstReversal.
    CaNernstReversal's temperature is set to 307.15 K (jaxley_mech default 279.45 K)
    and its state eCa is set to the Nernst value for Ca_i 5e-5 / Ca_e 2 mM at init
    (jaxley_mech's init_state leaves it at 0).  v_init -65 mV; channel gates at their
    steady state (``net.init_states()``); synapse state s0 = s_inf(-65) = 0.047426.
    Stimulus sites: basal compartments (``info["stim_nodes"]``).  Recordings (rows of
    the integrate output): readout 0, readout 1, then the 20 somata.
    ``dtype`` only sets the runners' default (``net._peer_dtype``); see module doc.
    """
    import jax

    with jax.enable_x64(True):
        t0 = time.perf_counter()
        net, info = _build(g_rec, g_out, seed, verbose)
        info["build_s"] = time.perf_counter() - t0
    _numpyify_int_arrays(net)
    net._peer_dtype = np.dtype(dtype).name
    return net, info


def _build(g_rec, g_out, seed, verbose):
    import jaxley as jx
    from jaxley.channels import Leak
    from jaxley_mech.channels.l5pc import (
        SKE2,
        CaHVA,
        CaLVA,
        CaNernstReversal,
        CaPump,
        H,
        M,
        NaTs2T,
        SKv3_1,
    )

    GradedSynapse = _graded_synapse_cls()

    # --- recurrent cell template (channels inserted once, then copied) ---
    comp = jx.Compartment()
    branch = jx.Branch(comp, ncomp=1)
    cell = jx.Cell([branch, branch, branch], parents=[-1, 0, 0])
    cell.set("length", 10.0)
    cell.set("radius", 1.0)
    cell.set("axial_resistivity", 100.0)
    cell.set("capacitance", 1.0)
    cell.branch(0).set("capacitance", 2.0)
    apical, soma, basal = cell.branch(0), cell.branch(1), cell.branch(2)

    cell.insert(Leak())
    apical.insert(NaTs2T())
    soma.insert(NaTs2T())
    apical.insert(SKv3_1())
    soma.insert(SKv3_1())
    apical.insert(M())
    apical.insert(H())
    basal.insert(H())
    soma.insert(CaHVA())
    soma.insert(CaLVA())
    soma.insert(SKE2())
    soma.insert(CaPump())
    nernst = CaNernstReversal()
    nernst.channel_constants["T"] = CA_T_KELVIN
    soma.insert(nernst)

    cell.set("Leak_gLeak", G_LEAK)
    cell.set("Leak_eLeak", E_LEAK)
    # Views are snapshots: re-create them after inserting (new columns).
    for b, br in enumerate(("apical", "soma", "basal")):
        for k, v in CHANNELS[br].items():
            cell.branch(b).set(k, v)
    cell.set("eNa", E_NA)
    cell.set("eK", E_K)
    soma = cell.branch(1)
    soma.set("CaCon_i", CA_I0)
    soma.set("CaCon_e", CA_E)
    e_ca0 = (8.314 * CA_T_KELVIN / (2 * 96485.3329) * 1000.0) * math.log(CA_E / CA_I0)
    soma.set("eCa", e_ca0)

    # --- readout template ---
    rcomp = jx.Compartment()
    readout = jx.Cell([jx.Branch(rcomp, ncomp=1)], parents=[-1])
    readout.set("length", 10.0)
    readout.set("radius", 1.0)
    readout.set("axial_resistivity", 100.0)
    readout.set("capacitance", 1.0)
    readout.insert(Leak())
    readout.set("Leak_gLeak", G_LEAK_OUT)
    readout.set("Leak_eLeak", E_LEAK)

    net = jx.Network([cell] * N_REC + [readout] * N_OUT)

    # --- synapses: one vectorised connect() call ---
    pairs = evidence_pairs(N_REC, P_CONN, seed)
    # Jaxley 0.14 node indices are NOT compartment indices: each branched cell gets
    # an extra (hidden) branch-point node, so cell i's comps are nodes 4i..4i+2.
    # Work in global compartment indices and translate for select()/records.
    comp2node = dict(
        zip(
            net.nodes["global_comp_index"].to_numpy().tolist(),
            net.nodes.index.to_numpy().tolist(),
            strict=True,
        )
    )

    def soma_node(i):
        return 3 * i + 1

    def apical_node(i):
        return 3 * i

    def out_node(r):
        return 3 * N_REC + r

    pre = [soma_node(a) for a, _ in pairs]
    post = [apical_node(b) for _, b in pairs]
    for r in range(N_OUT):
        pre += [soma_node(i) for i in range(N_REC)]
        post += [out_node(r)] * N_REC
    # jx.connect(net.select(nodes=pre), net.select(nodes=post), syn) fails in 0.14
    # when a node index repeats in a view (KeyError in _set_inds_in_view); connect()
    # itself is a thin wrapper around this call (as are fully_connect & co.):
    net._append_multiple_synapses(
        net.nodes.loc[[comp2node[k] for k in pre]],
        net.nodes.loc[[comp2node[k] for k in post]],
        GradedSynapse(),
    )
    n_rec_syn = len(pairs)
    n_syn = len(pre)
    assert len(net.edges) == n_syn, (len(net.edges), n_syn)

    pre_cell = np.array([a for a, _ in pairs] + list(range(N_REC)) * N_OUT)
    e_syn = np.where(pre_cell < N_EXC, SYN["e_exc"], SYN["e_inh"])
    k_minus = np.array(
        [SYN["k_minus_rec"]] * n_rec_syn + [SYN["k_minus_out"]] * (n_syn - n_rec_syn)
    )
    gS = np.array([g_rec] * n_rec_syn + [g_out] * (n_syn - n_rec_syn), dtype=float)
    edges = net.select(edges="all")
    edges.set("GradedSynapse_e_syn", e_syn)
    edges.set("GradedSynapse_k_minus", k_minus)
    edges.set("GradedSynapse_gS", gS)
    edges.set("GradedSynapse_s", S0_DEFAULT)

    # --- initial state ---
    net.set("v", V_INIT)
    net.init_states()
    # init_states leaves eCa untouched (CaNernstReversal.init_state returns {}).

    # --- trainable synaptic conductances: one parameter per edge ---
    net.select(edges="all").make_trainable("GradedSynapse_gS", verbose=verbose)

    # --- recordings: readouts, then somata ---
    net.delete_recordings()
    rec_nodes = [out_node(r) for r in range(N_OUT)] + [
        soma_node(i) for i in range(N_REC)
    ]
    for nd in rec_nodes:
        net.select(nodes=comp2node[nd]).record("v", verbose=False)
    stim_nodes = [3 * i + 2 for i in range(N_REC)]
    assert (
        net.edges["pre_index"].to_numpy() == np.array([comp2node[k] for k in pre])
    ).all()
    assert (
        net.edges["post_index"].to_numpy() == np.array([comp2node[k] for k in post])
    ).all()

    info = dict(
        pairs=pairs,
        n_recurrent_synapses=n_rec_syn,
        n_readout_synapses=n_syn - n_rec_syn,
        n_synapses=n_syn,
        n_compartments=int(len(net.nodes)),
        pre_nodes=np.asarray(pre),
        post_nodes=np.asarray(post),
        e_syn=e_syn,
        k_minus=k_minus,
        gS=gS,
        s0=S0_DEFAULT,
        stim_nodes=stim_nodes,
        rec_nodes=rec_nodes,
        eCa0=e_ca0,
        channel_order=[c._name for c in net.channels],
    )
    info["jaxley_node_of_comp"] = comp2node
    net._peer_stim_nodes = [comp2node[k] for k in stim_nodes]
    return net, info


# --------------------------------------------------------------------------- #
# Runners
# --------------------------------------------------------------------------- #
def _numpyify_int_arrays(net):
    """Turn Jaxley's cached *integer* jax arrays (index tables) into numpy arrays.

    Jaxley 0.14 caches index arrays (``comb_parents``, ``_off_diagonal_inds``,
    ``indices_set_by_trainables``, ...) as jnp arrays with the dtype of the x64 mode at
    creation time.  Tracing the same net in the other precision then fails inside
    ``.at[]`` ("lax.add requires ... int32, int64").  numpy indices are fine in both.
    Call before every trace (the runners do this on their first calls).
    """
    import jax

    def fix(v):
        if isinstance(v, jax.Array) and np.issubdtype(v.dtype, np.integer):
            return np.asarray(v)
        return v

    # The DHS voltage solver caches a custom_jvp solve function in this dict; its
    # traced rule keeps the int width of the first trace, so drop it (rebuilt lazily).
    indexer = getattr(net, "_dhs_solve_indexer", None)
    if isinstance(indexer, dict):
        for key in [
            k
            for k in indexer
            if isinstance(k, tuple) and k and k[0] == "_cached_solve_fn"
        ]:
            del indexer[key]
    for k, v in list(vars(net).items()):
        if isinstance(v, jax.Array):
            setattr(net, k, fix(v))
        elif isinstance(v, dict) and k not in ("jaxnodes", "jaxedges"):
            for kk in list(v):
                v[kk] = fix(v[kk])
        elif isinstance(v, list) and k == "indices_set_by_trainables":
            setattr(net, k, [fix(x) for x in v])


_LAST_TRACE_X64 = None


class _PrecisionFn:
    """A jitted function that is always traced/run under ``jax.enable_x64(x64)``."""

    def __init__(self, jitted, dtype, n_cast_args, net=None):
        self.jitted = jitted
        self.dtype = np.dtype(dtype).name
        self.x64 = _x64(self.dtype)
        self._n_cast = n_cast_args
        self._net = net
        self._calls = 0

    def _guard(self):
        # Traces happen on the first call(s); clean the net's cached index arrays
        # so that f32 and f64 runners can share one network object.  JAX's own
        # trace caches (e.g. of fori_loop/scan bodies inside Jaxley's DHS solver)
        # ignore the x64 mode: after an f64 gradient, tracing an f32 one failed
        # with "lax.add requires ... int64, int32" until jax.clear_caches().  So a
        # trace in a precision different from the previous trace clears JAX's
        # caches - earlier-compiled runners then recompile on their next call.
        global _LAST_TRACE_X64
        if self._calls < 2:
            if self._net is not None:
                _numpyify_int_arrays(self._net)
            if _LAST_TRACE_X64 is not None and _LAST_TRACE_X64 != self.x64:
                import jax

                jax.clear_caches()
            _LAST_TRACE_X64 = self.x64
        self._calls += 1

    def _cast(self, args):
        import jax
        import jax.numpy as jnp

        out = []
        for k, a in enumerate(args):
            if k < self._n_cast:
                a = jax.tree_util.tree_map(
                    lambda x: (
                        x
                        if getattr(x, "dtype", None) == self.dtype
                        else jnp.asarray(x, self.dtype)
                    ),
                    a,
                )
            out.append(a)
        return out

    def prepare(self, *args):
        """Convert arguments to device arrays of the runner's dtype (do it once)."""
        import jax

        with jax.enable_x64(self.x64):
            out = [jax.device_put(a) for a in self._cast(args)]
        return out[0] if len(out) == 1 else out

    def __call__(self, *args):
        import jax

        self._guard()
        with jax.enable_x64(self.x64):
            return self.jitted(*self._cast(args))

    def lower(self, *args):
        import jax

        self._guard()
        with jax.enable_x64(self.x64):
            return self.jitted.lower(*self._cast(args))


def checkpoint_lengths_for(T: int, levels: int = 3) -> list[int]:
    """Smallest near-equal lengths with prod >= T, e.g. 20800 -> [28, 28, 27]."""
    c = math.ceil(T ** (1.0 / levels) - 1e-9)
    while c**levels < T:
        c += 1
    lengths = [c] * levels
    for k in reversed(range(levels)):
        while (
            lengths[k] > 1
            and math.prod(lengths[:k] + [lengths[k] - 1] + lengths[k + 1 :]) >= T
        ):
            lengths[k] -= 1
    return lengths


def _sim_fn(net, T_steps, dt, checkpoint_lengths):
    import jaxley as jx

    stim_view = net.select(nodes=net._peer_stim_nodes)

    def sim(currents, params):  # currents (20, T) nA -> (22, T+1) mV
        ds = stim_view.data_stimulate(currents[:, :T_steps], None)
        return jx.integrate(
            net,
            params=params,
            data_stimuli=ds,
            delta_t=dt,
            checkpoint_lengths=checkpoint_lengths,
        )

    return sim


def jaxley_runner(net, T_steps, dt=0.025, batch=1, dtype=None, checkpoint_lengths=None):
    """Jitted forward simulation, vmapped over batch.

    ``f(currents)``: currents (batch, 20, T_steps) nA into the basal compartments ->
    voltages (batch, 22, T_steps + 1) mV (row 0/1 readouts, rows 2.. somata; column 0
    is the initial state).  Uses the network's current trainable gS values.
    """
    import jax
    import jax.numpy as jnp

    dtype = dtype or getattr(net, "_peer_dtype", "float32")
    x64 = _x64(dtype)
    sim = _sim_fn(net, T_steps, dt, checkpoint_lengths)
    params0 = [{k: np.asarray(v) for k, v in d.items()} for d in net.get_parameters()]

    def f(currents):
        params = jax.tree_util.tree_map(
            lambda p: jnp.asarray(p, currents.dtype), params0
        )
        return jax.vmap(sim, in_axes=(0, None))(currents, params)

    fn = _PrecisionFn(jax.jit(f), dtype, n_cast_args=1, net=net)
    fn.batch, fn.T_steps, fn.x64 = batch, T_steps, x64
    fn.input_shape = (batch, N_REC, T_steps)
    return fn


def jaxley_grad_runner(
    net,
    T_steps,
    dt=0.025,
    batch=1,
    dtype=None,
    checkpoint_lengths="auto",
    loss_window=800,
):
    """Jitted ``g(currents, params) -> (loss, grads)``.

    loss = mean over batch, both readouts and the last ``loss_window`` steps of the
    readout voltage [mV]; grads w.r.t. ``params`` = ``net.get_parameters()`` (a list
    with one dict ``{"GradedSynapse_gS": (109,)}``, edge order as in build info).
    ``checkpoint_lengths="auto"`` uses ``checkpoint_lengths_for(T_steps, 3)``;
    ``None`` disables checkpointing.  ``g.params0`` holds the initial params and
    ``g.checkpoint_lengths`` the lengths used.
    """
    import jax
    import jax.numpy as jnp

    dtype = dtype or getattr(net, "_peer_dtype", "float32")
    if checkpoint_lengths == "auto":
        checkpoint_lengths = checkpoint_lengths_for(T_steps, 3)
    sim = _sim_fn(net, T_steps, dt, checkpoint_lengths)

    def loss_fn(params, currents):
        v = jax.vmap(sim, in_axes=(0, None))(currents, params)
        return jnp.mean(v[:, :N_OUT, -loss_window:])

    def g(currents, params):
        return jax.value_and_grad(loss_fn)(params, currents)

    fn = _PrecisionFn(jax.jit(g), dtype, n_cast_args=2, net=net)
    fn.params0 = [
        {k: np.asarray(v) for k, v in d.items()} for d in net.get_parameters()
    ]
    fn.checkpoint_lengths = checkpoint_lengths
    fn.batch, fn.T_steps = batch, T_steps
    fn.input_shape = (batch, N_REC, T_steps)
    return fn


def example_currents(batch, T_steps, seed=0, mean=0.02, std=0.01, dtype="float64"):
    """Deterministic test input (numpy), shape (batch, 20, T_steps) nA."""
    rng = np.random.default_rng(seed)
    return (mean + std * rng.standard_normal((batch, N_REC, T_steps))).astype(dtype)


# --------------------------------------------------------------------------- #
# Measuring helpers (use for both solvers)
# --------------------------------------------------------------------------- #
def _block(x):
    try:
        import jax

        return jax.block_until_ready(x)
    except ImportError:  # pragma: no cover
        return x


def time_compile(fn: Callable, *args) -> float:
    """Seconds of the first call (trace + compile + run) minus a second call (run).

    ``fn`` must not have been called with these shapes before."""
    t0 = time.perf_counter()
    _block(fn(*args))
    t1 = time.perf_counter()
    _block(fn(*args))
    t2 = time.perf_counter()
    return (t1 - t0) - (t2 - t1)


def time_run(fn: Callable, *args, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall seconds of ``fn(*args)`` over ``repeats`` calls.

    Each call is followed by ``jax.block_until_ready`` on its output."""
    for _ in range(warmup):
        _block(fn(*args))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _block(fn(*args))
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def xla_memory_analysis(fn, *args) -> dict | None:
    """XLA's compiled memory analysis (bytes) of a jitted ``fn`` (or runner here).

    Returns argument/output/temp/alias/generated-code sizes and, where the backend
    reports it, ``peak_memory_in_bytes``; ``None`` if unavailable."""
    lowered = fn.lower(*args)
    ma = lowered.compile().memory_analysis()
    if ma is None:
        return None
    keys = [
        "argument_size_in_bytes",
        "output_size_in_bytes",
        "temp_size_in_bytes",
        "alias_size_in_bytes",
        "generated_code_size_in_bytes",
        "peak_memory_in_bytes",
        "host_temp_size_in_bytes",
    ]
    return {k: int(getattr(ma, k)) for k in keys if hasattr(ma, k)}


_MEM_CHILD = r"""
import importlib, json, os, resource, sys, time
spec = json.loads(sys.argv[1])
if spec.get("x64"):
    import jax; jax.config.update("jax_enable_x64", True)
def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # kB -> MB
mod, _, name = spec["target"].partition(":")
factory = getattr(importlib.import_module(mod), name)
t0 = time.perf_counter()
run = factory(**spec.get("kwargs", {}))
t1 = time.perf_counter()
rss0 = status("VmRSS"); hwm_setup = status("VmHWM")
try:
    with open("/proc/self/clear_refs", "w") as fh: fh.write("5")
    reset = True
except OSError:
    reset = False
out = run()
try:
    import jax; jax.block_until_ready(out)
except Exception:
    pass
t2 = time.perf_counter()
res = dict(rss_before_run_mb=rss0, hwm_setup_mb=hwm_setup, hwm_run_mb=status("VmHWM"),
           hwm_reset_ok=reset,
           ru_maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           setup_s=t1 - t0, run_s=t2 - t1)
res["run_peak_delta_mb"] = (res["hwm_run_mb"] - rss0) if reset else None
print("@@MEM@@" + json.dumps(res))
"""


def peak_memory_of(spec: dict, timeout: float = 600.0) -> dict:
    """Peak resident memory of one run in a fresh Python subprocess.

    spec = {"target": "pkg.module:factory", "kwargs": {...} (JSON-able),
            "x64": bool}.  ``factory(**kwargs)`` does setup and returns a
    zero-arg ``run``; see the module docstring for what is reported (MB).
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run(
        [sys.executable, "-c", _MEM_CHILD, json.dumps(spec)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in p.stdout.splitlines():
        if line.startswith("@@MEM@@"):
            return json.loads(line[len("@@MEM@@") :])
    raise RuntimeError(f"memory child failed (rc {p.returncode}):\n{p.stderr[-3000:]}")


def mem_jaxley_forward(T_steps=2000, batch=1, dtype="float32", grad=False):
    """Factory for ``peak_memory_of``: build + compile, return a run closure."""
    net, _ = build_jaxley_evidence_network(dtype)
    if grad:
        fn = jaxley_grad_runner(net, T_steps, batch=batch, dtype=dtype)
        args = fn.prepare(example_currents(batch, T_steps), fn.params0)
    else:
        fn = jaxley_runner(net, T_steps, batch=batch, dtype=dtype)
        args = [fn.prepare(example_currents(batch, T_steps))]
    _block(fn(*args))  # compile outside the measured run
    return lambda: fn(*args)


# --------------------------------------------------------------------------- #
# NEURON reference: sequential ball-and-stick runs
# --------------------------------------------------------------------------- #
def neuron_ball_and_stick_sequential(
    n: int = 100,
    tstop_ms: float = 100.0,
    dt: float = 0.025,
    amps=None,
    delay: float = 5.0,
    dur: float = 90.0,
):
    """``n`` sequential NEURON runs of a ball-and-stick cell, one IClamp amplitude each.

    soma: L = diam = 20 um, nseg 1, ``hh``; dend: L 200, diam 2, nseg 10, ``pas``
    (g 1e-4 S/cm^2, e -65), dend(0) attached to soma(1); Ra 150, cm 1;
    celsius 6.3, usetable_hh 0, fixed-step backward Euler (secondorder 0), dt 0.025,
    v_init -65.  IClamp at soma(0.5), delay 5, dur 90, amp = amps[k]
    (default linspace(0.05, 0.5, n) nA).

    Returns dict: wall_s (the n runs only), per_run_s, setup_s, amps (n,),
    t (nt,), v_soma (n, nt) with nt = round(tstop/dt) + 1, v_init, dt, tstop.
    """
    from neuron import h

    t_setup = time.perf_counter()
    h.load_file("stdrun.hoc")
    amps = np.linspace(0.05, 0.5, n) if amps is None else np.asarray(amps, float)
    soma = h.Section(name="soma")
    dend = h.Section(name="dend")
    soma.L = soma.diam = 20.0
    soma.nseg = 1
    dend.L, dend.diam, dend.nseg = 200.0, 2.0, 10
    dend.connect(soma(1))
    for sec in (soma, dend):
        sec.Ra = 150.0
        sec.cm = 1.0
    soma.insert("hh")
    dend.insert("pas")
    for seg in dend:
        seg.pas.g = 1e-4
        seg.pas.e = -65.0
    h.celsius = 6.3
    h.usetable_hh = 0
    h.secondorder = 0
    h.cvode_active(0)
    h.dt = dt
    h.steps_per_ms = 1.0 / dt
    h.tstop = tstop_ms
    stim = h.IClamp(soma(0.5))
    stim.delay, stim.dur = delay, dur
    tvec = h.Vector().record(h._ref_t)
    vvec = h.Vector().record(soma(0.5)._ref_v)
    nt = int(round(tstop_ms / dt)) + 1
    out = np.empty((len(amps), nt))
    setup_s = time.perf_counter() - t_setup

    t0 = time.perf_counter()
    for k, a in enumerate(amps):
        stim.amp = float(a)
        h.finitialize(V_INIT)
        h.continuerun(tstop_ms)
        v = vvec.as_numpy()
        out[k] = v[:nt]
    wall = time.perf_counter() - t0
    t = np.asarray(tvec.as_numpy()[:nt]).copy()
    return dict(
        wall_s=wall,
        per_run_s=wall / len(amps),
        setup_s=setup_s,
        amps=amps,
        t=t,
        v_soma=out,
        v_init=V_INIT,
        dt=dt,
        tstop=tstop_ms,
    )


# --------------------------------------------------------------------------- #
# Smoke check
# --------------------------------------------------------------------------- #
def _smoke(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description="peer smoke timings")
    ap.add_argument(
        "--what", default="fwd", choices=["build", "fwd", "grad", "neuron", "mem"]
    )
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--T", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    res = {"what": a.what, "dtype": a.dtype, "T": a.T, "batch": a.batch}
    if a.what == "neuron":
        r = neuron_ball_and_stick_sequential()
        res.update(
            wall_s=r["wall_s"],
            per_run_s=r["per_run_s"],
            v_shape=r["v_soma"].shape,
            vmax=float(r["v_soma"].max()),
        )
    elif a.what == "mem":
        res.update(
            peak_memory_of(
                dict(
                    target="benchmarks.peers:mem_jaxley_forward",
                    kwargs=dict(T_steps=a.T, batch=a.batch, dtype=a.dtype),
                    x64=a.dtype == "float64",
                )
            )
        )
    else:
        net, info = build_jaxley_evidence_network(a.dtype)
        res.update(
            build_s=info["build_s"],
            n_syn=info["n_synapses"],
            n_rec=info["n_recurrent_synapses"],
            n_out=info["n_readout_synapses"],
            n_comp=info["n_compartments"],
            channel_order=info["channel_order"],
        )
        if a.what == "fwd":
            f = jaxley_runner(net, a.T, batch=a.batch, dtype=a.dtype)
            x = f.prepare(example_currents(a.batch, a.T))
            res["compile_s"] = time_compile(f, x)
            run_s = time_run(f, x, repeats=a.repeats)
            res["run_s"] = run_s
            res["us_per_step"] = 1e6 * run_s / a.T
            v = np.asarray(f(x))
            res.update(
                out_dtype=str(v.dtype),
                finite=bool(np.isfinite(v).all()),
                v_soma_range=[float(v[:, 2:].min()), float(v[:, 2:].max())],
                v_out_range=[float(v[:, :2].min()), float(v[:, :2].max())],
            )
            res["xla_mem"] = xla_memory_analysis(f, x)
        elif a.what == "grad":
            g = jaxley_grad_runner(net, a.T, batch=a.batch, dtype=a.dtype)
            x, p = g.prepare(example_currents(a.batch, a.T), g.params0)
            res["checkpoint_lengths"] = g.checkpoint_lengths
            t0 = time.perf_counter()
            loss, grads = _block(g(x, p))
            res["first_call_s"] = time.perf_counter() - t0
            res["run_s"] = time_run(g, x, p, repeats=a.repeats, warmup=0)
            res["compile_s"] = res["first_call_s"] - res["run_s"]
            gv = np.asarray(grads[0]["GradedSynapse_gS"])
            res.update(
                loss=float(loss),
                grad_shape=gv.shape,
                grad_finite=bool(np.isfinite(gv).all()),
                grad_absmax=float(np.abs(gv).max()),
            )
            res["xla_mem"] = xla_memory_analysis(g, x, p)
    print(json.dumps(res, default=str))
    return res


if __name__ == "__main__":
    _smoke()
