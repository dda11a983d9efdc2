"""Gymnax-like spaces built from env params: a continuous `Box`.

Spaces are small pytrees, so `action_space(params)` works on traced (vmapped) params;
`Box.to_gymnasium` turns a concrete one into a `gymnasium.spaces.Box` for the
Gymnasium face.
"""

import equinox as eqx
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.typing import Array, ArrayLike


class Box(eqx.Module):
    """Elementwise interval ``[low, high]`` of shape `shape` (in the env's units).

    Attributes:
        low: lower bounds, broadcast to `shape` (may be ``-inf`` for observations).
        high: upper bounds, broadcast to `shape` (may be ``+inf`` for observations).
        shape: shape of one element (static).
    """

    low: Array
    high: Array
    shape: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, low: ArrayLike, high: ArrayLike, shape: tuple[int, ...]):
        self.shape = tuple(int(n) for n in shape)
        self.low = jnp.broadcast_to(jnp.asarray(low), self.shape)
        self.high = jnp.broadcast_to(jnp.asarray(high), self.shape)

    def sample(self, key: Array) -> Array:
        """A uniform draw (finite bounds only, as action spaces have)."""
        u = jax.random.uniform(key, self.shape, self.low.dtype)
        return self.low + u * (self.high - self.low)

    def contains(self, x: ArrayLike) -> Array:
        """True if `x` has this shape and lies within the bounds (NaN is outside)."""
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return jnp.all((x >= self.low) & (x <= self.high))

    def to_gymnasium(self, dtype=np.float32) -> gymnasium.spaces.Box:
        """The same interval as a `gymnasium.spaces.Box` of `dtype` (concrete)."""
        low = np.asarray(self.low, dtype)
        high = np.asarray(self.high, dtype)
        return gymnasium.spaces.Box(low, high, self.shape, dtype)
