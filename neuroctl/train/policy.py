"""Gain policies on the evidence plant: a recipe for the one BPTT trainer.

`PolicyTrainConfig` names a gain policy (`neuroctl.policies.gain`), the
`EvidenceStim` env it acts in (`make_env`) and the objective; training is
`neuroctl.train.bptt` (the trainer of every env): a batch of keyed closed-loop
trials, each a `lax.scan` over control steps, every step rematerialised
(`jax.checkpoint`: the backward pass stores one network state per control step and
recomputes the 40 solver steps inside it, so memory is O(control steps)), loss =
−(mean episode return).

The objective lives in the env's reward (`make_env` sets its weights), so the
number BPTT minimises is the one an RL agent maximises through the Gymnasium face.
Loss per trial, written out in `episode_loss` (averaged over the batch)::

    CE(ce_scale · readout means, label)             [nats]
      + lambda_gain    · mean_t g_t²                 [1]·[1]
      + lambda_current · mean_t mean_i I_i(t)²       [1/nA²]·[nA²]
      + lambda_charge  · Σ_t Σ_i |I_i(t)|·dt         [1/pC]·[pC]

(means over control steps, so λ does not depend on the control period; FACTS.md's
seed runs used λ_g = 0.1 or λ_I = 5000). ``ce_scale`` [1/mV] sharpens the
cross-entropy: the plant's own loss is CE of the readout means in mV (``ce_scale``
= 1), and on this plant a correctly silenced trial reaches a readout margin of only
~0.5 mV, where that CE is still ~0.47 nats; it keeps buying fractions of a millivolt
with stimulation. ``ce_scale`` = 10 saturates at ~0.3 mV of margin instead.
Adam (optax) with global-norm gradient clipping and an optional cosine decay;
optional truncated BPTT (gradients cut every ``truncation`` control steps).

Randomness, as for the plant (`neuroctl.train.plant`): policy initialisation from
``seed``; the trials of iteration ``i`` from ``fold_in(fold_in(key(seed), 0), i)``;
held-out evaluation from ``key(EVAL_SEED)``, never a training key.
"""

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from neuroctl.envs.evidence_stim import EvidenceStim, EvidenceStimParams
from neuroctl.errors import bad_value
from neuroctl.policies.base import AbstractPolicy, Parts, merge, split
from neuroctl.policies.gain import POLICIES, make_policy
from neuroctl.train import bptt
from neuroctl.train.bptt import TrainState
from neuroctl.train.plant import EVAL_SEED
from neuroctl.typing import Array

# policy kinds that read all five observation entries
FIVE_ENTRY_POLICIES = ("feedback_profile", "tracking_profile")

PyTree = Any


