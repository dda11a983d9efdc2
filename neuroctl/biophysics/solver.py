"""The NEURON-equivalent fixed-step solver: `init_state`, `step`, `simulate`.

One step of length ``dt`` [ms] follows NEURON's staggered scheme:

1. Membrane, synaptic and electrode currents are evaluated with the gates of the
   start of the step; since they are linear in ``v`` for frozen gates, the implicit
   voltage update is exact. The cable equation is solved for the voltage *change*
   ``Δv`` on the branched tree by Hines elimination (grouped by depth level):
   ``(C/h + G_mem + A) Δv = I(v)`` with ``h = dt`` (backward Euler, NEURON
   ``secondorder=0``; ``v ← v + Δv``) or ``h = dt/2`` (Crank–Nicolson,
   ``secondorder=2``; ``v ← v + 2Δv``). Solving for the change keeps float32 accurate.
2. Intracellular calcium advances with the Ca current of step 1 (at the old voltage
   for backward Euler, the mid-step voltage for Crank–Nicolson, as NEURON's
   ``second_order_cur``), then the Ca reversal potential follows Nernst.
3. Gates advance by exponential Euler at the *new* voltage (and new calcium), and
   graded synapses at the new presynaptic voltage — NEURON's ``nonvint``.

An optional extracellular potential ``v_ext`` [mV] per node (from point electrodes:
`neuroctl.biophysics.extracellular`) adds the activating function
``Σ_j g_ij (v_ext,j − v_ext,i)`` to the right-hand side (NEURON's ``extracellular``
with a transparent layer); without it, the step is unchanged.

Units: v [mV], dt [ms], stimulus [nA] per stimulus site, conductances as in
`neuroctl.units`. Everything is pure: `jit`, `vmap` and `grad` compose.
"""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl import small_loops, units
from neuroctl.biophysics.calcium import CAI_FLOOR
from neuroctl.biophysics.network import Network, Params
from neuroctl.biophysics.rates import relax
from neuroctl.errors import ConfigError, bad_value
from neuroctl.typing import Array, ArrayLike

if TYPE_CHECKING:
    from neuroctl.biophysics.extracellular import PointElectrodes

Scheme = Literal["be", "cn"]


class State(eqx.Module):
    """Dynamic state of a network.

    Attributes:
        v: membrane potential per node, branch points included [mV].
        gates: all gating variables in one flat vector [1]; `gates_of` splits it per
            channel block and gate (block slices in block order, gates in
            `gate_names` order). One buffer lets XLA update every gate in one loop.
        cai: intracellular calcium per node [mM].
        eca: calcium reversal potential per node [mV].
        syn: per synapse type, the synaptic state per connection [1].
    """

    v: Array
    gates: Array
    cai: Array
    eca: Array
    syn: tuple[Array, ...]


def init_state(
    net: Network, params: Params, v_init: float = -65.0, dtype=jnp.float32
) -> State:
    """Resting state as NEURON's ``finitialize(v_init)``: every gate at steady state.

    Args:
        net: the compiled network.
        params: its parameters.
        v_init: initial membrane potential [mV], all nodes.
        dtype: float dtype of the state (float32 default; float64 needs jax x64).
    """
    _check_dtype(dtype)
    params = net.cast_params(params, dtype)
    v = jnp.full(net.n_nodes, v_init, dtype)
    cai, eca = _initial_calcium(net, params, dtype)
    gates = tuple(
        tuple(ch.steady_gates(v[b.lo : b.hi], cai[b.lo : b.hi]))
        for b, ch in zip(net.channel_blocks, params.channels, strict=True)
    )
    syn = tuple(
        jnp.broadcast_to(s.steady_and_rate(v[pre])[0], pre.shape).astype(dtype)
        for s, pre in zip(params.synapses, net.synapse_pre, strict=True)
    )
    return State(
        v=v, gates=_flatten_gates(net, gates, dtype), cai=cai, eca=eca, syn=syn
    )


def _check_dtype(dtype) -> None:
    dt = jnp.dtype(dtype)
    if not jnp.issubdtype(dt, jnp.floating):
        raise bad_value("dtype", dtype, "a float dtype", "use jnp.float32 or float64.")
    if dt.itemsize == 8 and not jax.config.jax_enable_x64:
        raise bad_value(
            "dtype",
            dt.name,
            "float32 while jax_enable_x64 is off",
            "call jax.config.update('jax_enable_x64', True) before building "
            "states, or use jnp.float32.",
        )


