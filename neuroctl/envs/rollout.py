"""Episodes of any functional env with `jax.lax.scan` (closed or open loop).

Keys follow `episode_keys`/`step_key`, as the Gymnasium face does, so a seeded
rollout equals a Gymnasium episode with the same key and actions. Rollouts use
`step_env` (no auto-reset): everything is differentiable, and steps after the first
``done`` are masked out of `Trajectory.alive` and `episode_return`.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from neuroctl.envs.core import AbstractEnv, StepInfo, episode_keys, step_key

Policy = Callable[[Array, Array], Array]  # (obs, key) -> action


class Trajectory(eqx.Module):
    """One episode, time-major.

    Attributes:
        obs: observation before each action, ``(T, obs)``.
        actions: actions as given (before NaN-zeroing/clipping), ``(T, act)``.
        rewards: ``(T,)``.
        dones: ``done`` returned by each step, ``(T,)``.
        alive: steps up to and including the first ``done``, ``(T,)``.
        infos: `StepInfo` of each step (leaves with a leading ``T`` axis).
        final_obs: observation after the last step, ``(obs,)``.
    """

    obs: Float[Array, "T obs"]
    actions: Float[Array, "T act"]
    rewards: Float[Array, " T"]
    dones: Bool[Array, " T"]
    alive: Bool[Array, " T"]
    infos: StepInfo
    final_obs: Float[Array, " obs"]


def episode_return(traj: Trajectory) -> Array:
    """Sum of rewards up to and including the first ``done``."""
    return jnp.sum(jnp.where(traj.alive, traj.rewards, 0.0))


def rollout(
    env: AbstractEnv,
    policy: Policy,
    key: Array,
    params=None,
    n_steps: int | None = None,
) -> Trajectory:
    """Run `policy` ``(obs, key) -> action`` for `n_steps` (default: one episode)."""
    k_reset, k_steps, k_policy = episode_keys(key)
    obs, state = env.reset(k_reset, params)

    def body(carry, t):
        obs, state = carry
        action = policy(obs, step_key(k_policy, t))
        out = env.step_env(step_key(k_steps, t), state, action, params)
        return (out[0], out[1]), (obs, action, *out[2:])

    steps = jnp.arange(env.n_steps if n_steps is None else n_steps)
    (final_obs, _), (obs, actions, rewards, dones, infos) = jax.lax.scan(
        body, (obs, state), steps
    )
    return _trajectory(obs, actions, rewards, dones, infos, final_obs)


def rollout_actions(env: AbstractEnv, key: Array, actions: Array, params=None):
    """Open-loop episode: ``actions[t]`` at step ``t``; `actions` is ``(T, act)``."""
    k_reset, k_steps, _ = episode_keys(key)
    obs, state = env.reset(k_reset, params)

    def body(carry, inputs):
        obs, state = carry
        t, action = inputs
        out = env.step_env(step_key(k_steps, t), state, action, params)
        return (out[0], out[1]), (obs, action, *out[2:])

    steps = jnp.arange(jnp.shape(actions)[0])
    (final_obs, _), (obs, acts, rewards, dones, infos) = jax.lax.scan(
        body, (obs, state), (steps, jnp.asarray(actions))
    )
    return _trajectory(obs, acts, rewards, dones, infos, final_obs)


def _trajectory(obs, actions, rewards, dones, infos, final_obs) -> Trajectory:
    before = jnp.cumsum(dones) - dones  # dones strictly before each step
    return Trajectory(
        obs=obs,
        actions=actions,
        rewards=rewards,
        dones=dones,
        alive=before == 0,
        infos=infos,
        final_obs=final_obs,
    )
