r"""Linearisation of a one-step map around a state or along a trajectory.

Around a point, :math:`\delta x_{t+1} = J_t\, \delta x_t + B_t\, \delta u_t` with
:math:`J_t = \partial F/\partial x`, :math:`B_t = \partial F/\partial u`. For large
states use the matrix-free JVPs (`tangent_step`, `tangent_rollout`,
`impulse_responses`); for small ones (a few thousand components) the dense
:math:`J` (`jacobian`, by `jax.jacfwd`) and its eigenvalues (`jacobian_spectrum`).
At a fixed point the multipliers :math:`\mu` of :math:`J` give the Lyapunov
exponents :math:`\log|\mu| / \Delta t` [1/ms]. Components carried unchanged have
:math:`\mu = 1`, algebraic ones :math:`\mu = 0` (see `neuroctl.analysis.lyapunov`
and `solver_state_mask` for which components of the solver state these are);
``mask`` keeps the sub-block of kept components, exact under the same conditions.
"""

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Complex, Float, PyTree

from neuroctl.analysis._flat import (
    Step,
    check_dt,
    check_finite,
    count_steps,
    flatten_map,
    mask_indices,
    select,
)
from neuroctl.errors import bad_value

MAX_DENSE = 4096  # largest state dimension for which a dense Jacobian is formed


class Spectrum(NamedTuple):
    """Eigenvalues of a one-step Jacobian, largest modulus first.

    Attributes:
        multipliers: eigenvalues μ of J (complex) [1 per step].
        rates: ``log|μ| / dt`` [1/ms]; -inf where μ = 0.
    """

    multipliers: Complex[Array, " m"]
    rates: Float[Array, " m"]


def tangent_step(step: Step, state: PyTree, inp: Any) -> tuple[PyTree, Callable]:
    """One step and its linearisation ``δstate ↦ J δstate`` (matrix-free).

    Args:
        step: one-step map ``step(state, input) -> state``.
        state: the point (pytree of float arrays, state units).
        inp: the input of this step (e.g. stimulus [nA] per site), held fixed.

    Returns:
        ``(step(state, inp), jvp)`` where ``jvp`` maps a state-shaped tangent to the
        next-state tangent (same units as the state). Built with `jax.linearize`.
    """
    return jax.linearize(partial(_swap, step, inp), state)


def _swap(step: Step, inp, state):
    return step(state, inp)


def tangent_rollout(
    step: Step,
    state: PyTree,
    inputs: PyTree | None,
    tangent: PyTree,
    *,
    n_steps: int | None = None,
    record: Callable[[PyTree], PyTree] | None = None,
) -> tuple[PyTree, PyTree]:
    """Propagate a state perturbation along a trajectory (JVP in `lax.scan`).

    Args:
        step: one-step map ``step(state, input) -> state``.
        state: initial state (pytree of float arrays, state units).
        inputs: per-step inputs with leading axis T, or None (then `n_steps`).
        tangent: initial perturbation δstate (state-shaped, state units).
        n_steps: horizon T when `inputs` is None.
        record: what to keep per step (default: the whole state), e.g.
            ``lambda s: s.v[net.recording_nodes]`` [mV].

    Returns:
        ``(record(x_t), record'(x_t) δx_t)`` for t = 1..T, each with leading axis T;
        the second is the linear response to the initial perturbation.
    """
    n = count_steps(inputs, n_steps)
    record = _identity if record is None else record
    body = partial(_tangent_body, step, record)
    return jax.lax.scan(body, (state, tangent), inputs, n)[1]


def _tangent_body(step: Step, record, carry, inp):
    x, dx = carry
    x, dx = jax.jvp(partial(_swap, step, inp), (x,), (dx,))
    return (x, dx), jax.jvp(record, (x,), (dx,))


def _identity(x):
    return x