def _flatten_gates(net: Network, gates, dtype) -> Array:
    parts = [
        jnp.broadcast_to(g, (b.hi - b.lo,)).astype(dtype)
        for b, gs in zip(net.channel_blocks, gates, strict=True)
        for g in gs
    ]
    return jnp.concatenate(parts) if parts else jnp.zeros(0, dtype)


def gates_of(net: Network, state: State) -> tuple[tuple[Array, ...], ...]:
    """The flat gate vector split per channel block, one array per gate."""
    return split_gates(net, state.gates)


def split_gates(net: Network, gates):
    """Any sliceable flat gate sequence (array, list) split per block and gate."""
    out, offset = [], 0
    for b in net.channel_blocks:
        n, k = b.hi - b.lo, len(b.kind.gate_names)
        out.append(
            tuple(gates[offset + i * n : offset + (i + 1) * n] for i in range(k))
        )
        offset += n * k
    return tuple(out)


def _initial_calcium(net: Network, params: Params, dtype) -> tuple[Array, Array]:
    d = net.ca_defaults
    cai = jnp.full(net.n_nodes, d.cai0, dtype)
    eca = jnp.full(net.n_nodes, d.reversal(jnp.asarray(d.cai0, dtype)), dtype)
    for b, ca in zip(net.calcium_block, params.calcium, strict=True):
        mask = jnp.asarray(b.mask)
        cai0 = jnp.maximum(ca.cai0, CAI_FLOOR)  # [mM]: a traced cai0 < 0 too
        cai = cai.at[b.lo : b.hi].set(jnp.where(mask, cai0, cai[b.lo : b.hi]))
        e = ca.reversal(cai[b.lo : b.hi])
        eca = eca.at[b.lo : b.hi].set(jnp.where(mask, e, eca[b.lo : b.hi]))
    return cai, eca


def step(
    net: Network,
    params: Params,
    state: State,
    stimulus: ArrayLike,
    dt: float,
    scheme: Scheme = "be",
    v_ext: ArrayLike | None = None,
) -> State:
    """Advance the network by one step of `dt` [ms].

    Args:
        net: the compiled network.
        params: its parameters (same float dtype as the state).
        state: the current state.
        stimulus: current [nA] at each stimulus site during this step, shape
            ``(net.n_stimuli,)``.
        dt: time step [ms].
        scheme: ``"be"`` (backward Euler) or ``"cn"`` (Crank–Nicolson).
        v_ext: extracellular potential [mV] at every node during this step, shape
            ``(net.n_nodes,)`` (e.g. `extracellular.PointElectrodes.potential`), or
            None. Axial currents follow the intracellular potential ``v + v_ext``
            (NEURON's ``extracellular`` with a transparent layer), which adds the
            activating function ``Σ_j g_ij (v_ext,j − v_ext,i)`` [nA] to node i.
            For Crank–Nicolson it is the mid-step value; `v` stays the membrane
            potential, so a uniform `v_ext` changes nothing.
    """
    batch = jnp.shape(state.v)[1:]  # () or (B,): batch-minor (`simulate_batch`)
    _check_step_args(net, stimulus, dt, scheme, batch)
    _check_v_ext(net, v_ext, batch)
    v = state.v
    g_mem, drive, g_ca, drive_ca = _membrane(net, params, state)
    a = _const(net.area * units.MS_PER_CM2_UM2_TO_US, v)  # [µS per mS/cm²]
    g_node, i_node = g_mem * a, drive * a  # [µS], [nA]
    g_syn, i_syn = _synaptic(net, params, state, v)
    i_ext = _inject(net, jnp.asarray(stimulus, v.dtype), v)
    rhs = i_node + i_syn + i_ext - (g_node + g_syn) * v + _axial_current(net, v)
    if v_ext is not None:  # activating function [nA]
        rhs = rhs + _axial_current(net, jnp.asarray(v_ext, v.dtype))
    h = dt if scheme == "be" else 0.5 * dt  # [ms]
    cap = _const(net.capacitance * net.area, v) * (
        units.UF_PER_CM2_UM2_TO_US_MS / h
    )  # [µS]
    dv = hines_solve(net, cap + g_node + g_syn + _const(_axial_diag(net), v), rhs)
    v_new = v + (dv if scheme == "be" else 2.0 * dv)
    v_ion = v if scheme == "be" else v + dv
    cai, eca = _advance_calcium(net, params, state, g_ca * v_ion - drive_ca, dt)
    return State(
        v=v_new,
        gates=_advance_gates(net, params, state, v_new, cai, dt),
        cai=cai,
        eca=eca,
        syn=_advance_synapses(net, params, state, v_new, dt),
    )


