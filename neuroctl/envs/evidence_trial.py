"""`EvidenceTrial`: the evidence plant's task as a `ControlEnv` task, and its envs.

One episode is one trial of the plant's task, streamed as `EvidenceStim` streams it
(same key split and maths): white noise ``x ~ N(μ, noise_std²)`` drawn per control
step from ``fold_in(noise_key, t)``, the task's Butterworth filter step by step
(``s``), and the evidence current ``input_gain · input_scale · w_i · s`` [nA] into
each cell's basal input. The readouts are summed over the response window; on the
last control step the task pays ``−CE(margin_scale · readout means, label)`` (or
``±1``, ``outcome="sign"``). Fields: ``mean_stimulus`` (Σ s / steps so far) and
``stimulus`` (the latest ``s``) [1].

`TaskInputGain` is the actuator that scales this drive (`EvidenceStim`'s action);
`evidence_control` / `electrodes_control` compose the two registered evidence envs.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.envs.actuators import AbstractActuator, BiphasicPulse, Electrodes
from neuroctl.envs.core import ControlConfig, check_value
from neuroctl.envs.evidence_stim import (
    OUTCOMES,
    EvidenceStimMetrics,
    decision_metrics,
    decision_outcome,
    sos_step,
    task_outcome,
)
from neuroctl.envs.spaces import Box
from neuroctl.envs.tasks import AbstractTask
from neuroctl.errors import bad_value
from neuroctl.plants import evidence_task as et
from neuroctl.typing import Array, ArrayLike


class TrialState(eqx.Module):
    """`EvidenceTrial` state (as `EvidenceStimState` without the solver state)."""

    noise_key: Array
    mean: Array  # the trial's white-noise mean μ [1]
    filter_state: Array  # Butterworth second-order-section state [1]
    stimulus_sum: Array  # Σ filtered stimulus so far [1]; label = (sum > 0)
    readout_sum: Array  # readouts summed over response-window steps [mV]
    stimulus_now: Array  # the latest filtered sample [1]

    @property
    def label(self) -> Array:
        return (self.stimulus_sum > 0).astype(jnp.int32)


class EvidenceTrial(AbstractTask):
    """The evidence-integration task (see the module docstring).

    Attributes:
        w: input weights of the plant's cells, ``(n_inputs,)`` [1].
        input_gain: gain of the evidence drive [1] (1 = as trained).
        evidence_mean: |μ| of the trial's white noise [1].
        task: the plant's task configuration (static).
        n_steps: control steps per trial (static) [1].
        substeps: solver steps per control step (static) [1].
        outcome: ``"cross_entropy"`` or ``"sign"`` (static).
        margin_scale: scale of the readout means inside the terminal CE [1/mV]
            (1: the plant's own loss).
    """

    w: ArrayLike
    input_gain: ArrayLike = 1.0  # [1]
    evidence_mean: ArrayLike = 0.005  # [1]
    task: et.TaskConfig = eqx.field(static=True, default=et.TaskConfig())
    n_steps: int = eqx.field(static=True, default=520)
    substeps: int = eqx.field(static=True, default=40)
    outcome: str = eqx.field(static=True, default="cross_entropy")
    margin_scale: ArrayLike = 1.0  # [1/mV]

    def __check_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise bad_value("outcome", self.outcome, f"one of {OUTCOMES}", "pick one.")
        check_value("w", self.w, lambda x: np.all(x >= 0), ">= 0")
        for name in ("input_gain", "evidence_mean"):
            check_value(name, getattr(self, name), lambda x: np.all(x >= 0), ">= 0")
        check_value(
            "margin_scale", self.margin_scale, lambda x: np.all(x > 0), "> 0 [1/mV]"
        )

    def _sos(self) -> np.ndarray:
        return et.filter_sos(self.task)

    def init(self, key: Array, dtype) -> TrialState:
        """A new trial: μ drawn as `evidence_task.sample_trial` draws it."""
        k_sign, k_jitter, k_noise = jax.random.split(key, 3)
        sign = jnp.where(jax.random.bernoulli(k_sign), 1.0, -1.0)
        jitter = self.task.mean_jitter_std * jax.random.normal(k_jitter, (), dtype)
        zero = jnp.zeros((), dtype)
        return TrialState(
            noise_key=k_noise,
            mean=(sign * self.evidence_mean + jitter).astype(dtype),
            filter_state=jnp.zeros((self._sos().shape[0], 2), dtype),
            stimulus_sum=zero,
            readout_sum=jnp.zeros(et.N_READOUTS, dtype),
            stimulus_now=zero,
        )

    def period_inputs(self, state: TrialState, t: Array, substeps: int) -> Array:
        """White noise ``N(μ, noise_std²)`` of control step `t`, ``(substeps,)``."""
        dtype = state.mean.dtype
        z = jax.random.normal(
            jax.random.fold_in(state.noise_key, t), (substeps,), dtype
        )
        return state.mean + self.task.noise_std * z

    def drive(self, state: TrialState, x: Array) -> tuple[TrialState, Array]:
        sos = jnp.asarray(self._sos(), state.mean.dtype)
        s, z = sos_step(sos, state.filter_state, x)  # filtered stimulus [1]
        scale = self.input_gain * self.task.input_scale * self.w  # [nA per unit]
        state = eqx.tree_at(
            lambda st: (st.filter_state, st.stimulus_sum, st.stimulus_now),
            state,
            (z, state.stimulus_sum + s, s),
        )
        return state, scale * s  # [nA]

    def substep(self, state: TrialState, v_old, v_new, dt, row) -> TrialState:
        window = self.task.window
        counted = (row >= window.start) & (row < window.stop)
        acc = state.readout_sum + jnp.where(counted, v_new[: et.N_READOUTS], 0.0)
        return eqx.tree_at(lambda st: st.readout_sum, state, acc)

    def logits(self, state: TrialState) -> Array:
        """Readout means over the response window [mV]."""
        window = self.task.window
        return state.readout_sum / (window.stop - window.start)

    def _outcome(self, state: TrialState) -> Array:
        return task_outcome(
            self.logits(state), state.label, self.outcome, self.margin_scale
        )

    def reward(self, state, next_state, t) -> Array:
        return jnp.where(t + 1 >= self.n_steps, self._outcome(next_state), 0.0)

    def fields(self) -> tuple[tuple[str, str], ...]:
        return (("mean_stimulus", "1"), ("stimulus", "1"))

    def observe(self, state: TrialState, t) -> dict[str, Array]:
        steps = jnp.maximum(t * self.substeps, 1)
        return {
            "mean_stimulus": state.stimulus_sum / steps,
            "stimulus": state.stimulus_now,
        }

    def bounds(self, dt: float) -> dict:
        return {"mean_stimulus": (-1.0, 1.0), "stimulus": (-1.0, 1.0)}  # ±1 ≈ 200σ

    def metrics(self, state, next_state, t) -> EvidenceStimMetrics:
        decided = t + 1 >= self.n_steps
        return decision_metrics(decided, self.logits(next_state), next_state.label)

    def summarise(self, metrics, alive) -> dict[str, Array]:
        return decision_outcome(metrics, alive)


class TaskInputGain(AbstractActuator):
    """A gain ``g ∈ [0, g_max]`` on the task's own input drive (the sources).

    Attributes:
        g_max: the largest gain [1].
    """

    g_max: ArrayLike = 2.0  # [1]
    pulse: BiphasicPulse | None = eqx.field(static=True, default=None)

    def unit(self) -> str:
        return "1"

    def action_space(self) -> Box:
        return Box(jnp.zeros_like(self.g_max), self.g_max, (1,))

    def apply(self, a: Array, drive: Array | None) -> tuple[Array, Array]:
        if drive is None:  # at trace time
            raise bad_value(
                "actuator",
                "TaskInputGain",
                "a task with an input drive (e.g. EvidenceTrial)",
                "use SiteCurrents or Electrodes with this task.",
            )
        sources = a * drive  # [1]·[nA]
        return sources, sources

    def to_inputs(self, sources: Array) -> Array:
        return sources


_OBSERVED = {"observe_evidence": "mean_stimulus", "observe_stimulus": "stimulus"}


def evidence_control(
    plant,
    actuator: AbstractActuator | None = None,
    control_ms: float = 1.0,
    dtype: str | None = None,
    outcome: str = "cross_entropy",
    observe_evidence: bool = False,
    observe_stimulus: bool = False,
    input_gain: float = 1.0,
    energy_cost: float = 100.0,
    v_max: float = 1000.0,
):
    """The evidence plant as a `ControlEnv`: one trial per episode.

    `actuator` defaults to `TaskInputGain(2.0)` (`EvidenceStim`'s action); with
    `Electrodes` (and ``input_gain`` for the evidence) it is
    `EvidenceStimElectrodes`. ``energy_cost`` weighs the sources' mean I² [1/nA²];
    ``v_max`` [mV] bounds the membrane potential before a step counts as diverged.
    The env observes every field (readouts [mV], stimulus statistics, t/T); an
    `ObserveFields` wrapper passes on both readouts, t/T and the stimulus fields
    asked for, as `EvidenceStim` observes them. Its params also answer to
    `EvidenceStim`'s names (`param_aliases`).
    """
    from neuroctl.envs.control import ControlEnv
    from neuroctl.envs.objectives import EnergyCost
    from neuroctl.envs.wrappers import ObserveFields
    from neuroctl.plants.base import Plant

    cfg = plant.task
    config = ControlConfig(
        dt=cfg.dt,
        control_ms=control_ms,
        episode_ms=cfg.trial_ms,
        dtype=dtype or str(plant.g.dtype),
        v_max=v_max,
    )
    n_cells = int(np.shape(plant.input_weights)[0])
    readouts = ("v_readout0", "v_readout1", *(f"v_soma{i}" for i in range(n_cells)))
    inputs = tuple(f"cell{i}" for i in range(n_cells))
    base = Plant(plant.network, plant.params, inputs, readouts, cfg.v_init, plant.name)
    trial = EvidenceTrial(
        plant.input_weights,
        input_gain,
        cfg.evidence_mean,
        cfg,
        config.n_steps,
        config.substeps,
        outcome,
    )
    actuator = TaskInputGain() if actuator is None else actuator
    env = ControlEnv.build(
        base,
        actuator,
        trial,
        EnergyCost(current_power=energy_cost),
        config=config,
        name=f"evidence ({plant.name})",
        aliases=_aliases(actuator),
    )
    flags = {"observe_evidence": observe_evidence, "observe_stimulus": observe_stimulus}
    observe = ("v_readout0", "v_readout1", "t/T") + tuple(
        field for flag, field in _OBSERVED.items() if flags[flag]
    )
    return ObserveFields(env, observe)


def _aliases(actuator: AbstractActuator) -> dict[str, str]:
    """The hand-written evidence envs' param names → the composed env's."""
    names = {
        "energy_cost": "objective.current_power",
        "evidence_mean": "task.evidence_mean",
        "evidence_gain": "task.input_gain",
        "margin_scale": "task.margin_scale",
        "gain_cost": "objective.action_sq",
        "charge_cost": "objective.charge",
    }
    if isinstance(actuator, TaskInputGain):
        names["g_max"] = "actuator.g_max"
    elif isinstance(actuator, Electrodes):
        names["i_max"] = "actuator.i_max"
    return names
