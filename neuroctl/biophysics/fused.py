"""A fused multi-step solver kernel (Pallas / Triton) for GPUs, with its own VJP.

On a GPU every XLA kernel is a launch of several µs, and `simulate` compiles one
time step of the paper network to ~75 of them. `simulate_fused` instead runs *all*
time steps of a trial inside one Pallas kernel instance (a Triton program; the batch
is the grid). The network is unrolled over its nodes when the kernel is traced, so
every node, gate and synapse state is a scalar register value and the tree (Hines)
elimination is a fixed sequence of scalar operations. There are no gathers, slices
or scatters inside, only elementwise maths, which Triton lowers.

``block > 1`` puts that many trials on the lanes of one program instead (vector
values, up to 32x fewer instructions per trial at large batch). Its vector loads and
stores make Triton's coalescing pass slow, superlinearly in the kernel's size:
compiled offline for sm_90a, 4 HH cells take about 4 min with 32 lanes and 2 s
with one trial per program, and the paper network compiles in about a minute as
the latter (scripts/fused_kernel_compile.py, results/fused_kernel_compile.md). So
the default is one trial per program; lanes suit cells of a few compartments.

The maths is `solver.step` term by term (same channel and synapse code, called on
one node at a time), so results equal `simulate` to float rounding. Reverse mode is
a `jax.custom_vjp`: the kernel stores the state every `segment` steps, and the
backward pass runs `simulate`'s own VJP over one segment at a time, from the last,
starting from those stored states (one level of checkpointing whose forward is the
fused kernel).

Scope: every channel, calcium dynamics and synapse `Network.build` accepts, current
stimuli at nodes and recordings of `v`; not extracellular electrodes (`v_ext`), for
which `simulate` remains the solver.

On CPU the kernel runs only in Pallas' interpret mode (``interpret=True``), which
checks its maths (tests/biophysics/test_fused.py) but is not fast. Whether it lowers
to Triton is checked without a GPU by exporting it for CUDA (`lower_for_cuda`). Its
speed on a GPU is measured by ``python -m benchmarks.bench_fused`` (GPU only).

Shapes: batch ``B``, steps ``T``; `state` leaves carry a leading batch axis;
`stimulus` is ``(B, T, n_stimuli)`` [nA]; recordings are ``(B, T, n_recordings)`` [mV].
"""

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from neuroctl import units
from neuroctl.biophysics.network import Network, Params
from neuroctl.biophysics.rates import relax
from neuroctl.biophysics.solver import (
    Scheme,
    State,
    _axial_diag,
    _check_dt,
    simulate,
    split_gates,
)
from neuroctl.errors import bad_value
from neuroctl.typing import Array

#: The custom-call target of Pallas' Triton kernels (for `lower_for_cuda`).
TRITON_CALL = "__gpu$xla.gpu.triton"


@dataclass(frozen=True)
class _Plan:
    """Static per-node facts of a network, as Python numbers for tracing."""

    n_nodes: int
    n_gates: int
    n_syn: tuple[int, ...]
    parent: tuple[int, ...]
    axial_g: tuple[float, ...]  # [µS] to the parent
    area_us: tuple[float, ...]  # [µS per mS/cm²]
    cap_us_ms: tuple[float, ...]  # C·area [µS·ms]
    axial_diag: tuple[float, ...]  # [µS]
    order: tuple[tuple[int, ...], ...]  # non-root nodes by depth level, top down
    stim_nodes: tuple[int, ...]
    rec_nodes: tuple[int, ...]
    ca_nodes: tuple[int, ...]  # nodes whose calcium evolves (masked calcium block)

    def sections(self) -> tuple[slice, slice, tuple[slice, ...], slice, slice]:
        """Where v, gates, each synapse type, cai and eca lie among the state rows.

        Only the calcium nodes' cai and eca are rows; other nodes' are constant
        (kernel inputs). `_pack` writes this layout; `_unpack` and `_split_rows`
        read it.
        """
        n, g, k = self.n_nodes, self.n_gates, len(self.ca_nodes)
        ends = np.cumsum([n + g, *self.n_syn]).tolist()
        syn = tuple(slice(a, b) for a, b in zip(ends[:-1], ends[1:], strict=True))
        lo = ends[-1]
        return (
            slice(0, n),
            slice(n, n + g),
            syn,
            slice(lo, lo + k),
            slice(lo + k, lo + 2 * k),
        )

    @property
    def n_rows(self) -> int:
        """Number of state rows (`sections`)."""
        return self.sections()[-1].stop


