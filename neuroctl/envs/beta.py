"""`BetaSuppression`: closed-loop DBS of the parkinsonian beta plant as a `ControlEnv`.

The plant is the Rubin & Terman (2004) basal-ganglia network of
`neuroctl.plants.beta` (``plants.load("beta_parkinsonian")`` or
``"beta_healthy"``); its inputs are currents [nA] into the 10 STN somata (DBS) and
the 10 TC somata (sensorimotor input), its readouts the somatic and STN axon-end
voltages [mV].

**Signal.** A linear functional of every node's voltage, ``s = w · v`` after each
solver step: by default the point-source LFP [nV] at an electrode beside the STN
axons (``w = (∂φ/∂v)``: the transmembrane currents are the axial currents, linear
in ``v``, with each DBS current counted with its return at its site, as in
results/dbs_plant.md), or (``signal="stn"``) the mean STN axon-end voltage [mV].
``s`` is averaged over bins of ``bin_steps`` solver steps (≈ 1 ms, a divisor of the
control period) and band-passed per bin by a Butterworth band-pass (13–30 Hz,
second-order sections, at the bin rate): ``y``.

**Reward** per control step: ``−beta_cost · Σ_bins y² · bin_s`` [1/(unit²·s) ·
unit²·s] (the beta-band energy of the step; the return is −beta_cost·∫y² dt),
minus the env's `EnergyCost` of the DBS currents (charge [1/pC], mean I²
[1/nA²]).

**Observation fields** (units of the signal, nV or mV): ``lfp`` (or ``stn_v``), the
last bin's mean signal; ``beta_lag0`` … ``beta_lag{n−1}``, the band-passed
signal now and ``recent_every`` bins apart before; ``beta_envelope``, the root of an
exponential moving average of ``y²`` (time constant ``envelope_ms``); and ``t/T``
[1].

**Per-reset randomness** (one key, split by purpose): every node's voltage is
drawn from N(v_init, v_init_spread²) [mV] (gates at rest, as
`plants.beta.initial_state`); an Ornstein–Uhlenbeck noise current density into each
STN soma (sd ``noise_std`` [µA/cm²], time constant ``noise_tau_ms``), its normal
increments drawn per control step from ``fold_in(noise_key, t)``; gamma-interval
sensorimotor pulses into every TC soma (``sm_amplitude`` [µA/cm²], ``sm_width_ms``,
rate ``sm_rate_hz``, CV ``sm_cv``, as the plant's card); and an optional slow drift:
an STN bias current ramping linearly from 0 to ``d ~ U(−drift, drift)`` [µA/cm²] over
the episode. Densities become currents [nA] through the soma area
(``density_to_na`` [nA per µA/cm²]). Episodes start from a bank of warm states
(`WarmStates`: the plant and the band-pass after 200 ms without stimulation), one
drawn per reset. The parkinsonian rhythm is fragile to independent noise: at
``noise_std`` 0.25 µA/cm² it holds for 1.5 s, at 0.5 it breaks within ~0.6 s
(measured, no stimulation), so the default is 0.2.

**Actuator** (`beta_control`): DBS currents into STN somata, ``n_electrodes`` groups
of neighbouring cells (`Electrodes`, weights 0/1), amplitude per group [nA] in
``[−i_max, i_max]``, delivered as one charge-balanced biphasic pulse per control
period (`BiphasicPulse`: ``+a`` for ``pulse_width_ms``, then ``−a``), so the control
period sets the pulse frequency (``control_ms = 1000/frequency_hz`` rounded to whole
solver steps: 7.7 ms, 129.87 Hz by default). ``a < 0`` delivers the anodic phase
first. 300 µA/cm² (the paper's working DBS amplitude) is
``300 · density_to_na`` ≈ 3.02 nA per soma.

With ``stimulation="extracellular"`` the actuator is instead ``n_electrodes``
point electrodes in the tissue (`ExtracellularElectrodes`, σ = 0.3 S/m), each
``electrode_distance_um`` from the plane of the STN axons at their midpoint and
beside its group of cells; the action is each electrode's pulse amplitude [µA]
(``a < 0``: cathodic phase first), and the cells feel it only through the field
along their axons (the activating function), as in real DBS. The signal stays the
membrane-driven LFP ``w · v``: the direct term of the applied field during a pulse
is left out, as if the recording blanked the pulses.

References:
    Rubin & Terman, J. Comput. Neurosci. 16:211-235 (2004).
    Little et al., Ann. Neurol. 74:449-457 (2013) (adaptive DBS on beta).
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from neuroctl.biophysics import LFPElectrodes, membrane_currents
from neuroctl.envs.actuators import BiphasicPulse, Electrodes, ExtracellularElectrodes
from neuroctl.envs.control import ControlEnv
from neuroctl.envs.core import ControlConfig, check_value
from neuroctl.envs.evidence_stim import sos_step
from neuroctl.envs.objectives import EnergyCost
from neuroctl.envs.tasks import AbstractTask
from neuroctl.envs.wrappers import ObserveFields
from neuroctl.errors import bad_value
from neuroctl.typing import Array, ArrayLike

BETA_BAND = (13.0, 30.0)  # [Hz]
LFP_POSITION = (170.0, 180.0, 50.0)  # beside the STN axons, as the plant's card [µm]


class BetaState(eqx.Module):
    """`BetaSuppression` state (besides the solver state).

    Attributes:
        noise_key: root of the noise increments of each control step.
        onsets: sensorimotor pulse onsets ``(n_pulses,)`` [ms] (inf: none).
        drift: the STN bias current at the episode's end [µA/cm²].
        noise: OU noise current density per STN cell [µA/cm²].
        bin_sum: Σ signal over the bin so far [unit].
        signal: the last bin's mean signal [unit].
        filter_state: band-pass state ``(sections, 2)`` [unit].
        history: band-passed samples of the last bins, newest first [unit].
        power: exponential moving average of ``y²`` [unit²].
        step_energy: Σ ``y²·bin_s`` over the control step's bins [unit²·s].
    """

    noise_key: Array
    onsets: Array
    drift: Array
    noise: Array
    bin_sum: Array
    signal: Array
    filter_state: Array
    history: Array
    power: Array
    step_energy: Array


_BIN_FIELDS = ("bin_sum", "signal", "filter_state", "history", "power", "step_energy")


class BetaMetrics(eqx.Module):
    """``info.task``: the step's mean ``y²`` [unit²], the envelope after it [unit]."""

    beta_power: Array
    beta_envelope: Array


