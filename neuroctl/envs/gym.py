"""Adapters from a functional env to Gymnasium and to gymnax-style RL libraries.

* `GymEnv`: a `gymnasium.Env` (NumPy in/out). ``reset(seed=...)`` seeds
  ``self.np_random`` and draws the episode's JAX key from it (`key_from_np_random`);
  step ``t`` then uses ``step_key(k_steps, t)`` exactly as `rollout` does, so the two
  paths compute the same episode for the same key and actions. Reset and step are
  jitted once. How closely the numbers agree is set by the dtype: in float64 the
  rewards agree to ~1e-15 and the observations to their float32 rounding; in a
  float32 env the single jitted step and the scanned rollout round differently and
  spikes amplify it (measured: up to 4.9e-4 mV, ~600 float32 ulps at +48 mV, over a
  50-ms SpikeRateBallStick episode). Compare in float64 where that matters.
* `GymVectorEnv`: a `gymnasium.vector.VectorEnv` running ``jit(vmap(step))`` over
  ``num_envs`` copies, with ``AutoresetMode.SAME_STEP``: a finished sub-env returns
  the first observation of its next episode and its last one in
  ``info["final_obs"]`` (plus ``info["final_info"]``), as `SyncVectorEnv` does.
* `GymnaxAdapter`: the 5-tuple API that rejax and purejaxrl consume
  (``reset(key, params) -> (obs, state)``, ``step(key, state, action, params) ->
  (obs, state, reward, done, info)`` with auto-reset and a dict ``info``), and params
  carrying ``max_steps_in_episode``.

Observations are float32 NumPy arrays in the Gymnasium face (the space's dtype);
rewards are Python floats. Actions are normalised by default (``normalize_actions``),
as Gymnasium's checker and SB3 recommend: the Gymnasium action ``a`` lies in
``[0, 1]`` (spaces with ``low = 0``) or ``[-1, 1]`` and maps affinely onto the env's
physical ``[low, high]``; ``info["action"]`` reports the physical action applied.
"""

import functools
from typing import Any

import equinox as eqx
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from neuroctl.envs.core import (
    AbstractEnv,
    AbstractEnvParams,
    episode_keys,
    step_key,
    tree_where,
)
from neuroctl.envs.spaces import Box
from neuroctl.errors import bad_value
from neuroctl.typing import Array

OBS_DTYPE = np.float32


def key_from_np_random(rng: np.random.Generator) -> Array:
    """A JAX key from two 32-bit words drawn from `rng` (Gymnasium's ``np_random``)."""
    words = rng.integers(0, 2**32, size=2, dtype=np.uint64).astype(np.uint32)
    return jax.random.wrap_key_data(jnp.asarray(words), impl="threefry2x32")


class ActionMap:
    """Affine map from a normalised Gymnasium action to the env's physical `Box`.

    ``[0, 1] → [low, high]`` if every ``low`` is 0, else ``[-1, 1] → [low, high]``;
    the identity when `normalize` is False. Out-of-range and NaN actions map to
    out-of-range / NaN physical actions, which the env clips / zeroes and flags.
    """

    def __init__(self, space: Box, normalize: bool = True):
        self.low = np.asarray(space.low, np.float64)
        self.high = np.asarray(space.high, np.float64)
        self.normalize = bool(normalize)
        self.unit_low = 0.0 if np.all(self.low == 0.0) else -1.0

    def gymnasium_space(self) -> gymnasium.spaces.Box:
        """The action space the Gymnasium face exposes (float32)."""
        if not self.normalize:
            return gymnasium.spaces.Box(
                self.low.astype(OBS_DTYPE), self.high.astype(OBS_DTYPE), dtype=OBS_DTYPE
            )
        shape = self.low.shape
        return gymnasium.spaces.Box(self.unit_low, 1.0, shape, OBS_DTYPE)

    def __call__(self, action, batch: tuple[int, ...] = ()) -> np.ndarray:
        """Physical actions [env units] for Gymnasium ones (shape ``batch + space``)."""
        a = np.asarray(action, np.float64)
        if a.shape != batch + self.low.shape:
            raise bad_value(
                "action",
                f"array of shape {a.shape}",
                f"shape {batch + self.low.shape} (see action_space)",
                "pass one action per env, without extra axes.",
            )
        if not self.normalize:
            return a
        u = (a - self.unit_low) / (1.0 - self.unit_low)  # [0, 1]
        return self.low + u * (self.high - self.low)


