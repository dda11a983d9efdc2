"""Gradient-safe building blocks for rate functions and gate updates."""

import jax.numpy as jnp

from neuroctl.typing import Array, ArrayLike, FloatLike

#: Exponent arguments are clipped here before `exp` so that neither the value nor the
#: gradient overflows (exp(50) ≈ 5e21 is finite in float32). Rate functions reach it
#: only hundreds of mV outside the physiological range.
MAX_EXPONENT = 50.0

_TAYLOR_BELOW = 1e-2  # |x / y| below which `efun` uses its series


def safe_exp(x: ArrayLike) -> Array:
    """``exp(min(x, MAX_EXPONENT))``: finite value and gradient for any finite `x`."""
    return jnp.exp(jnp.minimum(x, MAX_EXPONENT))


def efun(x: ArrayLike, y: FloatLike) -> Array:
    """``x / (exp(x / y) - 1)``, continuous with finite gradient everywhere.

    This is NEURON's ``vtrap``. At ``x = 0`` it is 0/0 with limit ``y``. For
    ``|x / y| < 1e-2`` we use the series ``y (1 - t/2 + t²/12 - t⁴/720)``
    (``t = x / y``, truncation error < 1e-16 relative), which also keeps the
    gradient free of the cancellation that autodiff of the quotient suffers near 0.
    The inner `where` keeps the untaken branch finite so its gradient is not NaN
    (the double-`where` trick).
    """
    x = jnp.asarray(x)
    t = x / y
    small = jnp.abs(t) < _TAYLOR_BELOW
    t_safe = jnp.where(small, 1.0, t)
    t_clip = jnp.minimum(t_safe, MAX_EXPONENT)
    exact = (t_safe * y) / jnp.expm1(t_clip)
    t_small = jnp.where(small, t, 0.0)  # no overflow of t⁴ in the untaken branch
    series = y * (1.0 - t_small / 2.0 + t_small * t_small / 12.0 - t_small**4 / 720.0)
    return jnp.where(small, series, exact)


def efun_pair(x: ArrayLike, y: FloatLike) -> tuple[Array, Array]:
    """``(efun(x, y), efun(-x, y))`` from one exponential.

    Uses ``efun(-x, y) = x + efun(x, y)`` (since ``x eᵗ/(eᵗ − 1) = x + x/(eᵗ − 1)``).
    Rate pairs of the form ``a·efun(−u, y)``, ``b·efun(u, y)`` then cost one ``expm1``.
    The sum loses relative accuracy only where ``efun(−x)`` is tiny next to ``|x|``
    (``x/y ≲ −15``), where the rate it feeds is negligible against its partner;
    there the rounded sum can come out a few ulp below zero, so it is clamped at 0
    (the true value is always positive) to keep steady states within [0, 1].
    """
    e = efun(x, y)
    return e, jnp.maximum(x + e, 0.0)


def relax(x: ArrayLike, x_inf: ArrayLike, rate: ArrayLike, dt: FloatLike) -> Array:
    """Exponential-Euler step of ``dx/dt = (x_inf - x) · rate`` over `dt` [ms].

    Exact when `x_inf` and `rate` [1/ms] are frozen over the step; unconditionally
    stable. Equivalent to NEURON's ``cnexp`` for gating equations.
    """
    return x_inf + (x - x_inf) * jnp.exp(-dt * rate)


def steady_and_rate(alpha: ArrayLike, beta: ArrayLike) -> tuple[Array, Array]:
    """Steady state ``α/(α+β)`` and relaxation rate ``α+β`` [1/ms] of a gate."""
    total = alpha + beta
    return alpha / total, total