def _const(x: np.ndarray, like: Array) -> Array:
    """A static per-node constant at `like`'s dtype (a column: `_col`)."""
    x = np.asarray(x)
    return jnp.asarray(_col(x, like) if x.ndim else x, like.dtype)


def _col(x: np.ndarray, like: Array) -> np.ndarray:
    """A static per-node array; a column when `like` has a trial axis."""
    return np.reshape(x, np.shape(x) + (1,) * (like.ndim - 1))


def _pad0(x: Array, lo: int, hi: int) -> Array:
    """`x` padded with `lo` and `hi` zeros along its node axis (axis 0)."""
    return jnp.pad(x, [(lo, hi)] + [(0, 0)] * (x.ndim - 1))


def _inject(net: Network, stimulus: Array, v: Array) -> Array:
    """Electrode currents [nA] per node (a pad when the sites are contiguous)."""
    nodes = net.stimulus_nodes
    if len(nodes) and np.array_equal(nodes, np.arange(nodes[0], nodes[0] + len(nodes))):
        return _pad0(stimulus, int(nodes[0]), net.n_nodes - int(nodes[-1]) - 1)
    return _add_at(jnp.zeros_like(v), nodes, stimulus.astype(v.dtype))


def _pad(x: Array, lo: int, hi: int, n: int) -> Array:
    return _pad0(x, lo, n - hi)


def _membrane(net: Network, params: Params, state: State):
    """Total and calcium-only conductance [mS/cm²] and drive [µA/cm²] per node."""
    n = net.n_nodes
    v = state.v
    g = drive = g_ca = drive_ca = jnp.zeros_like(v)
    blocks = zip(net.channel_blocks, params.channels, gates_of(net, state), strict=True)
    for b, ch, gates in blocks:
        gb, db = ch.currents(gates, state.eca[b.lo : b.hi])
        shape = (b.hi - b.lo,) + v.shape[1:]
        gb, db = jnp.broadcast_to(gb, shape), jnp.broadcast_to(db, shape)
        if not b.full:
            m = _const(b.mask, v)
            gb, db = gb * m, db * m
        g, drive = g + _pad(gb, b.lo, b.hi, n), drive + _pad(db, b.lo, b.hi, n)
        if ch.ion == "ca":
            g_ca = g_ca + _pad(gb, b.lo, b.hi, n)
            drive_ca = drive_ca + _pad(db, b.lo, b.hi, n)
    return g, drive, g_ca, drive_ca


def _synaptic(net: Network, params: Params, state: State, v: Array):
    """Synaptic conductance [µS] and drive [nA] per node.

    A scatter-add, or with `neuroctl.small_loops` on (CPU) a scatter-free segment
    sum, so that XLA can compile the time loop into one function.
    """
    g = drive = jnp.zeros_like(v)
    scatter_free = _scatter_free()
    for syn, s, post in zip(params.synapses, state.syn, net.synapse_post, strict=True):
        gs, ds = syn.conductance(s)
        if scatter_free:
            gs, ds = (jnp.broadcast_to(x, s.shape).astype(v.dtype) for x in (gs, ds))
        g, drive = _add_at(g, post, gs), _add_at(drive, post, ds)
    return g, drive


def _scatter_free() -> bool:
    """Whether the step avoids scatters: `neuroctl.small_loops` on, on a CPU."""
    return small_loops.active() and jax.default_backend() == "cpu"