def _np_info(info: dict[str, Any]) -> dict[str, Any]:
    """Scalars as Python numbers, arrays as NumPy arrays."""
    out = {}
    for k, v in jax.device_get(info).items():
        v = np.asarray(v)
        out[k] = v.item() if v.ndim == 0 else v
    return out


class GymEnv(gymnasium.Env):
    """A functional env as a `gymnasium.Env` (one episode at a time, NumPy in/out).

    Args:
        env: the functional env.
        params: its params (default: ``env.default_params``); concrete.
        render_mode: only None is supported.
        normalize_actions: expose ``[0, 1]`` / ``[-1, 1]`` actions (see `ActionMap`);
            False exposes the physical space.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        env: AbstractEnv,
        params: AbstractEnvParams | None = None,
        render_mode: str | None = None,
        normalize_actions: bool = True,
    ):
        if render_mode is not None:
            raise bad_value("render_mode", render_mode, "None", "rendering is absent.")
        self.env = env
        self.params = env.prepare_params(params)
        self.action_map = ActionMap(env.action_space(self.params), normalize_actions)
        self.action_space = self.action_map.gymnasium_space()
        self.observation_space = env.observation_space(self.params).to_gymnasium()
        self._state = self._k_steps = None
        self._t, self._done = 0, False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        k_reset, self._k_steps, _ = episode_keys(key_from_np_random(self.np_random))
        obs, self._state = _reset(self.env, k_reset, self.params)
        self._t, self._done = 0, False
        return np.asarray(obs, OBS_DTYPE), {}

    def step(self, action):
        if self._state is None:
            raise gymnasium.error.ResetNeeded("call reset() before step().")
        if self._done:
            raise gymnasium.error.ResetNeeded(
                "the episode has terminated; call reset() before step()."
            )
        action = self.action_map(action)
        key = step_key(self._k_steps, self._t)
        obs, self._state, reward, done, info = _step(
            self.env, key, self._state, action, self.params
        )
        self._t += 1
        obs, reward, done, info = jax.device_get((obs, reward, done, info))
        self._done = bool(done)
        info = _np_info(info)
        return np.asarray(obs, OBS_DTYPE), float(reward), bool(done), False, info


@functools.partial(jax.jit, static_argnums=0)
def _reset(env: AbstractEnv, key, params):
    return env.reset(key, params)


@functools.partial(jax.jit, static_argnums=0)
def _step(env: AbstractEnv, key, state, action, params):
    obs, state, reward, done, info = env.step_env(key, state, action, params)
    return obs, state, reward, done, info.as_dict()


class GymVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` copies of a functional env stepped by one ``jit(vmap(...))``.

    Autoreset mode ``SAME_STEP``. ``info`` holds every `StepInfo` field as an array
    over envs (with Gymnasium's ``_name`` masks), and for finished envs
    ``final_obs`` / ``final_info``.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        env: AbstractEnv,
        num_envs: int,
        params: AbstractEnvParams | None = None,
        normalize_actions: bool = True,
    ):
        if not (isinstance(num_envs, int) and num_envs >= 1):
            raise bad_value("num_envs", num_envs, "an int >= 1", "e.g. 64.")
        self.env, self.num_envs = env, num_envs
        self.params = env.prepare_params(params)
        self.action_map = ActionMap(env.action_space(self.params), normalize_actions)
        self.single_action_space = self.action_map.gymnasium_space()
        self.single_observation_space = env.observation_space(
            self.params
        ).to_gymnasium()
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._state = self._key = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._key, k_reset = jax.random.split(key_from_np_random(self.np_random))
        keys = jax.random.split(k_reset, self.num_envs)
        obs, self._state = _vector_reset(self.env, keys, self.params)
        return np.asarray(obs, OBS_DTYPE), {}

    def step(self, actions):
        if self._state is None:
            raise gymnasium.error.ResetNeeded("call reset() before step().")
        self._key, key = jax.random.split(self._key)
        actions = self.action_map(actions, (self.num_envs,))
        out = _vector_step(self.env, key, self._state, actions, self.params)
        obs, self._state, reward, done, final_obs, info = out
        obs, reward, done, final_obs, info = jax.device_get(
            (obs, reward, done, final_obs, info)
        )
        infos = self._infos(
            done, final_obs, {k: np.asarray(v) for k, v in info.items()}
        )
        return (
            np.asarray(obs, OBS_DTYPE),
            np.asarray(reward, np.float64),
            np.asarray(done, bool),
            np.zeros(self.num_envs, bool),
            infos,
        )

    def _infos(self, done, final_obs, info: dict) -> dict:
        every = np.ones(self.num_envs, bool)
        infos = {**info, **{f"_{k}": every for k in info}}
        if done.any():
            obs = np.full(self.num_envs, None, dtype=object)
            finals = {k: _where_done(done, v) for k, v in info.items()}
            for i in np.flatnonzero(done):
                obs[i] = np.asarray(final_obs[i], OBS_DTYPE)
            infos.update(final_obs=obs, _final_obs=done, _final_info=done)
            infos["final_info"] = {**finals, **{f"_{k}": done for k in finals}}
        return infos


def _where_done(done: np.ndarray, v: np.ndarray) -> np.ndarray:
    """`v` where `done` (``(num_envs,)``), 0 elsewhere.

    `v` may have trailing axes (an action of several entries).
    """
    mask = done.reshape(done.shape + (1,) * (np.ndim(v) - 1))
    return np.where(mask, v, np.zeros_like(v))


@functools.partial(jax.jit, static_argnums=0)
def _vector_reset(env: AbstractEnv, keys, params):
    return jax.vmap(env.reset, in_axes=(0, None))(keys, params)


@functools.partial(jax.jit, static_argnums=0)
def _vector_step(env: AbstractEnv, key, state, actions, params):
    """Batched SAME_STEP autoreset: obs/state of the next episode where done.

    Resets are computed (for all envs, then selected) only on steps where some env
    finished: a `lax.cond` on ``any(done)`` outside the `vmap`.
    """
    n = actions.shape[0]
    k_step, k_reset = jax.random.split(key)
    step = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))
    obs, nxt, reward, done, info = step(
        jax.random.split(k_step, n), state, actions, params
    )

    def with_resets():
        reset = jax.vmap(env.reset, in_axes=(0, None))
        obs_reset, s_reset = reset(jax.random.split(k_reset, n), params)
        where = jax.vmap(tree_where)
        return where(done, obs_reset, obs), where(done, s_reset, nxt)

    obs_out, state_out = jax.lax.cond(done.any(), with_resets, lambda: (obs, nxt))
    return obs_out, state_out, reward, done, obs, info.as_dict()


class GymnaxParams(eqx.Module):
    """Params of `GymnaxAdapter`: the env's params plus the episode length."""

    env: AbstractEnvParams
    max_steps_in_episode: int = eqx.field(static=True)


