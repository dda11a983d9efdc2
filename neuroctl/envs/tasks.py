"""Tasks: the job a plant is stimulated for, seen through its readouts.

A task keeps its own state (a rate estimate, accumulators), updated every solver
step from the plant's readout voltages [mV]; it pays a reward per control step, may
expose named fields to the observation, and summarises an episode. Array fields are
leaves (targets, costs: vmap or differentiate over them); the rest is static.

* `NoTask`: nothing to do (the objective is the energy cost alone).
* `RateTracking`: make one readout fire at a target rate profile (SpikeRate's task).
"""

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.envs.core import check_range, check_value
from neuroctl.typing import Array, ArrayLike

PyTree = Any


class AbstractTask(eqx.Module):
    """What a plant is stimulated for (see the module docstring)."""

    @abc.abstractmethod
    def init(self, key: Array, dtype) -> PyTree:
        """The task state at the start of an episode (its randomness from `key`)."""

    def period_inputs(self, state: PyTree, t: Array, substeps: int) -> PyTree:
        """Per-solver-step inputs of control step `t` (leading axis `substeps`)."""
        return jnp.zeros((substeps, 0))

    def drive(self, state: PyTree, x: PyTree) -> tuple[PyTree, Array | None]:
        """The task's own input currents [nA] per input site for one solver step.

        E.g. a stimulus stream, from that step's `period_inputs`; None if none.
        """
        return state, None

    @abc.abstractmethod
    def substep(
        self, state: PyTree, v_old: Array, v_new: Array, dt: float, row: Array
    ) -> PyTree:
        """Update after solver step `row` of the episode (length `dt` [ms]).

        `v_old` and `v_new` are the readouts before and after it [mV].
        """

    def init_sim(self, key: Array, sim: PyTree) -> PyTree:
        """The solver state an episode starts from, given the env's (`bp.State`).

        The default keeps it; a task may randomise it (e.g. a voltage spread per
        node) from `key`, the key `init` gets (split it by purpose in both).
        """
        return sim

    def substep_states(
        self, state: PyTree, old: PyTree, new: PyTree, nodes, dt: float, row: Array
    ) -> PyTree:
        """`substep` seeing the full solver states `old` → `new` (`bp.State`).

        For tasks that watch more than the readouts (e.g. an LFP, a weighted sum
        of every node's voltage). The default passes on the readout voltages
        ``v[nodes]`` [mV] to `substep`.
        """
        return self.substep(state, old.v[nodes], new.v[nodes], dt, row)

    @abc.abstractmethod
    def reward(self, state: PyTree, next_state: PyTree, t: Array) -> Array:
        """The task's reward for control step `t` (`state` → `next_state`) [1]."""

    @abc.abstractmethod
    def fields(self) -> tuple[tuple[str, str], ...]:
        """``(name, unit)`` of the fields the task can show the observation."""

    @abc.abstractmethod
    def observe(self, state: PyTree, t: Array) -> dict[str, Array]:
        """Values of `fields` at the start of control step `t`."""

    @abc.abstractmethod
    def bounds(self, dt: float) -> dict[str, tuple[ArrayLike, ArrayLike]]:
        """``name -> (low, high)`` of each field, finite (solver step `dt` [ms])."""

    @abc.abstractmethod
    def metrics(self, state: PyTree, next_state: PyTree, t: Array) -> PyTree:
        """Per-step metrics (a small module of scalars) for ``info.task``."""

    @abc.abstractmethod
    def summarise(self, metrics: PyTree, alive: Array) -> dict[str, Array]:
        """Per-episode summary from the stacked `metrics` of its alive steps."""


class NoTask(AbstractTask):
    """No task: no state, no reward, no fields."""

    def init(self, key, dtype) -> PyTree:
        return ()

    def substep(self, state, v_old, v_new, dt, row):
        return state

    def reward(self, state, next_state, t) -> Array:
        return jnp.zeros(())

    def fields(self) -> tuple[tuple[str, str], ...]:
        return ()

    def observe(self, state, t) -> dict[str, Array]:
        return {}

    def bounds(self, dt: float) -> dict:
        return {}

    def metrics(self, state, next_state, t):
        return None

    def summarise(self, metrics, alive) -> dict[str, Array]:
        return {}


class RateMetrics(eqx.Module):
    """``info.task`` of `RateTracking`: rate [Hz] and its error [Hz] after the step."""

    rate: Array
    rate_error: Array