class WarmStates(eqx.Module):
    """A bank of ``M`` warmed-up starts (leading axis ``M`` on every leaf).

    Each is the plant and the task's filter after ``warm_start_ms`` without
    stimulation from a cold random start (`warm_states`), so episodes begin in the
    established rhythm with a settled band-pass, not in the start transient.

    Attributes:
        sim: solver states (`bp.State`, stacked).
        signal: the last bin's mean signal ``(M,)`` [unit].
        filter_state: band-pass states ``(M, sections, 2)`` [unit].
        history: band-passed samples ``(M, L)`` [unit].
        power: envelope averages ``(M,)`` [unit²].
        noise: OU noise densities ``(M, n_stn)`` [µA/cm²].
    """

    sim: object
    signal: Array
    filter_state: Array
    history: Array
    power: Array
    noise: Array


class BetaSuppression(AbstractTask):
    """Suppress the beta-band power of a population signal (module docstring).

    Attributes:
        signal_weights: ``w`` ``(n_nodes,)`` [unit/mV]: signal = w · v.
        beta_cost: weight of the beta-band energy [1/(unit²·s)].
        v_init_spread: sd of the initial voltage of every node [mV].
        noise_std: stationary sd of the STN noise current density [µA/cm²].
        noise_tau_ms: its correlation time [ms].
        sm_amplitude: sensorimotor pulse amplitude [µA/cm²].
        sm_width_ms: sensorimotor pulse width [ms].
        sm_rate_hz: mean sensorimotor pulse rate [Hz].
        sm_cv: coefficient of variation of the pulse intervals [1].
        drift: largest |STN bias current| reached at the episode's end [µA/cm²].
        envelope_ms: time constant of the envelope's moving average [ms].
        warm: `WarmStates` to start from (one drawn per reset), or None for a
            cold start at the plant's rest.
        stn_inputs: input sites of the STN somata (static).
        tc_inputs: input sites of the TC somata (static).
        n_inputs: the plant's input sites (static).
        density_to_na: soma current per density [nA per µA/cm²] (static).
        dt: solver step [ms] (static).
        substeps: solver steps per control step (static).
        bin_steps: solver steps per signal bin; divides `substeps` (static).
        n_steps: control steps per episode (static).
        n_pulses: sensorimotor onsets drawn per episode (static).
        n_recent: band-passed samples observed (static).
        recent_every: bins between observed samples (static).
        band: pass band [Hz] (static).
        filter_order: Butterworth order per band edge (static).
        signal_name: name of the raw signal's field (static).
        unit: the signal's unit (static).
        v_max: |v| bound of the env [mV], for the fields' bounds (static).
    """

    signal_weights: ArrayLike
    beta_cost: ArrayLike = 0.02  # [1/(unit²·s)]
    v_init_spread: ArrayLike = 5.0  # [mV]
    noise_std: ArrayLike = 0.2  # [µA/cm²]
    noise_tau_ms: ArrayLike = 5.0  # [ms]
    sm_amplitude: ArrayLike = 5.0  # [µA/cm²]
    sm_width_ms: ArrayLike = 5.0  # [ms]
    sm_rate_hz: ArrayLike = 14.0  # [Hz]
    sm_cv: ArrayLike = 0.2  # [1]
    drift: ArrayLike = 0.0  # [µA/cm²]
    envelope_ms: ArrayLike = 50.0  # [ms]
    warm: WarmStates | None = None
    stn_inputs: tuple[int, ...] = eqx.field(static=True, default=tuple(range(10)))
    tc_inputs: tuple[int, ...] = eqx.field(static=True, default=tuple(range(10, 20)))
    n_inputs: int = eqx.field(static=True, default=20)
    density_to_na: float = eqx.field(static=True, default=0.01005)  # [nA/(µA/cm²)]
    dt: float = eqx.field(static=True, default=0.025)  # [ms]
    substeps: int = eqx.field(static=True, default=308)
    bin_steps: int = eqx.field(static=True, default=44)
    n_steps: int = eqx.field(static=True, default=65)
    n_pulses: int = eqx.field(static=True, default=24)
    n_recent: int = eqx.field(static=True, default=4)
    recent_every: int = eqx.field(static=True, default=6)
    band: tuple[float, float] = eqx.field(static=True, default=BETA_BAND)  # [Hz]
    filter_order: int = eqx.field(static=True, default=2)
    signal_name: str = eqx.field(static=True, default="lfp")
    unit: str = eqx.field(static=True, default="nV")
    v_max: float = eqx.field(static=True, default=1000.0)  # [mV]

    def __check_init__(self) -> None:
        for name in ("beta_cost", "v_init_spread", "noise_std", "sm_amplitude"):
            check_value(name, getattr(self, name), lambda x: np.all(x >= 0), ">= 0")
        check_value("drift", self.drift, lambda x: np.all(x >= 0), ">= 0")
        for name in ("noise_tau_ms", "sm_width_ms", "sm_rate_hz", "envelope_ms"):
            check_value(name, getattr(self, name), lambda x: np.all(x > 0), "> 0")
        check_value("sm_cv", self.sm_cv, lambda x: np.all(x > 0), "> 0")
        if self.bin_steps < 1 or self.substeps % self.bin_steps:
            raise bad_value(
                "bin_steps",
                self.bin_steps,
                f"a divisor of substeps={self.substeps}",
                "use beta_bin_steps(substeps, dt).",
            )
        nyquist = 500.0 / self.bin_ms  # [Hz]
        if not 0 < self.band[0] < self.band[1] < nyquist:
            raise bad_value(
                "band",
                self.band,
                f"0 < low < high < {nyquist:g} Hz (the bin rate's Nyquist)",
                "shorten the bins or lower the band.",
            )

    # ------------------------------------------------------------ the filter

    @property
    def bin_ms(self) -> float:
        """Width of a signal bin [ms]."""
        return self.bin_steps * self.dt

    @property
    def bins_per_step(self) -> int:
        """Signal bins per control step [1]."""
        return self.substeps // self.bin_steps

    def sos(self) -> np.ndarray:
        """The band-pass's second-order sections ``(sections, 6)`` (NumPy)."""
        return _band_sos(self.filter_order, self.band, 1000.0 / self.bin_ms)

    # ------------------------------------------------------------ randomness

    def _keys(self, key: Array) -> dict[str, Array]:
        names = ("v", "noise", "noise0", "onsets", "drift", "pick")
        return dict(zip(names, jax.random.split(key, len(names)), strict=True))

    def _pick(self, key: Array, tree):
        """Entry `i ~ U{0..M−1}` of a stacked `tree` of `warm` (same i per key)."""
        m = jnp.shape(self.warm.power)[0]
        i = jax.random.randint(self._keys(key)["pick"], (), 0, m)
        return jax.tree.map(lambda x: x[i], tree)

    def init_sim(self, key: Array, sim):
        """A warm start (or `sim`), every voltage spread by N(0, v_init_spread²)."""
        if self.warm is not None:
            sim = jax.tree.map(
                lambda x, like: jnp.asarray(x, like.dtype),
                self._pick(key, self.warm.sim),
                sim,
            )
        dv = jax.random.normal(self._keys(key)["v"], sim.v.shape, sim.v.dtype)
        return eqx.tree_at(lambda s: s.v, sim, sim.v + self.v_init_spread * dv)

    def init(self, key: Array, dtype) -> BetaState:
        """Noise stream, sensorimotor onsets, drift (and warm filter) of an episode."""
        keys, n_stn = self._keys(key), len(self.stn_inputs)
        zero = jnp.zeros((), dtype)
        noise0 = jax.random.normal(keys["noise0"], (n_stn,), dtype)
        drift = jax.random.uniform(keys["drift"], (), dtype, -1.0, 1.0)
        n_hist = (self.n_recent - 1) * self.recent_every + 1
        state = BetaState(
            noise_key=keys["noise"],
            onsets=self._onsets(keys["onsets"], dtype),
            drift=drift * self.drift,  # [µA/cm²]
            noise=noise0 * self.noise_std,  # stationary start [µA/cm²]
            bin_sum=zero,
            signal=zero,
            filter_state=jnp.zeros((self.sos().shape[0], 2), dtype),
            history=jnp.zeros((n_hist,), dtype),
            power=zero,
            step_energy=zero,
        )
        return state if self.warm is None else self._warm_task(key, state)

    def _warm_task(self, key: Array, state: BetaState) -> BetaState:
        warm = self._pick(key, self.warm)
        names = ("signal", "filter_state", "history", "power", "noise")
        values = tuple(
            jnp.asarray(getattr(warm, n), getattr(state, n).dtype) for n in names
        )
        return eqx.tree_at(lambda s: tuple(getattr(s, n) for n in names), state, values)

    def _onsets(self, key: Array, dtype) -> Array:
        """Gamma-interval pulse onsets [ms], mean 1/`sm_rate_hz`, CV `sm_cv`."""
        shape = 1.0 / jnp.asarray(self.sm_cv, dtype) ** 2  # gamma shape [1]
        g = jax.random.gamma(key, shape, (self.n_pulses,), dtype)
        intervals = g / shape * (1000.0 / self.sm_rate_hz)  # [ms]
        return jnp.cumsum(intervals)

    # ------------------------------------------------------------ the drive

    def period_inputs(self, state: BetaState, t: Array, substeps: int):
        """Noise increments ``(substeps, n_stn)`` [1] and step times [ms]."""
        dtype = state.noise.dtype
        key = jax.random.fold_in(state.noise_key, t)
        z = jax.random.normal(key, (substeps, len(self.stn_inputs)), dtype)
        times = (t * substeps + jnp.arange(substeps)) * jnp.asarray(self.dt, dtype)
        return z, times  # times: start of each solver step [ms]

    def drive(self, state: BetaState, x) -> tuple[BetaState, Array]:
        """STN noise + drift and TC sensorimotor currents [nA] for one solver step."""
        z, time = x
        decay = jnp.exp(-self.dt / self.noise_tau_ms)  # [1]
        kick = self.noise_std * jnp.sqrt(-jnp.expm1(-2.0 * self.dt / self.noise_tau_ms))
        noise = state.noise * decay + kick * z  # [µA/cm²]
        episode_ms = self.n_steps * self.substeps * self.dt  # [ms]
        stn = noise + state.drift * time / episode_ms  # [µA/cm²]
        on = jnp.any((time >= state.onsets) & (time < state.onsets + self.sm_width_ms))
        tc = jnp.where(on, self.sm_amplitude, 0.0)  # [µA/cm²]
        i_in = jnp.zeros((self.n_inputs,), noise.dtype)
        i_in = i_in.at[np.asarray(self.stn_inputs)].set(stn * self.density_to_na)
        i_in = i_in.at[np.asarray(self.tc_inputs)].set(tc * self.density_to_na)
        return eqx.tree_at(lambda s: s.noise, state, noise), i_in  # [nA]

    # ------------------------------------------------------------ watching

    def substep(self, state, v_old, v_new, dt, row):
        raise bad_value(
            "task",
            "BetaSuppression.substep (readouts only)",
            "substep_states (the full solver state: the signal weighs every node)",
            "step it inside ControlEnv, which calls substep_states.",
        )

    def substep_states(self, state: BetaState, old, new, nodes, dt, row):
        """Add ``w · v_new`` to the bin; at a bin's end, filter it and score it."""
        w = jnp.asarray(self.signal_weights, new.v.dtype)
        start = row % self.substeps == 0  # first solver step of a control step
        state = eqx.tree_at(
            lambda s: (s.bin_sum, s.step_energy),
            state,
            (state.bin_sum + w @ new.v, jnp.where(start, 0.0, state.step_energy)),
        )
        done = (row + 1) % self.bin_steps == 0
        closed = self._close_bin(state)
        kept = tuple(getattr(state, f) for f in _BIN_FIELDS)
        picked = tuple(jnp.where(done, a, b) for a, b in zip(closed, kept, strict=True))
        return eqx.tree_at(
            lambda s: tuple(getattr(s, f) for f in _BIN_FIELDS), state, picked
        )

    def _close_bin(self, state: BetaState) -> tuple[Array, ...]:
        """`_BIN_FIELDS` after a bin closes: filter, history, envelope, energy."""
        mean = state.bin_sum / self.bin_steps  # [unit]
        sos = jnp.asarray(self.sos(), mean.dtype)
        y, z = sos_step(sos, state.filter_state, mean)  # [unit]
        bin_s = self.bin_ms / 1000.0  # [s]
        a = jnp.exp(-self.bin_ms / self.envelope_ms)  # [1]
        return (
            jnp.zeros_like(mean),  # bin_sum
            mean,  # signal [unit]
            z,  # filter_state
            jnp.concatenate([y[None], state.history[:-1]]),  # history [unit]
            a * state.power + (1.0 - a) * y**2,  # power [unit²]
            state.step_energy + y**2 * bin_s,  # step_energy [unit²·s]
        )

    # ------------------------------------------------------------ scoring

    def reward(self, state, next_state: BetaState, t) -> Array:
        return -self.beta_cost * next_state.step_energy  # [1/(unit²·s)]·[unit²·s]

    def fields(self) -> tuple[tuple[str, str], ...]:
        lags = tuple((f"beta_lag{i}", self.unit) for i in range(self.n_recent))
        return ((self.signal_name, self.unit), *lags, ("beta_envelope", self.unit))

    def observe(self, state: BetaState, t) -> dict[str, Array]:
        out = {self.signal_name: state.signal, "beta_envelope": _sqrt(state.power)}
        for i in range(self.n_recent):
            out[f"beta_lag{i}"] = state.history[i * self.recent_every]
        return out

    def bounds(self, dt: float) -> dict:
        """Signal: ``Σ|w|·v_max``; band-passed: that × the filter's ℓ1 gain."""
        s_max = float(np.sum(np.abs(np.asarray(self.signal_weights)))) * self.v_max
        y_max = s_max * _l1_gain(self.sos())  # [unit]
        out = {self.signal_name: (-s_max, s_max), "beta_envelope": (0.0, y_max)}
        out.update({f"beta_lag{i}": (-y_max, y_max) for i in range(self.n_recent)})
        return out

    def metrics(self, state, next_state: BetaState, t) -> BetaMetrics:
        step_s = self.substeps * self.dt / 1000.0  # [s]
        return BetaMetrics(
            beta_power=next_state.step_energy / step_s,  # [unit²]
            beta_envelope=_sqrt(next_state.power),  # [unit]
        )

    def summarise(self, metrics: BetaMetrics, alive: Array) -> dict[str, Array]:
        """Mean beta power [unit²] and envelope [unit] over the alive steps."""
        n = jnp.maximum(jnp.sum(alive), 1)
        return {
            "beta_power": jnp.sum(jnp.where(alive, metrics.beta_power, 0.0)) / n,
            "beta_envelope": jnp.sum(jnp.where(alive, metrics.beta_envelope, 0.0)) / n,
        }


