"""The evidence-integration task of the Jaxley paper RNN, as pure keyed JAX functions.

A trial is one noisy evidence stream: white noise ``x_t ~ N(μ, σ²)`` per step of
``dt`` with ``μ = ±evidence_mean + N(0, mean_jitter_std²)`` (sign drawn from the key),
low-pass filtered causally by a Butterworth filter (order 6, 80 Hz). The label is 1
when the *sum* of the filtered stimulus over the trial is positive, else 0. The
stimulus enters the basal compartment of each recurrent cell as a current
``input_scale · w_i · s(t)`` [nA]; the decision is the argmax of the two readouts'
mean voltage [mV] over the response window, trained with softmax cross-entropy.
Trainable parameters (109–110 synaptic conductances, 20 input weights) are kept in
range by sigmoids. Numbers: ../shared/FACTS.md (Jaxley paper, fig. 5).

Everything here is written for one trial; batch with `jax.vmap` at the call site.
"""

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.signal

from neuroctl.biophysics import Network, Params, init_state, simulate
from neuroctl.errors import ConfigError, bad_value
from neuroctl.typing import Array, ArrayLike

N_READOUTS = 2  # recordings 0 and 1 are the readouts (see evidence_net)


@dataclass(frozen=True)
class TaskConfig:
    """Static task configuration (changing it recompiles); validated on construction.

    `input_scale` and `g_max` are free choices (the paper's stimulus scale is
    ambiguous, FACTS.md). The filtered stimulus is ≈ ±0.005 ± 0.003, so at
    ``input_scale = 0.5`` nA and ``w = 1`` a cell gets ≈ ±2.5 pA; its input resistance
    is ≈ 18 GΩ (188 µm² at 3e-5 S/cm² leak), i.e. ≈ ±45 mV of DC drive for an isolated
    cell: ``w ∈ [0, 1]`` spans "no effect" to "spiking / strong hyperpolarisation".
    ``g_max = 0.01`` µS is 10× the network's default conductance: enough for 20
    readout synapses (0.2 µS) to dominate a readout's 0.019-µS leak, and for one
    recurrent synapse (≈ 0.7 nA) to dominate the stimulus.
    """

    dt: float = 0.025  # time step [ms]
    trial_ms: float = 520.0  # trial duration [ms]
    response_window_ms: tuple[float, float] = (500.0, 520.0)  # (start, end] [ms]
    evidence_mean: float = 0.005  # |μ| of the per-step white noise [1]
    noise_std: float = 0.05  # σ of the per-step white noise [1]
    mean_jitter_std: float = 0.0002  # σ of the per-trial jitter added to μ [1]
    filter_order: int = 6  # Butterworth low-pass order [1]
    filter_cutoff_hz: float = 80.0  # Butterworth -3 dB frequency [Hz]
    input_scale: float = 0.5  # current per unit filtered stimulus at w = 1 [nA]
    g_max: float = 0.01  # upper bound of every trainable synaptic conductance [µS]
    v_init: float = -65.0  # initial membrane potential of every node [mV]

    def __post_init__(self) -> None:
        self.validate()  # plain (unregistered) dataclass: runs once, never on tracers

    @property
    def n_steps(self) -> int:
        """Steps per trial [1] (520 ms / 0.025 ms = 20,800)."""
        return round(self.trial_ms / self.dt)

    @property
    def sample_rate_hz(self) -> float:
        """Sampling rate of the stimulus [Hz]: 1000 ms/s ÷ dt [ms]."""
        return 1000.0 / self.dt

    @property
    def window(self) -> slice:
        """Recording rows in the response window.

        Row ``i`` of `simulate`'s recordings is the state at ``t = (i + 1)·dt``, so
        ``t ∈ (start, end]`` is rows ``start/dt … end/dt − 1``.
        """
        start, end = self.response_window_ms
        return slice(round(start / self.dt), round(end / self.dt))

    def validate(self) -> "TaskConfig":
        """Raise `ConfigError` naming the first bad field; return `self` otherwise."""
        _check_positive("dt", self.dt, "e.g. dt=0.025 [ms].")
        _check_positive("trial_ms", self.trial_ms, "e.g. trial_ms=520.0 [ms].")
        if abs(self.trial_ms / self.dt - self.n_steps) > 1e-6 * self.n_steps:
            raise bad_value(
                "trial_ms",
                self.trial_ms,
                f"a multiple of dt={self.dt} [ms]",
                "round the trial duration to whole steps.",
            )
        self._validate_window()
        for name in ("evidence_mean", "noise_std", "mean_jitter_std"):
            _check_nonnegative(name, getattr(self, name))
        self._validate_filter()
        _check_positive("input_scale", self.input_scale, "e.g. input_scale=0.5 [nA].")
        _check_positive("g_max", self.g_max, "e.g. g_max=0.01 [µS].")
        if not (isinstance(self.v_init, (int, float)) and math.isfinite(self.v_init)):
            raise bad_value(
                "v_init", self.v_init, "a finite voltage [mV]", "e.g. -65.0."
            )
        return self

    def _validate_window(self) -> None:
        w = self.response_window_ms
        ok = (
            isinstance(w, tuple)
            and len(w) == 2
            and all(isinstance(x, (int, float)) for x in w)
            and 0.0 <= w[0]
            and w[0] + self.dt <= w[1] <= self.trial_ms
        )
        if not ok:
            raise bad_value(
                "response_window_ms",
                w,
                f"a tuple (start, end) [ms] with 0 <= start, end - start >= dt and "
                f"end <= trial_ms={self.trial_ms}",
                "e.g. (500.0, 520.0).",
            )

    def _validate_filter(self) -> None:
        if not (isinstance(self.filter_order, int) and self.filter_order >= 1):
            raise bad_value("filter_order", self.filter_order, "an int >= 1", "e.g. 6.")
        nyquist = 0.5 * self.sample_rate_hz  # [Hz]
        if not (
            isinstance(self.filter_cutoff_hz, (int, float))
            and 0.0 < self.filter_cutoff_hz < nyquist
        ):
            raise bad_value(
                "filter_cutoff_hz",
                self.filter_cutoff_hz,
                f"a frequency in (0, {nyquist:g}) Hz (the Nyquist limit "
                f"for dt={self.dt} ms)",
                "e.g. 80.0 [Hz].",
            )