def _plan(net: Network) -> _Plan:
    n_gates = sum((b.hi - b.lo) * len(b.kind.gate_names) for b in net.channel_blocks)
    idx = np.arange(net.n_nodes)
    order = tuple(
        tuple(int(c) for grp in level for c in idx[grp.children])
        for level in net.levels
    )
    return _Plan(
        n_nodes=net.n_nodes,
        n_gates=n_gates,
        n_syn=tuple(len(pre) for pre in net.synapse_pre),
        parent=tuple(int(p) for p in net.parent),
        axial_g=tuple(float(g) for g in net.axial_g),
        area_us=tuple(float(a) * units.MS_PER_CM2_UM2_TO_US for a in net.area),
        cap_us_ms=tuple(
            float(c * a) * units.UF_PER_CM2_UM2_TO_US_MS
            for c, a in zip(net.capacitance, net.area, strict=True)
        ),
        axial_diag=tuple(float(d) for d in _axial_diag(net)),
        order=order,
        stim_nodes=tuple(int(n) for n in net.stimulus_nodes),
        rec_nodes=tuple(int(n) for n in net.recording_nodes),
        ca_nodes=tuple(
            b.lo + i for b in net.calcium_block for i in np.flatnonzero(b.mask)
        ),
    )


def _row_step(plan: _Plan, net: Network, mech, x, ca_const, stim, dt, scheme: Scheme):
    """One `solver.step` on lists of per-node row vectors (all elementwise).

    Args:
        plan: the network's static per-node facts.
        net: the network (blocks, synapse endpoints).
        mech: per channel block, per local node, the channel with scalar
            parameters; per synapse type, per connection, the synapse; per calcium
            node, its `CalciumDynamics`.
        x: (v rows, gate rows per block/gate/node, synapse rows per type/conn,
            cai rows, eca rows of the calcium nodes).
        ca_const: (cai [mM], eca [mV]) rows of every node, loaded on first use
            (`_Rows`); the calcium nodes' own rows in `x` take precedence.
        stim: current row [nA] per stimulus site.
        dt: time step [ms].
        scheme: ``"be"`` or ``"cn"``.
    """
    channels, synapses, calcium = mech
    v, gates, syn, cai_ca, eca_ca = x
    n = plan.n_nodes
    cai, eca = ca_const[0].copy(), ca_const[1].copy()
    for k, node in enumerate(plan.ca_nodes):
        cai[node], eca[node] = cai_ca[k], eca_ca[k]
    zero = v[0] * 0.0
    g_mem, drive, g_ca, drive_ca = [zero] * n, [zero] * n, [zero] * n, [zero] * n
    for b, chs, g_b in zip(net.channel_blocks, channels, gates, strict=True):
        for i, ch in enumerate(chs):
            j = b.lo + i
            if not b.mask[i]:
                continue
            gb, db = ch.currents(tuple(g_k[i] for g_k in g_b), eca[j])
            g_mem[j], drive[j] = g_mem[j] + gb, drive[j] + db
            if ch.ion == "ca":
                g_ca[j], drive_ca[j] = g_ca[j] + gb, drive_ca[j] + db
    g_tot = [g_mem[j] * plan.area_us[j] for j in range(n)]  # [µS]
    rhs = [drive[j] * plan.area_us[j] for j in range(n)]  # [nA]
    for post, syns, s_t in zip(net.synapse_post, synapses, syn, strict=True):
        for c, (sy, s) in enumerate(zip(syns, s_t, strict=True)):
            gs, ds = sy.conductance(s)
            g_tot[post[c]] = g_tot[post[c]] + gs
            rhs[post[c]] = rhs[post[c]] + ds
    for k, node in enumerate(plan.stim_nodes):
        rhs[node] = rhs[node] + stim[k]
    rhs = [rhs[j] - g_tot[j] * v[j] for j in range(n)]
    for level in plan.order:
        for c in level:
            p, g = plan.parent[c], plan.axial_g[c]
            flux = g * (v[p] - v[c])  # [nA] from parent into child
            rhs[c], rhs[p] = rhs[c] + flux, rhs[p] - flux
    h = dt if scheme == "be" else 0.5 * dt  # [ms]
    diag = [plan.cap_us_ms[j] / h + g_tot[j] + plan.axial_diag[j] for j in range(n)]
    dv = _hines_rows(plan, diag, rhs)
    v_new = [v[j] + (dv[j] if scheme == "be" else 2.0 * dv[j]) for j in range(n)]
    new_cai, new_eca = [], []
    for k, (node, ca) in enumerate(zip(plan.ca_nodes, calcium, strict=True)):
        v_ion = v[node] if scheme == "be" else v[node] + dv[node]
        new_cai.append(ca.advance(cai_ca[k], g_ca[node] * v_ion - drive_ca[node], dt))
        new_eca.append(ca.reversal(new_cai[k]))
        cai[node] = new_cai[k]
    new_gates = []
    for b, chs, g_b in zip(net.channel_blocks, channels, gates, strict=True):
        dyn = [
            ch.gate_dynamics(v_new[b.lo + i], cai[b.lo + i]) for i, ch in enumerate(chs)
        ]
        new_gates.append(
            [
                [relax(g_k[i], dyn[i][0][k], dyn[i][1][k], dt) for i in range(len(chs))]
                for k, g_k in enumerate(g_b)
            ]
        )
    new_syn = [
        [
            sy.advance(s, v_new[pre[c]], dt)
            for c, (sy, s) in enumerate(zip(syns, s_t, strict=True))
        ]
        for pre, syns, s_t in zip(net.synapse_pre, synapses, syn, strict=True)
    ]
    return v_new, new_gates, new_syn, new_cai, new_eca


