"""`SpikeRate`: make one neuron fire at a target rate with as little charge as possible.

The plant is a Hodgkin–Huxley point cell (NEURON geometry: L = 18.8 µm,
r = 9.4 µm, area ≈ 1,110 µm²) or a ball-and-stick cell (HH soma, passive
200-µm dendrite with ``g = 0.1 mS/cm²``, ``e = −65 mV``). The action is a current
``I ∈ [0, i_max]`` [nA] injected at the soma and held for one control period.

Firing-rate estimate (differentiable). With ``x(v) = sigmoid((v − θ)/s)`` at the soma,
every solver step adds ``max(x(v_new) − x(v_old), 0)`` spikes (≈ 1 per full spike,
whatever its width) to an exponential filter of time constant ``τ``::

    r ← r · exp(−dt/τ) + (1000/τ) · max(Δx, 0)        [Hz; dt, τ in ms]

so ``r`` is a spike train convolved with a unit-area kernel ``e^{−t/τ}/τ``: its mean is
the firing rate. Reward per control step ``t``::

    reward = −error_cost · (r − target_rate[t])² − charge_cost · Q

with the injected charge ``Q = I · control_ms`` [pC]. Observation:
``[v_soma [mV], r [Hz], target_rate[t] [Hz], t/T [1]]``.
"""

import functools
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl import biophysics as bp
from neuroctl.envs.core import (
    AbstractEnv,
    AbstractEnvParams,
    AbstractEnvState,
    ControlConfig,
    Energy,
    check_range,
    check_value,
)
from neuroctl.envs.spaces import Box
from neuroctl.envs.tasks import RATE_TRACKING_BOUNDS
from neuroctl.errors import bad_value
from neuroctl.typing import Array, ArrayLike

CellKind = Literal["single", "ball_and_stick"]
CELLS: tuple[str, ...] = ("single", "ball_and_stick")


@functools.cache
def build_cell(cell: CellKind = "single") -> bp.Network:
    """The plant: stimulus and recording at the soma (cell 0, branch 0).

    Cached: a `Network` hashes by identity, so envs sharing it share compiled code.
    """
    if cell == "single":
        c = bp.Cell(bp.Morphology.single_compartment(18.8, 9.4)).insert(bp.HH())
    elif cell == "ball_and_stick":
        c = (
            bp.Cell(bp.Morphology.ball_and_stick())
            .insert(bp.HH(), 0)
            .insert(bp.Leak(g=0.1, e=-65.0), 1)  # [mS/cm²], [mV]
        )
    else:
        raise bad_value("cell", cell, f"one of {CELLS}", "pick a plant.")
    return bp.Network.build([c], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])


class SpikeRateParams(AbstractEnvParams):
    """Task numbers of `SpikeRate` (leaves: vmap or differentiate over them).

    Attributes:
        target_rate: target firing rate per control step, ``(n_steps,)`` [Hz].
        i_max: largest injectable current (action upper bound) [nA].
        error_cost: weight of the squared rate error [1/Hz²].
        charge_cost: weight of the injected charge [1/pC].
        rate_tau: time constant of the rate estimate [ms].
        spike_threshold: midpoint θ of the spike sigmoid [mV].
        spike_slope: width s of the spike sigmoid [mV].
        v_init: initial membrane potential (gates at steady state) [mV].
        v_init_jitter: half-width of a uniform jitter added to `v_init` per episode
            [mV].
        divergence_penalty: subtracted once if the simulation diverges [1]
            (larger than any episode's cost, so diverging never pays).
        cell: the cell's channel parameters (`bp.Params`); None = the defaults.
    """

    target_rate: ArrayLike
    i_max: ArrayLike = 0.5  # [nA]
    error_cost: ArrayLike = 1e-4  # [1/Hz²]
    charge_cost: ArrayLike = 0.1  # [1/pC]
    rate_tau: ArrayLike = 30.0  # [ms]
    spike_threshold: ArrayLike = -20.0  # [mV]
    spike_slope: ArrayLike = 2.0  # [mV]
    v_init: ArrayLike = -65.0  # [mV]
    v_init_jitter: ArrayLike = 2.0  # [mV]
    divergence_penalty: ArrayLike = 1000.0  # [1]
    cell: bp.Params | None = None

    def __check_init__(self) -> None:
        """Value checks on concrete leaves (skipped for traced ones, e.g. in vmap)."""
        for name, (low, high, unit, example) in _RANGES.items():
            check_range(name, getattr(self, name), low, high, unit, example)
        check_value(
            "i_max", self.i_max, lambda x: np.all(x > 0), "> 0 [nA]", _FIX["i_max"]
        )
        for name in _NON_NEGATIVE:
            value = getattr(self, name)
            check_value(name, value, lambda x: np.all(x >= 0), ">= 0", _FIX[name])


_RANGES = RATE_TRACKING_BOUNDS | {
    "v_init": (-1e3, 1e3, "mV", -65.0),
    "v_init_jitter": (0.0, 1e3, "mV", 2.0),
}
_NON_NEGATIVE = ("error_cost", "charge_cost", "divergence_penalty")
_FIX = {
    "i_max": "pass e.g. i_max=0.5 [nA].",
    "error_cost": "pass e.g. error_cost=1e-4 [1/Hz²].",
    "charge_cost": "pass e.g. charge_cost=0.1 [1/pC].",
    "divergence_penalty": "pass e.g. divergence_penalty=1000.0.",
}


