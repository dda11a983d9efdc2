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
with one trial per program, and the paper network's forward kernel compiles in
about a minute as the latter (its backward kernel in about 15 min;
scripts/fused_kernel_compile.py, results/fused_kernel_compile.md). So the default
is one trial per program; lanes suit cells of a few compartments.

The maths is `solver.step` term by term (same channel and synapse code, called on
one node at a time), so results equal `simulate` to float rounding. Reverse mode is
a `jax.custom_vjp`: the kernel stores the state every `segment` steps (one level of
checkpointing). The backward pass is, by default, a second kernel of the same
shape: per segment, last first, it replays the segment from its stored state,
keeping every step's state in a per-trial buffer, and runs the VJP of one step
(`jax.vjp` of the same unrolled scalar code, so again only elementwise maths) back
over it, accumulating the parameter cotangents per trial. A gradient is then two
kernel launches however long the trial. ``backward="xla"`` instead runs
`simulate`'s own VJP over each segment (XLA kernels per step).

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
            (`_Lazy`); the calcium nodes' own rows in `x` take precedence.
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


class _Lazy:
    """Rows by index, each fetched once by ``load(j)`` on first read; assignable.

    `_row_step` reads the constant cai / eca rows through this, so only the rows
    it uses are loaded (and, in reverse mode, differentiated).
    """

    def __init__(self, load, rows: dict | None = None):
        self.load, self.rows = load, dict(rows or {})

    def __getitem__(self, j: int):
        if j not in self.rows:
            self.rows[j] = self.load(j)
        return self.rows[j]

    def __setitem__(self, j: int, value) -> None:
        self.rows[j] = value

    def copy(self) -> "_Lazy":
        return _Lazy(self.load, self.rows)


def _ref_rows(ref, offset: int, lane) -> _Lazy:
    """Rows ``ref[offset + j, lane]``, loaded on first use."""
    return _Lazy(lambda j: ref[offset + j, lane])


@dataclass(frozen=True)
class _Config:
    dt: float  # [ms]
    scheme: str
    steps: int
    segment: int
    block: int
    num_warps: int
    interpret: bool
    backward: str = "fused"


def _kernel(net: Network, plan: _Plan, params_like: Params, cfg: _Config):
    n_seg = cfg.steps // cfg.segment
    lane = 0 if cfg.block == 1 else slice(None)  # block 1: scalar loads and stores

    def kernel(p_ref, x_ref, ca_ref, stim_ref, out_ref, rec_ref, ck_ref):
        n = plan.n_nodes

        def one_step(t, rows):  # parameters and constant rows are loaded where used,
            # inside the step, so they do not stay live across the loop (registers)
            ca_const = (_ref_rows(ca_ref, 0, lane), _ref_rows(ca_ref, n, lane))
            stim = [stim_ref[t, k, lane] for k in range(len(plan.stim_nodes))]
            x = _advance(net, plan, cfg, params_like, rows, p_ref, ca_const, stim)
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


def _advance(net, plan: _Plan, cfg: _Config, params_like, rows, params, ca_const, stim):
    """`_row_step` on flat state rows; returns its (v, gates, syn, cai, eca) rows.

    `params` is a ref or a list in `_flat_params` order.
    """
    return _row_step(
        plan,
        net,
        _scalar_mechanisms(net, params_like, params),
        _split_rows(net, plan, list(rows)),
        ca_const,
        list(stim),
        cfg.dt,
        cfg.scheme,
    )


def _step_fn(net: Network, plan: _Plan, params_like: Params, cfg: _Config):
    """One step as ``f(rows, pv, cav, stim) -> (new rows, recorded v)``.

    A pure function of scalars (lane vectors), for `jax.vjp` inside the backward
    kernel.

    `pv`: the flat parameters (`_flat_params` order); `cav`: the constant cai / eca
    rows the result depends on, ``{row of [cai; eca]: value}`` (`_constant_rows`;
    rows read but not in it are zeros, with no effect); `stim`: [nA] per site.
    """
    n = plan.n_nodes

    def f(rows, pv, cav, stim):
        unused = jnp.zeros_like(rows[0])  # rows read whose value does not matter

        def row(j):
            return cav.get(j, unused)

        ca_const = (_Lazy(row), _Lazy(lambda j: row(n + j)))
        x = _advance(net, plan, cfg, params_like, rows, pv, ca_const, stim)
        return tuple(_join_rows(x)), tuple(x[0][node] for node in plan.rec_nodes)

    return f


