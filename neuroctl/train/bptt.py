"""One BPTT trainer for any env × policy: the loss is −(the episode return).

The env owns the objective (its `reward`: task outcome and energy terms), so what
BPTT minimises here is exactly what an RL agent maximises through the Gymnasium
face of the same env::

    loss(θ) = −mean_{episodes in batch} Σ_t reward_t                   [1]

One episode is `neuroctl.envs.rollout.closed_loop`: a `lax.scan` over control steps
with every step rematerialised (memory O(control steps), not O(solver steps)) and
optional truncation. The policy (`neuroctl.policies`, Flax NNX) is split once,
outside jit, into its graph and a pure dict of trainable params (`split`); the loss
merges them back inside the trace. Adam (optax) after global-norm clipping, with an
optional cosine decay.

Randomness: the policy is initialised from ``seed``; the episodes of iteration
``i`` come from ``fold_in(fold_in(key(seed), 0), i)`` (`iteration_keys`), so a
resumed run draws the same ones; validation (which parameters a run keeps as its
best) uses ``key(VALIDATION_SEED)`` and held-out evaluation ``key(EVAL_SEED)``
(`neuroctl.train.evaluate`), never a training key.

Spiking plants have cliffs: a small step can silence a cell, and the gradient of a
silent cell no longer points back (measured on SpikeRate-v0: return −13 → −86 in
one step). So a run validates its parameters every few iterations on fixed
validation episodes and keeps the best ones (`make_validation`).
"""

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from neuroctl.envs.core import AbstractEnv
from neuroctl.envs.rollout import Trajectory, closed_loop, episode_return
from neuroctl.errors import bad_value
from neuroctl.policies.base import Parts, merge
from neuroctl.policies.networks import PolicyIO
from neuroctl.train.sharding import Mesh, check_divisible, map_batch
from neuroctl.typing import Array

EVAL_SEED = 2**31 - 1  # root of held-out episodes; never a training seed
PROBE_SEED = 2**31 - 2  # root of the probe episode that scales observations
VALIDATION_SEED = 2**31 - 3  # root of validation episodes (picks, not reports)

PyTree = Any


@dataclass(frozen=True)
class BPTTConfig:
    """What fixes a BPTT run's maths besides the env and policy (recompiles)."""

    seed: int = 0  # policy initialisation and training episodes [1]
    batch: int = 8  # episodes per gradient [1]
    lr: float = 0.01  # Adam learning rate [1]
    decay_steps: int = 0  # cosine decay to 0.1·lr over this many iterations; 0: none
    clip_norm: float = 1.0  # global gradient-norm clip [1]
    truncation: int = 0  # truncated BPTT window [control steps]; 0 = whole episodes

    def __post_init__(self) -> None:
        _integer("seed", self.seed, 0, f"an integer in [0, {PROBE_SEED})")
        if self.seed >= PROBE_SEED:
            raise bad_value(
                "seed",
                self.seed,
                f"< {PROBE_SEED}",
                "it is a reserved evaluation seed.",
            )
        _integer("batch", self.batch, 1, "an integer >= 1")
        for name in ("decay_steps", "truncation"):
            _integer(name, getattr(self, name), 0, "an integer >= 0")
        for name in ("lr", "clip_norm"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and math.isfinite(value) and value > 0
            if not ok or isinstance(value, bool):
                raise bad_value(
                    name,
                    value,
                    "a finite number > 0",
                    f"fix --{name.replace('_', '-')}.",
                )


def _integer(name: str, value: Any, low: int, expected: str) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
        raise bad_value(name, value, expected, f"fix --{name.replace('_', '-')}.")


def optimizer(lr: float, decay_steps: int, clip_norm: float):
    """Global-norm clipping, then Adam (cosine-decayed lr if ``decay_steps``)."""
    schedule = (
        optax.cosine_decay_schedule(lr, decay_steps, alpha=0.1) if decay_steps else lr
    )
    return optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(schedule))


def iteration_keys(seed: int, iteration: Array | int, batch: int) -> Array:
    """The training episodes of `iteration` (a resumed run draws the same ones)."""
    root = jax.random.fold_in(jax.random.key(seed), 0)
    return jax.random.split(jax.random.fold_in(root, iteration), batch)


class TrainState(eqx.Module):
    """Everything a resumed run needs: iteration, params (pure dict), Adam state."""

    step: Array
    params: dict
    opt_state: PyTree


class StepMetrics(NamedTuple):
    """Batch means of one iteration (before the update).

    ``outcome`` holds the batch means of the env's own episode outcome
    (`AbstractEnv.episode_outcome`: e.g. ``correct`` and ``cross_entropy`` of a
    decision task, the rate error of a tracking task); the log writes its entries
    under their own names.
    """

    loss: Array  # −mean return [1]
    episode_return: Array  # [1]
    current_power: Array  # mean over steps of the mean I² [nA²]
    charge: Array  # injected charge per episode [pC]
    action_mean: Array  # mean over steps and action entries [action units]
    grad_norm: Array  # [1]
    diverged: Array  # fraction of episodes [1]
    outcome: dict  # name → batch mean of the env's episode outcome


def batch_metrics(
    env: AbstractEnv, trajs: Trajectory, loss: Array, grads: PyTree
) -> StepMetrics:
    """`StepMetrics` of a batch of trajectories (leading axis: episodes)."""
    outcome = jax.vmap(env.episode_outcome)(trajs.infos.task, trajs.alive)
    return StepMetrics(
        loss=loss,
        episode_return=-loss,
        current_power=jnp.mean(trajs.infos.current_power),
        charge=jnp.mean(jnp.sum(trajs.infos.charge, axis=-1)),
        action_mean=jnp.mean(trajs.infos.action),
        grad_norm=optax.tree.norm(grads),
        diverged=jnp.mean(jnp.any(trajs.infos.diverged, axis=-1)),
        outcome={k: jnp.mean(v) for k, v in outcome.items()},
    )