def _add_at(base: Array, idx: slice | np.ndarray, x: Array) -> Array:
    """``base.at[idx].add(x)`` for a static slice or index vector (repeats add up).

    A slice updates in place; an index vector is a scatter-add, or with
    `neuroctl.small_loops` on (CPU) a segment sum, which keeps the loop
    scatter-free.
    """
    if isinstance(idx, slice) or not _scatter_free() or base.ndim > 1:
        return base.at[idx].add(x)
    return base + _segment_sum(x, _segment_plan(idx, base.shape[0]))


def _set_at(base: Array, idx: slice | np.ndarray, x: Array, take=None) -> Array:
    """``base.at[idx].set(x)`` for a static slice or distinct indices.

    A slice updates in place; an index vector is a scatter, or with
    `neuroctl.small_loops` on (CPU) a select of the values gathered by `take`
    (default `_take`; `_plain_take` where nothing differentiates through it).
    """
    if isinstance(idx, slice) or not _scatter_free() or base.ndim > 1:
        return base.at[idx].set(x)
    take = _take if take is None else take
    pos = np.full(base.shape[0], len(idx))  # where each entry's new value is
    pos[idx] = np.arange(len(idx))
    hit = np.zeros(base.shape[0], bool)
    hit[idx] = True
    new = take(jnp.concatenate([x, jnp.zeros(1, x.dtype)]), pos)
    return jnp.where(hit, new, base)


class _SegmentPlan(NamedTuple):
    """Static index sets summing values per target node without a scatter."""

    order: np.ndarray | None  # sorts the values by target node; None: sorted already
    shifts: tuple[tuple[int, np.ndarray], ...]  # (s, value i and i − s share a node)
    last: np.ndarray  # per node: its last sorted value's index; len(values): none


def _segment_plan(post: np.ndarray, n_nodes: int) -> _SegmentPlan:
    """The plan summing values per node, value i going to node ``post[i]``."""
    post = np.asarray(post)
    order = np.argsort(post, kind="stable")
    node = post[order]
    m, shifts, s = len(node), [], 1
    while s < m:
        same = np.zeros(m, bool)
        same[s:] = node[s:] == node[:-s]
        shifts.append((s, same))
        s *= 2
    last = np.full(n_nodes, m)
    last[node] = np.arange(m)  # the last write of each node wins: its last value
    sorted_already = np.array_equal(order, np.arange(m))
    return _SegmentPlan(None if sorted_already else order, tuple(shifts), last)


def _segment_sum(x: Array, plan: _SegmentPlan, take=None) -> Array:
    """Per node, the sum of the values `x` that target it.

    A segmented prefix sum (Hillis–Steele over the values sorted by node), read at
    each node's last value; nodes without values read the appended zero. `take`
    gathers (default: `_take`, whose transpose is again scatter-free).
    """
    take = _take if take is None else take
    y = x if plan.order is None else take(x, plan.order)
    for s, same in plan.shifts:
        y = y + jnp.where(same, jnp.pad(y[:-s], (s, 0)), 0.0)
    return take(jnp.concatenate([y, jnp.zeros(1, y.dtype)]), plan.last)


def _plain_take(x: Array, idx: np.ndarray) -> Array:
    return x[idx]


def _gather(x: Array, idx: slice | np.ndarray) -> Array:
    """``x[idx]``: a slice as it is, an index vector plainly or by `_take`.

    `_take` (a scatter-free transpose) while `neuroctl.small_loops` is on (CPU).
    """
    if isinstance(idx, slice) or not _scatter_free() or x.ndim > 1:
        return x[idx]
    return _take(x, idx)


def _take(x: Array, idx: np.ndarray) -> Array:
    """``x[idx]`` for a static index vector, with a scatter-free transpose.

    Autodiff would transpose the gather into a scatter-add, which keeps a loop
    from compiling into one function (`neuroctl.small_loops`); here the transpose
    is a segment sum built from gathers. `lax.custom_linear_solve` carries the
    custom transpose (the gather as the "solve", the segment sum as the
    transposed solve) on vectors padded to one length, as it requires.
    """
    n, m = x.shape[0], len(idx)
    size = max(n, m)
    back = _segment_plan(idx, n)

    def gather(_, b):
        return jnp.pad(b[:n][idx], (0, size - m))

    def scatter_free_transpose(_, c):
        return jnp.pad(_segment_sum(c[:m], back, _plain_take), (0, size - n))

    y = jax.lax.custom_linear_solve(
        lambda z: z,
        jnp.pad(x, (0, size - n)),
        gather,
        scatter_free_transpose,
    )
    return y[:m]