@dataclass(frozen=True)
class PolicyTrainConfig:
    """What fixes a policy-training run's maths (changing a field recompiles)."""

    policy: str = "mlp"  # one of neuroctl.policies.POLICIES
    hidden: int = 16  # hidden units of mlp/gru [1]
    n_bins: int = 52  # time bins of open_loop [1]
    g_max: float = 2.0  # largest gain [1]
    g_init: float = 1.0  # gain of the fresh policy [1]
    seed: int = 0  # policy initialisation and training trials [1]
    batch: int = 8  # trials per gradient [1]
    lr: float = 0.02  # Adam learning rate [1]
    decay_steps: int = 0  # cosine decay to 0.1·lr over this many iterations; 0: none
    clip_norm: float = 1.0  # global gradient-norm clip [1]
    lambda_gain: float = 0.3  # weight of mean_t g_t² [1]
    lambda_current: float = 0.0  # weight of the mean current power [1/nA²]
    lambda_charge: float = 0.0  # weight of the injected charge per trial [1/pC]
    ce_scale: float = 1.0  # readout margin scale inside the CE [1/mV]; 1 = plant's CE
    control_ms: float = 1.0  # control period [ms]
    truncation: int = 0  # truncated BPTT window [control steps]; 0 = full trials
    precision: Literal["float32", "float64"] = "float64"  # policy and solver dtype
    observe_evidence: bool = False  # policy also sees the mean stimulus so far [1]
    observe_stimulus: bool = False  # ... and the latest stimulus sample [1]

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise bad_value(
                "policy", self.policy, f"one of {sorted(POLICIES)}", "pick one."
            )
        for name in ("hidden", "n_bins", "batch"):
            _require(name, getattr(self, name), lambda x: x >= 1, "an integer >= 1")
        if not (isinstance(self.seed, int) and 0 <= self.seed < EVAL_SEED):
            raise bad_value(
                "seed",
                self.seed,
                f"an integer in [0, {EVAL_SEED})",
                f"{EVAL_SEED} is the held-out evaluation seed; pick another.",
            )
        for name in ("lr", "g_max", "control_ms", "clip_norm", "ce_scale"):
            _require(name, getattr(self, name), lambda x: x > 0, "a finite number > 0")
        for name in ("lambda_gain", "lambda_current", "lambda_charge"):
            _require(
                name,
                getattr(self, name),
                lambda x: x >= 0,
                "a finite number >= 0 (a cost weight)",
            )
        for name in ("decay_steps", "truncation"):
            _require(name, getattr(self, name), lambda x: x >= 0, "an integer >= 0")
        if not 0 < self.g_init < self.g_max:
            raise bad_value(
                "g_init", self.g_init, f"in (0, g_max={self.g_max})", "e.g. 1.0."
            )
        for name in ("observe_evidence", "observe_stimulus"):
            if not isinstance(getattr(self, name), bool):
                raise bad_value(
                    name,
                    getattr(self, name),
                    "True or False",
                    f"pass a bool (--{name.replace('_', '-')} on the command line).",
                )
        if self.observe_stimulus and not self.observe_evidence:
            raise bad_value(
                "observe_stimulus",
                True,
                "False unless observe_evidence is True (the sample comes after "
                "the mean stimulus in the observation)",
                "add --observe-evidence, or drop --observe-stimulus.",
            )
        if self.observe_evidence and self.policy == "fixed":
            raise bad_value(
                "observe_evidence",
                True,
                "False for the fixed policy (it reads no observation)",
                "use --policy mlp, gru or open_loop, or drop --observe-evidence.",
            )
        if self.policy in FIVE_ENTRY_POLICIES and not self.observe_stimulus:
            raise bad_value(
                "policy",
                self.policy,
                "a policy whose env observes the readouts, the mean stimulus and "
                f"the latest sample ({self.policy} reads all five entries)",
                "add --observe-evidence --observe-stimulus.",
            )
        if self.precision not in ("float32", "float64"):
            raise bad_value(
                "precision", self.precision, "'float32' or 'float64'", "pick one."
            )

    @classmethod
    def from_spec(cls, spec) -> "PolicyTrainConfig":
        """The config whose env (`make_env`) a shipped policy's `PolicySpec` runs in."""
        return cls(
            policy=spec.policy,
            hidden=spec.hidden,
            n_bins=spec.n_bins,
            g_max=spec.g_max,
            g_init=spec.g_init,
            control_ms=spec.control_ms,
            precision=spec.precision,
            observe_evidence=spec.observe_evidence,
            observe_stimulus=spec.observe_stimulus,
        )

    @property
    def dtype(self):
        return jnp.dtype(self.precision)

    @property
    def n_obs(self) -> int:
        """Entries of the policy's observation [1]: 3, 4 or 5."""
        return 3 + int(self.observe_evidence) + int(self.observe_stimulus)


def _require(name: str, value, ok, expected: str) -> None:
    is_int_field = expected.startswith("an integer")
    valid_type = (
        isinstance(value, int) and not isinstance(value, bool)
        if is_int_field
        else isinstance(value, (int, float)) and math.isfinite(value)
    )
    if not (valid_type and ok(value)):
        raise bad_value(name, value, expected, f"fix --{name.replace('_', '-')}.")


def new_policy(cfg: PolicyTrainConfig, n_steps: int) -> AbstractPolicy:
    """The fresh policy of `cfg` (initialised from ``cfg.seed``).

    `n_steps`: control steps per trial of its env [1] (``env.n_steps``).
    """
    return make_policy(
        cfg.policy,
        n_steps=n_steps,
        seed=cfg.seed,
        hidden=cfg.hidden,
        n_bins=cfg.n_bins,
        g_max=cfg.g_max,
        g_init=cfg.g_init,
        param_dtype=cfg.dtype,
        n_obs=cfg.n_obs,
    )


class Episode(NamedTuple):
    """Per-trial outcome of a closed-loop episode (scalars unless noted).

    Attributes:
        cross_entropy: of the readout means [mV as logits] vs the label [nats].
        margin: readout mean of the correct class minus the other's [mV] (> 0:
            correct).
        label: the trial's class (1: summed evidence > 0) [1].
        correct: 1.0 if the decision was right [1].
        mean_gain_sq: mean over control steps of g² [1].
        mean_gain: mean over control steps of g [1].
        current_power: mean over the trial and cells of I² [nA²].
        charge: injected charge over the trial, all cells [pC].
        diverged: the simulation diverged [bool].
        gains: the gain of every control step, ``(T,)`` [1] (if recorded).
        readouts: readout voltages after every control step, ``(T, 2)`` [mV] (if
            recorded).
    """

    cross_entropy: Array
    margin: Array
    label: Array
    correct: Array
    mean_gain_sq: Array
    mean_gain: Array
    current_power: Array
    charge: Array
    diverged: Array
    gains: Array | None = None
    readouts: Array | None = None