def _hines_rows(plan: _Plan, diag: list, rhs: list) -> list:
    """`solver._hines_eliminate`, one node at a time (deepest level first)."""
    d, r = list(diag), list(rhs)
    for level in reversed(plan.order):
        for c in level:
            p, g = plan.parent[c], plan.axial_g[c]
            f = g / d[c]
            d[p] = d[p] - f * g
            r[p] = r[p] + f * r[c]
    x = [r[j] / d[j] for j in range(plan.n_nodes)]
    for level in plan.order:
        for c in level:
            x[c] = (r[c] + plan.axial_g[c] * x[plan.parent[c]]) / d[c]
    return x


# ---- packing: State <-> rows [n_rows, lanes]; params <-> one flat vector ----


def _mechanisms(params: Params) -> tuple:
    return (params.channels, params.synapses, params.calcium)


def _flat_params(params: Params, dtype) -> Array:
    leaves = jax.tree.leaves(_mechanisms(params))
    parts = [jnp.ravel(jnp.asarray(x, dtype)) for x in leaves]
    return jnp.concatenate(parts) if parts else jnp.zeros(1, dtype)


def _scalar_mechanisms(net: Network, params: Params, p_ref):
    """Per node / connection mechanisms whose leaves are scalars loaded from `p_ref`."""
    offset = 0

    def per_item(module, count):
        nonlocal offset
        leaves, tree = jax.tree.flatten(module)
        loaders = []
        for leaf in leaves:
            size = int(np.size(leaf))
            loaders.append((offset, size))
            offset += size
        return [
            jax.tree.unflatten(
                tree, [p_ref[o + (i if size > 1 else 0)] for o, size in loaders]
            )
            for i in range(count)
        ]

    channels = [
        per_item(ch, b.hi - b.lo)
        for b, ch in zip(net.channel_blocks, params.channels, strict=True)
    ]
    synapses = [
        per_item(sy, len(pre))
        for sy, pre in zip(params.synapses, net.synapse_pre, strict=True)
    ]
    calcium = [
        mods[i]
        for b, ca in zip(net.calcium_block, params.calcium, strict=True)
        for mods in [per_item(ca, b.hi - b.lo)]
        for i in np.flatnonzero(b.mask)
    ]
    return channels, synapses, calcium


def _pack(plan: _Plan, state: State) -> Array:
    """[B, n_rows]: v, gates, synapse states, cai and eca of the calcium nodes."""
    ca = np.asarray(plan.ca_nodes, int)
    return jnp.concatenate(
        [state.v, state.gates, *state.syn, state.cai[..., ca], state.eca[..., ca]],
        axis=-1,
    )


