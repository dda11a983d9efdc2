"""Policy wrappers: behaviours that compose around any policy, read by field name.

A wrapper is itself an `AbstractPolicy` around an ``inner`` one; it finds the
observation entries it reads by name in the `PolicyIO` it is built for (a missing
field is an error naming it), so it works on every env that observes those
fields. The evidence-gain policies of the shipped plant are compositions::

    profile = OpenLoop(io, n_bins=52)                       # a time profile
    EvidenceSwitch(io, profile)                             # evidence-switched
    EvidenceSwitch(io, CurrentShaping(io, profile))         # current-shaped
    EvidenceSwitch(io, CurrentShaping(io, ReadoutFeedback(io, profile)))
    CurrentTracking(io, ReadoutFeedback(io, profile))       # + books on the current

* `EvidenceSwitch`: the inner action while an observed field (default the mean
  stimulus so far) is negative, else the action's lower bound (no stimulation).
* `CurrentShaping`: for a gain actuator on an observed input stream: the inner
  action is read as the *current* to deliver, in units of the current a sample of
  size `unit` would carry at gain 1; the gain is ``request · unit / (−s)`` while
  the latest sample ``s`` < 0, else the lower bound, clipped to the action box.
* `ReadoutFeedback`: from ``t/T ≥ onset`` on, subtracts ``k · (d − r(t/T))`` from
  the inner action, ``d`` the difference of two observed readouts [mV], ``r`` a
  trained reference trajectory [mV], ``k`` a trained feedback gain [1/mV].
* `CurrentTracking`: `CurrentShaping` and `EvidenceSwitch` that keep books on the
  current delivered (from the next sample) and make up the shortfall, with a
  predicted sample in the division (carry: ``[deficit, gain, sample]``).

Wrappers act on one-entry actions (a gain); `ReadoutFeedback` on any box.
"""

import jax.numpy as jnp
from flax import nnx

from neuroctl.errors import bad_value
from neuroctl.policies.base import AbstractPolicy, check_positive_int
from neuroctl.policies.networks import PolicyIO
from neuroctl.typing import Array

#: the task's mean-sample size |μ| of the evidence plant [1]: its current unit
EVIDENCE_SCALE = 0.005
#: the observation fields the evidence wrappers read by default
MEAN_STIMULUS, STIMULUS, TIME = "mean_stimulus", "stimulus", "t/T"
READOUTS = ("v_readout0", "v_readout1")


def _one_action(io: PolicyIO, who: str) -> tuple[float, float]:
    if len(io.action_low) != 1:
        raise bad_value(
            f"{who}: action",
            f"{len(io.action_low)} entries",
            "one entry (a gain)",
            f"use {who} on a one-input gain actuator.",
        )
    return float(io.action_low[0]), float(io.action_high[0])


def _fields(io: PolicyIO, who: str, *names: str) -> tuple[int, tuple[int, ...]]:
    """``(observation entries, indices of names)``, each name checked."""
    return len(io.obs_fields), tuple(io.field(name, who) for name in names)


def _check_obs(obs, size: int) -> None:
    """Trace-time: JAX would clamp an index past the end of a short observation."""
    if obs.ndim != 1 or obs.shape[0] != size:
        raise bad_value(
            "obs",
            f"an observation of shape {obs.shape}",
            f"shape ({size},), as the policy was built",
            "use the env (and observation wrapper) the policy was built for; "
            "batch with jax.vmap.",
        )


class AbstractPolicyWrapper(AbstractPolicy):
    """A policy around ``inner``; memoryless wrappers pass the inner carry on."""

    inner: AbstractPolicy

    def initial_carry(self) -> Array:
        return self.inner.initial_carry()