def episode(
    env: EvidenceStim,
    env_params: EvidenceStimParams,
    parts: Parts,
    params: dict,
    key: Array,
    truncation: int = 0,
    record: bool = False,
) -> Episode:
    """One closed-loop trial of ``merge(parts, params)``, summarised (differentiable).

    The trial is `neuroctl.train.bptt.episode` (the one closed-loop rollout the
    trainer differentiates; keys as `rollout`/the Gymnasium face), read off as an
    `Episode`.
    """
    traj = bptt.episode(env, env_params, parts, params, key, truncation)
    info = traj.infos
    gains = info.action[:, 0]  # as applied (clipped to [0, g_max]) [1]
    readouts = jnp.concatenate([traj.obs[1:, :2], traj.final_obs[None, :2]])
    return Episode(
        cross_entropy=jnp.sum(info.task.cross_entropy),  # set on the last step only
        margin=jnp.sum(info.task.margin),
        label=info.task.label[-1],
        correct=jnp.sum(info.task.correct),
        mean_gain_sq=jnp.mean(gains**2),
        mean_gain=jnp.mean(gains),
        current_power=jnp.mean(info.current_power),
        charge=jnp.sum(info.charge),
        diverged=jnp.any(info.diverged),
        gains=gains if record else None,
        readouts=readouts if record else None,
    )


def episode_loss(ep: Episode, cfg: PolicyTrainConfig) -> Array:
    """CE(ce_scale·margin) + λ_g·mean g² + λ_I·mean I² + λ_Q·charge of one trial [1].

    The objective `make_env` puts into the env's reward, written out: on the same
    trial it equals −(episode return) to float rounding (tested), which is what
    the trainer minimises. Two classes: CE of the scaled readout means is
    ``softplus(−ce_scale·margin)``.
    """
    return (
        jax.nn.softplus(-cfg.ce_scale * ep.margin)
        + cfg.lambda_gain * ep.mean_gain_sq
        + cfg.lambda_current * ep.current_power
        + cfg.lambda_charge * ep.charge
    )


def bptt_config(cfg: PolicyTrainConfig) -> bptt.BPTTConfig:
    """The trainer's part of `cfg` (seed, batch, Adam, clipping, truncation)."""
    return bptt.BPTTConfig(
        seed=cfg.seed,
        batch=cfg.batch,
        lr=cfg.lr,
        decay_steps=cfg.decay_steps,
        clip_norm=cfg.clip_norm,
        truncation=cfg.truncation,
    )


def optimizer(cfg: PolicyTrainConfig) -> optax.GradientTransformation:
    """Global-norm clipping, then Adam (cosine-decayed lr if ``decay_steps``)."""
    return bptt.optimizer(cfg.lr, cfg.decay_steps, cfg.clip_norm)


def init_state(cfg: PolicyTrainConfig, n_steps: int) -> tuple[Parts, TrainState]:
    parts, params = split(new_policy(cfg, n_steps))
    return parts, bptt.init_state(params, bptt_config(cfg))


def make_train_step(
    env: EvidenceStim,
    env_params: EvidenceStimParams,
    parts: Parts,
    cfg: PolicyTrainConfig,
):
    """Jitted ``state -> (state, bptt.StepMetrics)``: the one BPTT trainer's step.

    `env_params` must come from `make_env` (its reward carries `cfg`'s objective).
    """
    return bptt.make_train_step(env, env_params, parts, bptt_config(cfg))


def make_env(plant, cfg: PolicyTrainConfig) -> tuple[EvidenceStim, EvidenceStimParams]:
    """The `EvidenceStim` env on `plant` for `cfg`, its reward = −`episode_loss`.

    Period, g_max, dtype and observation from `cfg`; the loss's weights become
    the reward's per-step weights (means over the ``T`` control steps: a weight
    λ on a mean is λ/T on each step): ``energy_cost = λ_I/T``, ``gain_cost =
    λ_g/T``, ``charge_cost = λ_Q`` (the charge is a sum), ``margin_scale =
    ce_scale``.
    """
    env = EvidenceStim.from_plant(
        plant,
        control_ms=cfg.control_ms,
        dtype=cfg.precision,
        observe_evidence=cfg.observe_evidence,
        observe_stimulus=cfg.observe_stimulus,
    )
    n = env.n_steps
    params = eqx.tree_at(
        lambda p: (
            p.g_max,
            p.energy_cost,
            p.gain_cost,
            p.charge_cost,
            p.margin_scale,
        ),
        env.default_params,
        (
            cfg.g_max,
            cfg.lambda_current / n,
            cfg.lambda_gain / n,
            cfg.lambda_charge,
            cfg.ce_scale,
        ),
    )
    return env, env.prepare_params(params)


__all__ = [  # (merge, split, Parts, TrainState: re-exported for the scripts)
    "EVAL_SEED",
    "Episode",
    "Parts",
    "PolicyTrainConfig",
    "TrainState",
    "bptt_config",
    "episode",
    "episode_loss",
    "init_state",
    "make_env",
    "make_train_step",
    "merge",
    "new_policy",
    "optimizer",
    "split",
]