def _axial_current(net: Network, v: Array) -> Array:
    """Net axial current into each node [nA] at voltages `v` [mV].

    Few slice groups (repeated small cells): fusible pads. Many groups (long
    cables): one gather of parent voltages and one scatter-add, O(n) work.
    """
    g = _const(net.axial_g, v)
    groups = [grp for level in net.levels for grp in level]
    if len(groups) > _MAX_FUSED_GROUPS:
        parent = np.maximum(net.parent, 0)
        flux = g * (_gather(v, parent) - v)  # [nA] parent into node; 0 at roots (g = 0)
        return flux - _add_at(jnp.zeros_like(v), parent, flux)
    terms = []
    for grp in groups:
        c, p = grp.children, grp.parents
        flux = g[c] * (_gather(v, p) - _gather(v, c))  # [nA] from parent into child
        terms += [_spread(flux, c, v), _spread(-flux, p, v)]
    return sum(terms, jnp.zeros_like(v))


_MAX_FUSED_GROUPS = 4


def _spread(x: Array, where: slice | np.ndarray, like: Array) -> Array:
    """A full-length vector with `x` added at `where` (a pad for slices: fusible)."""
    if isinstance(where, slice):
        return _pad0(x, where.start, like.shape[0] - where.stop)
    return _add_at(jnp.zeros_like(like), where, x)


def _axial_diag(net: Network) -> np.ndarray:
    """Sum of axial conductances [µS] at each node (to parent and to children)."""
    diag = net.axial_g.copy()
    np.add.at(diag, np.maximum(net.parent, 0), net.axial_g)
    return diag


def hines_solve(net: Network, diag: Array, rhs: Array) -> Array:
    """Solve the symmetric tree system ``M x = rhs`` by Hines elimination.

    ``M`` has diagonal `diag` [µS] and ``−axial_g[i]`` between node ``i`` and its
    parent. Leaves are eliminated level by level (deepest first), then values are
    substituted back from the roots. Exact for trees, O(n).

    Derivatives use implicit differentiation (`lax.custom_linear_solve`): a tangent
    or cotangent costs one more solve with the same matrix (``M`` is symmetric)
    instead of differentiating through the elimination; forward and reverse mode.
    """

    def matvec(x: Array) -> Array:  # M x = diag·x − (off-diagonal couplings)·x
        return diag * x - _axial_current(net, x) - _const(_axial_diag(net), x) * x

    def solve(_, b: Array) -> Array:
        return _hines_eliminate(net, jax.lax.stop_gradient(diag), b)

    return jax.lax.custom_linear_solve(matvec, rhs, solve, symmetric=True)


def _hines_eliminate(net: Network, diag: Array, rhs: Array) -> Array:
    g = _const(net.axial_g, diag)
    d, r = diag, rhs
    for level in reversed(net.levels):
        for grp in level:  # in-place updates: O(group size) work per group
            c, p = grp.children, grp.parents
            f = g[c] / d[c]
            d = _add_at(d, p, -f * g[c])
            r = _add_at(r, p, f * r[c])
    x = r / d
    for level in net.levels:
        for grp in level:
            c, p = grp.children, grp.parents
            # not differentiated (custom_linear_solve): plain gathers will do
            x = _set_at(x, c, (r[c] + g[c] * x[p]) / d[c], _plain_take)
    return x


def _advance_calcium(net: Network, params: Params, state: State, ica: Array, dt):
    cai, eca = state.cai, state.eca
    for b, ca in zip(net.calcium_block, params.calcium, strict=True):
        sl = slice(b.lo, b.hi)
        new = ca.advance(cai[sl], ica[sl], dt)  # ica [µA/cm²]
        if not b.full:
            new = jnp.where(_col(b.mask, new), new, cai[sl])
        cai = cai.at[sl].set(new)
        e = ca.reversal(new)
        eca = eca.at[sl].set(e if b.full else jnp.where(_col(b.mask, e), e, eca[sl]))
    return cai, eca


