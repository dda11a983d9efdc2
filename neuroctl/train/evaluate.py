"""Held-out evaluation for any env × policy, and the best constant action by a sweep.

Episodes come from ``split(key(EVAL_SEED), n)`` (`evaluation_keys`), disjoint from
every training key; everything compared runs on the same episodes. Per episode:

* ``return`` — Σ reward up to the first ``done`` [1] (the objective; higher is
  better);
* ``current_power`` — mean over control steps of the step's mean ``I²`` [nA²];
* ``charge`` — injected charge Σ |I|·dt [pC];
* ``action_sq`` — mean over control steps of the mean squared action
  [action units²];
* ``diverged`` — the simulation diverged [bool];
* the env's task outcome (`AbstractEnv.episode_outcome`, e.g. ``correct``,
  ``rate_rmse_hz``).

`summarise` averages them; an outcome named ``correct`` is also reported as an
accuracy with its 95 % Wilson interval. Given a `mesh`
(`neuroctl.train.sharding.data_mesh`), each chunk of episodes is split over its
devices (a short last chunk is padded with repeats, then trimmed).
"""

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.envs.core import AbstractEnv
from neuroctl.envs.rollout import Trajectory, episode_return
from neuroctl.errors import bad_value
from neuroctl.policies.base import Parts
from neuroctl.train.bptt import EVAL_SEED, VALIDATION_SEED, constant_episode, episode
from neuroctl.train.sharding import Mesh, map_batch
from neuroctl.typing import Array


def evaluation_keys(n: int, seed: int = EVAL_SEED) -> Array:
    """Keys of the held-out episodes: ``split(key(seed), n)``."""
    return jax.random.split(jax.random.key(seed), n)


def episode_stats(env: AbstractEnv, traj: Trajectory) -> dict[str, Array]:
    """The per-episode numbers listed in the module docstring."""
    alive = traj.alive
    n = jnp.maximum(jnp.sum(alive), 1)
    info = traj.infos
    action_sq = jnp.mean(info.action.reshape(alive.shape[0], -1) ** 2, axis=-1)
    return {
        "return": episode_return(traj),
        "current_power": jnp.sum(jnp.where(alive, info.current_power, 0.0)) / n,
        "charge": jnp.sum(jnp.where(alive, info.charge, 0.0)),
        "action_sq": jnp.sum(jnp.where(alive, action_sq, 0.0)) / n,
        "diverged": jnp.any(info.diverged),
        **env.episode_outcome(info.task, alive),
    }


@eqx.filter_jit
def _policy_chunk(env, env_params, parts: Parts, params, keys, mesh=None):
    def one(shared, key):
        traj = episode(env, shared[0], parts, shared[1], key, remat=False)
        return episode_stats(env, traj)

    return map_batch(one, mesh, "chunk")((env_params, params), keys)


@eqx.filter_jit
def _constant_chunk(env, env_params, action, keys, mesh=None):
    def one(shared, key):
        return episode_stats(env, constant_episode(env, *shared, key))

    return map_batch(one, mesh, "chunk")((env_params, action), keys)


def chunked(fn, keys: Array, chunk: int, progress: bool, desc: str, mesh=None):
    """``fn(keys) -> dict of per-episode arrays`` over `keys` in chunks of `chunk`.

    NumPy arrays, concatenated; a tqdm bar over chunks if `progress`.
    """
    from tqdm.auto import tqdm

    out = []
    starts = range(0, len(keys), chunk)
    for lo in tqdm(starts, disable=not progress, unit="chunk", desc=desc):
        part = keys[lo : lo + chunk]
        stats = jax.device_get(fn(_padded(part, mesh)))
        out.append({k: v[: len(part)] for k, v in stats.items()})
    return {k: np.concatenate([np.asarray(o[k]) for o in out]) for k in out[0]}


def _padded(keys: Array, mesh: Mesh | None) -> Array:
    """`keys` repeated cyclically to a multiple of `mesh`'s devices (trim after)."""
    short = 0 if mesh is None else -len(keys) % mesh.size
    return keys if not short else keys[jnp.arange(len(keys) + short) % len(keys)]


def run_policy(
    env,
    env_params,
    parts: Parts,
    params,
    keys,
    chunk=64,
    progress=False,
    desc=None,
    mesh: Mesh | None = None,
):
    """Per-episode stats (NumPy arrays) of a split policy on `keys`."""
    params_ = env.prepare_params(env_params)
    return chunked(
        lambda k: _policy_chunk(env, params_, parts, params, k, mesh),
        keys,
        chunk,
        progress,
        desc or "policy",
        mesh,
    )


def run_constant(
    env, env_params, action, keys, chunk=64, progress=False, desc=None, mesh=None
) -> dict:
    """Per-episode stats of the constant `action` [action units] on `keys`."""
    params_ = env.prepare_params(env_params)
    a = jnp.asarray(action, env.config.jnp_dtype)
    return chunked(
        lambda k: _constant_chunk(env, params_, a, k, mesh),
        keys,
        chunk,
        progress,
        desc or "constant",
        mesh,
    )