def _unpack(plan: _Plan, rows: Array, like: State) -> State:
    """The `State` of `rows`; cai and eca of other nodes from `like`."""
    v, gates, syn, cai, eca = plan.sections()
    ca = np.asarray(plan.ca_nodes, int)
    return State(
        v=rows[..., v],
        gates=rows[..., gates],
        cai=like.cai.at[..., ca].set(rows[..., cai]),
        eca=like.eca.at[..., ca].set(rows[..., eca]),
        syn=tuple(rows[..., s] for s in syn),
    )


def _split_rows(net: Network, plan: _Plan, rows: list):
    """Rows (lane vectors) -> (v, gates per block/gate, syn per type, cai, eca)."""
    v, gates, syn, cai, eca = plan.sections()
    return (
        rows[v],
        split_gates(net, rows[gates]),
        [rows[s] for s in syn],
        rows[cai],
        rows[eca],
    )


def _join_rows(x) -> list:
    v, gates, syn, cai, eca = x
    return [
        *v,
        *(r for g_b in gates for g_k in g_b for r in g_k),
        *(r for s in syn for r in s),
        *cai,
        *eca,
    ]


# ---- the kernel ----


class _Rows:
    """Rows ``ref[offset + j, lane]``, each loaded once on first use; assignable."""

    def __init__(self, ref, offset: int, lane, rows: dict | None = None):
        self.ref, self.offset, self.lane = ref, offset, lane
        self.rows = dict(rows or {})

    def __getitem__(self, j: int):
        if j not in self.rows:
            self.rows[j] = self.ref[self.offset + j, self.lane]
        return self.rows[j]

    def __setitem__(self, j: int, value) -> None:
        self.rows[j] = value

    def copy(self) -> "_Rows":
        return _Rows(self.ref, self.offset, self.lane, self.rows)


@dataclass(frozen=True)
class _Config:
    dt: float  # [ms]
    scheme: str
    steps: int
    segment: int
    block: int
    num_warps: int
    interpret: bool


def _kernel(net: Network, plan: _Plan, params_like: Params, cfg: _Config):
    n_seg = cfg.steps // cfg.segment
    lane = 0 if cfg.block == 1 else slice(None)  # block 1: scalar loads and stores

    def kernel(p_ref, x_ref, ca_ref, stim_ref, out_ref, rec_ref, ck_ref):
        n = plan.n_nodes

        def one_step(t, rows):  # parameters and constant rows are loaded where used,
            # inside the step, so they do not stay live across the loop (registers)
            mech = _scalar_mechanisms(net, params_like, p_ref)
            ca_const = (_Rows(ca_ref, 0, lane), _Rows(ca_ref, n, lane))
            stim = [stim_ref[t, k, lane] for k in range(len(plan.stim_nodes))]
            x = _row_step(
                plan,
                net,
                mech,
                _split_rows(net, plan, list(rows)),
                ca_const,
                stim,
                cfg.dt,
                cfg.scheme,
            )
            for k, node in enumerate(plan.rec_nodes):
                rec_ref[t, k, lane] = x[0][node]
            return tuple(_join_rows(x))

        def one_segment(s, rows):
            for r, row in enumerate(rows):
                ck_ref[s, r, lane] = row
            return jax.lax.fori_loop(
                0, cfg.segment, lambda k, r: one_step(s * cfg.segment + k, r), rows
            )

        rows = tuple(x_ref[r, lane] for r in range(plan.n_rows))
        rows = jax.lax.fori_loop(0, n_seg, one_segment, rows)
        for r, row in enumerate(rows):
            out_ref[r, lane] = row

    return kernel