def _sqrt(x: Array) -> Array:
    """√x with a finite gradient at 0 (double-where)."""
    tiny = jnp.finfo(jnp.result_type(x)).tiny
    safe = jnp.where(x > tiny, x, 1.0)
    return jnp.where(x > tiny, jnp.sqrt(safe), 0.0)


@functools.lru_cache(maxsize=16)
def _band_sos(order: int, band: tuple[float, float], fs_hz: float) -> np.ndarray:
    return scipy.signal.butter(order, band, btype="band", fs=fs_hz, output="sos")


def _l1_gain(sos: np.ndarray, n: int = 20000) -> float:
    """Σ|h| of the filter's impulse response (the largest |output| per |input|)."""
    impulse = np.zeros(n)
    impulse[0] = 1.0
    return float(np.sum(np.abs(scipy.signal.sosfilt(sos, impulse)))) * 1.001


def beta_bin_steps(substeps: int, dt: float, target_ms: float = 1.0) -> int:
    """The divisor of `substeps` whose bin (× `dt` [ms]) is nearest `target_ms`."""
    divisors = [d for d in range(1, substeps + 1) if substeps % d == 0]
    return min(divisors, key=lambda d: abs(d * dt - target_ms))


def pulse_count(episode_ms: float, rate_hz: float, cv: float) -> int:
    """Onsets to draw so an episode of `episode_ms` [ms] is covered (w.h.p.)."""
    mean = episode_ms * rate_hz / 1000.0  # expected pulses [1]
    return int(math.ceil(mean + 6.0 * cv * math.sqrt(mean + 1.0) + 4))