class SpikeRateState(AbstractEnvState):
    """State of `SpikeRate`.

    Attributes:
        sim: solver state of the cell (v [mV], gates [1]).
        t: control steps taken [1], int32.
        rate: smoothed firing-rate estimate [Hz].
    """

    sim: bp.State
    t: Array
    rate: Array


class SpikeRateMetrics(eqx.Module):
    """``info.task`` of `SpikeRate`: the rate [Hz] and its error [Hz] after the step."""

    rate: Array
    rate_error: Array


class SpikeRate(AbstractEnv):
    """Drive one HH neuron to a target firing-rate profile with minimal charge.

    See the module docstring for the rate estimate, reward and observation.

    Attributes:
        config: timing and dtype (static); defaults: dt 0.025 ms, 1-ms control
            period, 200-ms episodes (200 control steps).
        cell: ``"single"`` (HH point cell) or ``"ball_and_stick"`` (static).
        network: the compiled cell (static).
    """

    config: ControlConfig = eqx.field(static=True)
    cell: str = eqx.field(static=True)
    network: bp.Network = eqx.field(static=True)

    def __init__(self, config: ControlConfig | None = None, cell: CellKind = "single"):
        config = ControlConfig() if config is None else config
        if not isinstance(config, ControlConfig):
            raise bad_value("config", config, "a ControlConfig", "build one.")
        self.config, self.cell, self.network = config, cell, build_cell(cell)

    @property
    def default_params(self) -> SpikeRateParams:
        """Target: 0 Hz (first 25 % of the episode), 60 Hz, then 90 Hz (last 35 %)."""
        frac = (np.arange(self.n_steps) + 0.5) / self.n_steps
        target = np.select([frac < 0.25, frac < 0.65], [0.0, 60.0], 90.0)
        return SpikeRateParams(target_rate=jnp.asarray(target, self.config.jnp_dtype))

    def check_params(self, params: SpikeRateParams) -> None:
        if not isinstance(params, SpikeRateParams):
            raise bad_value(
                "params", params, "SpikeRateParams", "use env.default_params."
            )
        shape = jnp.shape(params.target_rate)
        if shape != (self.n_steps,):
            raise bad_value(
                "params.target_rate",
                f"array of shape {shape}",
                f"shape ({self.n_steps},): one rate [Hz] per control step",
                "match config.episode_ms / config.control_ms.",
            )
        for name in ("i_max", "error_cost", "charge_cost", "rate_tau", "v_init"):
            if jnp.shape(getattr(params, name)) != ():
                raise bad_value(
                    f"params.{name}", getattr(params, name), "a scalar", "vmap instead."
                )

    def action_space(self, params: SpikeRateParams | None = None) -> Box:
        """Soma current ``[0, i_max]``, shape (1,) [nA]."""
        params = self.default_params if params is None else params
        return Box(jnp.zeros_like(params.i_max), params.i_max, (1,))

    def observation_space(self, params: SpikeRateParams | None = None) -> Box:
        """``[v [mV], rate [Hz], target [Hz], t/T [1]]``, all bounds finite.

        ``|v| <= v_max`` (divergence keeps the last good state); the rate is at most
        one spike per solver step, ``(1000/τ) / (1 − exp(−dt/τ))`` [Hz] (+0.1 %).
        """
        params = self.default_params if params is None else params
        tau = jnp.asarray(params.rate_tau)
        rate_max = 1.001 * (1000.0 / tau) / -jnp.expm1(-self.config.dt / tau)  # [Hz]
        target_max = jnp.max(jnp.asarray(params.target_rate))  # [Hz]
        v = self.config.v_max  # [mV]
        zero = jnp.zeros_like(rate_max)
        low = jnp.stack([zero - v, zero, zero, zero])
        return Box(
            low, jnp.stack([zero + v, rate_max, target_max + zero, zero + 1]), (4,)
        )

    def cell_params(self, params: SpikeRateParams) -> bp.Params:
        cell = self.network.default_params if params.cell is None else params.cell
        return self.network.cast_params(cell, self.config.jnp_dtype)

    def init_state(self, key: Array, params: SpikeRateParams) -> SpikeRateState:
        dtype = self.config.jnp_dtype
        jitter = jax.random.uniform(key, (), dtype, -1.0, 1.0) * params.v_init_jitter
        sim = bp.init_state(
            self.network, self.cell_params(params), params.v_init + jitter, dtype
        )
        return SpikeRateState(
            sim=sim, t=jnp.zeros((), jnp.int32), rate=jnp.zeros((), dtype)
        )

    def transition(self, key, state: SpikeRateState, action: Array, params):
        """Hold the current `action` [nA] for `substeps` solver steps."""
        del key  # deterministic plant
        cell, dt = self.cell_params(params), self.config.dt
        soma = int(self.network.recording_nodes[0])
        decay = jnp.exp(-dt / params.rate_tau)  # [1]
        gain = 1000.0 / params.rate_tau  # [Hz per spike]: unit-area kernel, τ in ms

        def level(v: Array) -> Array:  # soft "in a spike" indicator [1]
            return jax.nn.sigmoid((v - params.spike_threshold) / params.spike_slope)

        def substep(carry, _):
            sim, rate = carry
            new = bp.step(self.network, cell, sim, action, dt)
            spikes = jax.nn.relu(level(new.v[soma]) - level(sim.v[soma]))  # [1]
            return (new, rate * decay + gain * spikes), None

        (sim, rate), _ = jax.lax.scan(
            substep, (state.sim, state.rate), None, length=self.config.substeps
        )
        currents = jnp.broadcast_to(action, (self.config.substeps, 1))  # [nA]
        return SpikeRateState(sim=sim, t=state.t + 1, rate=rate), currents

    def target(self, state: SpikeRateState, params: SpikeRateParams) -> Array:
        """Target rate [Hz] of the control step that starts at `state`."""
        return params.target_rate[jnp.minimum(state.t, self.n_steps - 1)]

    def observation(self, state: SpikeRateState, params: SpikeRateParams) -> Array:
        soma = int(self.network.recording_nodes[0])
        t_frac = jnp.minimum(state.t / self.n_steps, 1.0)  # [1], stays 1 after the end
        parts = [state.sim.v[soma], state.rate, self.target(state, params), t_frac]
        return jnp.stack([jnp.asarray(x, state.rate.dtype) for x in parts])

    def reward(self, state, action, next_state, energy: Energy, params) -> Array:
        error = next_state.rate - self.target(state, params)  # [Hz]
        return -params.error_cost * error**2 - params.charge_cost * energy.charge

    def action_unit(self) -> str:
        return "nA"

    def observation_fields(self) -> tuple[tuple[str, str], ...]:
        return (("v_soma", "mV"), ("rate", "Hz"), ("target_rate", "Hz"), ("t/T", "1"))

    def episode_outcome(self, task: SpikeRateMetrics, alive: Array) -> dict[str, Array]:
        """Root-mean-square rate error over the episode [Hz] and the mean rate [Hz]."""
        n = jnp.maximum(jnp.sum(alive), 1)
        mse = jnp.sum(jnp.where(alive, task.rate_error**2, 0.0)) / n  # [Hz²]
        mean_rate = jnp.sum(jnp.where(alive, task.rate, 0.0)) / n  # [Hz]
        return {"rate_rmse_hz": jnp.sqrt(mse), "mean_rate_hz": mean_rate}

    def terminal(self, state: SpikeRateState, params) -> Array:
        return state.t >= self.n_steps

    def metrics(self, state, next_state, params) -> SpikeRateMetrics:
        error = next_state.rate - self.target(state, params)
        return SpikeRateMetrics(rate=next_state.rate, rate_error=error)


