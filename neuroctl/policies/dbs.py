"""Classical closed-loop DBS controllers as policies (for `BetaSuppression-v0`).

Each is a final `AbstractPolicy` (``(carry, obs) -> (carry, action)``), built for
one env's `PolicyIO` and reading the observation fields it needs by name, so it
runs through the same rollout (`neuroctl.train.bptt.episode`) and held-out
evaluation (`neuroctl.train.evaluate`) as a learned MLP or GRU. Actions are DBS
amplitudes in the env's action unit ([nA] somatic, [µA] extracellular; one
charge-balanced biphasic pulse per control period, ~130 Hz), the same amplitude on
every electrode group, clipped to the action box. The open-loop and on/off
amplitudes may be negative: the sign picks the polarity of the leading phase
(with ``stimulation="extracellular"``, ``A < 0`` leads with the cathodic phase).
Every tunable is a `Frozen` array (not trained, but traced), so a grid of settings
of one controller compiles once.

* `HighFrequencyDBS` (open loop): amplitude ``A`` every control period: continuous
  130-Hz DBS; ``A = 0`` is no stimulation.
* `OnOffDBS` (Little et al. 2013): ``A`` while the beta envelope ``b`` exceeds a
  threshold ``θ``, held on for at least ``hold`` control periods after the last
  crossing (carry: periods of hold left).
* `ProportionalIntegralDBS` (Fleming et al. 2020): ``e = b − b*`` [nV];
  ``u_I ← clip(u_I + K_i·e·Δt, 0, A_max)`` (the integral term, clamped: anti-windup);
  ``A = clip(K_p·e + u_I, 0, A_max)`` (carry: ``u_I`` [nA]).
* `PhaseLockedDBS`: the phase ``φ`` of the band-passed beta signal ``y = a·cos φ``
  from two samples ``Δ`` apart (``y₀ = a cos φ``, ``y₁ = a cos(φ − ωΔ)`` at the
  band's centre ``ω``): ``a sin φ = (y₁ − y₀ cos ωΔ) / sin ωΔ``; a pulse of ``A``
  when ``cos(φ − φ*) ≥ cos(w/2)`` (within a window ``w`` around the target phase
  ``φ*``; ``φ* = −π/2`` is the rising zero crossing, 0 the peak) and the envelope
  exceeds ``θ`` (0: always armed).

References:
    Little et al., Ann. Neurol. 74:449-457 (2013) (adaptive DBS, beta threshold).
    Fleming et al., Front. Neurosci. 14:166 (2020) (PI control of beta).
    Rosin et al., Neuron 72:370-384 (2011); Holt et al., J. Neurosci. 39 (2019)
    (phase-locked stimulation).
"""

import math

import jax.numpy as jnp
import numpy as np

from neuroctl.errors import bad_value
from neuroctl.policies.base import AbstractPolicy, Frozen
from neuroctl.policies.networks import PolicyIO
from neuroctl.typing import Array

ENVELOPE, BETA_NOW = "beta_envelope", "beta_lag0"  # observation fields read [nV]


def _frozen(value: float, dtype) -> Frozen:
    return Frozen(jnp.asarray(value, dtype))