def _constant_rows(net: Network, plan: _Plan, params: Params, cfg: _Config) -> tuple:
    """Rows of ``[cai; eca]`` (2N) that one step's result depends on.

    Found from its jaxpr: every node's cai and eca is read, few matter (e.g. eca
    only where a channel uses it, off the calcium nodes).
    """
    zero = jnp.zeros((), jnp.float32)
    n_p = int(_flat_params(params, jnp.float32).shape[0])
    cav = {j: zero for j in range(2 * plan.n_nodes)}
    args = ([zero] * plan.n_rows, [zero] * n_p, cav, [zero] * len(plan.stim_nodes))
    closed = jax.make_jaxpr(_step_fn(net, plan, params, cfg))(*args)
    jaxpr = closed.jaxpr
    need = {v for v in jaxpr.outvars if not hasattr(v, "val")}  # vars, not literals
    for eqn in reversed(jaxpr.eqns):
        if any(o in need for o in eqn.outvars):
            need.update(v for v in eqn.invars if not hasattr(v, "val"))
    offset = plan.n_rows + n_p  # cav's leaves follow rows and pv (sorted keys)
    return tuple(
        j for k, j in enumerate(sorted(cav)) if jaxpr.invars[offset + k] in need
    )


def _backward_kernel(net: Network, plan: _Plan, params_like: Params, cfg: _Config):
    """Reverse mode of `_kernel`, in one kernel.

    Per segment, last first, it replays the segment from its stored state (writing
    every step's state to `work_ref`), then runs the step's VJP (`jax.vjp` of
    `_step_fn`, unrolled like the forward) back over it. Parameter and constant-row
    cotangents accumulate in their output rows per lane (trial); the caller sums
    them over the batch.
    """
    n_seg, seg = cfg.steps // cfg.segment, cfg.segment
    lane = 0 if cfg.block == 1 else slice(None)
    rows_n, n_stim = plan.n_rows, len(plan.stim_nodes)
    f = _step_fn(net, plan, params_like, cfg)
    used = _constant_rows(net, plan, params_like, cfg)

    def kernel(p_ref, ck_ref, ca_ref, stim_ref, ctx_ref, ctca_ref, ctrec_ref, *outs):
        dx_ref, dp_ref, dca_ref, dstim_ref, work_ref = outs
        like = ctx_ref[0, lane]
        n_p = p_ref.shape[0]

        def inputs(t):  # params per lane, so their cotangents stay per trial
            pv = [jnp.broadcast_to(p_ref[i], jnp.shape(like)) for i in range(n_p)]
            cav = {j: ca_ref[j, lane] for j in used}
            return pv, cav, [stim_ref[t, k, lane] for k in range(n_stim)]

        for i in range(n_p):
            dp_ref[i, lane] = jnp.zeros_like(like)
        for j in range(ca_ref.shape[0]):  # the final state's constant rows pass on
            dca_ref[j, lane] = ctca_ref[j, lane]

        def one_segment(j, lam):
            s = n_seg - 1 - j

            def replay(k, rows):
                for r, row in enumerate(rows):
                    work_ref[k, r, lane] = row
                return f(rows, *inputs(s * seg + k))[0]

            rows = tuple(ck_ref[s, r, lane] for r in range(rows_n))
            if seg > 1:  # segment=1: every state was stored, no replay code at all
                rows = jax.lax.fori_loop(0, seg - 1, replay, rows)
            for r, row in enumerate(rows):
                work_ref[seg - 1, r, lane] = row

            def back(kk, lam):
                k = seg - 1 - kk
                t = s * seg + k
                rows = tuple(work_ref[k, r, lane] for r in range(rows_n))
                _, vjp = jax.vjp(f, rows, *inputs(t))
                ct_rec = tuple(
                    ctrec_ref[t, q, lane] for q in range(len(plan.rec_nodes))
                )
                d_rows, d_pv, d_cav, d_stim = vjp((lam, ct_rec))
                for i, d in enumerate(d_pv):
                    dp_ref[i, lane] = dp_ref[i, lane] + d
                for r, d in d_cav.items():
                    dca_ref[r, lane] = dca_ref[r, lane] + d
                for q, d in enumerate(d_stim):
                    dstim_ref[t, q, lane] = d
                return tuple(d_rows)

            return jax.lax.fori_loop(0, seg, back, lam)

        lam = tuple(ctx_ref[r, lane] for r in range(rows_n))
        lam = jax.lax.fori_loop(0, n_seg, one_segment, lam)
        for r, d in enumerate(lam):
            dx_ref[r, lane] = d

    return kernel


