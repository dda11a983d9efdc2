"""Gain policies for `EvidenceStim`: Flax NNX modules written for one observation.

Every policy maps ``(carry, obs) -> (carry, gain)`` where ``obs`` is the env's
observation ``[v_readout0 [mV], v_readout1 [mV], t/T [1]]`` (``n_obs = 3``, the
seed's), or with the env's ``observe_evidence`` also the mean filtered stimulus so
far [1] (``n_obs = 4``), with ``observe_stimulus`` as well the latest filtered
stimulus sample [1] (``n_obs = 5``), and ``gain`` the action,
shape ``(1,)``, in ``[0, g_max]`` [1] (``g = sigmoid(logit) · g_max``). ``carry`` is
the policy's own memory (the GRU's hidden state; an empty array for memoryless
policies), threaded through the rollout's `lax.scan` explicitly; start it with
`initial_carry()`. Batch with `jax.vmap` at the call site.

* `MLPGain`: the seed's closed-loop policy, ``3 → hidden tanh → 1``.
* `GRUGain`: a GRU cell over the observations, then a linear read-out.
* `OpenLoopGain`: a learned time profile of ``n_bins`` piecewise-constant bins over
  the trial; it reads only ``t/T`` (no feedback), so comparing it with the MLP/GRU
  measures what closing the loop is worth. With ``n_obs = 4`` it is
  *evidence-switched*: the profile applies only while the mean stimulus so far is
  negative (label-0 evidence; the frozen plant answers 1 without input), else 0 —
  the cheapest profile for the trials that need input, with a hand-set switch.
  With ``n_obs = 5`` it is also *current-shaped*: the profile sets the current
  rather than the gain, ``g = p(t) · EVIDENCE_SCALE / (−s)`` while the latest
  sample ``s`` is < 0 (else 0), clipped to ``[0, g_max]``, so the injected current
  is ≈ ``p(t)`` times the current of a mean-strength sample, whatever the noise
  (exactly at the sample read; the gain is held for the control period). For
  a given mean drive a constant current costs the least power (Cauchy–Schwarz);
  gating the noisy stream at a constant gain pays ``E[s²]/E[s]²`` (≈ 1.4 on this
  task) times more.
* `FeedbackProfile`: a current-shaped profile (``n_obs = 5`` only) plus feedback
  on the observed readout difference against a reference trajectory, late in the
  trial: closed loop on top of the cheapest open-loop shape.
* `TrackingProfile`: a `FeedbackProfile` that also tracks the current it
  delivered (from the next sample) and makes up the shortfall at once, with a
  predicted sample in the gain (its carry holds the books).
* `FixedGain`: one gain for the whole trial; ``trainable=False`` is the ``g = 1``
  baseline, ``trainable=True`` finds the cheapest constant gain.

Voltages enter the networks centred and scaled, ``(v − v_ref) / v_scale`` with
``v_ref = −70 mV`` and ``v_scale = 20 mV`` (fixed, not trained), so their inputs are
O(1); the stimulus entries enter as ``s / EVIDENCE_SCALE`` (the task's |μ|). The
output bias starts at ``logit(g_init / g_max)``: a fresh policy applies
``g_init`` (default 1, the plant's native input) wherever it is.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from neuroctl.errors import bad_value

V_REF = -70.0  # voltage centring of the observations [mV]
V_SCALE = 20.0  # voltage scaling of the observations [mV]
EVIDENCE_SCALE = 0.005  # scaling of the stimulus observations (task |μ|) [1]
# [v_readout0 [mV], v_readout1 [mV], t/T [1], (mean stimulus [1], (sample [1]))]
OBS_SIZES = (3, 4, 5)
# FeedbackProfile's onset [t/T]: a constant spec.toml does not record, so shipped
# feedback policies use this one
FEEDBACK_ONSET = 0.8


class Frozen(nnx.Variable):
    """A policy constant that is stored and restored but never trained."""


def _check(name: str, value, ok: bool, expected: str, fix: str) -> None:
    if not ok:
        raise bad_value(name, value, expected, fix)


def _check_gains(g_max: float, g_init: float) -> None:
    _check(
        "g_max",
        g_max,
        isinstance(g_max, (int, float)) and math.isfinite(g_max) and g_max > 0,
        "a finite number > 0 [1]",
        "e.g. g_max=2.0.",
    )
    _check(
        "g_init",
        g_init,
        isinstance(g_init, (int, float)) and 0 < g_init < g_max,
        f"a number in (0, g_max={g_max}) [1]",
        "e.g. g_init=1.0 (the plant's native gain).",
    )


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _check_hidden(hidden: int) -> None:
    _check("hidden", hidden, isinstance(hidden, int) and hidden > 0, "> 0", "16")


def _readout(hidden: int, g_max: float, g_init: float, rngs, param_dtype):
    """``Linear(hidden, 1)`` whose fresh output is ``logit(g_init / g_max)``."""
    return nnx.Linear(
        hidden,
        1,
        rngs=rngs,
        param_dtype=param_dtype,
        kernel_init=nnx.initializers.normal(0.01),
        bias_init=nnx.initializers.constant(_logit(g_init / g_max)),
    )


def _check_obs(n_obs: int) -> None:
    _check(
        "n_obs",
        n_obs,
        n_obs in OBS_SIZES,
        f"one of {OBS_SIZES} (3: readouts and t/T; 4: also the mean stimulus; "
        "5: also the latest stimulus sample)",
        "match the env's observation (observe_evidence=True gives 4, with "
        "observe_stimulus=True 5).",
    )


def features(obs: Float[Array, " n"]) -> Float[Array, " n"]:
    """Network input, O(1): scaled voltages, ``t/T``, scaled stimulus entries.

    Voltages as ``(v − V_REF)/V_SCALE``, ``t/T`` as is, the mean stimulus and the
    latest sample (if observed) as ``s / EVIDENCE_SCALE``.
    """
    v = (obs[:2] - V_REF) / V_SCALE
    return jnp.concatenate([v, obs[2:3], obs[3:] / EVIDENCE_SCALE])


def _check_obs_shape(obs, n_obs: int, exact: bool = True) -> None:
    """Trace-time check: JAX would clamp ``obs[3]`` of a 3-entry observation."""
    got = obs.shape[-1] if obs.ndim else 0
    if got != n_obs if exact else got < n_obs:
        raise bad_value(
            "obs",
            f"an observation of {got} entries",
            f"{n_obs} entries{'' if exact else ' or more'}, as the policy was built",
            "use the env the policy was trained with (observe_evidence=True gives "
            "4 entries, with observe_stimulus=True 5; "
            "PolicyTrainConfig.from_spec rebuilds it for a shipped policy).",
        )


class GainPolicy(nnx.Module):
    """Base: ``g = sigmoid(logit) · g_max``; subclasses compute the logit."""

    g_max: float  # largest gain [1] (static)

    def initial_carry(self) -> Float[Array, " h"]:
        """The policy's memory at the start of a trial (empty if memoryless)."""
        return jnp.zeros((0,), self.dtype)

    def gain(self, logit: Float[Array, " 1"]) -> Float[Array, " 1"]:
        return jax.nn.sigmoid(logit) * self.g_max