def summarise(stats: dict) -> dict:
    """Means over episodes (and the accuracy with its Wilson interval) as a dict."""
    n = len(stats["return"])
    out = {"episodes": n}
    for k, v in stats.items():
        v = np.asarray(v, np.float64)
        out[k] = float(np.sum(v)) if k == "diverged" else float(np.mean(v))
    out["return_sem"] = _sem(stats["return"])
    if "correct" in stats:
        correct = int(round(float(np.sum(stats["correct"]))))
        out["correct"] = correct
        out["accuracy"] = correct / n
        out["accuracy_ci95"] = wilson_interval(correct, n)
    return out


def percent_of(stats: dict, reference: dict, key: str) -> tuple[float, float]:
    """Mean ± s.e.m. [%] of ``stats[key]`` as a % of ``reference[key]``, per episode.

    Both are per-episode stats of the same episodes (`run_policy`, `run_constant`):
    e.g. beta power under a controller against the same episodes unstimulated.
    """
    x = 100.0 * np.asarray(stats[key], np.float64) / np.asarray(reference[key])
    if x.ndim != 1 or len(x) < 2:
        raise bad_value(
            f"percent_of: {key}",
            f"shape {x.shape}",
            "per-episode values of at least 2 episodes",
            "pass run_policy/run_constant's stats, not their summary.",
        )
    return float(x.mean()), _sem(x)


def paired_difference(stats: dict, reference: dict, key: str = "return") -> dict:
    """Mean and s.e.m. of ``stats[key] − reference[key]`` over the same episodes.

    Both are per-episode stats of the same episodes (`run_policy`, `run_constant`
    with the same keys). This is the error bar of a comparison: pairing removes
    what both sides share per episode (its trial, its noise draw). Where their
    returns go together over episodes it is far below either side's s.e.m. (a win
    under one side's s.e.m. can be clear); where they do not, it can exceed them
    (SpikeRate-v0, 32 episodes: ±0.0026 against ±0.0013 and ±0.0019). Same
    convention as `summarise` (``std / √(n − 1)``).
    """
    a = np.asarray(stats[key], np.float64)
    b = np.asarray(reference[key], np.float64)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 1:
        raise bad_value(
            f"paired_difference: {key}",
            f"shapes {a.shape} and {b.shape}",
            "per-episode values of the same episodes, one per episode",
            "pass run_policy/run_constant's stats over the same keys.",
        )
    d = a - b
    return {"episodes": len(d), key: float(d.mean()), f"{key}_sem": _sem(d)}


def _sem(x) -> float:
    """Standard error of the mean over episodes, ``std / √(n − 1)`` (0 for one)."""
    return float(np.std(x) / math.sqrt(max(len(x) - 1, 1)))


def comparison(stats: dict, reference: dict, action) -> dict:
    """Report entries of a policy against the constant `action` [action units].

    Both are per-episode stats of the same episodes: each side's `summarise` and
    their `paired_difference` (``policy``, ``best_constant``, ``difference``).
    """
    constant = {"action": np.asarray(action).tolist(), **summarise(reference)}
    return {
        "policy": summarise(stats),
        "best_constant": constant,
        "difference": paired_difference(stats, reference),
    }


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion."""
    if n <= 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def constant_actions(env: AbstractEnv, env_params, fractions: Sequence[float]):
    """Actions ``low + f·(high − low)`` for each fraction `f` [action units]."""
    space = env.action_space(env.prepare_params(env_params))
    low, high = np.asarray(space.low, float), np.asarray(space.high, float)
    return [low + f * (high - low) for f in fractions]


def best_constant(
    env, env_params, fractions: Sequence[float], n_episodes: int, progress=False
) -> tuple[np.ndarray, list[dict]]:
    """The constant action with the highest mean return on validation episodes.

    Sweeps ``low + f·(high − low)`` over `fractions` (the box's diagonal; for a
    symmetric box ``f = 0.5`` is no stimulation) on `n_episodes` episodes from
    ``key(VALIDATION_SEED)`` (neither training nor held-out ones).

    Returns:
        The best action and the sweep (fraction, action, summary) per point.
    """
    keys = evaluation_keys(n_episodes, VALIDATION_SEED)
    sweep = []
    actions = constant_actions(env, env_params, fractions)
    for f, a in zip(fractions, actions, strict=True):
        stats = run_constant(env, env_params, a, keys, progress=progress, desc=f"f={f}")
        sweep.append({"fraction": f, "action": a.tolist(), **summarise(stats)})
    best = max(sweep, key=lambda s: s["return"])
    return np.asarray(best["action"]), sweep


def episode_traces(
    env, env_params, key, parts: Parts | None = None, params=None, action=None
) -> tuple[np.ndarray, np.ndarray]:
    """Applied actions ``(T, n_act)`` and observations ``(T, n_obs)`` of one episode.

    Of the split policy ``(parts, params)``, or of the constant `action`. The
    observations are those each action was chosen from.
    """
    params_ = env.prepare_params(env_params)
    if parts is not None:
        run = eqx.filter_jit(
            lambda k: episode(env, params_, parts, params, k, remat=False)
        )
    else:
        a = jnp.asarray(action, env.config.jnp_dtype)
        run = eqx.filter_jit(lambda k: constant_episode(env, params_, a, k))
    traj = run(key)
    acts = np.asarray(traj.infos.action).reshape(env.n_steps, -1)
    return acts, np.asarray(traj.obs)