def _advance_gates(net: Network, params: Params, state: State, v: Array, cai, dt):
    out = []
    blocks = zip(net.channel_blocks, params.channels, gates_of(net, state), strict=True)
    for b, ch, gates in blocks:
        x_inf, rate = ch.gate_dynamics(v[b.lo : b.hi], cai[b.lo : b.hi])
        out += [
            relax(x, xi, k, dt) for x, xi, k in zip(gates, x_inf, rate, strict=True)
        ]
    return jnp.concatenate(out) if out else state.gates


def _advance_synapses(net: Network, params: Params, state: State, v: Array, dt):
    return tuple(
        syn.advance(s, _gather(v, pre), dt)
        for syn, s, pre in zip(params.synapses, state.syn, net.synapse_pre, strict=True)
    )


def _check_step_args(net: Network, stimulus, dt, scheme, batch=()) -> None:
    shape = jnp.shape(stimulus)
    if shape != (net.n_stimuli, *batch):
        raise bad_value(
            "stimulus",
            f"array of shape {shape}",
            f"shape {(net.n_stimuli, *batch)}: one current [nA] per stimulus site"
            + (" (and trial)" if batch else ""),
            "pass one value per site given to `Network.build(stimuli=...)`.",
        )
    if scheme not in ("be", "cn"):
        raise bad_value("scheme", scheme, "'be' or 'cn'", "pick a scheme.")
    _check_dt(dt)


def _check_v_ext(net: Network, v_ext, batch=()) -> None:
    if v_ext is not None and jnp.shape(v_ext) != (net.n_nodes, *batch):
        raise bad_value(
            "v_ext",
            f"array of shape {jnp.shape(v_ext)}",
            f"shape {(net.n_nodes, *batch)}: one extracellular potential [mV] per "
            "node" + (" (and trial)" if batch else ""),
            "build it with `PointElectrodes.build(net, ...).potential(currents)`.",
        )


def _check_dt(dt) -> None:
    try:
        value = float(dt)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return  # traced: checked by the caller's concrete value
    if not (value > 0 and np.isfinite(value)):
        raise bad_value("dt", dt, "a finite time step > 0 [ms]", "e.g. dt=0.025.")


def simulate(
    net: Network,
    params: Params,
    state: State,
    stimulus: ArrayLike,
    dt: float,
    scheme: Scheme = "be",
    checkpoint_lengths: Sequence[int] | None = None,
    record: Callable[[State], Array] | None = None,
    electrodes: "PointElectrodes | None" = None,
    electrode_currents: ArrayLike | None = None,
    remat_steps: bool = True,
) -> tuple[State, Array]:
    """Run `step` over a stimulus with `lax.scan`, optionally checkpointed.

    Args:
        net: the compiled network.
        params: its parameters (cast to the state's dtype).
        state: the initial state.
        stimulus: currents [nA], shape ``(T, net.n_stimuli)``; one row per step.
        checkpoint_lengths: nested scan lengths for multilevel gradient
            checkpointing, e.g. ``(28, 28, 28)`` for 20,800 steps; their product
            must be ≥ T (extra steps are masked out). Memory for reverse-mode then
            grows as the sum of the lengths instead of T. None saves every step's
            state instead: faster and larger (paper network, T = 20,800, batch 1,
            float32: the gradient 21 % faster than with 2 levels, 57 MB of XLA
            memory instead of 8.7; results/benchmarks.md).
        dt: time step [ms].
        scheme: ``"be"`` (backward Euler) or ``"cn"`` (Crank–Nicolson).
        record: what to record after each step (default: voltages [mV] at the
            recording sites).
        electrodes: extracellular point electrodes
            (`neuroctl.biophysics.extracellular.PointElectrodes`), or None.
        electrode_currents: their currents [µA], shape ``(T, n_electrodes)``, one
            row per step (the value during the step); required with `electrodes`.
            Differentiable: an action or a design variable.
        remat_steps: in reverse mode, rematerialise every step (`jax.checkpoint`):
            the forward pass saves only each step's state and the backward pass
            recomputes that step's intermediates. Fewer kernels per backward step
            (243 → 155 on the paper network; the gradient ~3 % faster,
            results/benchmarks.md) and no residuals per step; the same maths, up to
            float rounding (a long float32 run can drift apart, as any recompile
            can). No effect on a forward-only run.

    Returns:
        The final state and the recordings, shape ``(T, ...)``.
    """
    stimulus = jnp.asarray(stimulus, state.v.dtype)
    _check_currents(
        net,
        "stimulus",
        stimulus,
        {"T": "time steps"},
        "use jnp.zeros((T, 0)) for a network without stimulus sites.",
    )
    _check_dt(dt)
    params = net.cast_params(params, state.v.dtype)
    if record is None:
        rec_nodes = net.recording_nodes

        def record(s: State) -> Array:
            return _gather(s.v, rec_nodes)

    if electrodes is not None or electrode_currents is not None:
        currents = _electrode_currents(electrodes, electrode_currents, stimulus, state)
        stimulus = (stimulus, currents)
    advance = _stepper(net, params, dt, scheme, electrodes)

    def body(s: State, x) -> tuple[State, Array]:
        s = advance(s, x)
        return s, record(s)

    return scan_checkpointed(body, state, stimulus, checkpoint_lengths, remat_steps)