def _call(net: Network, plan: _Plan, cfg: _Config, params: Params, x, ca, stim):
    """The pallas_call on lane-major arrays: x [R, L], ca [2N, L], stim [T, S, L]."""
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as plt

    lanes, dtype = x.shape[1], x.dtype
    n_seg, bk = cfg.steps // cfg.segment, cfg.block
    if stim.shape[1] == 0:  # Pallas blocks cannot be empty: one unused zero site
        stim = jnp.zeros((cfg.steps, 1, lanes), dtype)
    n_rec, n_stim = max(len(plan.rec_nodes), 1), stim.shape[1]  # an unused row
    pvec = _flat_params(params, dtype)
    shapes = (
        jax.ShapeDtypeStruct((plan.n_rows, lanes), dtype),
        jax.ShapeDtypeStruct((cfg.steps, n_rec, lanes), dtype),
        jax.ShapeDtypeStruct((n_seg, plan.n_rows, lanes), dtype),
    )
    return pl.pallas_call(
        _kernel(net, plan, params, cfg),
        out_shape=shapes,
        grid=(lanes // bk,),
        in_specs=[
            pl.BlockSpec(pvec.shape, lambda i: (0,)),
            pl.BlockSpec((plan.n_rows, bk), lambda i: (0, i)),
            pl.BlockSpec((2 * plan.n_nodes, bk), lambda i: (0, i)),
            pl.BlockSpec((cfg.steps, n_stim, bk), lambda i: (0, 0, i)),
        ],
        out_specs=(
            pl.BlockSpec((plan.n_rows, bk), lambda i: (0, i)),
            pl.BlockSpec((cfg.steps, n_rec, bk), lambda i: (0, 0, i)),
            pl.BlockSpec((n_seg, plan.n_rows, bk), lambda i: (0, 0, i)),
        ),
        interpret=cfg.interpret,
        compiler_params=plt.CompilerParams(num_warps=cfg.num_warps, num_stages=1),
        name="neuroctl_fused_steps",
    )(pvec, x, ca, stim)


def _forward(net, plan, cfg, params: Params, state: State, stimulus: Array):
    """(final State, recordings [B, T, n_rec], checkpoints [B, n_seg, R])."""
    b = state.v.shape[0]
    lanes = -(-b // cfg.block) * cfg.block

    def lane_major(a, axis):  # batch -> last axis, padded by repeating the last trial
        a = jnp.concatenate([a, jnp.repeat(a[-1:], lanes - b, axis=0)], axis=0)
        return jnp.moveaxis(a, 0, axis)

    x = lane_major(_pack(plan, state), -1)
    ca = lane_major(jnp.concatenate([state.cai, state.eca], axis=-1), -1)
    stim = lane_major(stimulus, -1)
    out, rec, ck = _call(net, plan, cfg, params, x, ca, stim)
    rec = rec[:, : len(plan.rec_nodes)]
    final = _unpack(plan, jnp.moveaxis(out, -1, 0)[:b], state)
    return final, jnp.moveaxis(rec, -1, 0)[:b], jnp.moveaxis(ck, -1, 0)[:b]


def _make(net: Network, cfg: _Config):
    """The `custom_vjp` map ``(params, state, stimulus) -> (final, recordings)``."""
    plan = _plan(net)

    @jax.custom_vjp
    def run(params, state, stimulus):
        final, rec, _ = _forward(net, plan, cfg, params, state, stimulus)
        return final, rec

    def fwd(params, state, stimulus):
        final, rec, ck = _forward(net, plan, cfg, params, state, stimulus)
        return (final, rec), (params, state, stimulus, ck)

    run.defvjp(fwd, partial(_backward, net, plan, cfg))
    return run


def _backward(net: Network, plan: _Plan, cfg: _Config, res, cts):
    """Cotangents of (params, state, stimulus): `simulate`'s VJP per segment.

    Each segment restarts from the state the kernel stored at its start, so this
    is one level of checkpointing whose forward pass was the fused kernel.
    """
    params, state, stimulus, ck = res
    ct_final, ct_rec = cts

    def segment(p, start, stim):  # [B, K, n_stim] -> (final, [B, K, n_rec])
        return jax.vmap(lambda s, u: simulate(net, p, s, u, cfg.dt, scheme=cfg.scheme))(
            start, stim
        )

    def back(carry, xs):
        ct_params, ct_state = carry
        rows, stim_s, ct_rec_s = xs
        _, vjp = jax.vjp(segment, params, _unpack(plan, rows, state), stim_s)
        d_p, d_s, d_u = vjp((ct_state, ct_rec_s))
        return (jax.tree.map(jnp.add, ct_params, d_p), d_s), d_u

    n_seg = cfg.steps // cfg.segment
    zeros = jax.tree.map(jnp.zeros_like, params)
    xs = (jnp.moveaxis(ck, 1, 0), _segments(stimulus, n_seg), _segments(ct_rec, n_seg))
    (d_params, d_state), d_stim = jax.lax.scan(
        back, (zeros, ct_final), xs, reverse=True
    )
    return d_params, d_state, jnp.moveaxis(d_stim, 0, 1).reshape(stimulus.shape)


def _segments(a: Array, n_seg: int) -> Array:
    """[B, T, ...] -> [n_seg, B, T / n_seg, ...]."""
    b, t = a.shape[:2]
    return jnp.moveaxis(a.reshape(b, n_seg, t // n_seg, *a.shape[2:]), 1, 0)


def simulate_fused(
    net: Network,
    params: Params,
    state: State,
    stimulus: Array,
    dt: float,
    scheme: Scheme = "be",
    *,
    segment: int | None = None,
    block: int = 1,
    num_warps: int = 1,
    interpret: bool = False,
) -> tuple[State, Array]:
    """Batched `simulate` in one fused kernel per block of `block` trials.

    Args:
        net: the compiled network (no calcium dynamics: see the module docstring).
        params: its parameters, shared by the batch.
        state: initial states, every leaf with a leading batch axis ``B``.
        stimulus: currents [nA], shape ``(B, T, n_stimuli)``.
        dt: time step [ms].
        scheme: ``"be"`` or ``"cn"``, as `simulate`.
        segment: steps between the states the kernel stores for reverse mode; must
            divide ``T`` (default: the divisor nearest ``√T``). The backward pass
            replays one segment at a time, saving every step's state within it.
        block: trials per kernel instance: 1 (default, scalar code) or a power of
            two on the lanes (see the module docstring for its compile time).
        num_warps: warps per kernel instance on the GPU (Triton).
        interpret: run with Pallas' interpreter (CPU; for checking, not speed).

    Returns:
        ``(final_state, recordings)``: as ``jax.vmap(simulate)`` with the same
        arguments, recordings ``(B, T, n_recordings)`` [mV].
    """
    steps = int(np.shape(stimulus)[1]) if np.ndim(stimulus) == 3 else -1
    if np.ndim(stimulus) != 3 or steps < 1 or np.shape(stimulus)[2] != net.n_stimuli:
        raise bad_value(
            "stimulus",
            f"shape {np.shape(stimulus)}",
            f"(batch, steps ≥ 1, {net.n_stimuli}): [nA] per trial, step and site",
            "stack one (steps, n_stimuli) stimulus per trial along axis 0.",
        )
    if state.v.shape != (np.shape(stimulus)[0], net.n_nodes):
        raise bad_value(
            "state",
            f"v of shape {state.v.shape}",
            f"(batch, {net.n_nodes}) with batch = {np.shape(stimulus)[0]}",
            "vmap init_state over the batch or broadcast its leaves.",
        )
    if segment is None:
        segment = _divisor_near(steps, int(np.sqrt(steps)))
    if not isinstance(segment, int | np.integer) or segment < 1 or steps % segment:
        raise bad_value(
            "segment",
            segment,
            f"a divisor of the {steps} steps",
            f"pass e.g. segment={_divisor_near(steps, int(np.sqrt(steps)))}.",
        )
    _check_dt(dt)
    if scheme not in ("be", "cn"):
        raise bad_value("scheme", scheme, "'be' or 'cn'", "pass scheme='be' or 'cn'.")
    if not isinstance(block, int | np.integer) or block < 1 or block & (block - 1):
        raise bad_value(
            "block", block, "1 or a power of two", "pass 1 (default) or 32."
        )
    cfg = _Config(
        dt=float(dt),
        scheme=scheme,
        steps=steps,
        segment=segment,
        block=int(block),
        num_warps=int(num_warps),
        interpret=bool(interpret),
    )
    params = net.cast_params(params, state.v.dtype)
    stimulus = jnp.asarray(stimulus, state.v.dtype)
    return _make(net, cfg)(params, state, stimulus)


def _divisor_near(n: int, target: int) -> int:
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    return min(divisors, key=lambda d: abs(d - target))


def lower_for_cuda(fn, *args) -> str:
    """StableHLO text of `fn(*args)` lowered for CUDA on any machine (no GPU needed).

    Pallas lowers the kernel to Triton IR at this point, so an operation Triton does
    not support raises here. The text contains one `TRITON_CALL` custom call per
    fused kernel. Compiling that IR to GPU code still needs a GPU.
    """
    from jax import export

    exported = export.export(
        jax.jit(fn),
        platforms=["cuda"],
        disabled_checks=[export.DisabledSafetyCheck.custom_call(TRITON_CALL)],
    )(*args)
    return exported.mlir_module()


__all__ = ["TRITON_CALL", "lower_for_cuda", "simulate_fused"]
