"""Designed (not learned) current profiles for label-0 trials of the evidence plant.

Why the gain policies stop near ~50-60x less power than ``g = 1``: label-1 trials
cost nothing once a policy reads the evidence stream (the frozen plant answers 1 on
its own), but a label-0 trial needs a hyperpolarising current over the last
~150-200 ms. Before the current starts, a label-0 trial of an evidence-switched,
current-shaped policy receives no input at all, so the network runs the same
deterministic trajectory in every such trial. What remains is an optimal-control
problem on one noise-free trial: the current profile ``p(t) ≥ 0`` [1] (the current
relative to that of a mean-strength sample, as in a current-shaped profile)
that, for a given mean current power, makes the label-0 margin::

    margin = mean_{window} v_readout0 − mean_{window} v_readout1      [mV]

as large as possible. `design_profile` solves it by gradient ascent through the
whole simulation, with the power held fixed by normalisation (``p ← p · √(P/P(p))``,
``p = softplus(q)``; Adam on ``q``). Its margin is a bound for that power: a
perfect, noiseless current source along the input weights does no better from the
same optimiser (``signed=True`` also lets the current depolarise, which gating a
negative stream cannot). A real gate on the noisy stream delivers on average only
`delivery_ratio` of the requested current, with fluctuations; `profile_policy`
compensates the mean and returns the profile as a current-shaped profile policy;
`feedback_policy` adds feedback on the readouts against the profile's noise-free
trajectory (`reference_trajectory`): a feedback profile that evens out the
fluctuations instead of covering them with margin; `tracking_policy` also keeps
books on the current delivered and makes up each shortfall within milliseconds
(a tracking profile), before the readouts could show it.

Units: profile [1]; currents ``I_i = input_scale · w_i · EVIDENCE_SCALE · p`` [nA];
power = mean over time and cells of ``I²`` [nA²] (the env's ``current_power``).
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from neuroctl.errors import bad_value
from neuroctl.plants import evidence_task as et
from neuroctl.policies.base import AbstractPolicy
from neuroctl.policies.gain import (
    EVIDENCE_SCALE,
    FEEDBACK_ONSET,
    TRIAL_STEPS,
    feedback_of,
    make_policy,
    profile_of,
)
from neuroctl.typing import Array, ArrayLike


class Design(NamedTuple):
    """Result of `design_profile`.

    Attributes:
        profile: the designed current profile ``(n_bins,)`` [1].
        margin: its noise-free label-0 margin [mV] (> 0: answered right).
        power: its mean current power [nA²] (the requested one).
        margins: noise-free margin after each iteration [mV].
    """

    profile: np.ndarray
    margin: float
    power: float
    margins: np.ndarray


def _steps_per_bin(plant, n_bins: int) -> int:
    steps = plant.task.n_steps
    if not (isinstance(n_bins, int) and n_bins > 0 and steps % n_bins == 0):
        raise bad_value(
            "n_bins",
            n_bins,
            f"an int > 0 that divides the trial's {steps} solver steps",
            "e.g. 52 (10-ms bins).",
        )
    return steps // n_bins


def profile_stimulus(profile: ArrayLike, steps_per_bin: int) -> Array:
    """The noise-free label-0 stimulus ``(T,)`` [1]: ``−EVIDENCE_SCALE · p`` per bin."""
    return -EVIDENCE_SCALE * jnp.repeat(jnp.asarray(profile), steps_per_bin)


def profile_power(plant, profile: ArrayLike) -> Array:
    """Mean current power [nA²] of a profile (mean over time and cells of ``I²``)."""
    per_unit = (plant.task.input_scale * EVIDENCE_SCALE) ** 2  # [nA²] at p = 1, w = 1
    w2 = jnp.mean(jnp.asarray(plant.input_weights) ** 2)  # [1]
    return per_unit * w2 * jnp.mean(jnp.asarray(profile) ** 2)


def label0_margin(plant, profile: ArrayLike) -> Array:
    """Noise-free label-0 margin [mV]: readout 0 − readout 1 over the window."""
    steps = _steps_per_bin(plant, int(jnp.shape(profile)[0]))
    logits = plant.logits(profile_stimulus(profile, steps))  # [mV]
    return logits[0] - logits[1]


def _normalised(q: Array, plant, power: float, signed: bool) -> Array:
    p = q if signed else jax.nn.softplus(q)
    return p * jnp.sqrt(power / profile_power(plant, p))


def design_profile(
    plant,
    power: float,
    *,
    init: ArrayLike,
    iterations: int = 100,
    lr: float = 0.2,
    signed: bool = False,
    progress: bool = False,
) -> Design:
    """The profile with the largest noise-free label-0 margin at mean power `power`.

    Args:
        plant: an `EvidencePlant` (float64 recommended).
        power: mean current power to spend on a label-0 trial [nA²], > 0.
        init: starting profile ``(n_bins,)`` [1] (only its shape matters): > 0,
            or with `signed` finite and not all 0.
        iterations: Adam steps [1] (lr cosine-decayed to lr/4).
        lr: Adam learning rate on the pre-softplus profile [1].
        signed: allow negative (depolarising) currents: a bound for a
            bidirectional source along the input weights.
        progress: show a tqdm bar.
    """
    from tqdm.auto import tqdm

    _check_design(power, iterations, lr)
    init = np.asarray(init, np.float64)
    _steps_per_bin(plant, init.shape[0])
    if not signed and not np.all(init > 0):
        raise bad_value("init", "a profile", "> 0 in every bin", "add e.g. 1e-4.")
    if not (np.all(np.isfinite(init)) and np.any(init != 0)):
        raise bad_value("init", "a profile", "finite and not all 0", "e.g. 0.2.")
    q = jnp.asarray(init if signed else np.log(np.expm1(init)))

    def loss(q):
        return -label0_margin(plant, _normalised(q, plant, power, signed))

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    opt = optax.adam(optax.cosine_decay_schedule(lr, iterations, 0.25))
    opt_state, margins, best = opt.init(q), [], (-math.inf, q)
    for _ in tqdm(range(iterations), disable=not progress, desc="design", leave=False):
        value, grad = value_and_grad(q)
        margins.append(-float(value))
        if margins[-1] > best[0]:
            best = (margins[-1], q)
        updates, opt_state = opt.update(grad, opt_state)
        q = optax.apply_updates(q, updates)
    profile = np.asarray(_normalised(best[1], plant, power, signed))
    return Design(profile, best[0], float(power), np.asarray(margins))


def _check_design(power, iterations, lr) -> None:
    if not (isinstance(power, (int, float)) and math.isfinite(power) and power > 0):
        raise bad_value("power", power, "a finite number > 0 [nA²]", "e.g. 7e-8.")
    if not (isinstance(iterations, int) and iterations >= 1):
        raise bad_value("iterations", iterations, "an int >= 1", "e.g. 100.")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise bad_value("lr", lr, "a finite number > 0", "e.g. 0.2.")


def delivery_ratio(
    task: et.TaskConfig,
    profile_level: float = 0.4,
    g_max: float = 2.0,
    control_ms: float = 1.0,
    periods: int = 100_000,
    seed: int = 0,
) -> float:
    """Mean current a current-shaped gate delivers per unit requested [1].

    Monte Carlo on the label-0 stream (white noise ``N(−evidence_mean,
    noise_std²)`` through the task's filter, as the env draws it): the gain of a
    control period is ``p · EVIDENCE_SCALE / (−s)`` from the last sample ``s`` of
    the previous period (0 if ``s ≥ 0``), clipped to `g_max`, and held while the
    stimulus moves on. Positive samples and the clip make it < 1 (0.92–0.93 at the
    designed profiles' levels, 0.3–0.5).

    Args:
        task: the plant's task (dt [ms], noise, filter).
        profile_level: requested current ``p`` [1] (matters only through the clip).
        g_max: largest gain [1].
        control_ms: control period [ms].
        periods: control periods drawn [1].
        seed: NumPy seed.
    """
    import scipy.signal

    sub = int(round(control_ms / task.dt))
    rng = np.random.default_rng(seed)
    x = rng.normal(-task.evidence_mean, task.noise_std, (periods + 100) * sub)
    s = scipy.signal.sosfilt(et.filter_sos(task), x)[100 * sub :]  # skip the onset
    s = s.reshape(periods, sub)
    last = s[:-1, -1]
    neg = last < 0
    gain = np.where(neg, profile_level * EVIDENCE_SCALE / np.where(neg, -last, 1.0), 0)
    delivered = -np.minimum(gain, g_max)[:, None] * s[1:]  # [units of a sample]
    return float(np.mean(delivered) / (profile_level * EVIDENCE_SCALE))


def reference_trajectory(plant, profile: ArrayLike, n_ref: int) -> np.ndarray:
    """Noise-free ``v_readout0 − v_readout1`` [mV] at ``t/T = j/n_ref``, j = 0..n_ref.

    The trajectory a label-0 trial follows under `profile` delivered exactly;
    entry ``j`` is the difference after ``j·T/n_ref`` of the trial (0 at the start:
    both readouts start at ``v_init``), what a policy observes at that time.
    """
    steps = plant.task.n_steps
    if not (isinstance(n_ref, int) and n_ref > 0 and steps % n_ref == 0):
        raise bad_value(
            "n_ref", n_ref, f"an int > 0 that divides {steps} solver steps", "520."
        )
    stim = profile_stimulus(profile, _steps_per_bin(plant, len(profile)))
    rec = np.asarray(plant.simulate(stim))  # [mV]
    d = rec[:, 0] - rec[:, 1]
    stride = steps // n_ref
    return np.concatenate([[0.0], d[stride - 1 :: stride]])


def feedback_policy(
    profile: ArrayLike,
    reference: ArrayLike,
    g_max: float,
    delivery: float = 1.0,
    feedback_gain: float = 3.0,
    feedback_onset: float = FEEDBACK_ONSET,
    param_dtype=jnp.float64,
    *,
    n_steps: int = TRIAL_STEPS,
) -> AbstractPolicy:
    """`profile_policy` plus feedback: ``make_policy("feedback_profile")``.

    Args:
        profile: designed profile ``(n_bins,)`` [1].
        reference: `reference_trajectory` of it ``(n_ref + 1,)`` [mV].
        g_max: largest gain [1].
        delivery: `delivery_ratio` (the profile requests ``profile/delivery``).
        feedback_gain: extra current per mV the readout difference is below the
            reference [1/mV].
        feedback_onset: fraction of the trial from which the feedback acts [1].
        param_dtype: parameter dtype.
        n_steps: control steps per trial [1] (the env's ``n_steps``; default:
            520, the 520-ms trial at 1-ms control periods).
    """
    return _designed(
        "feedback_profile",
        profile,
        g_max,
        delivery,
        param_dtype,
        n_steps,
        feedback=(reference, feedback_gain, feedback_onset),
    )


def _designed(kind, profile, g_max, delivery, param_dtype, n_steps, feedback=None):
    """``make_policy(kind)`` requesting ``profile/delivery`` [1].

    `feedback`: (reference [mV], feedback gain [1/mV], onset [t/T]) to set.
    """
    policy = make_policy(
        kind,
        n_steps=n_steps,
        n_bins=len(profile),
        g_max=g_max,
        g_init=min(1.0, g_max / 2),
        param_dtype=param_dtype,
        n_obs=5,
    )
    logits = _request_logits(profile, g_max, delivery, param_dtype)
    profile_of(policy).profile[...] = logits[:, None]
    if feedback is not None:
        reference, gain, onset = feedback
        layer = feedback_of(policy)
        layer.reference = nnx.Param(jnp.asarray(np.asarray(reference), param_dtype))
        layer.feedback_gain[...] = jnp.full((1,), gain, param_dtype)
        layer.onset = float(onset)
    return policy


def tracking_policy(
    profile: ArrayLike,
    reference: ArrayLike,
    g_max: float,
    feedback_gain: float = 3.0,
    tracking_rate: float = 1.0 / 6.0,
    prediction: float = 0.5,
    feedback_onset: float = FEEDBACK_ONSET,
    param_dtype=jnp.float64,
    *,
    n_steps: int = TRIAL_STEPS,
) -> AbstractPolicy:
    """`feedback_policy` that keeps books on its current: ``"tracking_profile"``.

    It requests the profile itself (no `delivery_ratio` mark-up: the shortfall is
    made up as it happens).

    Args:
        profile: designed profile ``(n_bins,)`` [1].
        reference: `reference_trajectory` of it ``(n_ref + 1,)`` [mV].
        g_max: largest gain [1].
        feedback_gain: extra current per mV the readout difference is below the
            reference [1/mV].
        tracking_rate: fraction of the current owed requested per control period
            [1/period] (1/6 at 1-ms periods: made up over ~6 ms).
        prediction: linear extrapolation of the sample into the period [1].
        feedback_onset: fraction of the trial from which the feedback acts [1].
        param_dtype: parameter dtype.
        n_steps: control steps per trial [1] (the env's ``n_steps``; default:
            520, the 520-ms trial at 1-ms control periods).
    """
    for name, value in (("tracking_rate", tracking_rate), ("prediction", prediction)):
        if not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise bad_value(name, value, "a number in [0, 1]", "e.g. 1/6 and 0.5.")
    policy = _designed(
        "tracking_profile",
        profile,
        g_max,
        1.0,
        param_dtype,
        n_steps,
        feedback=(reference, feedback_gain, feedback_onset),
    )
    policy.tracking_rate[...] = jnp.full((1,), tracking_rate, param_dtype)
    policy.prediction[...] = jnp.full((1,), prediction, param_dtype)
    return policy


def profile_policy(
    profile: ArrayLike,
    g_max: float,
    delivery: float = 1.0,
    param_dtype=jnp.float64,
    *,
    n_steps: int = TRIAL_STEPS,
) -> AbstractPolicy:
    """A current-shaped, evidence-switched profile requesting ``profile/delivery``.

    ``make_policy("open_loop", n_obs=5)``; bins with no current request a
    negligible 1e-6 (logits stay finite).
    """
    return _designed("open_loop", profile, g_max, delivery, param_dtype, n_steps)


def _request_logits(profile, g_max: float, delivery: float, param_dtype) -> Array:
    """Profile logits requesting ``profile/delivery`` (≥ 1e-6, < g_max) [1]."""
    if not (isinstance(delivery, (int, float)) and 0 < delivery <= 1):
        raise bad_value(
            "delivery", delivery, "a number in (0, 1]", "see delivery_ratio."
        )
    p = np.clip(np.asarray(profile, np.float64) / delivery, 1e-6, g_max * (1 - 1e-9))
    return jnp.asarray(np.log(p / (g_max - p)), param_dtype)