def jacobian(
    step: Step, state: PyTree, inp: Any, mask: Bool[Any, " n"] | None = None
) -> Float[Array, "m m"]:
    """Dense one-step Jacobian ``∂x_{t+1}/∂x_t`` of the flattened state [1].

    Args:
        step: one-step map ``step(state, input) -> state``.
        state: the point (pytree of float arrays, at most `MAX_DENSE` components).
        inp: the input of this step, held fixed.
        mask: boolean over the flattened state; keep only this sub-block.

    Returns:
        ``J[i, j] = ∂x_{t+1,i} / ∂x_{t,j}`` (kept components, `ravel_pytree` order);
        entries carry the ratio of the two components' units (e.g. mV/mM).
    """
    fm = flatten_map(step, state)
    x0 = fm.x0
    if x0.size > MAX_DENSE:
        raise bad_value(
            "state",
            f"{x0.size} components",
            f"<= {MAX_DENSE} for a dense Jacobian",
            "use tangent_step / lyapunov_spectrum (JVPs).",
        )
    idx = mask_indices(mask, x0.size)
    j = jax.jacfwd(fm.step)(x0, inp)  # eager: op caches make repeated calls cheap
    j = check_finite(x0, "state", j)
    return select(select(j, idx).T, idx).T


def jacobian_spectrum(
    step: Step,
    state: PyTree,
    inp: Any,
    *,
    dt: float,
    mask: Bool[Any, " n"] | None = None,
) -> Spectrum:
    """Eigenvalues of `jacobian` and their rates ``log|μ|/dt`` [1/ms].

    Args:
        step: one-step map ``step(state, input) -> state``.
        state: the point (a fixed point for the rates to be Lyapunov exponents).
        inp: the input of this step, held fixed.
        dt: time one step represents [ms].
        mask: boolean over the flattened state; keep only this sub-block.
    """
    dt = check_dt(dt)
    mu = jnp.linalg.eigvals(jacobian(step, state, inp, mask))
    mu = mu[jnp.argsort(-jnp.abs(mu))]
    return Spectrum(mu, jnp.log(jnp.abs(mu)) / dt)  # [1/ms]


def impulse_responses(
    fn: Callable[[Array], PyTree],
    inputs: Float[Any, "T sites"],
    at_step: int = 0,
    n_pulse: int = 1,
) -> PyTree:
    """Linear responses of ``fn(inputs)`` to a unit pulse at each input site (JVP).

    The pulse adds 1 (e.g. 1 nA) at one site for steps ``at_step … at_step +
    n_pulse - 1``; one JVP per site, vmapped.

    Args:
        fn: maps inputs (T, sites) to outputs with leading axis T, e.g.
            ``lambda u: bp.simulate(net, params, s0, u, dt)[1]`` (recordings [mV]).
        inputs: the operating point, e.g. the stimulus [nA], shape (T, sites).
        at_step: first step of the pulse.
        n_pulse: pulse length [steps].

    Returns:
        Responses with a leading site axis: ``out[j]`` is ∂fn/∂(pulse amplitude at
        site j) [output units per input unit, e.g. mV/nA], shape (sites, *fn shape).
    """
    inputs = jnp.asarray(inputs)
    pulses = _unit_pulses(inputs, at_step, n_pulse)
    return jax.vmap(partial(_jvp_along, fn, inputs))(pulses)


def _jvp_along(fn, inputs, pulse):
    return jax.jvp(fn, (inputs,), (pulse,))[1]


def _unit_pulses(inputs: Array, at_step: int, n_pulse: int) -> Array:
    if inputs.ndim != 2:
        raise bad_value(
            "inputs",
            f"array of shape {inputs.shape}",
            "shape (T, sites)",
            "one row per step, one column per site.",
        )
    t, sites = inputs.shape
    if not (0 <= at_step and n_pulse >= 1 and at_step + n_pulse <= t):
        raise bad_value(
            "at_step, n_pulse",
            (at_step, n_pulse),
            f"0 <= at_step, n_pulse >= 1, at_step + n_pulse <= {t}",
            "place the pulse inside the horizon.",
        )
    on = (jnp.arange(t) >= at_step) & (jnp.arange(t) < at_step + n_pulse)
    eye = jnp.eye(sites, dtype=inputs.dtype)  # (site pulsed, site)
    return on[None, :, None].astype(inputs.dtype) * eye[:, None, :]
