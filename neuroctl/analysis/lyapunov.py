r"""Lyapunov exponents by forward-mode tangent propagation (Benettin/QR method).

For a one-step map :math:`x_{t+1} = F(x_t, u_t)` of time step :math:`\Delta t` [ms]
with Jacobians :math:`J_t = \partial F / \partial x (x_t, u_t)`, ``k`` tangent vectors
(the columns of :math:`U`, orthonormal) are pushed through ``r`` steps with
`jax.vmap` of `jax.jvp` -- no Jacobian is ever formed -- and re-orthonormalised:

.. math::
    J_{t+r-1} \cdots J_t\, U = Q R, \qquad U \leftarrow Q, \qquad
    \lambda_i = \frac{1}{N r \Delta t} \sum_{\text{intervals}} \log |R_{ii}|
    \quad [1/\text{ms}],

over ``N`` intervals after a transient. ``log|R_ii| / (r Δt)`` of a single interval
is the finite-time exponent. The steps run in `lax.scan` with no tape, so memory is
independent of the horizon. ``Σ_i λ_i`` over all ``n`` exponents is the mean rate of
``log|det J_t|`` (volume contraction).

Constant and algebraic components. The spectrum is that of the *whole* state vector.
A component carried unchanged (``cai``/``eca`` in compartments without calcium
dynamics) has multiplier 1, i.e. exponent 0; a component recomputed from the others
each step has multiplier 0, i.e. exponent -inf (in floating point: a huge negative
number). In `neuroctl.biophysics` the voltage of a zero-area branch point is such an
algebraic component under backward Euler (under Crank-Nicolson its multiplier is -1:
exponent 0), and ``eca`` is Nernst of ``cai`` in compartments with calcium dynamics
(it feeds back through the calcium current, so it must stay in; it adds one -inf
exponent per such compartment, at the bottom of the spectrum). ``mask`` (boolean
over the flattened state, see `solver_state_mask`) keeps only the selected components
in the tangent space: tangents start with zeros elsewhere and are re-projected at
each renormalisation. This is exact for excluded components that are constant
(never driven by kept ones: their tangent stays 0) or that drive nothing kept
(algebraic outputs such as branch-point voltages).

References:
    Benettin, Galgani, Giorgilli & Strelcyn (1980), Meccanica 15, 9-20 and 21-30.
    Shimada & Nagashima (1979), Prog. Theor. Phys. 61, 1605-1616.
"""

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from neuroctl.analysis._flat import (
    Step,
    check_dt,
    check_finite,
    count_steps,
    embed,
    flatten_map,
    mask_indices,
    select,
)
from neuroctl.errors import bad_value


class _Setup(NamedTuple):
    x0: Array  # flat initial state
    tangents: Array  # (k, n) orthonormal on the kept components
    interval: Any  # scan body over one renormalisation interval
    xs: PyTree  # inputs reshaped to (n_intervals, r, ...), or None
    n_intervals: int
    n_skip: int  # transient intervals
    seconds: float  # time per interval [ms]


def lyapunov_spectrum(
    step: Step,
    state: PyTree,
    inputs: PyTree | None = None,
    *,
    dt: float,
    k: int | None = None,
    n_steps: int | None = None,
    renorm_every: int = 1,
    n_transient: int = 0,
    mask: Bool[Any, " n"] | None = None,
    key: PRNGKeyArray | None = None,
) -> Float[Array, " k"]:
    """The first `k` Lyapunov exponents [1/ms] of ``step``, largest first.

    Args:
        step: one-step map ``step(state, input) -> state`` (close over parameters).
        state: initial state, a pytree of float arrays (flattened internally).
        inputs: per-step inputs with a leading time axis T (e.g. stimulus [nA],
            shape ``(T, n_stimuli)``), or None for an autonomous map (then give
            `n_steps`; `step` receives None).
        dt: time one step represents [ms]; exponents are per ms.
        k: number of exponents (default: all kept components).
        n_steps: horizon T when `inputs` is None.
        renorm_every: steps between QR re-orthonormalisations; must divide both
            `n_transient` and ``T - n_transient``.
        n_transient: first steps used only to converge state and tangents.
        mask: boolean over the flattened state: components to keep (module doc).
        key: draws the initial tangents (default ``jax.random.key(0)``).

    Returns:
        Exponents λ_1 ≥ … ≥ λ_k [1/ms] (ordered up to finite-time fluctuation),
        accumulated in the state's dtype (prefer float64 for very long runs).
    """
    s = _setup(
        step, state, inputs, dt, k, n_steps, renorm_every, n_transient, mask, key
    )
    body = partial(_accumulate, s.interval, s.n_skip)
    zeros = jnp.zeros(s.tangents.shape[0], s.x0.dtype)
    carry, _ = jax.lax.scan(body, (s.x0, s.tangents, zeros, 0), s.xs, s.n_intervals)
    return carry[2] / ((s.n_intervals - s.n_skip) * s.seconds)  # [1/ms]