class EvidenceSwitch(AbstractPolicyWrapper):
    """The inner action while observed `field` < 0, else the lower bound."""

    def __init__(self, io: PolicyIO, inner: AbstractPolicy, field: str = MEAN_STIMULUS):
        self.size, (self.index,) = _fields(io, "EvidenceSwitch", field)
        self.inner, self.off = inner, tuple(io.action_low)

    def __call__(self, carry, obs):
        _check_obs(obs, self.size)
        carry, action = self.inner(carry, obs)
        off = jnp.asarray(self.off, action.dtype)
        return carry, jnp.where(obs[self.index] < 0.0, action, off)


class CurrentShaping(AbstractPolicyWrapper):
    """Gain = requested current · `unit` / (−sample) while the sample < 0 [1].

    Attributes:
        unit: the sample size whose current at gain 1 is one unit of request [1].
    """

    def __init__(
        self,
        io: PolicyIO,
        inner: AbstractPolicy,
        field: str = STIMULUS,
        unit: float = EVIDENCE_SCALE,
    ):
        self.low, self.high = _one_action(io, "CurrentShaping")
        if not (isinstance(unit, (int, float)) and unit > 0):
            raise bad_value("unit", unit, "a number > 0 [1]", f"{EVIDENCE_SCALE}")
        self.size, (self.index,) = _fields(io, "CurrentShaping", field)
        self.inner, self.unit = inner, unit

    def __call__(self, carry, obs):
        _check_obs(obs, self.size)
        carry, request = self.inner(carry, obs)
        s = obs[self.index]
        neg = s < 0.0
        ratio = self.unit / jnp.where(neg, -s, 1.0)  # no 1/0 in gradients
        gain = jnp.where(neg, jnp.minimum(request * ratio, self.high), self.low)
        return carry, gain


class ReadoutFeedback(AbstractPolicyWrapper):
    """``clip(a − k · (d − r(t/T)), low, high)`` from ``t/T ≥ onset`` on.

    ``d = obs[readouts[0]] − obs[readouts[1]]`` [mV]; ``r``: `n_ref` + 1 points at
    ``t/T = j / n_ref``, interpolated linearly [mV]; ``k`` [1/mV]. Both trained;
    fresh, ``r = 0`` and ``k = 0`` (the inner action, clipped).
    """

    def __init__(
        self,
        io: PolicyIO,
        inner: AbstractPolicy,
        n_ref: int = 520,
        onset: float = 0.8,
        readouts: tuple[str, str] = READOUTS,
        *,
        dtype=jnp.float32,
    ):
        check_positive_int("n_ref", n_ref, "e.g. n_ref=520.")
        if not (isinstance(onset, (int, float)) and 0.0 <= onset <= 1.0):
            raise bad_value(
                "onset", onset, "a fraction of the episode in [0, 1]", "0.8"
            )
        self.inner, self.onset = inner, float(onset)
        self.size, self.index = _fields(io, "ReadoutFeedback", *readouts, TIME)
        self.low, self.high = tuple(io.action_low), tuple(io.action_high)
        self.reference = nnx.Param(jnp.zeros((n_ref + 1,), dtype))  # [mV]
        self.feedback_gain = nnx.Param(jnp.zeros((1,), dtype))  # [1/mV]

    def __call__(self, carry, obs):
        _check_obs(obs, self.size)
        carry, action = self.inner(carry, obs)
        i0, i1, it = self.index
        ref = self.reference[...]
        grid = jnp.linspace(0.0, 1.0, ref.shape[0], dtype=ref.dtype)  # t/T
        error = obs[i0] - obs[i1] - jnp.interp(obs[it], grid, ref)  # [mV]
        on = obs[it] >= self.onset
        target = action - jnp.where(on, self.feedback_gain[...] * error, 0.0)
        low, high = self._bounds(target)
        return carry, jnp.clip(target, low, high)

    def _bounds(self, like):
        if len(self.low) == 1:  # scalars, as a gain's bounds were always applied
            return self.low[0], self.high[0]
        return jnp.asarray(self.low, like.dtype), jnp.asarray(self.high, like.dtype)