def _check_positive(name: str, value: object, fix: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise bad_value(name, value, "a finite number > 0", fix)


def _check_nonnegative(name: str, value: object) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise bad_value(name, value, "a finite number >= 0", "use 0 to switch it off.")


# ----------------------------------------------------------------------------- stimulus


def filter_sos(cfg: TaskConfig) -> np.ndarray:
    """Second-order sections ``(n_sections, 6)`` of the Butterworth low-pass (NumPy)."""
    return _butter_sos(cfg.filter_order, cfg.filter_cutoff_hz, cfg.sample_rate_hz)


@functools.lru_cache(maxsize=16)
def _butter_sos(order: int, cutoff_hz: float, fs_hz: float) -> np.ndarray:
    return scipy.signal.butter(order, cutoff_hz, btype="low", fs=fs_hz, output="sos")


def impulse_response(cfg: TaskConfig) -> np.ndarray:
    """The filter's causal impulse response over one trial, ``(n_steps,)`` [1] (NumPy).

    Computed once per config in float64 with `scipy.signal.sosfilt`.
    """
    return _impulse(
        cfg.filter_order, cfg.filter_cutoff_hz, cfg.sample_rate_hz, cfg.n_steps
    )


@functools.lru_cache(maxsize=16)
def _impulse(order: int, cutoff_hz: float, fs_hz: float, n: int) -> np.ndarray:
    sos = _butter_sos(order, cutoff_hz, fs_hz)
    h = scipy.signal.sosfilt(sos, scipy.signal.unit_impulse(n))
    h.setflags(write=False)
    return h


def lowpass(x: ArrayLike, cfg: TaskConfig) -> Array:
    """Causal Butterworth low-pass of `x` ``(n_steps,)``, zero initial conditions.

    Equal to ``scipy.signal.sosfilt(filter_sos(cfg), x)``; computed as the FFT
    convolution with the precomputed impulse response (exact for the first
    `n_steps` outputs), which is parallel over time instead of a 20,800-step scan.
    """
    x = jnp.asarray(x)
    h = jnp.asarray(impulse_response(cfg), x.dtype)
    return jax.scipy.signal.fftconvolve(x, h, mode="full")[: x.shape[0]]


class Trial(eqx.Module):
    """One trial of the task (a pytree: `jax.vmap` over keys gives a batch).

    Attributes:
        stimulus: filtered evidence signal, shape ``(n_steps,)`` [1].
        label: 1 if ``sum(stimulus) > 0`` else 0, int32 scalar.
        mean: the drawn per-step mean μ of the white noise [1].
    """

    stimulus: Array
    label: Array
    mean: Array


def sample_trial(
    key: Array, cfg: TaskConfig, evidence: ArrayLike | None = None
) -> Trial:
    """Draw one trial.

    Args:
        key: PRNG key; decides the sign of μ (balanced), its jitter and the noise.
        cfg: task configuration.
        evidence: |μ| overriding ``cfg.evidence_mean`` (psychometric sweeps; may be 0
            or traced) [1].
    """
    k_sign, k_jitter, k_noise = jax.random.split(key, 3)
    amplitude = cfg.evidence_mean if evidence is None else evidence
    sign = jnp.where(jax.random.bernoulli(k_sign), 1.0, -1.0)
    mean = sign * amplitude + cfg.mean_jitter_std * jax.random.normal(k_jitter)
    white = mean + cfg.noise_std * jax.random.normal(k_noise, (cfg.n_steps,))
    stimulus = lowpass(white, cfg)
    label = (jnp.sum(stimulus) > 0).astype(jnp.int32)
    return Trial(stimulus=stimulus, label=label, mean=mean)


def stimulus_currents(
    trial_stimulus: ArrayLike, input_weights: ArrayLike, cfg: TaskConfig
) -> Array:
    """Basal currents [nA], ``(n_steps, n_cells)``: ``input_scale · w_i · s(t)``.

    Args:
        trial_stimulus: filtered stimulus ``(n_steps,)`` [1].
        input_weights: per-cell weights ``(n_cells,)`` in [0, 1] [1].
        cfg: task configuration (`input_scale` [nA per unit stimulus]).
    """
    return cfg.input_scale * jnp.outer(trial_stimulus, input_weights)  # [nA]


# ----------------------------------------------------------------------------- readout


def readout_logits(recordings: Array, cfg: TaskConfig) -> Array:
    """Mean voltage [mV] of the two readouts over the response window, shape ``(2,)``.

    Args:
        recordings: ``(n_steps, n_recordings)`` [mV], readouts in columns 0 and 1.
        cfg: task configuration (`window`).
    """
    return jnp.mean(recordings[cfg.window, :N_READOUTS], axis=0)


def cross_entropy(logits: Array, label: ArrayLike) -> Array:
    """Softmax cross-entropy of the readout means (mV used as logits) [nats]."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(label))


def accuracy(logits: Array, label: ArrayLike) -> Array:
    """1.0 if the decision ``argmax(logits)`` equals `label`, else 0.0."""
    return (jnp.argmax(logits) == label).astype(logits.dtype)


# ------------------------------------------------------------------------ parameters


class TrainableParams(eqx.Module):
    """Unconstrained trainable leaves; `to_physical` maps them into their bounds.

    ``g = g_max · sigmoid(syn_logits)`` ∈ [0, g_max] µS, ``w = sigmoid(input_logits)``
    ∈ [0, 1].

    Attributes:
        syn_logits: one logit per synapse, ``(n_syn,)`` [1].
        input_logits: one logit per recurrent cell, ``(n_cells,)`` [1].
    """

    syn_logits: Array
    input_logits: Array

    def to_physical(self, cfg: TaskConfig) -> tuple[Array, Array]:
        """Conductances [µS] ``(n_syn,)`` and input weights [1] ``(n_cells,)``."""
        g = cfg.g_max * jax.nn.sigmoid(self.syn_logits)  # [µS]
        return g, jax.nn.sigmoid(self.input_logits)


#: logit(0.1): ``g = 0.1 · g_max`` = 0.001 µS at the default g_max (the network's).
SYN_LOGIT_INIT = math.log(0.1 / 0.9)


def init_trainable(
    key: Array,
    n_syn: int,
    n_inputs: int = 20,
    std: float = 0.1,
    syn_mean: float = SYN_LOGIT_INIT,
    dtype=jnp.float32,
) -> TrainableParams:
    """Small random logits: ``N(syn_mean, std²)`` for synapses, ``N(0, std²)`` inputs.

    With the defaults ``g ≈ 0.1 · g_max`` [µS] and ``w ≈ 1/2``: the network then
    fires spontaneously (≈ 20–40 Hz in most cells, recurrent excitation) and the
    stimulus modulates it.
    """
    k_syn, k_in = jax.random.split(key)
    syn = syn_mean + std * jax.random.normal(k_syn, (n_syn,), dtype)
    return TrainableParams(
        syn_logits=syn, input_logits=std * jax.random.normal(k_in, (n_inputs,), dtype)
    )


def apply_to_params(net_params: Params, g: Array) -> Params:
    """`net_params` with the graded-synapse conductances set to `g` [µS]."""
    old = net_params.synapses[0].g
    if jnp.shape(g) != jnp.shape(old):
        raise bad_value(
            "g",
            f"array of shape {jnp.shape(g)}",
            f"shape {jnp.shape(old)}: one conductance [µS] per synapse",
            "build TrainableParams with n_syn = net.default_params."
            "synapses[0].g.shape[0].",
        )
    return eqx.tree_at(lambda p: p.synapses[0].g, net_params, g)


# ----------------------------------------------------------------------------- rollout


def simulate_trial(
    net: Network,
    net_params: Params,
    trainable: TrainableParams,
    stimulus: ArrayLike,
    cfg: TaskConfig,
    checkpoint_lengths: Sequence[int] | None = None,
) -> Array:
    """Recordings [mV] ``(n_steps, n_recordings)`` for one stimulus ``(n_steps,)`` [1].

    Runs in the float dtype of `trainable` (float32 or float64).
    """
    g, w = trainable.to_physical(cfg)
    params = apply_to_params(net_params, g)
    state = init_state(net, params, cfg.v_init, dtype=trainable.syn_logits.dtype)
    currents = stimulus_currents(stimulus, w, cfg)  # [nA]
    _, recordings = simulate(
        net, params, state, currents, cfg.dt, checkpoint_lengths=checkpoint_lengths
    )
    return recordings


def trial_loss(
    net: Network,
    net_params: Params,
    trainable: TrainableParams,
    trial: Trial,
    cfg: TaskConfig,
    checkpoint_lengths: Sequence[int] | None = None,
) -> tuple[Array, tuple[Array, Array]]:
    """Cross-entropy [nats] of one trial and ``(logits [mV], label)``.

    Differentiable in `trainable` (and `net_params`).

    Use ``checkpoint_lengths=checkpoint_lengths_for(cfg.n_steps)`` for reverse mode
    over full trials. `net` and `cfg` are static (close over them or use
    `eqx.filter_jit`).
    """
    if trial.stimulus.shape != (cfg.n_steps,):
        raise ConfigError(
            f"trial.stimulus: got shape {trial.stimulus.shape}, expected "
            f"({cfg.n_steps},) for cfg.trial_ms={cfg.trial_ms}; sample the "
            "trial with the same TaskConfig."
        )
    recordings = simulate_trial(
        net, net_params, trainable, trial.stimulus, cfg, checkpoint_lengths
    )
    logits = readout_logits(recordings, cfg)
    return cross_entropy(logits, trial.label), (logits, trial.label)