def simulate_batch(
    net: Network,
    params: Params,
    state: State,
    stimuli: ArrayLike,
    dt: float,
    scheme: Scheme = "be",
    checkpoint_lengths: Sequence[int] | None = None,
    remat_steps: bool = True,
) -> tuple[State, Array]:
    """`simulate` of B trials of one network (shared parameters), batch-minor.

    Same results as ``jax.vmap`` of `simulate` over the trials, computed with
    every per-node array laid out as (nodes, trials): each operation of the step
    runs over contiguous rows of B values, which vectorises better than vmap's
    (trials, nodes) at large B (paper network, float32: 1.3x vmap at B = 8,
    1.6–1.9x at 64–1,024; results/benchmarks.md). It records the voltages at the
    recording sites; for extracellular electrodes, a custom `record` or
    per-trial parameters, vmap `simulate`.

    Args:
        net: the compiled network.
        params: its parameters, shared by the trials.
        state: the initial state: one (every trial starts from it) or with a
            leading trial axis (B, ...) per field.
        stimuli: currents [nA], shape ``(B, T, net.n_stimuli)``.
        dt: time step [ms].
        scheme: ``"be"`` (backward Euler) or ``"cn"`` (Crank–Nicolson).
        checkpoint_lengths: nested scan lengths for gradient checkpointing, as
            for `simulate`.
        remat_steps: rematerialise every step in reverse mode, as for `simulate`.

    Returns:
        The final states (leading trial axis B) and the recordings
        ``(B, T, n_recordings)`` [mV].
    """
    stimuli = jnp.asarray(stimuli, state.v.dtype)
    _check_currents(
        net,
        "stimuli",
        stimuli,
        {"B": "trials", "T": "time steps"},
        "stack one (T, n_stimuli) stimulus per trial.",
    )
    _check_dt(dt)
    b = stimuli.shape[0]
    if state.v.shape not in ((net.n_nodes,), (b, net.n_nodes)):
        raise bad_value(
            "state.v",
            f"array of shape {state.v.shape}",
            f"shape ({net.n_nodes},) (one state for every trial) or ({b}, "
            f"{net.n_nodes}) (one per trial of the {b} in `stimuli`) [mV]",
            "pass bp.init_state(...) or a state stacked over the trials.",
        )
    if state.v.ndim == 1:
        state = jax.tree.map(
            lambda x: jnp.broadcast_to(x[..., None], (*x.shape, b)), state
        )
    else:
        state = jax.tree.map(lambda x: jnp.moveaxis(x, 0, -1), state)
    params = net.cast_params(params, state.v.dtype)
    params = jax.tree.map(lambda x: x[..., None] if jnp.ndim(x) else x, params)
    rec_nodes = net.recording_nodes

    def body(s: State, x) -> tuple[State, Array]:
        s = step(net, params, s, x, dt, scheme)
        return s, _gather(s.v, rec_nodes)

    xs = jnp.moveaxis(stimuli, 0, -1)  # (T, n_stimuli, B)
    final, rec = scan_checkpointed(body, state, xs, checkpoint_lengths, remat_steps)
    final = jax.tree.map(lambda x: jnp.moveaxis(x, -1, 0), final)
    return final, jnp.moveaxis(rec, -1, 0)