class CurrentTracking(AbstractPolicyWrapper):
    """Current shaping and the evidence switch with books on the current delivered.

    Each control period: delivered last period ``q = g_prev · (−(s_prev + s)/2) /
    unit`` (trapezoid); deficit ``D ← D − q`` (0 while the switch is off); request
    ``max(p + tracking_rate · D, 0)`` for the inner action ``p``; gain = request ·
    unit / (−ŝ) with the predicted sample ``ŝ = s + prediction · (s − s_prev)``
    while the switch is on and ŝ < 0, clipped to the box; then ``D ← D + p``. The
    carry is ``(inner carry, [D, g_prev, s_prev])``. ``tracking_rate`` [1/period]
    and ``prediction`` [1] are trained; fresh, both 0: exactly
    ``EvidenceSwitch(CurrentShaping(inner))``.
    """

    def __init__(
        self,
        io: PolicyIO,
        inner: AbstractPolicy,
        unit: float = EVIDENCE_SCALE,
        *,
        dtype=jnp.float32,
    ):
        self.low, self.high = _one_action(io, "CurrentTracking")
        self.inner, self.unit, self.dtype = inner, unit, dtype
        self.size, self.index = _fields(io, "CurrentTracking", MEAN_STIMULUS, STIMULUS)
        self.tracking_rate = nnx.Param(jnp.zeros((1,), dtype))  # [1/period]
        self.prediction = nnx.Param(jnp.zeros((1,), dtype))  # [1]

    def initial_carry(self):
        """``(inner carry, [deficit [1·periods], previous gain [1], sample [1]])``."""
        return self.inner.initial_carry(), jnp.zeros((3,), self.dtype)

    def __call__(self, carry, obs):
        _check_obs(obs, self.size)
        inner_carry, books = carry
        inner_carry, target = self.inner(inner_carry, obs)
        deficit, g_prev, s_prev = books[0], books[1], books[2]
        s, on = obs[self.index[1]], obs[self.index[0]] < 0.0
        delivered = g_prev * (-(s_prev + s) / 2.0) / self.unit  # [1]
        target = jnp.clip(target[0], self.low, self.high)
        deficit = jnp.where(on, deficit - delivered, 0.0)
        request = jnp.maximum(target + self.tracking_rate[0] * deficit, 0.0)
        s_pred = s + self.prediction[0] * (s - s_prev)
        neg = on & (s_pred < 0.0)
        ratio = self.unit / jnp.where(neg, -s_pred, 1.0)  # no 1/0 in gradients
        gain = jnp.where(neg, jnp.minimum(request * ratio, self.high), self.low)
        deficit = deficit + jnp.where(on, target, 0.0)
        books = jnp.stack([deficit, gain, s]).astype(self.dtype)
        return (inner_carry, books), gain[None]


#: wrapper names for `wrap` and ``neuroctl train --wrap``
WRAPPERS = {
    "evidence_switch": EvidenceSwitch,
    "current_shaping": CurrentShaping,
    "readout_feedback": ReadoutFeedback,
    "current_tracking": CurrentTracking,
}


def wrap(policy: AbstractPolicy, io: PolicyIO, names, dtype=jnp.float32):
    """`policy` inside the wrappers `names` (from `WRAPPERS`), innermost first.

    E.g. ``wrap(OpenLoop(io), io, ("readout_feedback", "current_shaping",
    "evidence_switch"))`` is the shipped feedback profile's structure; each wrapper
    takes its defaults (fields by their evidence names).
    """
    for name in names:
        if name not in WRAPPERS:
            raise bad_value("wrap", name, f"one of {sorted(WRAPPERS)}", "pick one.")
        cls = WRAPPERS[name]
        trained = cls in (ReadoutFeedback, CurrentTracking)
        policy = cls(io, policy, dtype=dtype) if trained else cls(io, policy)
    return policy


__all__ = [
    "EVIDENCE_SCALE",
    "WRAPPERS",
    "AbstractPolicyWrapper",
    "CurrentShaping",
    "CurrentTracking",
    "EvidenceSwitch",
    "ReadoutFeedback",
    "wrap",
]
