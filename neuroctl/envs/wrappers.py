"""Env wrappers: variants of an env without a new env class or a flag inside it.

A wrapper is itself an `AbstractEnv` that holds the env it wraps and delegates
every method it does not change (as gymnax's wrappers and diffrax's
`AbstractWrappedSolver` do), so it composes with the trainer, the rollouts, the
Gymnasium face and other wrappers.

`ObserveFields` chooses which named observation fields a policy sees::

    env = evidence_control(plant)                 # every field: readouts, t/T, ...
    env = ObserveFields(env, ("v_readout0", "v_readout1", "t/T", "mean_stimulus"))
"""

import equinox as eqx
import jax.numpy as jnp

from neuroctl.envs.core import AbstractEnv, ControlConfig
from neuroctl.envs.spaces import Box
from neuroctl.errors import bad_value


class AbstractEnvWrapper(AbstractEnv):
    """An env around `env` that delegates everything; subclasses override parts."""

    env: eqx.AbstractVar[AbstractEnv]

    @property
    def config(self) -> ControlConfig:
        return self.env.config

    @property
    def default_params(self):
        return self.env.default_params

    def check_params(self, params) -> None:
        self.env.check_params(params)

    def action_space(self, params=None) -> Box:
        return self.env.action_space(params)

    def observation_space(self, params=None) -> Box:
        return self.env.observation_space(params)

    def init_state(self, key, params):
        return self.env.init_state(key, params)

    def transition(self, key, state, action, params):
        return self.env.transition(key, state, action, params)

    def observation(self, state, params):
        return self.env.observation(state, params)

    def reward(self, state, action, next_state, energy, params):
        return self.env.reward(state, action, next_state, energy, params)

    def terminal(self, state, params):
        return self.env.terminal(state, params)

    def metrics(self, state, next_state, params):
        return self.env.metrics(state, next_state, params)

    def observation_fields(self) -> tuple[tuple[str, str], ...]:
        return self.env.observation_fields()

    def action_unit(self) -> str:
        return self.env.action_unit()

    def episode_outcome(self, task, alive):
        return self.env.episode_outcome(task, alive)

    def param_aliases(self) -> dict[str, str]:
        return self.env.param_aliases()

    def _diverged(self, state):
        return self.env._diverged(state)

    def _keep(self, state, proposed):
        return self.env._keep(state, proposed)

    @property
    def unwrapped(self) -> AbstractEnv:
        """The innermost env."""
        env = self.env
        while isinstance(env, AbstractEnvWrapper):
            env = env.env
        return env

    def __getattr__(self, name: str):
        # attributes of the wrapped env (e.g. `network`, `readouts`) read through
        if name.startswith("__") or name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)


class ObserveFields(AbstractEnvWrapper):
    """The wrapped env observing only `fields`, in that order.

    Attributes:
        env: the env observing every field.
        fields: names from ``env.observation_fields()`` (static).
    """

    env: AbstractEnv
    fields: tuple[str, ...] = eqx.field(static=True, converter=tuple)

    def __check_init__(self) -> None:
        names = [name for name, _ in self.env.observation_fields()]
        if not self.fields:
            raise bad_value("fields", self.fields, f"some of {names}", "pick fields.")
        for field in self.fields:
            if field not in names:
                raise bad_value(
                    "fields",
                    field,
                    f"a field the env observes: one of {names}",
                    "pick from those (env.observation_fields()).",
                )
        if len(set(self.fields)) != len(self.fields):
            raise bad_value("fields", self.fields, "distinct names", "drop repeats.")

    @property
    def _index(self) -> tuple[int, ...]:
        names = [name for name, _ in self.env.observation_fields()]
        return tuple(names.index(f) for f in self.fields)

    def observation(self, state, params):
        return self.env.observation(state, params)[jnp.asarray(self._index)]

    def observation_space(self, params=None) -> Box:
        full = self.env.observation_space(params)
        index = jnp.asarray(self._index)
        return Box(full.low[index], full.high[index], (len(self.fields),))

    def observation_fields(self) -> tuple[tuple[str, str], ...]:
        units = dict(self.env.observation_fields())
        return tuple((f, units[f]) for f in self.fields)


__all__ = ["AbstractEnvWrapper", "ObserveFields"]