# ---------------------------------------------------------------- the env

SIGNALS = ("lfp", "stn")
STIMULATION = ("soma", "extracellular")
_I_MAX = {"soma": 50.0, "extracellular": 100.0}  # [nA], [µA]
_CHARGE_COST = {"soma": 1e-3, "extracellular": 1e-6}  # [1/pC]
_BETA_COST = {"lfp": 0.02, "stn": 1.0}  # [1/(nV²·s)], [1/(mV²·s)]


def beta_control(
    plant: str = "beta_parkinsonian",
    signal: str = "lfp",
    n_electrodes: int = 1,
    frequency_hz: float = 130.0,
    pulse_width_ms: float = 0.3,
    i_max: float | None = None,
    episode_ms: float = 500.0,
    dtype: str = "float32",
    v_max: float = 1000.0,
    lfp_position_um: tuple[float, float, float] = LFP_POSITION,
    charge_cost: float | None = None,
    beta_cost: float | None = None,
    warm_start_ms: float = 200.0,
    n_warm: int = 8,
    stimulation: str = "soma",
    electrode_distance_um: float = 30.0,
):
    """``BetaSuppression-v0``: a shipped beta plant under closed-loop DBS.

    Args:
        plant: shipped plant folder (``"beta_parkinsonian"``, ``"beta_healthy"``).
        signal: ``"lfp"`` (point-source LFP at `lfp_position_um` [nV]) or ``"stn"``
            (mean STN axon-end voltage [mV]).
        n_electrodes: groups of neighbouring STN cells, one action each [1]; an
            action is the group's total current [nA], split evenly over its somata
            (``stimulation="soma"``), or one extracellular electrode per group.
        frequency_hz: pulse rate [Hz]: the control period is ``1000/frequency_hz``
            [ms] rounded to whole solver steps (130 → 7.7 ms, 129.87 Hz).
        pulse_width_ms: width of each biphasic phase [ms] (whole solver steps).
        i_max: largest |electrode current|: [nA] for ``"soma"`` (default 50 nA ≈
            497 µA/cm² per soma with one electrode), [µA] for ``"extracellular"``
            (default 100 µA).
        episode_ms: episode length [ms], rounded to whole control periods.
        dtype: ``"float32"`` or ``"float64"``.
        v_max: |v| beyond which a step counts as diverged [mV].
        lfp_position_um: the LFP electrode [µm] (network coordinates).
        charge_cost: weight of the delivered charge [1/pC] (`EnergyCost.charge`;
            extracellular currents count in nA, 1 µA = 1e3 nA); default 1e-3 (soma)
            or 1e-6 (extracellular: ~1e3 times the charge for a like effect).
        beta_cost: weight of the beta energy [1/(unit²·s)]; default 0.02 (lfp,
            nV) or 1.0 (stn, mV): no stimulation then costs ≈ 9 per 500 ms.
        warm_start_ms: unstimulated warm-up of each of the `n_warm` starts [ms]
            (`warm_states`; built once per process and options); 0: every
            episode starts cold at rest with a 5-mV voltage spread.
        n_warm: warm starts in the bank [1]; each reset draws one and spreads
            its voltages by 1 mV, with fresh noise.
        stimulation: ``"soma"`` (the paper's DBS: current into the STN somata) or
            ``"extracellular"`` (point electrodes in the tissue, σ = 0.3 S/m, that
            act on the STN axons through the field; `ExtracellularElectrodes`).
        electrode_distance_um: extracellular electrodes sit this far [µm] from
            the plane of the STN axons (z), at the axons' midpoint (x) and at the
            centre of their group of cells (y).

    Returns:
        The `ControlEnv` wrapped in `ObserveFields` (signal, beta lags, envelope,
        t/T); ``env.unwrapped`` also observes every readout [mV].
    """
    if signal not in SIGNALS:
        raise bad_value("signal", signal, f"one of {SIGNALS}", "pick one.")
    if stimulation not in STIMULATION:
        raise bad_value(
            "stimulation", stimulation, f"one of {STIMULATION}", "pick one."
        )
    i_max = _I_MAX[stimulation] if i_max is None else i_max
    charge_cost = _CHARGE_COST[stimulation] if charge_cost is None else charge_cost
    p, spec = _load(plant)
    config = _config(spec.dt, frequency_hz, episode_ms, dtype, v_max)
    n = spec.network.n_cells
    task = BetaSuppression(
        signal_weights=_signal_weights(p, signal, lfp_position_um, n),
        beta_cost=_BETA_COST[signal] if beta_cost is None else beta_cost,
        stn_inputs=tuple(p.input(f"dbs_stn{i}") for i in range(n)),
        tc_inputs=tuple(p.input(f"sm_tc{i}") for i in range(n)),
        n_inputs=len(p.inputs),
        density_to_na=spec.network.density_to_point(1.0),
        dt=config.dt,
        substeps=config.substeps,
        bin_steps=beta_bin_steps(config.substeps, config.dt),
        n_steps=config.n_steps,
        n_pulses=pulse_count(config.episode_ms, 2 * 14.0, 0.2),
        signal_name="lfp" if signal == "lfp" else "stn_v",
        unit="nV" if signal == "lfp" else "mV",
        v_max=v_max,
    )
    pulse = BiphasicPulse(pulse_width_ms)
    pulse.phase_steps(config)  # whole solver steps, two phases within a period
    if stimulation == "soma":
        actuator = stn_electrodes(p, n, n_electrodes, i_max, pulse)
    else:
        actuator = extracellular_electrodes(
            p, spec.network, n_electrodes, electrode_distance_um, i_max, pulse
        )

    def build(task: BetaSuppression) -> ControlEnv:
        return ControlEnv.build(
            p,
            actuator,
            task,
            EnergyCost(charge=charge_cost),
            config=config,
            name=f"beta suppression ({p.name})",
            aliases=_ALIASES,
        )

    env = build(task)
    if warm_start_ms > 0:
        bank_key = (plant, signal, tuple(lfp_position_um), config, n_warm, stimulation)
        bank_key += (float(warm_start_ms),)
        if bank_key not in _BANKS:
            _BANKS[bank_key] = warm_states(env, n_warm, warm_start_ms)
        task = eqx.tree_at(
            lambda t: (t.warm, t.v_init_spread),
            task,
            (_BANKS[bank_key], 1.0),
            is_leaf=lambda x: x is None,
        )
        env = build(task)
    observe = [name for name, _ in task.fields()] + ["t/T"]
    return ObserveFields(env, tuple(observe))