#: Accepted ranges of `RateTracking`'s (and `SpikeRate`'s) numbers: ``name: (low,
#: high, unit, example)``. Generous (no neuron fires at 10 kHz), and such that the
#: rate estimate and the reward stay finite: τ is a divisor, s too.
RATE_TRACKING_BOUNDS = {
    "target_rate": (0.0, 1e4, "Hz", 60.0),
    "rate_tau": (1e-3, 1e6, "ms", 30.0),
    "spike_threshold": (-1e3, 1e3, "mV", -20.0),
    "spike_slope": (1e-3, 1e3, "mV", 2.0),
}


class RateTracking(AbstractTask):
    """One readout must fire at ``target_rate[t]``; reward −error_cost·(r − target)².

    Firing-rate estimate (differentiable): with ``x(v) = sigmoid((v − θ)/s)`` at the
    readout, every solver step adds ``max(x(v_new) − x(v_old), 0)`` spikes (≈ 1 per
    full spike) to an exponential filter of time constant ``τ``::

        r ← r · exp(−dt/τ) + (1000/τ) · max(Δx, 0)        [Hz; dt, τ in ms]

    Attributes:
        readout: index of the readout that must fire (static).
        target_rate: target per control step, ``(n_steps,)`` [Hz].
        error_cost: weight of the squared rate error [1/Hz²].
        rate_tau: time constant τ of the estimate [ms].
        spike_threshold: midpoint θ of the spike sigmoid [mV].
        spike_slope: width s of the spike sigmoid [mV].
    """

    readout: int = eqx.field(static=True)
    target_rate: ArrayLike
    error_cost: ArrayLike = 1e-4  # [1/Hz²]
    rate_tau: ArrayLike = 30.0  # [ms]
    spike_threshold: ArrayLike = -20.0  # [mV]
    spike_slope: ArrayLike = 2.0  # [mV]

    def __check_init__(self) -> None:
        """Ranges of `RATE_TRACKING_BOUNDS`; error_cost finite and >= 0."""
        for name, (low, high, unit, example) in RATE_TRACKING_BOUNDS.items():
            check_range(name, getattr(self, name), low, high, unit, example)
        check_value(
            "error_cost",
            self.error_cost,
            lambda x: np.all(x >= 0),
            ">= 0 [1/Hz²]",
            "pass e.g. error_cost=1e-4 [1/Hz²].",
        )

    def init(self, key, dtype) -> Array:
        return jnp.zeros((), dtype)  # rate [Hz]

    def substep(self, rate, v_old, v_new, dt, row):
        def level(v):  # soft "in a spike" indicator [1]
            return jax.nn.sigmoid((v - self.spike_threshold) / self.spike_slope)

        spikes = jax.nn.relu(level(v_new[self.readout]) - level(v_old[self.readout]))
        decay = jnp.exp(-dt / self.rate_tau)  # [1]
        return rate * decay + (1000.0 / self.rate_tau) * spikes  # [Hz]

    def target(self, t: Array) -> Array:
        """Target rate [Hz] of control step `t` (the last one after the end)."""
        n = jnp.shape(self.target_rate)[0]
        return self.target_rate[jnp.minimum(t, n - 1)]

    def reward(self, rate, next_rate, t) -> Array:
        return -self.error_cost * (next_rate - self.target(t)) ** 2

    def fields(self) -> tuple[tuple[str, str], ...]:
        return (("rate", "Hz"), ("target_rate", "Hz"))

    def observe(self, rate, t) -> dict[str, Array]:
        return {"rate": rate, "target_rate": self.target(t)}

    def bounds(self, dt: float) -> dict:
        """Rate: ≤ ``1.001·(1000/τ)/(1 − e^{−dt/τ})``; target: its maximum [Hz].

        (The rate bound is one spike per solver step, plus 0.1 %.)
        """
        tau = jnp.asarray(self.rate_tau)
        rate_max = 1.001 * (1000.0 / tau) / -jnp.expm1(-dt / tau)  # [Hz]
        target_max = jnp.max(jnp.asarray(self.target_rate))  # [Hz]
        return {"rate": (0.0, rate_max), "target_rate": (0.0, target_max)}

    def metrics(self, rate, next_rate, t) -> RateMetrics:
        return RateMetrics(rate=next_rate, rate_error=next_rate - self.target(t))

    def summarise(self, metrics: RateMetrics, alive: Array) -> dict[str, Array]:
        """RMS rate error [Hz] and mean rate [Hz] over the episode."""
        n = jnp.maximum(jnp.sum(alive), 1)
        mse = jnp.sum(jnp.where(alive, metrics.rate_error**2, 0.0)) / n  # [Hz²]
        mean_rate = jnp.sum(jnp.where(alive, metrics.rate, 0.0)) / n  # [Hz]
        return {"rate_rmse_hz": jnp.sqrt(mse), "mean_rate_hz": mean_rate}