class MLPGain(GainPolicy):
    """Closed loop, memoryless: ``obs → Linear(n_obs, h) → tanh → Linear(h, 1)``."""

    def __init__(
        self,
        hidden: int = 16,
        g_max: float = 2.0,
        g_init: float = 1.0,
        *,
        rngs: nnx.Rngs,
        param_dtype=jnp.float32,
        n_obs: int = 3,
    ):
        _check_gains(g_max, g_init)
        _check_hidden(hidden)
        _check_obs(n_obs)
        self.g_max, self.dtype, self.n_obs = float(g_max), param_dtype, n_obs
        self.hidden = nnx.Linear(n_obs, hidden, rngs=rngs, param_dtype=param_dtype)
        self.out = _readout(hidden, g_max, g_init, rngs, param_dtype)

    def __call__(self, carry, obs):
        _check_obs_shape(obs, self.n_obs)
        h = jnp.tanh(self.hidden(features(obs)))
        return carry, self.gain(self.out(h))


class GRUGain(GainPolicy):
    """Closed loop with memory: a GRU cell over the observations, linear read-out."""

    def __init__(
        self,
        hidden: int = 16,
        g_max: float = 2.0,
        g_init: float = 1.0,
        *,
        rngs: nnx.Rngs,
        param_dtype=jnp.float32,
        n_obs: int = 3,
    ):
        _check_gains(g_max, g_init)
        _check_hidden(hidden)
        _check_obs(n_obs)
        self.g_max, self.dtype, self.n_hidden = float(g_max), param_dtype, hidden
        self.n_obs = n_obs
        self.cell = nnx.GRUCell(
            n_obs, hidden, rngs=rngs, param_dtype=param_dtype, dtype=param_dtype
        )
        self.out = _readout(hidden, g_max, g_init, rngs, param_dtype)

    def initial_carry(self):
        return jnp.zeros((self.n_hidden,), self.dtype)

    def __call__(self, carry, obs):
        _check_obs_shape(obs, self.n_obs)
        carry, h = self.cell(carry, features(obs))
        return carry, self.gain(self.out(h))


