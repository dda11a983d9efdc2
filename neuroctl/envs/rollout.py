"""Episodes of any functional env with `jax.lax.scan` (closed or open loop).

Keys follow `episode_keys`/`step_key`, as the Gymnasium face does, so a seeded
rollout equals a Gymnasium episode with the same key and actions. Rollouts use
`step_env` (no auto-reset): everything is differentiable, and steps after the first
``done`` are masked out of `Trajectory.alive` and `episode_return`.
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from neuroctl.envs.core import AbstractEnv, StepInfo, episode_keys, step_key

Policy = Callable[[Array, Array], Array]  # (obs, key) -> action
# (carry, obs) -> (carry, action): a policy with memory (neuroctl.policies)
CarryPolicy = Callable[[Any, Array], tuple[Any, Array]]


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


def closed_loop(
    env: AbstractEnv,
    policy: CarryPolicy,
    carry: Any,
    key: Array,
    params=None,
    remat: bool = True,
    truncation: int = 0,
) -> Trajectory:
    """One episode of a policy with memory, ``policy(carry, obs) -> (carry, action)``.

    What BPTT differentiates: with `remat` every control step is rematerialised
    (`jax.checkpoint`), so the backward pass stores one env state per control step
    and recomputes the solver steps inside it; ``truncation > 0`` cuts the gradient
    through the env state and the carry every `truncation` control steps.
    """
    k_reset, k_steps, _ = episode_keys(key)
    obs, state = env.reset(k_reset, params)

    def body(loop, t):
        obs, state, carry = loop
        if truncation:
            state, carry = _cut_gradient((t % truncation) == 0, (state, carry))
        carry, action = policy(carry, obs)
        out = env.step_env(step_key(k_steps, t), state, action, params)
        return (out[0], out[1], carry), (obs, action, *out[2:])

    body = jax.checkpoint(body) if remat else body
    (final_obs, _, _), (obs, actions, rewards, dones, infos) = jax.lax.scan(
        body, (obs, state, carry), jnp.arange(env.n_steps)
    )
    return _trajectory(obs, actions, rewards, dones, infos, final_obs)


def _cut_gradient(cut: Array, tree: Any) -> Any:
    """`tree` with `stop_gradient` on its float leaves where `cut`."""

    def leaf(x):
        if not eqx.is_inexact_array(x):
            return x
        return jnp.where(cut, jax.lax.stop_gradient(x), x)

    return jax.tree.map(leaf, tree)


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