def _check_finite(who: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise bad_value(f"{who}: {name}", value, "a finite number", "fix it.")


def _check_nonnegative(who: str, **values: float) -> None:
    for name, value in values.items():
        ok = isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
        if not ok:
            raise bad_value(f"{who}: {name}", value, "a finite number >= 0", "fix it.")


class _DBSPolicy(AbstractPolicy):
    """Shared: the action box and the broadcast of one amplitude to every group."""

    def _box(self, io: PolicyIO, dtype) -> None:
        self.low = Frozen(jnp.asarray(io.action_low, dtype))  # [nA]
        self.high = Frozen(jnp.asarray(io.action_high, dtype))  # [nA]
        self.dtype = dtype

    def _action(self, amplitude: Array) -> Array:
        """`amplitude` [nA] on every electrode group, clipped to the box."""
        a = jnp.broadcast_to(amplitude, self.low.shape)
        return jnp.clip(a, self.low[...], self.high[...])

    def initial_carry(self) -> Array:
        return jnp.zeros((0,), self.dtype)


class HighFrequencyDBS(_DBSPolicy):
    """Open-loop DBS: amplitude ``A`` [nA] every control period (module docstring)."""

    def __init__(self, io: PolicyIO, amplitude: float, dtype=jnp.float32):
        _check_finite("HighFrequencyDBS", amplitude=amplitude)
        self._box(io, dtype)
        self.amplitude = _frozen(amplitude, dtype)  # [nA]

    def __call__(self, carry, obs):
        del obs  # open loop
        return carry, self._action(self.amplitude[...])


class OnOffDBS(_DBSPolicy):
    """Adaptive on/off DBS on a beta-envelope threshold (Little et al. 2013).

    On at ``amplitude`` [nA] for ``hold`` control periods [1] from every period
    whose observed envelope exceeds ``threshold`` [nV]; off otherwise. The carry is
    the number of on-periods left (float).
    """

    def __init__(
        self,
        io: PolicyIO,
        amplitude: float,
        threshold: float,
        hold: int = 1,
        dtype=jnp.float32,
    ):
        _check_finite("OnOffDBS", amplitude=amplitude)
        _check_nonnegative("OnOffDBS", threshold=threshold)
        if not (isinstance(hold, int) and hold >= 1):
            raise bad_value("OnOffDBS: hold", hold, "an integer >= 1", "e.g. 3.")
        self._box(io, dtype)
        self.envelope = io.field(ENVELOPE, "OnOffDBS")
        self.amplitude = _frozen(amplitude, dtype)  # [nA]
        self.threshold = _frozen(threshold, dtype)  # [nV]
        self.hold = _frozen(hold, dtype)  # [control periods]

    def initial_carry(self) -> Array:
        return jnp.zeros((), self.dtype)

    def __call__(self, carry, obs):
        above = obs[self.envelope] > self.threshold[...]
        left = jnp.where(above, self.hold[...], carry)  # periods on, from now [1]
        on = left > 0
        return jnp.maximum(left - 1.0, 0.0), self._action(
            jnp.where(on, self.amplitude[...], 0.0)
        )


class ProportionalIntegralDBS(_DBSPolicy):
    """PI control of the beta envelope (Fleming et al. 2020; module docstring).

    Args:
        io: the env's interface.
        target: envelope set point ``b*`` [nV].
        kp: proportional gain [nA/nV].
        ki: integral gain [nA/(nV·s)].
        max_amplitude: ``A_max`` [nA] (the amplitude and integral term's bound).
        period_ms: the control period ``Δt`` [ms].
    """

    def __init__(
        self,
        io: PolicyIO,
        target: float,
        kp: float,
        ki: float,
        max_amplitude: float,
        period_ms: float,
        dtype=jnp.float32,
    ):
        _check_nonnegative(
            "ProportionalIntegralDBS",
            target=target,
            kp=kp,
            ki=ki,
            max_amplitude=max_amplitude,
            period_ms=period_ms,
        )
        self._box(io, dtype)
        self.envelope = io.field(ENVELOPE, "ProportionalIntegralDBS")
        self.target = _frozen(target, dtype)  # [nV]
        self.kp = _frozen(kp, dtype)  # [nA/nV]
        self.ki = _frozen(ki, dtype)  # [nA/(nV·s)]
        self.max_amplitude = _frozen(max_amplitude, dtype)  # [nA]
        self.period_s = _frozen(period_ms / 1000.0, dtype)  # [s]

    def initial_carry(self) -> Array:
        return jnp.zeros((), self.dtype)  # u_I [nA]

    def __call__(self, carry, obs):
        e = obs[self.envelope] - self.target[...]  # [nV]
        top = self.max_amplitude[...]
        u_i = jnp.clip(carry + self.ki[...] * e * self.period_s[...], 0.0, top)  # [nA]
        amplitude = jnp.clip(self.kp[...] * e + u_i, 0.0, top)  # [nA/nV]·[nV] + [nA]
        return u_i, self._action(amplitude)


class PhaseLockedDBS(_DBSPolicy):
    """Pulses at a target phase of the band-passed beta signal (module docstring).

    Args:
        io: the env's interface (observes ``beta_lag0``, `lag_field`, the envelope).
        amplitude: pulse amplitude ``A`` [nA].
        phase: target phase ``φ*`` [rad] (0: peak of ``y``; −π/2: rising zero
            crossing; π/2: falling one).
        width: phase window ``w`` [rad] (2π: every period, i.e. HF-DBS when armed).
        lag_ms: time between ``beta_lag0`` and `lag_field` ``Δ`` [ms].
        beta_hz: the frequency ``ω/2π`` assumed for the phase [Hz].
        threshold: envelope [nV] above which pulses are armed (0: always).
        lag_field: the older band-passed sample (default ``beta_lag1``).
    """

    def __init__(
        self,
        io: PolicyIO,
        amplitude: float,
        phase: float,
        width: float,
        lag_ms: float,
        beta_hz: float = 20.0,
        threshold: float = 0.0,
        lag_field: str = "beta_lag1",
        dtype=jnp.float32,
    ):
        _check_nonnegative(
            "PhaseLockedDBS", amplitude=amplitude, width=width, threshold=threshold
        )
        wd = 2.0 * math.pi * beta_hz * lag_ms / 1000.0  # ωΔ [rad]
        if not (isinstance(wd, float) and 0.05 < wd < math.pi - 0.05):
            raise bad_value(
                "PhaseLockedDBS: 2π·beta_hz·lag_ms",
                wd,
                "in (0.05, π − 0.05) rad (two samples resolve the phase)",
                "use a nearer lag field or check lag_ms [ms] and beta_hz [Hz].",
            )
        self._box(io, dtype)
        self.now = io.field(BETA_NOW, "PhaseLockedDBS")
        self.before = io.field(lag_field, "PhaseLockedDBS")
        self.envelope = io.field(ENVELOPE, "PhaseLockedDBS")
        self.amplitude = _frozen(amplitude, dtype)  # [nA]
        self.phase = _frozen(phase, dtype)  # [rad]
        self.cos_half = _frozen(np.cos(min(width, 2 * math.pi) / 2.0), dtype)  # [1]
        self.cos_wd, self.sin_wd = (
            _frozen(np.cos(wd), dtype),
            _frozen(np.sin(wd), dtype),
        )
        self.threshold = _frozen(threshold, dtype)  # [nV]

    def beta_phase(self, obs: Array) -> Array:
        """``φ`` [rad] of ``y = a·cos φ`` from ``beta_lag0`` and the lag field."""
        y0, y1 = obs[self.now], obs[self.before]  # [nV]
        a_sin = (y1 - y0 * self.cos_wd[...]) / self.sin_wd[...]  # a·sin φ [nV]
        return jnp.arctan2(a_sin, y0)

    def __call__(self, carry, obs):
        in_window = (
            jnp.cos(self.beta_phase(obs) - self.phase[...]) >= self.cos_half[...]
        )
        armed = obs[self.envelope] >= self.threshold[...]
        on = in_window & armed
        return carry, self._action(jnp.where(on, self.amplitude[...], 0.0))


def dbs_io(env, env_params=None) -> PolicyIO:
    """A `PolicyIO` for classical controllers (no observation scaling measured).

    Classical controllers read raw fields in their units; ``obs_loc = 0`` and
    ``obs_scale = 1`` (a network needs `neuroctl.train.bptt.policy_io` instead).
    """
    params = env.prepare_params(env_params)
    space = env.action_space(params)
    fields = tuple(name for name, _ in env.observation_fields())
    return PolicyIO(
        obs_loc=(0.0,) * len(fields),
        obs_scale=(1.0,) * len(fields),
        action_low=tuple(float(x) for x in np.asarray(space.low).ravel()),
        action_high=tuple(float(x) for x in np.asarray(space.high).ravel()),
        n_steps=env.n_steps,
        obs_fields=fields,
    )