class OpenLoopGain(GainPolicy):
    """A learned gain per time bin (``n_bins`` equal bins of the trial).

    ``n_obs = 3``: no feedback. ``n_obs = 4``: the profile applies only while the
    observed mean stimulus so far (``obs[3]``) is < 0, else the gain is 0.
    ``n_obs = 5``: as 4, and the profile scales the current: the gain is
    ``p · EVIDENCE_SCALE / (−obs[4])`` while the latest sample ``obs[4]`` < 0, else
    0, clipped to ``[0, g_max]`` (see the module docstring).
    """

    def __init__(
        self,
        n_bins: int = 52,
        g_max: float = 2.0,
        g_init: float = 1.0,
        *,
        rngs: nnx.Rngs | None = None,
        param_dtype=jnp.float32,
        n_obs: int = 3,
    ):
        del rngs  # deterministic initialisation
        _check_gains(g_max, g_init)
        _check("n_bins", n_bins, isinstance(n_bins, int) and n_bins > 0, "> 0", "52")
        _check_obs(n_obs)
        self.g_max, self.dtype, self.n_bins = float(g_max), param_dtype, n_bins
        self.n_obs = n_obs
        self.evidence_switched = n_obs >= 4
        self.current_shaped = n_obs == 5
        self.logits = nnx.Param(
            jnp.full((n_bins,), _logit(g_init / g_max), param_dtype)
        )

    def __call__(self, carry, obs):
        # reads t/T and the stimulus entries it was built for: extra entries are
        # fine, missing ones are not
        _check_obs_shape(obs, self.n_obs, exact=False)
        return carry, self._apply(self._profile(obs), obs)

    def _profile(self, obs) -> Float[Array, " 1"]:
        """The profile's value in the bin of ``t/T`` (``sigmoid · g_max``) [1]."""
        t_frac = jnp.clip(obs[2], 0.0, 1.0)
        k = jnp.minimum((t_frac * self.n_bins).astype(jnp.int32), self.n_bins - 1)
        return self.gain(self.logits[...][k][None])

    def _apply(self, gain, obs) -> Float[Array, " 1"]:
        """Current shaping and the evidence switch (as built) on a profile value."""
        if self.current_shaped:  # current p · EVIDENCE_SCALE whatever the sample
            neg = obs[4] < 0.0
            ratio = EVIDENCE_SCALE / jnp.where(neg, -obs[4], 1.0)  # no 1/0 in grads
            gain = jnp.where(neg, jnp.minimum(gain * ratio, self.g_max), 0.0)
        if self.evidence_switched:
            gain = jnp.where(obs[3] < 0.0, gain, 0.0)
        return gain


