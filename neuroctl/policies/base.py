"""The policy protocol and the pieces every policy shares.

A policy is a Flax NNX module written for one observation::

    carry = policy.initial_carry()
    carry, action = policy(carry, obs)        # action in the env's action space

``carry`` is the policy's own memory (a GRU's hidden state, an open-loop profile's
step counter; an empty array for memoryless policies), threaded through the
rollout's `lax.scan` explicitly. Batch with `jax.vmap` at the call site.

`AbstractPolicy` is the protocol; the final policies (`neuroctl.policies.networks`)
map observations to an unbounded pre-action ``z`` and then to the env's box with
`ActionBox`: ``a = low + (high − low) · sigmoid(z)``, so every action a policy emits
lies inside the action space (in the env's physical units). Observations enter the
networks through `ObsScale` (``(obs − loc) / scale``, constants measured on the env,
not trained).

`split` / `merge` move between a policy module and the plain pytree of its trainable
parameters (what optax, Orbax and `jax.grad` see).
"""

import abc
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from neuroctl.errors import bad_value
from neuroctl.typing import Array, ArrayLike


class Frozen(nnx.Variable):
    """A policy constant that is stored and restored but never trained."""


class AbstractPolicy(nnx.Module):
    """``(carry, obs) -> (carry, action)``; subclasses are final."""

    @abc.abstractmethod
    def initial_carry(self) -> Array:
        """The policy's memory at the start of an episode."""

    @abc.abstractmethod
    def __call__(self, carry: Array, obs: Array) -> tuple[Array, Array]:
        """The next carry and the action for observation `obs`."""


class ActionBox(nnx.Module):
    """``a = low + (high − low) · sigmoid(z)``: pre-actions into the action space.

    Attributes:
        low, high: the env's action bounds (finite), ``(n_act,)`` [action units].
    """

    def __init__(self, low: ArrayLike, high: ArrayLike, dtype=jnp.float32):
        low, high = np.asarray(low, float), np.asarray(high, float)
        if low.ndim != 1 or low.shape != high.shape:
            raise bad_value(
                "action bounds",
                f"low {low.shape}, high {high.shape}",
                "two vectors of one shape (n_act,)",
                "pass env.action_space(params).low / .high.",
            )
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise bad_value(
                "action bounds", (low, high), "finite values", "bound the action."
            )
        if np.any(high <= low):
            raise bad_value("action bounds", (low, high), "low < high", "fix them.")
        self.low = Frozen(jnp.asarray(low, dtype))
        self.high = Frozen(jnp.asarray(high, dtype))

    @property
    def size(self) -> int:
        """Action entries [1]."""
        return int(self.low.shape[0])

    def __call__(self, z: Array) -> Array:
        return self.low[...] + (self.high[...] - self.low[...]) * jax.nn.sigmoid(z)

    def pre_action(self, action: ArrayLike) -> np.ndarray:
        """``z`` with ``self(z) = action`` (inside the open box), for initial biases."""
        low, high = np.asarray(self.low[...]), np.asarray(self.high[...])
        u = (np.broadcast_to(np.asarray(action, float), low.shape) - low) / (high - low)
        if not np.all((u > 0) & (u < 1)):
            raise bad_value(
                "init_action",
                action,
                f"values strictly inside the action space [{low}, {high}]",
                "pick an interior initial action (e.g. init_fraction=0.5).",
            )
        return np.log(u / (1.0 - u))


class ObsScale(nnx.Module):
    """``(obs − loc) / scale``: observations as O(1) network inputs (not trained).

    Attributes:
        loc, scale: per observation entry, ``(n_obs,)`` [observation units].
    """

    def __init__(self, loc: ArrayLike, scale: ArrayLike, dtype=jnp.float32):
        loc, scale = np.asarray(loc, float), np.asarray(scale, float)
        if loc.ndim != 1 or loc.shape != scale.shape:
            raise bad_value(
                "obs_loc/obs_scale",
                f"shapes {loc.shape}, {scale.shape}",
                "two vectors of the observation's shape (n_obs,)",
                "use neuroctl.train.observation_scale(env, params).",
            )
        if not (np.all(np.isfinite(loc)) and np.all(scale > 0)):
            raise bad_value(
                "obs_scale", scale, "finite loc and scale > 0", "measure them again."
            )
        self.loc = Frozen(jnp.asarray(loc, dtype))
        self.scale = Frozen(jnp.asarray(scale, dtype))

    @property
    def size(self) -> int:
        """Observation entries [1]."""
        return int(self.loc.shape[0])

    def __call__(self, obs: Array) -> Array:
        got = obs.shape[-1] if obs.ndim else 0
        if obs.ndim != 1 or got != self.size:
            raise bad_value(
                "obs",
                f"an observation of shape {obs.shape}",
                f"shape ({self.size},), as the policy was built",
                "use the env (and observation wrapper) the policy was built for; "
                "batch with jax.vmap.",
            )
        return (obs - self.loc[...]) / self.scale[...]


class Parts(NamedTuple):
    """A policy split for training: graph, a template of its trainable state, the rest.

    The trainable parameters travel separately as a pure dict (`split`); `merge`
    puts them back. ``rest`` holds frozen variables (action bounds, scales).
    """

    graphdef: Any
    template: Any  # nnx.State of the nnx.Param variables
    rest: Any


def split(policy: nnx.Module) -> tuple[Parts, dict]:
    """``nnx.split`` into `Parts` and the trainable params as a pure dict."""
    graphdef, params, rest = nnx.split(policy, nnx.Param, ...)
    return Parts(graphdef, params, rest), nnx.to_pure_dict(params)


def merge(parts: Parts, params: dict) -> Any:
    """The policy module with trainable `params` (a pure dict; may be traced)."""
    state = jax.tree.map(lambda x: x, parts.template)  # a fresh State to fill
    nnx.replace_by_pure_dict(state, params)
    return nnx.merge(parts.graphdef, state, parts.rest)


def check_positive_int(name: str, value: Any, fix: str) -> None:
    """Raise unless `value` is an int >= 1 (bools refused)."""
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise bad_value(name, value, "an integer >= 1", fix)


def check_fraction(name: str, value: Any) -> None:
    """Raise unless `value` is a number strictly inside (0, 1)."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and 0 < value < 1
    if not ok:
        raise bad_value(
            name, value, "a number in (0, 1) (position inside the action box)", "0.5"
        )