_BANKS: dict[tuple, WarmStates] = {}  # warm starts per (plant, options), this process


def warm_states(env: ControlEnv, n: int, warm_ms: float, seed: int = 0):
    """`n` starts after `warm_ms` [ms] of `env` without stimulation (cold starts).

    Args:
        env: a `BetaSuppression` env with ``task.warm = None``.
        n: how many starts [1].
        warm_ms: warm-up length, rounded to whole control periods [ms].
        seed: root of the cold starts and their noise [1].

    Returns:
        `WarmStates` (NumPy leaves, the env's dtype).
    """
    if not (isinstance(n, int) and n >= 1):
        raise bad_value("n_warm", n, "an integer >= 1", "e.g. 8.")
    steps = max(1, round(warm_ms / env.config.control_ms))
    params = env.prepare_params(None)
    zero = jnp.zeros(env.action_space(params).shape, env.config.jnp_dtype)

    def one(key: Array):
        def body(state, _):  # one unstimulated control step
            return env.transition(key, state, zero, params)[0], None

        state, _ = jax.lax.scan(body, env.init_state(key, params), None, steps)
        t = state.task
        return WarmStates(
            state.sim, t.signal, t.filter_state, t.history, t.power, t.noise
        )

    keys = jax.random.split(jax.random.key(seed), n)
    return jax.tree.map(np.asarray, jax.jit(jax.vmap(one))(keys))