class FeedbackProfile(OpenLoopGain):
    """A current-shaped profile corrected by the readouts it observes (closed loop).

    From ``t/T ≥ feedback_onset`` on, the requested current is::

        p'(t) = clip(p(t) − k · (d(t) − r(t)), 0, g_max)      [1]

    with ``d = v_readout0 − v_readout1`` as observed [mV], ``r(t)`` a reference
    trajectory [mV] (``n_ref + 1`` points at ``t/T = j/n_ref``, linearly
    interpolated) and ``k`` the feedback gain [1/mV]; then current shaping and the
    evidence switch act as in `OpenLoopGain` with ``n_obs = 5`` (the only size it
    takes). A readout difference below the reference (the label-0 answer falling
    behind) asks for more hyperpolarising current, one above it for less: the
    feedback evens out the noise of the gated stream, which an open-loop profile
    has to cover with margin (`neuroctl.policies.design` builds one from a
    noise-free design). ``p``, ``r`` and ``k`` are trainable; fresh, ``r = 0`` and
    ``k = 0`` (no feedback).
    """

    def __init__(
        self,
        n_bins: int = 52,
        g_max: float = 2.0,
        g_init: float = 1.0,
        *,
        rngs: nnx.Rngs | None = None,
        param_dtype=jnp.float32,
        n_obs: int = 5,
        n_ref: int = 520,
        feedback_onset: float = FEEDBACK_ONSET,
    ):
        _check(
            "n_obs",
            n_obs,
            n_obs == 5,
            "5 (it reads the readouts, the mean stimulus and the latest sample)",
            "use --observe-evidence --observe-stimulus.",
        )
        _check("n_ref", n_ref, isinstance(n_ref, int) and n_ref > 0, "> 0", "520")
        _check(
            "feedback_onset",
            feedback_onset,
            isinstance(feedback_onset, (int, float)) and 0 <= feedback_onset <= 1,
            "a fraction of the trial in [0, 1]",
            "e.g. 0.8.",
        )
        super().__init__(
            n_bins, g_max, g_init, rngs=rngs, param_dtype=param_dtype, n_obs=5
        )
        self.feedback_onset = float(feedback_onset)
        self.reference = nnx.Param(jnp.zeros((n_ref + 1,), param_dtype))  # [mV]
        self.feedback_gain = nnx.Param(jnp.zeros((1,), param_dtype))  # [1/mV]

    def __call__(self, carry, obs):
        _check_obs_shape(obs, self.n_obs, exact=False)
        return carry, self._apply(jnp.clip(self._target(obs), 0.0, self.g_max), obs)

    def _target(self, obs) -> Float[Array, " 1"]:
        """The profile minus the readout feedback (unclipped) [1]."""
        ref = self.reference[...]
        grid = jnp.linspace(0.0, 1.0, ref.shape[0], dtype=ref.dtype)  # t/T
        error = obs[0] - obs[1] - jnp.interp(obs[2], grid, ref)  # [mV]
        on = obs[2] >= self.feedback_onset
        return self._profile(obs) - jnp.where(on, self.feedback_gain[...] * error, 0.0)


