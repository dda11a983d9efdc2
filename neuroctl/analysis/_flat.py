"""Shared plumbing: flatten a pytree step map, masks, and argument checks.

Every analysis works on a one-step map ``step(state, input) -> state`` whose state is
any pytree of float arrays. It is flattened once with `jax.flatten_util.ravel_pytree`
into a vector ``x`` of ``n`` components, in the order of ``jax.tree.leaves(state)``
(for `neuroctl.biophysics.State`: ``v, gates, cai, eca, syn``).
"""

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, PyTree

from neuroctl.errors import ConfigError, bad_value

Step = Callable[[PyTree, Any], PyTree]  # one-step map: (state, input) -> state


class FlatMap(NamedTuple):
    """A step map on flat vectors.

    Attributes:
        x0: the flattened initial state, shape ``(n,)`` [state units].
        step: ``step(x, input) -> x`` on flat vectors.
        unravel: turns a flat vector back into the state pytree.
    """

    x0: Float[Array, " n"]
    step: Callable[[Array, Any], Array]
    unravel: Callable[[Array], PyTree]


def flatten_map(step: Step, state: PyTree) -> FlatMap:
    """Flatten `step` and `state` with `ravel_pytree` (see module docstring)."""
    x0, unravel = ravel_pytree(state)
    return FlatMap(x0, partial(_flat_step, step, unravel), unravel)


def _flat_step(step: Step, unravel, x: Array, inp: Any) -> Array:
    return ravel_pytree(step(unravel(x), inp))[0]


def mask_indices(mask: Bool[Any, " n"] | None, n: int, field: str = "mask"):
    """Static indices of the kept components, or None for 'keep all'."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != (n,) or m.dtype != np.bool_:
        raise bad_value(
            field,
            f"array of shape {m.shape} and dtype {m.dtype}",
            f"a boolean mask of shape ({n},) over the flattened state",
            "build it with `solver_state_mask(net, state)` or from "
            "`ravel_pytree(state)[0]`.",
        )
    return np.flatnonzero(m)


def select(u: Array, idx) -> Array:
    """The kept components of ``u[..., n]`` (all when `idx` is None)."""
    return u if idx is None else u[..., idx]


def embed(u: Array, idx, n: int) -> Array:
    """Put ``u[..., m]`` back at the kept components of zeros ``(..., n)``."""
    if idx is None:
        return u
    return jnp.zeros(u.shape[:-1] + (n,), u.dtype).at[..., idx].set(u)


def check_finite(x: Array, field: str, guard: Array) -> Array:
    """`guard`, after checking that `x` is finite.

    Concrete `x`: raise `ConfigError`. Traced `x` (under jit/vmap): attach an
    `eqx.error_if` to `guard`, an array the caller's result depends on (so the check
    cannot be dead-code eliminated).
    """
    if isinstance(x, jax.core.Tracer):
        return eqx.error_if(guard, ~jnp.all(jnp.isfinite(x)), f"{field}: non-finite")
    bad = np.flatnonzero(~np.isfinite(np.asarray(x)))
    if bad.size:
        raise ConfigError(
            f"{field}: got non-finite values at flat indices {bad[:5].tolist()} "
            f"({bad.size} in all), expected finite numbers; start from a valid state "
            "(e.g. `init_state`) and check the parameters that produced it."
        )
    return guard


def check_dt(dt: float) -> float:
    """`dt` [ms] as a float, or `ConfigError` unless finite and > 0."""
    try:
        value = float(dt)
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and value > 0):
        raise bad_value("dt", dt, "a finite time step > 0 [ms]", "e.g. dt=0.025.")
    return value


def count_steps(inputs: PyTree | None, n_steps: int | None) -> int:
    """The horizon T: the leading axis of `inputs`, or `n_steps` when inputs is None."""
    leaves = jax.tree.leaves(inputs)
    if not leaves:
        if n_steps is None or int(n_steps) < 1:
            raise bad_value(
                "n_steps",
                n_steps,
                "an int >= 1 when inputs is None",
                "pass n_steps=T, or inputs with a leading time axis.",
            )
        return int(n_steps)
    lengths = {int(np.shape(x)[0]) if np.ndim(x) else 0 for x in leaves}
    if len(lengths) != 1 or 0 in lengths or n_steps not in (None, *lengths):
        raise bad_value(
            "inputs",
            f"leaves with leading axes {sorted(lengths)} (n_steps={n_steps})",
            "one leading time axis T >= 1 shared by every leaf",
            "give one row per step and leave n_steps=None.",
        )
    return lengths.pop()