_ALIASES = {
    "beta_cost": "task.beta_cost",
    "charge_cost": "objective.charge",
    "i_max": "actuator.i_max",
    "noise_std": "task.noise_std",
    "drift": "task.drift",
}


def _load(plant: str):
    """The plant and its `BetaSpec` (for the soma geometry and dt)."""
    from neuroctl.io.artefacts import open_artefact
    from neuroctl.plants import beta as family
    from neuroctl.plants import load

    if not isinstance(plant, str):
        raise bad_value(
            "plant", plant, "a shipped plant name", 'e.g. "beta_parkinsonian".'
        )
    art = open_artefact(plant, "plant")
    if art.spec.get("kind") != family.KIND:
        raise bad_value(
            "plant",
            plant,
            f"a plant of kind {family.KIND!r}",
            'use "beta_parkinsonian" or "beta_healthy".',
        )
    return load(plant), family.parse_spec(art.spec, art.folder / "spec.toml")


def _config(dt: float, frequency_hz: float, episode_ms: float, dtype, v_max):
    """`ControlConfig`: one pulse per control period; whole periods per episode."""
    ok = isinstance(frequency_hz, (int, float)) and 0 < frequency_hz < 1000.0 / dt
    if not ok:
        raise bad_value(
            "frequency_hz", frequency_hz, f"in (0, {1000.0 / dt:g}) Hz", "e.g. 130."
        )
    substeps = max(1, round(1000.0 / frequency_hz / dt))
    control_ms = substeps * dt  # [ms]
    if not (isinstance(episode_ms, (int, float)) and episode_ms >= control_ms):
        raise bad_value(
            "episode_ms",
            episode_ms,
            f">= one control period ({control_ms:g} ms)",
            "lengthen the episode.",
        )
    n_steps = round(episode_ms / control_ms)
    return ControlConfig(dt, control_ms, n_steps * control_ms, v_max, dtype)