def _check_currents(net: Network, name: str, x: Array, axes: dict, fix: str) -> None:
    """`x` [nA]: the leading `axes` (letter -> meaning), then stimulus sites."""
    if x.ndim != len(axes) + 1 or x.shape[-1] != net.n_stimuli:
        raise bad_value(
            name,
            f"array of shape {x.shape}",
            f"shape ({', '.join(axes)}, {net.n_stimuli}): "
            + " × ".join([*axes.values(), "stimulus sites"])
            + " [nA]",
            fix,
        )


def _stepper(net: Network, params: Params, dt, scheme: Scheme, electrodes):
    """`step` from one scan input: a stimulus row, or (stimulus, electrode currents)."""
    if electrodes is None:
        return lambda s, x: step(net, params, s, x, dt, scheme)
    return lambda s, x: step(
        net, params, s, x[0], dt, scheme, electrodes.potential(x[1])
    )


def _electrode_currents(electrodes, currents, stimulus: Array, state: State) -> Array:
    if electrodes is None:
        raise bad_value(
            "electrodes",
            None,
            "a PointElectrodes when electrode_currents are given",
            "pass electrodes=PointElectrodes.build(net, positions).",
        )
    n_e = electrodes.n_electrodes
    shape = None if currents is None else jnp.shape(currents)
    if shape != (stimulus.shape[0], n_e):
        raise bad_value(
            "electrode_currents",
            f"shape {shape}",
            f"shape ({stimulus.shape[0]}, {n_e}): steps × electrodes [µA]",
            "pass one current per electrode and step with `electrodes`.",
        )
    return jnp.asarray(currents, state.v.dtype)


def scan_checkpointed(
    body, carry, xs, lengths: Sequence[int] | None, remat_steps: bool = True
):
    """`lax.scan` of `body` over `xs`, nested and rematerialised per `lengths`.

    With `remat_steps` each call of `body` is rematerialised too: reverse mode
    saves only its inputs and recomputes the rest.
    """
    n = jax.tree.leaves(xs)[0].shape[0]
    if remat_steps:  # inside a scan, CSE across the loop boundary is no risk
        body = jax.checkpoint(body, prevent_cse=False)
    if not lengths:
        return jax.lax.scan(body, carry, xs)
    lengths = tuple(int(x) for x in lengths)
    total = int(np.prod(lengths))
    if any(x < 1 for x in lengths) or total < n:
        raise ConfigError(
            f"checkpoint_lengths: got {lengths} (product {total}) for {n} steps; "
            f"expected positive lengths with product >= {n}, e.g. "
            f"{checkpoint_lengths_for(n, len(lengths))}."
        )
    valid = jnp.arange(total) < n
    xs = jax.tree.map(
        lambda x: jnp.pad(x, [(0, total - n)] + [(0, 0)] * (x.ndim - 1)), xs
    )

    def masked(c, inp):
        x, ok = inp
        new, y = body(c, x)
        return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, c), y

    carry, ys = _nested_scan(masked, carry, (xs, valid), lengths)
    return carry, jax.tree.map(lambda y: y[:n], ys)


def _nested_scan(body, carry, xs, lengths):
    if len(lengths) == 1:
        return jax.lax.scan(body, carry, xs)
    inner_len = int(np.prod(lengths[1:]))

    @jax.checkpoint
    def outer(c, x):
        return _nested_scan(body, c, x, lengths[1:])

    split = jax.tree.map(lambda x: x.reshape((lengths[0], inner_len) + x.shape[1:]), xs)
    carry, ys = jax.lax.scan(outer, carry, split)
    return carry, jax.tree.map(lambda y: y.reshape((-1,) + y.shape[2:]), ys)


def checkpoint_lengths_for(n_steps: int, levels: int = 3) -> tuple[int, ...]:
    """Near-equal nested lengths with product ≥ `n_steps` (e.g. 20,800 → 28·28·27)."""
    base = int(np.ceil(n_steps ** (1.0 / levels)))
    lengths = [base] * levels
    for i in range(levels):
        while (
            lengths[i] > 1
            and np.prod(lengths) // lengths[i] * (lengths[i] - 1) >= n_steps
        ):
            lengths[i] -= 1
    return tuple(lengths)
