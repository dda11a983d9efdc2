"""Final policies for any env: `MLP`, `GRU`, `OpenLoop`, `Constant`.

Each is built for one env's interface, `PolicyIO` (observation size and scaling,
action bounds, episode length), and emits actions inside the action space
(`ActionBox`). A fresh policy applies ``init_action`` everywhere (the output kernel
starts at 0 and the bias at the matching pre-action), so training starts from a
known, safe stimulation.

* `MLP`: ``obs → Linear → tanh → Linear → ActionBox`` (closed loop, memoryless).
* `GRU`: a GRU cell over the observations, then ``Linear → ActionBox`` (memory in
  the carry).
* `OpenLoop`: ``n_bins`` piecewise-constant values over the episode; reads no
  observation, counts control steps in its carry (what closing the loop is worth
  is MLP/GRU minus this).
* `Constant`: one action for the whole episode (trainable).

`build_policy(kind, io, ...)` makes a fresh one from its name (`POLICY_KINDS`).
"""

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from flax import nnx

from neuroctl.errors import bad_value
from neuroctl.policies.base import (
    AbstractPolicy,
    ActionBox,
    ObsScale,
    check_fraction,
    check_positive_int,
)
from neuroctl.typing import Array

POLICY_KINDS = ("mlp", "gru", "open_loop", "constant")