def _signal_weights(plant, signal: str, position, n: int) -> Array:
    """``w`` [nV/mV] of the LFP at `position` [µm], or [1] of the STN axon mean."""
    net = plant.network
    if signal == "stn":
        axons = [plant.readout(f"v_stn_axon{i}") for i in range(n)]
        nodes = np.asarray(net.recording_nodes)[axons]
        return jnp.zeros(net.n_nodes).at[nodes].set(1.0 / n)
    lfp = LFPElectrodes.build(net, jnp.asarray([position], float))
    zero_stim = jnp.zeros(net.n_stimuli)

    def phi(v):  # [µV]; electrode currents count with their return (sum 0)
        i_m = membrane_currents(net, v, v, zero_stim, include_electrodes=True)
        return lfp.potential(i_m)[0]

    return 1e3 * jax.grad(phi)(jnp.zeros(net.n_nodes))  # [nV/mV] (linear in v)


def stn_electrodes(plant, n: int, k: int, i_max: float, pulse):
    """`Electrodes` of `k` groups of neighbouring STN somata (total current [nA]).

    Weight ``1/|group|`` from electrode j to each soma of its group (cells
    ``i·k // n == j``), 0 to every other input: a group's somata share its current.
    """
    if not (isinstance(k, int) and 1 <= k <= n):
        raise bad_value("n_electrodes", k, f"an integer in [1, {n}]", "e.g. 1.")
    w = np.zeros((len(plant.inputs), k))
    for i in range(n):
        w[plant.input(f"dbs_stn{i}"), i * k // n] = 1.0
    w /= w.sum(axis=0, keepdims=True)  # [1]: a group shares its current
    return Electrodes(jnp.asarray(w), i_max=i_max, pulse=pulse)


def extracellular_electrodes(
    plant, geometry, k: int, distance_um: float, i_max: float, pulse
) -> ExtracellularElectrodes:
    """`k` point electrodes beside the STN axons, one per group of neighbouring cells.

    Electrode j sits at the axons' midpoint (x), the mean y of its group's cells
    (``i·k // n == j``) and `distance_um` [µm] off the axons' plane (z) [µm].
    """
    n = geometry.n_cells
    if not (isinstance(k, int) and 1 <= k <= n):
        raise bad_value("n_electrodes", k, f"an integer in [1, {n}]", "e.g. 1.")
    if geometry.axon_length <= 0:
        raise bad_value(
            "stimulation",
            "extracellular",
            "a plant whose STN cells have an axon (axon_length > 0)",
            'use stimulation="soma" with this plant.',
        )
    ok = isinstance(distance_um, (int, float)) and math.isfinite(distance_um)
    if not (ok and distance_um > 0):
        raise bad_value(
            "electrode_distance_um", distance_um, "a number > 0 [µm]", "e.g. 30.0."
        )
    x = geometry.soma_length + 0.5 * geometry.axon_length  # [µm]
    groups = [[i for i in range(n) if i * k // n == j] for j in range(k)]
    ys = [np.mean([geometry.position(0, i)[1] for i in g]) for g in groups]  # [µm]
    positions = [(x, y, geometry.position(0, 0)[2] + distance_um) for y in ys]
    return ExtracellularElectrodes.at(plant, positions, i_max=i_max, pulse=pulse)


def density_action(env, density: float) -> Array:
    """The action giving every STN soma `density` [µA/cm²]: ``(K,)`` [nA].

    E.g. ``density_action(env, 300.0)``: the paper's working DBS amplitude.
    """
    params = env.default_params
    if not hasattr(params.actuator, "weights"):
        raise bad_value(
            "env",
            "an extracellular-stimulation env",
            'stimulation="soma"',
            "somatic current densities need the somatic actuator.",
        )
    w = np.asarray(params.actuator.weights)
    per_soma = density * params.task.density_to_na  # [nA] per soma
    return jnp.asarray(per_soma / w.max(axis=0))  # group total [nA]