def max_lyapunov_exponent(step: Step, state: PyTree, inputs=None, **kwargs) -> Array:
    """The maximal Lyapunov exponent [1/ms]: `lyapunov_spectrum` with ``k=1``.

    Args and keywords as for `lyapunov_spectrum` (except `k`).
    """
    return lyapunov_spectrum(step, state, inputs, k=1, **kwargs)[0]


def finite_time_exponents(
    step: Step,
    state: PyTree,
    inputs: PyTree | None = None,
    *,
    dt: float,
    k: int = 1,
    n_steps: int | None = None,
    renorm_every: int = 1,
    n_transient: int = 0,
    mask: Bool[Any, " n"] | None = None,
    key: PRNGKeyArray | None = None,
) -> Float[Array, "intervals k"]:
    """Finite-time Lyapunov exponents [1/ms] per renormalisation interval.

    Row ``j`` is ``log|R_ii| / (renorm_every · dt)`` for the ``j``-th interval after
    the transient: the local expansion rate along the trajectory. Their column mean
    is `lyapunov_spectrum`. Memory grows with the number of intervals (one row
    each); everything else is as for `lyapunov_spectrum`, whose arguments these are.
    """
    s = _setup(
        step, state, inputs, dt, k, n_steps, renorm_every, n_transient, mask, key
    )
    _, log_r = jax.lax.scan(s.interval, (s.x0, s.tangents), s.xs, s.n_intervals)
    return log_r[s.n_skip :] / s.seconds  # [1/ms]


def _setup(step, state, inputs, dt, k, n_steps, r, n_transient, mask, key) -> _Setup:
    dt = check_dt(dt)
    fm = flatten_map(step, state)
    x0 = fm.x0
    idx = mask_indices(mask, x0.size)
    m = x0.size if idx is None else idx.size  # kept state dimension
    k = _check_k(k, m)
    n_total = count_steps(inputs, n_steps)
    n_intervals, n_skip = _check_horizon(n_total, r, n_transient)
    key = jax.random.key(0) if key is None else key
    tangents = embed(_orthonormal(key, k, m, x0.dtype), idx, x0.size)
    tangents = check_finite(x0, "state", tangents)
    xs = jax.tree.map(lambda a: jnp.reshape(a, (n_intervals, r) + a.shape[1:]), inputs)
    interval = partial(_interval, fm.step, idx, r)
    return _Setup(x0, tangents, interval, xs, n_intervals, n_skip, r * dt)


def _interval(flat_step, idx, r: int, carry, xs):
    """Push state and tangents ``r`` steps, then QR: returns log|R_ii| [1]."""
    x, u = jax.lax.scan(partial(_push, flat_step), carry, xs, r)[0]
    q, rr = jnp.linalg.qr(select(u, idx).T)  # (m, k) orthonormal, (k, k) triangular
    return (x, embed(q.T, idx, x.size)), jnp.log(jnp.abs(jnp.diagonal(rr)))


def _push(flat_step, carry, inp):
    """One step of the state and of every tangent (vmap of jvp: primal once)."""
    x, u = carry
    f = partial(flat_step, inp=inp)
    jvp = jax.vmap(partial(jax.jvp, f), in_axes=(None, 0), out_axes=(None, 0))
    return jvp((x,), (u,)), None


def _accumulate(interval, n_skip: int, carry, xs):
    """`_interval` plus a running sum of log|R_ii| once past the transient."""
    x, u, total, i = carry
    (x, u), log_r = interval((x, u), xs)
    total = total + jnp.where(i >= n_skip, log_r, 0.0)
    return (x, u, total, i + 1), None


def _orthonormal(key, k: int, m: int, dtype) -> Array:
    """``k`` random orthonormal rows of length ``m`` (QR of a Gaussian matrix)."""
    return jnp.linalg.qr(jax.random.normal(key, (m, k), dtype))[0].T


def _check_k(k, m: int) -> int:
    if k is None:
        return m
    if not (isinstance(k, int | np.integer) and 1 <= k <= m):
        raise bad_value(
            "k",
            k,
            f"an int in [1, {m}] (the kept state dimension)",
            f"ask for at most {m} exponents, or keep more components.",
        )
    return int(k)


def _check_horizon(n_total: int, r, n_transient) -> tuple[int, int]:
    """(number of intervals, number of transient intervals), or `ConfigError`."""
    if not (isinstance(r, int | np.integer) and r >= 1):
        raise bad_value(
            "renorm_every", r, "an int >= 1 [steps]", "e.g. renorm_every=10."
        )
    if not (isinstance(n_transient, int | np.integer) and 0 <= n_transient < n_total):
        raise bad_value(
            "n_transient",
            n_transient,
            f"an int in [0, {n_total}) [steps]",
            "leave steps to measure after the transient.",
        )
    for name, value in (
        ("n_transient", n_transient),
        ("horizon T - n_transient", n_total - n_transient),
    ):
        if value % r:
            raise bad_value(
                "renorm_every",
                r,
                f"a divisor of {name} = {value} [steps]",
                f"pick renorm_every from {_divisors(value)[:8]} or change the horizon.",
            )
    return n_total // r, n_transient // r


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, min(n, 1000) + 1) if n % d == 0] if n else [1]
