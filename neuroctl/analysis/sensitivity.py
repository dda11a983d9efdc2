r"""Directional sensitivities (JVP) and their check against reverse mode (VJP).

For ``y = fn(*args)`` (e.g. recorded voltages [mV] of a rollout as a function of
parameters, stimulus [nA] and initial state) and a direction ``d`` per argument, the
directional derivative is the Jacobian-vector product

.. math::
    \dot y = \sum_a \frac{\partial y}{\partial \text{arg}_a}\, d_a
    \qquad [\text{units of } y \text{ per unit step along } d],

computed in one forward pass (`jax.jvp`, memory independent of the horizon when
``fn`` is a `lax.scan`). For a cotangent ``w`` of the shape of ``y``, the identity
:math:`\langle w, J d \rangle = \langle J^\top w, d \rangle` ties it to reverse
mode; `jvp_vjp_check` evaluates both sides.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from neuroctl.errors import bad_value


class JvpVjpCheck(NamedTuple):
    """Both sides of ``<w, J d> = <Jᵀ w, d>`` and their relative difference [1].

    Attributes:
        forward: ``<w, J d>`` by `jax.jvp` [units of y · units of w].
        reverse: ``<Jᵀ w, d>`` by `jax.vjp` [same].
        rel_error: ``|forward - reverse| / max(|forward|, |reverse|)`` [1]; around
            1e-12 in float64 and 1e-5 in float32 for a correct derivative.
    """

    forward: Float[Array, ""]
    reverse: Float[Array, ""]
    rel_error: Float[Array, ""]


def directional_derivative(
    fn: Callable[..., PyTree], args: tuple, directions: tuple
) -> tuple[PyTree, PyTree]:
    """Outputs of ``fn(*args)`` and their derivative along `directions` (JVP).

    Args:
        fn: any differentiable function, e.g. ``lambda p, stim, s0:
            bp.simulate(net, p, s0, stim, dt)[1]`` (recordings [mV]).
        args: the point, e.g. ``(params, stimulus [nA], initial state)``.
        directions: one tangent pytree per argument (same structure and dtype), or
            None to hold that argument fixed, e.g. ``(dparams, None, None)``.

    Returns:
        ``(fn(*args), J · directions)``; the second in units of the output per unit
        of the direction (mV per mS/cm² along a conductance direction, say).
    """
    return jax.jvp(fn, tuple(args), _tangents(args, directions))


@jax.jit  # one small compile per tree structure instead of many eager ops
def random_direction(key: PRNGKeyArray, tree: PyTree) -> PyTree:
    """A Gaussian direction shaped like `tree`, scaled to unit Euclidean norm [1]."""
    flat, unravel = ravel_pytree(tree)
    d = jax.random.normal(key, flat.shape, flat.dtype)
    return unravel(d / jnp.linalg.norm(d))


def jvp_vjp_check(
    fn: Callable[..., PyTree], args: tuple, directions: tuple, key: PRNGKeyArray
) -> JvpVjpCheck:
    """Compare forward- and reverse-mode derivatives of one random scalar.

    The scalar is ``s = <w, fn(*args)>`` with ``w = random_direction(key, y)``;
    its derivative along `directions` is computed by `jax.jvp` and by `jax.vjp`.

    Args:
        fn: any differentiable function of `args`.
        args: the point.
        directions: one tangent per argument, or None to hold it fixed.
        key: draws the cotangent ``w``.
    """
    tangents = _tangents(args, directions)
    y, y_dot = jax.jvp(fn, tuple(args), tangents)
    w = random_direction(key, y)
    _, vjp = jax.vjp(fn, *args)
    forward = _dot(w, y_dot)
    reverse = sum(
        _dot(g, d) for g, d in zip(vjp(w), directions, strict=True) if d is not None
    )
    scale = jnp.maximum(jnp.maximum(jnp.abs(forward), jnp.abs(reverse)), 1e-300)
    return JvpVjpCheck(forward, reverse, jnp.abs(forward - reverse) / scale)


def _dot(a: PyTree, b: PyTree) -> Array:
    return sum(
        jnp.vdot(x, y)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _tangents(args: tuple, directions: tuple) -> tuple:
    """`directions` with None replaced by zeros; structures checked against args."""
    if len(directions) != len(args):
        raise bad_value(
            "directions",
            f"{len(directions)} entries",
            f"{len(args)} (one per argument, None to hold it fixed)",
            "pass e.g. (dparams, None, None).",
        )
    out = []
    for i, (a, d) in enumerate(zip(args, directions, strict=True)):
        if d is not None and jax.tree.structure(d) != jax.tree.structure(a):
            raise bad_value(
                f"directions[{i}]",
                jax.tree.structure(d),
                f"the structure of args[{i}]: {jax.tree.structure(a)}",
                "build it with random_direction(key, args[i]) or "
                "jax.tree.map on args[i].",
            )
        out.append(jax.tree.map(jnp.zeros_like, a) if d is None else d)
    return tuple(out)