def spike_rate_control(
    config: ControlConfig | None = None, cell: CellKind = "single"
) -> "ControlEnv":  # noqa: F821 — imported below to keep the module light
    """`SpikeRate` as a composed `ControlEnv` (same plant, action, reward, obs).

    The soma current is a `SiteCurrents` actuator on ``[0, 0.5]`` nA, the rate
    profile a `RateTracking` task, the charge an `EnergyCost(charge=0.1)`; episodes
    start at −65 ± 2 mV. Step for step it equals `SpikeRate` to float rounding
    (tests/envs/test_control.py).
    """
    from neuroctl.envs.actuators import SiteCurrents
    from neuroctl.envs.control import ControlEnv
    from neuroctl.envs.objectives import EnergyCost
    from neuroctl.envs.tasks import RateTracking
    from neuroctl.plants.base import Plant

    legacy = SpikeRate(config, cell)
    defaults = legacy.default_params
    plant = Plant.from_network(
        legacy.network, inputs=("soma",), readouts=("v_soma",), name=f"hh_{cell}"
    )
    task = RateTracking(
        readout=0,
        target_rate=defaults.target_rate,
        error_cost=defaults.error_cost,
        rate_tau=defaults.rate_tau,
        spike_threshold=defaults.spike_threshold,
        spike_slope=defaults.spike_slope,
    )
    return ControlEnv.build(
        plant,
        SiteCurrents.on(plant, ["soma"], low=0.0, high=defaults.i_max),
        task,
        EnergyCost(charge=defaults.charge_cost),
        observe=("v_soma", "rate", "target_rate", "t/T"),
        config=legacy.config,
        v_init_jitter=float(defaults.v_init_jitter),
        name=f"SpikeRate ({cell})",
        aliases=SPIKE_RATE_ALIASES,
    )


#: the hand-written `SpikeRateParams` names → the composed env's params
SPIKE_RATE_ALIASES = {
    "target_rate": "task.target_rate",
    "i_max": "actuator.high",
    "error_cost": "task.error_cost",
    "charge_cost": "objective.charge",
    "rate_tau": "task.rate_tau",
    "spike_threshold": "task.spike_threshold",
    "spike_slope": "task.spike_slope",
}