def episode(
    env: AbstractEnv,
    env_params,
    parts: Parts,
    params: dict,
    key,
    truncation: int = 0,
    remat: bool = True,
) -> Trajectory:
    """One closed-loop episode of ``merge(parts, params)`` (differentiable).

    ``remat=False`` for forward-only use (evaluation): no rematerialisation.
    """
    policy = merge(parts, params)
    return closed_loop(
        env,
        lambda carry, obs: merge(parts, params)(carry, obs),
        policy.initial_carry(),
        key,
        env_params,
        remat=remat,
        truncation=truncation,
    )


def constant_episode(env: AbstractEnv, env_params, action: Array, key) -> Trajectory:
    """One episode holding `action` [action units] throughout (no gradient care)."""
    return closed_loop(
        env, lambda c, o: (c, action), jnp.zeros(0), key, env_params, remat=False
    )


def init_state(params: dict, cfg: BPTTConfig) -> TrainState:
    """Iteration 0: `params` and a fresh optimizer state."""
    opt_state = optimizer(cfg.lr, cfg.decay_steps, cfg.clip_norm).init(params)
    return TrainState(jnp.zeros((), jnp.int32), params, opt_state)


def make_train_step(
    env: AbstractEnv,
    env_params,
    parts: Parts,
    cfg: BPTTConfig,
    mesh: Mesh | None = None,
):
    """Jitted ``state -> (state, StepMetrics)``: one update on a fresh batch.

    With a `mesh` (`neuroctl.train.sharding.data_mesh`) the batch is split over
    its devices (``cfg.batch`` a multiple of their count); the state is replicated.
    """
    opt = optimizer(cfg.lr, cfg.decay_steps, cfg.clip_norm)
    check_divisible("batch", cfg.batch, mesh)
    run = map_batch(
        lambda p, k: episode(env, env_params, parts, p, k, cfg.truncation), mesh
    )

    def batch_loss(params, keys):
        trajs = run(params, keys)
        returns = jax.vmap(episode_return)(trajs)
        return -jnp.mean(returns), trajs

    @jax.jit
    def train_step(state: TrainState):
        keys = iteration_keys(cfg.seed, state.step, cfg.batch)
        (loss, trajs), grads = jax.value_and_grad(batch_loss, has_aux=True)(
            state.params, keys
        )
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        metrics = batch_metrics(env, trajs, loss, grads)
        params = optax.apply_updates(state.params, updates)
        return TrainState(state.step + 1, params, opt_state), metrics

    return train_step


def make_validation(
    env: AbstractEnv, env_params, parts: Parts, keys: Array, mesh: Mesh | None = None
):
    """Jitted ``params -> mean return`` on the fixed episodes `keys` (no gradient).

    With a `mesh`, the episodes are split over its devices (as `make_train_step`).
    """
    check_divisible("validate_episodes", len(keys), mesh)
    run = map_batch(lambda p, k: episode(env, env_params, parts, p, k), mesh)

    @jax.jit
    def validate(params: dict) -> Array:
        trajs = run(params, keys)
        return jnp.mean(jax.vmap(episode_return)(trajs))

    return validate


def validation_keys(n: int) -> Array:
    """Episodes that pick a run's best parameters (neither training nor held-out)."""
    return jax.random.split(jax.random.key(VALIDATION_SEED), n)


def observation_scale(
    env: AbstractEnv, env_params, fraction: float = 0.5, n_episodes: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """``(loc, scale)`` of each observation entry on probe episodes [obs units].

    The probe holds the action ``low + fraction·(high − low)`` on `n_episodes`
    episodes from ``key(PROBE_SEED)`` (disjoint from training and evaluation); loc
    is the mean, scale the standard deviation (entries that stay constant get
    ``max(|loc|, 1)``).
    """
    params = env.prepare_params(env_params)
    space = env.action_space(params)
    action = space.low + fraction * (space.high - space.low)
    keys = jax.random.split(jax.random.key(PROBE_SEED), n_episodes)
    run = jax.jit(jax.vmap(lambda k: constant_episode(env, params, action, k).obs))
    obs = np.asarray(run(keys), np.float64).reshape(-1, space_size(env, params))
    loc, std = obs.mean(axis=0), obs.std(axis=0)
    floor = 1e-6 * np.maximum(np.abs(loc), 1.0)
    scale = np.where(std > floor, std, np.maximum(np.abs(loc), 1.0))
    return loc, scale


def space_size(env: AbstractEnv, params) -> int:
    """Observation entries [1]."""
    return int(env.observation_space(params).shape[0])


def policy_io(env: AbstractEnv, env_params, init_fraction: float = 0.5) -> PolicyIO:
    """The `PolicyIO` of `env`: measured observation scales, action bounds, length."""
    params = env.prepare_params(env_params)
    space = env.action_space(params)
    loc, scale = observation_scale(env, params, init_fraction)
    return PolicyIO(
        obs_loc=tuple(float(x) for x in loc),
        obs_scale=tuple(float(x) for x in scale),
        action_low=tuple(float(x) for x in np.asarray(space.low).ravel()),
        action_high=tuple(float(x) for x in np.asarray(space.high).ravel()),
        n_steps=env.n_steps,
        obs_fields=tuple(name for name, _ in env.observation_fields()),
    )
