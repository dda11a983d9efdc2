"""Held-out evaluation of gain policies against the fixed ``g = 1`` baseline.

Trials come from ``split(key(EVAL_SEED), n)`` (`neuroctl.train.plant.evaluation_keys`),
disjoint from every training key, and the baseline runs on exactly the same trials.
The reduction factor is the ratio of mean current powers (mean over trials of the
per-trial mean of ``I²``, as the seed's table reports), baseline over policy.
"""

import math
from dataclasses import asdict, dataclass

import equinox as eqx
import jax
import numpy as np

from neuroctl.policies import gain
from neuroctl.policies.base import AbstractPolicy
from neuroctl.train import policy as tp
from neuroctl.train.evaluate import chunked, wilson_interval
from neuroctl.train.plant import EVAL_SEED, evaluation_keys


@dataclass(frozen=True)
class Summary:
    """Held-out metrics of one policy (means over trials unless noted)."""

    trials: int  # [1]
    correct: int  # [1]
    accuracy: float  # [1]
    accuracy_ci95: tuple[float, float]  # Wilson score interval [1]
    current_power: float  # mean over trials of the per-trial mean I² [nA²]
    charge: float  # injected charge per trial [pC]
    mean_gain: float  # [1]
    mean_gain_sq: float  # [1]
    cross_entropy: float  # [nats]
    min_margin: float  # smallest readout margin (correct − other) [mV]; < 0: an error
    diverged: int  # trials whose simulation diverged [1]

    def as_dict(self) -> dict:
        return asdict(self)


FIELDS = (  # the per-trial `Episode` fields `run_trials` returns
    "cross_entropy",
    "margin",
    "label",
    "correct",
    "mean_gain_sq",
    "mean_gain",
    "current_power",
    "charge",
    "diverged",
)


@eqx.filter_jit
def _chunk(env, env_params, parts, params, keys):
    eps = jax.vmap(lambda k: tp.episode(env, env_params, parts, params, k))(keys)
    return {f: getattr(eps, f) for f in FIELDS}


def run_trials(
    env,
    env_params,
    policy: AbstractPolicy,
    keys,
    chunk: int = 100,
    progress=False,
    desc: str = "policy",
):
    """Per-trial `Episode` fields as NumPy arrays, evaluated in chunks of `chunk`."""
    parts, params = tp.split(policy)
    return chunked(
        lambda k: _chunk(env, env_params, parts, params, k),
        keys,
        chunk,
        progress,
        desc,
    )


def summarise(trials: dict) -> Summary:
    n = len(trials["correct"])
    correct = int(np.sum(trials["correct"]))
    return Summary(
        trials=n,
        correct=correct,
        accuracy=correct / n,
        accuracy_ci95=wilson_interval(correct, n),
        current_power=float(np.mean(trials["current_power"])),
        charge=float(np.mean(trials["charge"])),
        mean_gain=float(np.mean(trials["mean_gain"])),
        mean_gain_sq=float(np.mean(trials["mean_gain_sq"])),
        cross_entropy=float(np.mean(trials["cross_entropy"])),
        min_margin=float(np.min(trials["margin"])),
        diverged=int(np.sum(trials["diverged"])),
    )


def baseline_policy(env_params, dtype) -> AbstractPolicy:
    """The plant's native input, ``g = 1`` throughout."""
    return gain.baseline_policy(float(env_params.g_max), dtype)


def evaluate(
    env,
    env_params,
    policy: AbstractPolicy,
    n_trials: int = 1000,
    seed: int = EVAL_SEED,
    chunk: int = 100,
    progress: bool = False,
    baseline: Summary | None = None,
) -> dict:
    """Policy and ``g = 1`` baseline on the same held-out trials.

    Returns a JSON-able dict: ``policy`` and ``baseline`` `Summary` dicts,
    ``power_reduction`` (baseline / policy mean current power) and
    ``charge_reduction``, plus ``eval_seed`` and ``trials``.
    """
    keys = evaluation_keys(n_trials, seed)
    pol = summarise(run_trials(env, env_params, policy, keys, chunk, progress))
    if baseline is None:
        base_policy = baseline_policy(env_params, env.config.jnp_dtype)
        baseline = summarise(
            run_trials(
                env, env_params, base_policy, keys, chunk, progress, "g = 1 baseline"
            )
        )
    return comparison(pol, baseline, seed)


def comparison(pol: Summary, baseline: Summary, seed: int = EVAL_SEED) -> dict:
    """The JSON-able policy-vs-baseline dict of `evaluate` from two summaries."""
    return {
        "eval_seed": seed,
        "trials": pol.trials,
        "policy": pol.as_dict(),
        "baseline": baseline.as_dict(),
        "power_reduction": _ratio(baseline.current_power, pol.current_power),
        "charge_reduction": _ratio(baseline.charge, pol.charge),
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf


def gain_trace(env, env_params, policy: AbstractPolicy, key):
    """One recorded trial: gains ``(T,)`` [1] and readouts ``(T, 2)`` [mV] kept."""
    parts, params = tp.split(policy)
    run = eqx.filter_jit(
        lambda k: tp.episode(env, env_params, parts, params, k, record=True)
    )
    return jax.device_get(run(key))


def example_trials(env, env_params, policy: AbstractPolicy, n_trials: int = 2) -> list:
    """Data of `neuroctl.plotting.policy.example_trial_figure` (one dict a trial).

    The first held-out trial of each label, under `policy` and under ``g = 1``.
    """
    from neuroctl.envs.core import episode_keys

    chosen, seen = [], set()
    for k in evaluation_keys(64):  # first trial of each label
        lab = int(env.init_state(episode_keys(k)[0], env_params).mean > 0)
        if lab not in seen:
            seen.add(lab)
            chosen.append(k)
        if len(chosen) == n_trials:
            break
    base = baseline_policy(env_params, env.config.jnp_dtype)
    return [_example(env, env_params, policy, base, key) for key in chosen]


def _example(env, env_params, policy, base, key) -> dict:
    from neuroctl.envs.core import episode_keys
    from neuroctl.envs.evidence_stim import trial_stimulus

    ep = gain_trace(env, env_params, policy, key)
    ep0 = gain_trace(env, env_params, base, key)
    stim = np.asarray(trial_stimulus(env, episode_keys(key)[0], env_params))
    return {
        "t_sim": (np.arange(stim.shape[0]) + 1) * env.config.dt,  # [ms]
        "stimulus": stim,
        "t_ctrl": (np.arange(env.n_steps) + 1) * env.config.control_ms,  # [ms]
        "gains": np.asarray(ep.gains),
        "base_gains": np.asarray(ep0.gains),
        "readouts": np.asarray(ep.readouts),
        "base_readouts": np.asarray(ep0.readouts),
        "substeps": env.config.substeps,
        "label": int(np.sum(stim) > 0),
        "correct": bool(ep.correct),
        "mean_gain_sq": float(ep.mean_gain_sq),
        "window": env.task.response_window_ms,
    }


__all__ = [
    "example_trials",
    "Summary",
    "baseline_policy",
    "comparison",
    "evaluate",
    "gain_trace",
    "run_trials",
    "summarise",
]