@dataclass(frozen=True)
class PolicyIO:
    """What a policy must know of its env (plain numbers; JSON-able).

    Attributes:
        obs_loc: centre of each observation entry [observation units].
        obs_scale: scale of each observation entry (> 0) [observation units].
        action_low: lower action bounds [action units].
        action_high: upper action bounds [action units].
        n_steps: control steps per episode [1] (`OpenLoop`'s time axis).
        obs_fields: the name of each observation entry (``env.observation_fields``);
            policy wrappers find the entries they read by name. Empty in records
            written before it existed (then no wrapper can be built on it).
    """

    obs_loc: tuple[float, ...]
    obs_scale: tuple[float, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    n_steps: int
    obs_fields: tuple[str, ...] = ()

    def field(self, name: str, reader: str) -> int:
        """The index of observation field `name`, or an error naming it and `reader`."""
        if name not in self.obs_fields:
            raise bad_value(
                f"{reader}: observation field",
                name,
                f"a field of the observation: one of {list(self.obs_fields)}",
                f"observe {name!r} (e.g. ObserveFields(env, (..., {name!r}))) or "
                f"drop {reader}.",
            )
        return self.obs_fields.index(name)

    def init_action(self, fraction: float) -> np.ndarray:
        """``low + fraction · (high − low)`` [action units]."""
        check_fraction("init_fraction", fraction)
        low, high = np.asarray(self.action_low), np.asarray(self.action_high)
        return low + fraction * (high - low)


def _bias_init(z0: np.ndarray):
    """An initializer returning the pre-action `z0` (for output biases)."""

    def init(key, shape, dtype=jnp.float32):
        return jnp.broadcast_to(jnp.asarray(z0, dtype), shape)

    return init


def _readout(hidden: int, box: ActionBox, z0, rngs, dtype) -> nnx.Linear:
    """``Linear(hidden, n_act)`` whose fresh output is exactly `z0` (zero kernel)."""
    return nnx.Linear(
        hidden,
        box.size,
        rngs=rngs,
        param_dtype=dtype,
        kernel_init=nnx.initializers.zeros_init(),
        bias_init=_bias_init(z0),
    )


def _ends(io: PolicyIO, hidden: int, init_fraction: float, rngs, dtype):
    """Input scaling, action box and read-out of a network policy."""
    check_positive_int("hidden", hidden, "e.g. hidden=32.")
    scale = ObsScale(io.obs_loc, io.obs_scale, dtype)
    box = ActionBox(io.action_low, io.action_high, dtype)
    z0 = box.pre_action(io.init_action(init_fraction))
    return scale, box, _readout(hidden, box, z0, rngs, dtype)


class MLP(AbstractPolicy):
    """Closed loop, memoryless: ``obs → Linear(n_obs, h) → tanh → Linear → box``."""

    def __init__(
        self,
        io: PolicyIO,
        hidden: int = 32,
        init_fraction: float = 0.5,
        *,
        rngs: nnx.Rngs,
        dtype=jnp.float32,
    ):
        self.scale, self.box, self.out = _ends(io, hidden, init_fraction, rngs, dtype)
        self.hidden = nnx.Linear(self.scale.size, hidden, rngs=rngs, param_dtype=dtype)
        self.dtype = dtype

    def initial_carry(self) -> Array:
        return jnp.zeros((0,), self.dtype)

    def __call__(self, carry, obs):
        h = jnp.tanh(self.hidden(self.scale(obs)))
        return carry, self.box(self.out(h))


class GRU(AbstractPolicy):
    """Closed loop with memory: ``GRUCell(n_obs, h)``, then ``Linear → box``."""

    def __init__(
        self,
        io: PolicyIO,
        hidden: int = 32,
        init_fraction: float = 0.5,
        *,
        rngs: nnx.Rngs,
        dtype=jnp.float32,
    ):
        self.scale, self.box, self.out = _ends(io, hidden, init_fraction, rngs, dtype)
        self.cell = nnx.GRUCell(self.scale.size, hidden, rngs=rngs, param_dtype=dtype)
        self.n_hidden, self.dtype = hidden, dtype

    def initial_carry(self) -> Array:
        return jnp.zeros((self.n_hidden,), self.dtype)

    def __call__(self, carry, obs):
        carry, h = self.cell(carry, self.scale(obs))
        return carry, self.box(self.out(h))


class OpenLoop(AbstractPolicy):
    """A time profile: bin ``⌊(t / n_steps) · n_bins⌋`` at control step t.

    The elapsed fraction ``t / n_steps`` (at most 1) is rounded to the policy's
    dtype first, as the envs' ``t/T`` observation is. The carry is the
    control-step counter (int32); the observation is not read.
    """

    def __init__(
        self,
        io: PolicyIO,
        n_bins: int = 20,
        init_fraction: float = 0.5,
        *,
        rngs: nnx.Rngs | None = None,
        dtype=jnp.float32,
    ):
        del rngs  # deterministic initialisation
        check_positive_int("n_bins", n_bins, "e.g. n_bins=20.")
        check_positive_int("n_steps", io.n_steps, "the env's control steps.")
        self.box = ActionBox(io.action_low, io.action_high, dtype)
        z0 = self.box.pre_action(io.init_action(init_fraction))
        self.profile = nnx.Param(jnp.tile(jnp.asarray(z0, dtype), (n_bins, 1)))
        self.n_bins, self.n_steps, self.dtype = n_bins, io.n_steps, dtype

    def initial_carry(self) -> Array:
        return jnp.zeros((), jnp.int32)

    def __call__(self, carry, obs):
        del obs  # open loop
        elapsed = jnp.minimum(carry / self.n_steps, 1.0).astype(self.dtype)  # t/T
        k = jnp.minimum((elapsed * self.n_bins).astype(jnp.int32), self.n_bins - 1)
        return carry + 1, self.box(self.profile[...][k])


class Constant(AbstractPolicy):
    """One action for the whole episode (trainable; the carry is empty)."""

    def __init__(
        self,
        io: PolicyIO,
        init_fraction: float = 0.5,
        *,
        rngs: nnx.Rngs | None = None,
        dtype=jnp.float32,
    ):
        del rngs  # deterministic initialisation
        self.box = ActionBox(io.action_low, io.action_high, dtype)
        z0 = self.box.pre_action(io.init_action(init_fraction))
        self.z = nnx.Param(jnp.asarray(z0, dtype))
        self.dtype = dtype

    def initial_carry(self) -> Array:
        return jnp.zeros((0,), self.dtype)

    def __call__(self, carry, obs):
        del obs
        return carry, self.box(self.z[...])


def build_policy(
    kind: str,
    io: PolicyIO,
    *,
    seed: int = 0,
    hidden: int = 32,
    n_bins: int = 20,
    init_fraction: float = 0.5,
    dtype=jnp.float32,
) -> AbstractPolicy:
    """A fresh policy of `kind` (one of `POLICY_KINDS`) for `io`, from `seed`."""
    rngs = nnx.Rngs(seed)
    common = {"init_fraction": init_fraction, "rngs": rngs, "dtype": dtype}
    if kind == "mlp":
        return MLP(io, hidden, **common)
    if kind == "gru":
        return GRU(io, hidden, **common)
    if kind == "open_loop":
        return OpenLoop(io, n_bins, **common)
    if kind == "constant":
        return Constant(io, **common)
    raise bad_value("policy", kind, f"one of {POLICY_KINDS}", "pick one.")