class TrackingProfile(FeedbackProfile):
    """A `FeedbackProfile` that keeps books on the current it delivered (closed loop).

    A gate on the noisy stream cannot deliver while the sample is positive (~6 %
    of the time on a label-0 trial), is clipped at ``g_max`` where the sample is
    small, and holds its gain while the sample moves on: the delivered current
    falls short of the request in bursts that the readouts show only tens of ms
    later, too late near the response window. This policy sees the shortfall one
    control period later, from the new sample, and makes it up:

    * target ``p'(t)`` as in `FeedbackProfile` (profile minus readout feedback);
    * delivered last period ``q = g_prev · (−(s_prev + s)/2) / EVIDENCE_SCALE`` [1]
      (trapezoid over the period, in units of a mean-strength sample's current);
    * deficit ``D ← D − q``, then the request ``max(p' + tracking_rate · D, 0)``
      and ``D ← D + p'`` [1 · control periods];
    * the gain divides the request by a predicted sample ``s + prediction ·
      (s − s_prev)`` (linear extrapolation into the period) instead of ``s``.

    The deficit is 0 while the evidence switch is off (mean stimulus ≥ 0), so
    label-1 trials get nothing. The carry is ``[D, g_prev, s_prev]``. The
    trainable params are those of `FeedbackProfile` plus ``tracking_rate``
    [1/control period] and ``prediction`` [1]; fresh, both are 0 and the policy is
    exactly a `FeedbackProfile`. Written for ``n_obs = 5`` only.
    """

    def __init__(self, *args, **kwargs):  # the arguments of `FeedbackProfile`
        super().__init__(*args, **kwargs)
        param_dtype = self.dtype
        self.tracking_rate = nnx.Param(jnp.zeros((1,), param_dtype))  # [1/period]
        self.prediction = nnx.Param(jnp.zeros((1,), param_dtype))  # [1]

    def initial_carry(self) -> Float[Array, " 3"]:
        """``[deficit [1·periods], previous gain [1], previous sample [1]]``."""
        return jnp.zeros((3,), self.dtype)

    def __call__(self, carry, obs):
        _check_obs_shape(obs, self.n_obs, exact=False)
        deficit, g_prev, s_prev = carry[0], carry[1], carry[2]
        s, on = obs[4], obs[3] < 0.0
        delivered = g_prev * (-(s_prev + s) / 2.0) / EVIDENCE_SCALE  # [1]
        target = jnp.clip(self._target(obs)[0], 0.0, self.g_max)
        deficit = jnp.where(on, deficit - delivered, 0.0)
        request = jnp.maximum(target + self.tracking_rate[0] * deficit, 0.0)
        s_pred = s + self.prediction[0] * (s - s_prev)
        neg = on & (s_pred < 0.0)
        ratio = EVIDENCE_SCALE / jnp.where(neg, -s_pred, 1.0)  # no 1/0 in grads
        gain = jnp.where(neg, jnp.minimum(request * ratio, self.g_max), 0.0)
        deficit = deficit + jnp.where(on, target, 0.0)
        return jnp.stack([deficit, gain, s]).astype(self.dtype), gain[None]


class FixedGain(GainPolicy):
    """One gain for the whole trial: the ``g = 1`` baseline or a trained constant."""

    def __init__(
        self,
        g_init: float = 1.0,
        g_max: float = 2.0,
        trainable: bool = False,
        *,
        rngs: nnx.Rngs | None = None,
        param_dtype=jnp.float32,
    ):
        del rngs
        _check_gains(g_max, g_init)
        self.g_max, self.dtype = float(g_max), param_dtype
        kind = nnx.Param if trainable else Frozen
        self.logit = kind(jnp.full((1,), _logit(g_init / g_max), param_dtype))

    def __call__(self, carry, obs):
        return carry, self.gain(self.logit[...])


POLICIES = {
    "mlp": MLPGain,
    "gru": GRUGain,
    "open_loop": OpenLoopGain,
    "feedback_profile": FeedbackProfile,
    "tracking_profile": TrackingProfile,
    "fixed": FixedGain,
}


def make_policy(
    kind: str,
    *,
    seed: int = 0,
    hidden: int = 16,
    n_bins: int = 52,
    g_max: float = 2.0,
    g_init: float = 1.0,
    param_dtype=jnp.float32,
    n_obs: int = 3,
) -> GainPolicy:
    """A fresh policy of `kind` (one of `POLICIES`), initialised from `seed`.

    ``n_obs`` (mlp, gru, open_loop): 3 for the seed's observation, 4 if the env
    also observes the mean stimulus (open_loop: evidence-switched), 5 if it also
    observes the latest stimulus sample (open_loop: current-shaped;
    feedback_profile and tracking_profile take only 5); the fixed policy reads
    nothing.
    """
    if kind not in POLICIES:
        raise bad_value(
            "policy", kind, f"one of {sorted(POLICIES)}", "pick a known policy kind."
        )
    rngs = nnx.Rngs(seed)
    common = dict(g_max=g_max, g_init=g_init, rngs=rngs, param_dtype=param_dtype)
    if kind in ("mlp", "gru"):
        return POLICIES[kind](hidden, n_obs=n_obs, **common)
    if kind == "open_loop":
        return OpenLoopGain(n_bins, n_obs=n_obs, **common)
    if kind in ("feedback_profile", "tracking_profile"):
        return POLICIES[kind](n_bins, n_obs=n_obs, **common)
    return FixedGain(trainable=True, **common)