class GymnaxAdapter(eqx.Module):
    """The gymnax 5-tuple API over a functional env (for rejax, purejaxrl).

    ``step`` auto-resets and returns ``info`` as a dict of arrays; spaces are
    gymnax-like `Box` objects (``low``, ``high``, ``shape``, ``sample``, ``contains``).
    """

    env: AbstractEnv

    @property
    def default_params(self) -> GymnaxParams:
        return GymnaxParams(self.env.default_params, self.env.n_steps)

    @property
    def name(self) -> str:
        return type(self.env).__name__

    @property
    def num_actions(self) -> int:
        return int(np.prod(self.env.action_space().shape))

    def reset(self, key: Array, params: GymnaxParams | None = None):
        return self.env.reset(key, self._env_params(params))

    def step(self, key: Array, state, action, params: GymnaxParams | None = None):
        """Auto-resetting step; an action with the space's size is reshaped to it.

        (rejax squeezes a 1-D continuous action to a scalar; any other size is left
        for the env to reject with a clear error.)
        """
        env_params = self._env_params(params)
        shape = self.env.action_space(env_params).shape
        if jnp.size(action) == int(np.prod(shape)):
            action = jnp.reshape(action, shape)
        obs, state, reward, done, info = self.env.step(key, state, action, env_params)
        return obs, state, reward, done, info.as_dict()

    def action_space(self, params: GymnaxParams | None = None) -> Box:
        return self.env.action_space(self._env_params(params))

    def observation_space(self, params: GymnaxParams | None = None) -> Box:
        return self.env.observation_space(self._env_params(params))

    def _env_params(self, params: GymnaxParams | None) -> AbstractEnvParams:
        return self.env.default_params if params is None else params.env