def _backward_call(net, plan, cfg, params: Params, ck, ca, stim, ctx, ctca, ctrec):
    """The backward pallas_call on lane-major arrays.

    Shapes: ck [n_seg, R, L]; ca and ctca [2N, L]; stim [T, S, L]; ctx [R, L];
    ctrec [T, n_rec, L] (S, n_rec ≥ 1). Returns dx, dp, dca, dstim (lane-major).
    """
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as plt

    lanes, dtype, bk = ctx.shape[1], ctx.dtype, cfg.block
    n_seg, seg = cfg.steps // cfg.segment, cfg.segment
    pvec = _flat_params(params, dtype)
    r, n2, s, q = plan.n_rows, ca.shape[0], stim.shape[1], ctrec.shape[1]

    def spec(*shape):  # a block of `bk` lanes of an array [..., lanes]
        return pl.BlockSpec((*shape, bk), lambda i: (*(0,) * len(shape), i))

    outs = ((r,), (pvec.shape[0],), (n2,), (cfg.steps, s), (seg, r))
    return pl.pallas_call(
        _backward_kernel(net, plan, params, cfg),
        out_shape=tuple(jax.ShapeDtypeStruct((*o, lanes), dtype) for o in outs),
        grid=(lanes // bk,),
        in_specs=[
            pl.BlockSpec(pvec.shape, lambda i: (0,)),
            spec(n_seg, r),
            spec(n2),
            spec(cfg.steps, s),
            spec(r),
            spec(n2),
            spec(cfg.steps, q),
        ],
        out_specs=tuple(spec(*o) for o in outs),
        interpret=cfg.interpret,
        compiler_params=plt.CompilerParams(num_warps=cfg.num_warps, num_stages=1),
        name="neuroctl_fused_steps_vjp",
    )(pvec, ck, ca, stim, ctx, ctca, ctrec)[:4]


def _call(net: Network, plan: _Plan, cfg: _Config, params: Params, x, ca, stim):
    """The pallas_call on lane-major arrays: x [R, L], ca [2N, L], stim [T, S≥1, L]."""
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as plt

    lanes, dtype = x.shape[1], x.dtype
    n_seg, bk = cfg.steps // cfg.segment, cfg.block
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


def _lane_major(a: Array, lanes: int, axis: int, pad: str = "repeat") -> Array:
    """Batch axis 0 -> `axis`, padded to `lanes` trials.

    Padding repeats the last trial (inputs: finite, no NaN) or is zeros
    (cotangents: padded trials add nothing).
    """
    b = a.shape[0]
    fill = a[-1:] if pad == "repeat" else jnp.zeros_like(a[:1])
    a = jnp.concatenate([a, jnp.repeat(fill, lanes - b, axis=0)], axis=0)
    return jnp.moveaxis(a, 0, axis)


def _site_rows(a: Array, lanes: int, pad: str = "repeat") -> Array:
    """Per-step site values [B, T, S] -> lane-major [T, max(S, 1), lanes].

    An empty site set becomes one unused zero site: Pallas blocks cannot be empty.
    """
    if a.shape[2] == 0:
        return jnp.zeros((a.shape[1], 1, lanes), a.dtype)
    return _lane_major(a, lanes, -1, pad)


def _n_lanes(cfg: _Config, batch: int) -> int:
    return -(-batch // cfg.block) * cfg.block


def _forward(net, plan, cfg, params: Params, state: State, stimulus: Array):
    """(final State, recordings [B, T, n_rec], checkpoints [B, n_seg, R])."""
    b = state.v.shape[0]
    lanes = _n_lanes(cfg, b)
    x = _lane_major(_pack(plan, state), lanes, -1)
    ca = _lane_major(jnp.concatenate([state.cai, state.eca], axis=-1), lanes, -1)
    stim = _site_rows(stimulus, lanes)
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

    backward = _backward_fused if cfg.backward == "fused" else _backward
    run.defvjp(fwd, partial(backward, net, plan, cfg))
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


def _backward_fused(net: Network, plan: _Plan, cfg: _Config, res, cts):
    """Cotangents of (params, state, stimulus) from one backward kernel launch."""
    params, state, stimulus, ck = res
    ct_final, ct_rec = cts
    b, n = state.v.shape[0], plan.n_nodes
    lanes = _n_lanes(cfg, b)

    def zero_padded(a):
        return _lane_major(a, lanes, -1, pad="zeros")

    dx, dp, dca, dstim = _backward_call(
        net,
        plan,
        cfg,
        params,
        _lane_major(ck, lanes, -1),
        _lane_major(jnp.concatenate([state.cai, state.eca], -1), lanes, -1),
        _site_rows(stimulus, lanes),
        zero_padded(_pack(plan, ct_final)),
        zero_padded(jnp.concatenate([ct_final.cai, ct_final.eca], -1)),
        _site_rows(ct_rec, lanes, pad="zeros"),
    )
    dca = jnp.moveaxis(dca, -1, 0)[:b]
    like = State(
        v=state.v, gates=state.gates, cai=dca[:, :n], eca=dca[:, n:], syn=state.syn
    )
    d_state = _unpack(plan, jnp.moveaxis(dx, -1, 0)[:b], like)
    d_stim = jnp.moveaxis(dstim, -1, 0)[:b, :, : stimulus.shape[2]]
    return _unflat_params(params, dp.sum(axis=-1)), d_state, d_stim


def _unflat_params(params: Params, flat: Array) -> Params:
    """`Params` from a flat vector in `_flat_params` order."""
    leaves, tree = jax.tree.flatten(_mechanisms(params))
    ends = np.cumsum([0] + [int(np.size(x)) for x in leaves])
    parts = [
        flat[a:e].reshape(np.shape(x))
        for a, e, x in zip(ends[:-1], ends[1:], leaves, strict=True)
    ]
    channels, synapses, calcium = jax.tree.unflatten(tree, parts)
    return Params(channels=channels, calcium=calcium, synapses=synapses)


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
    backward: str = "fused",
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
            ``segment=1`` stores every state (memory ``T`` × state size per
            trial) and leaves the replay out of the backward kernel (2 HH
            cells: 8,692 instead of 10,856 lines of Triton IR).
        block: trials per kernel instance: 1 (default, scalar code) or a power of
            two on the lanes (see the module docstring for its compile time).
        num_warps: warps per kernel instance on the GPU (Triton).
        interpret: run with Pallas' interpreter (CPU; for checking, not speed).
        backward: reverse mode: ``"fused"`` (default), one more kernel that
            replays each segment and runs the step's VJP back over it; or
            ``"xla"``, `simulate`'s VJP per segment (XLA kernels per step). The
            backward kernel is ~4x the forward's code and slow to build for large
            networks: the paper network's took 15 min offline (Triton 3.9 and
            ptxas, results/fused_kernel_compile.md), HH cells seconds.

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
    if backward not in ("fused", "xla"):
        raise bad_value(
            "backward", backward, "'fused' or 'xla'", "pass backward='fused' or 'xla'."
        )
    cfg = _Config(
        dt=float(dt),
        scheme=scheme,
        steps=steps,
        segment=segment,
        block=int(block),
        num_warps=int(num_warps),
        interpret=bool(interpret),
        backward=backward,
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
