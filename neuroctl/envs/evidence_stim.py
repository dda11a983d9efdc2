"""`EvidenceStim`: gate the evidence input of the frozen EI RNN, cheaply and correctly.

The plant is the evidence-integration network (`neuroctl.plants.evidence`). One
episode is one trial drawn at reset by the task's keyed generator
(`evidence_task.sample_trial`). The action is a gain ``g ∈ [0, g_max]`` [1], held for
one control period, that scales the evidence current into every recurrent cell::

    I_i(t) = g · input_scale · w_i · s(t)        [nA]

(``g = 1`` is the plant's native input). Observation: ``[v_readout0 [mV],
v_readout1 [mV], t/T [1]]``. Reward per control step::

    reward = −energy_cost · mean_{t, i} I_i(t)²      (mean over solver steps, cells)

plus, on the last step, the task outcome: ``−cross_entropy(logits, label)``
(``outcome="cross_entropy"``) or ``+1 / −1`` for a correct / wrong decision
(``outcome="sign"``), with ``logits`` = the readouts' mean voltage over the response
window, as the plant was trained (FACTS.md: the closed-loop stimulation result).
"""

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
    check_value,
)
from neuroctl.envs.spaces import Box
from neuroctl.errors import ConfigError, bad_value
from neuroctl.plants import evidence_task as et
from neuroctl.plants.evidence import EvidencePlant
from neuroctl.typing import Array, ArrayLike

Outcome = Literal["cross_entropy", "sign"]
OUTCOMES = ("cross_entropy", "sign")


class EvidenceStimParams(AbstractEnvParams):
    """Task numbers of `EvidenceStim` (leaves: vmap or differentiate over them).

    Attributes:
        g: synaptic conductances of the plant, ``(n_synapses,)`` [µS].
        w: input weights of the plant, ``(n_cells,)`` [1].
        g_max: largest gain (action upper bound) [1].
        energy_cost: weight of the mean squared injected current [1/nA²].
        evidence_mean: |μ| of the trial's white noise [1] (psychometric sweeps).
        divergence_penalty: subtracted once if the simulation diverges [1].
    """

    g: ArrayLike
    w: ArrayLike
    g_max: ArrayLike = 2.0  # [1]
    energy_cost: ArrayLike = 100.0  # [1/nA²]
    evidence_mean: ArrayLike = 0.005  # [1]
    divergence_penalty: ArrayLike = 1000.0  # [1]

    def __check_init__(self) -> None:
        check_value("g", self.g, lambda x: np.all(x >= 0), ">= 0 [µS]")
        check_value("w", self.w, lambda x: np.all(x >= 0), ">= 0")
        check_value("g_max", self.g_max, lambda x: np.all(x > 0), "> 0")
        for name in ("energy_cost", "evidence_mean", "divergence_penalty"):
            check_value(name, getattr(self, name), lambda x: np.all(x >= 0), ">= 0")


class EvidenceStimState(AbstractEnvState):
    """State of `EvidenceStim`.

    Attributes:
        sim: solver state of the network.
        t: control steps taken [1], int32.
        stimulus: the trial's filtered evidence, one value per solver step [1].
        label: the trial's correct answer (0 or 1), int32.
        readout_sum: readout voltages summed over response-window steps so far [mV].
    """

    sim: bp.State
    t: Array
    stimulus: Array
    label: Array
    readout_sum: Array


class EvidenceStimMetrics(eqx.Module):
    """``info.task``: the outcome, filled in on the last step (0 before it).

    Attributes:
        decided: this step ended the trial [bool].
        correct: 1.0 if the decision was right (last step only) [1].
        cross_entropy: of the readout means vs the label (last step only) [nats].
    """

    decided: Array
    correct: Array
    cross_entropy: Array


class EvidenceStim(AbstractEnv):
    """Closed-loop gain control of the evidence input to the frozen EI RNN.

    Build with `EvidenceStim.from_plant`. See the module docstring for the maths.

    Attributes:
        config: timing and dtype (static); ``dt`` and ``episode_ms`` equal the
            task's ``dt`` and ``trial_ms``.
        network: the compiled plant network (static).
        task: the plant's task configuration (static).
        outcome: terminal reward, ``"cross_entropy"`` or ``"sign"`` (static).
        plant_g: the plant's conductances as a tuple (static; default params) [µS].
        plant_w: the plant's input weights as a tuple (static; default params) [1].
    """

    config: ControlConfig = eqx.field(static=True)
    network: bp.Network = eqx.field(static=True)
    task: et.TaskConfig = eqx.field(static=True)
    outcome: str = eqx.field(static=True)
    plant_g: tuple[float, ...] = eqx.field(static=True)
    plant_w: tuple[float, ...] = eqx.field(static=True)

    @classmethod
    def from_plant(
        cls,
        plant: EvidencePlant,
        control_ms: float = 1.0,
        dtype: str | None = None,
        outcome: Outcome = "cross_entropy",
        v_max: float = 1000.0,
    ) -> "EvidenceStim":
        """The env for `plant`, one trial per episode (dtype default: the plant's)."""
        if not isinstance(plant, EvidencePlant):
            raise bad_value("plant", plant, "an EvidencePlant", "use plants.load().")
        if outcome not in OUTCOMES:
            raise bad_value("outcome", outcome, f"one of {OUTCOMES}", "pick one.")
        task = plant.task
        config = ControlConfig(
            dt=task.dt,
            control_ms=control_ms,
            episode_ms=task.trial_ms,
            v_max=v_max,
            dtype=dtype or str(plant.g.dtype),
        )
        g = tuple(float(x) for x in np.asarray(plant.g))
        w = tuple(float(x) for x in np.asarray(plant.input_weights))
        return cls(config, plant.network, task, outcome, g, w)

    def __check_init__(self) -> None:
        if self.config.n_steps * self.config.substeps != self.task.n_steps:
            raise ConfigError(
                f"config: {self.config.n_steps} control steps × "
                f"{self.config.substeps} solver steps != the trial's "
                f"{self.task.n_steps} steps; use dt={self.task.dt} and "
                f"episode_ms={self.task.trial_ms} (EvidenceStim.from_plant does)."
            )

    @property
    def default_params(self) -> EvidenceStimParams:
        dtype = self.config.jnp_dtype
        return EvidenceStimParams(
            g=jnp.asarray(self.plant_g, dtype),
            w=jnp.asarray(self.plant_w, dtype),
            evidence_mean=self.task.evidence_mean,
        )

    def check_params(self, params: EvidenceStimParams) -> None:
        if not isinstance(params, EvidenceStimParams):
            raise bad_value(
                "params", params, "EvidenceStimParams", "use env.default_params."
            )
        for name, n in (("g", len(self.plant_g)), ("w", len(self.plant_w))):
            shape = jnp.shape(getattr(params, name))
            if shape != (n,):
                raise bad_value(
                    f"params.{name}",
                    f"array of shape {shape}",
                    f"shape ({n},), as the plant's",
                    "start from env.default_params.",
                )

    def action_space(self, params: EvidenceStimParams | None = None) -> Box:
        """Input gain ``[0, g_max]``, shape (1,) [1]."""
        params = self.default_params if params is None else params
        return Box(jnp.zeros_like(params.g_max), params.g_max, (1,))

    def observation_space(self, params: EvidenceStimParams | None = None) -> Box:
        """``[v_readout0 [mV], v_readout1 [mV], t/T [1]]``."""
        v = self.config.v_max
        return Box(np.array([-v, -v, 0.0]), np.array([v, v, 1.0]), (3,))

    def init_state(self, key: Array, params: EvidenceStimParams) -> EvidenceStimState:
        dtype = self.config.jnp_dtype
        trial = et.sample_trial(key, self.task, params.evidence_mean)
        net_params = self._net_params(params)
        sim = bp.init_state(self.network, net_params, self.task.v_init, dtype)
        return EvidenceStimState(
            sim=sim,
            t=jnp.zeros((), jnp.int32),
            stimulus=trial.stimulus.astype(dtype),
            label=trial.label,
            readout_sum=jnp.zeros(et.N_READOUTS, dtype),
        )

    def _net_params(self, params: EvidenceStimParams) -> bp.Params:
        net_params = self.network.cast_params(
            self.network.default_params, self.config.jnp_dtype
        )
        return et.apply_to_params(net_params, params.g)

    def transition(self, key, state: EvidenceStimState, gain: Array, params):
        """Inject the gated evidence for `substeps` solver steps."""
        del key  # the trial was drawn at reset
        n, net = self.config.substeps, self.network
        net_params = self._net_params(params)
        first = state.t * n  # solver-step index of this control step's first step
        s = jax.lax.dynamic_slice(state.stimulus, (first,), (n,))
        currents = gain[0] * et.stimulus_currents(s, params.w, self.task)  # [nA]
        rows = first + jnp.arange(n)  # recording row of each step's end state
        window = self.task.window
        in_window = (rows >= window.start) & (rows < window.stop)
        readouts = net.recording_nodes[: et.N_READOUTS]

        def substep(carry, inputs):
            sim, acc = carry
            i_t, counted = inputs
            sim = bp.step(net, net_params, sim, i_t, self.config.dt)
            return (sim, acc + jnp.where(counted, sim.v[readouts], 0.0)), None

        (sim, acc), _ = jax.lax.scan(
            substep, (state.sim, state.readout_sum), (currents, in_window)
        )
        nxt = EvidenceStimState(sim, state.t + 1, state.stimulus, state.label, acc)
        return nxt, currents

    def logits(self, state: EvidenceStimState) -> Array:
        """Readout means over the response window [mV] (complete at the trial end)."""
        window = self.task.window
        return state.readout_sum / (window.stop - window.start)

    def observation(self, state: EvidenceStimState, params) -> Array:
        readouts = self.network.recording_nodes[: et.N_READOUTS]
        t_frac = jnp.asarray(state.t / self.n_steps, state.sim.v.dtype)  # [1]
        return jnp.concatenate([state.sim.v[readouts], t_frac[None]])

    def reward(self, state, action, next_state, energy: Energy, params) -> Array:
        cost = params.energy_cost * energy.current_power  # [1/nA²]·[nA²]
        outcome = self._outcome(next_state)
        return -cost + jnp.where(self.terminal(next_state, params), outcome, 0.0)

    def _outcome(self, state: EvidenceStimState) -> Array:
        logits = self.logits(state)
        if self.outcome == "sign":
            return 2.0 * et.accuracy(logits, state.label) - 1.0
        return -et.cross_entropy(logits, state.label)

    def terminal(self, state: EvidenceStimState, params) -> Array:
        return state.t >= self.n_steps

    def metrics(self, state, next_state, params) -> EvidenceStimMetrics:
        decided = self.terminal(next_state, params)
        logits = self.logits(next_state)
        correct = et.accuracy(logits, next_state.label)
        ce = et.cross_entropy(logits, next_state.label)
        return EvidenceStimMetrics(
            decided=decided,
            correct=jnp.where(decided, correct, 0.0),
            cross_entropy=jnp.where(decided, ce, 0.0),
        )


def untrained_plant(task: et.TaskConfig | None = None) -> EvidencePlant:
    """The plant with default (untrained) g = 0.001 µS and w = 0.5, for tests/demos."""
    from neuroctl.plants.evidence import ParamsSpec, PlantSpec, plant_from
    from neuroctl.plants.evidence_net import EvidenceNetConfig

    spec = PlantSpec(
        name="untrained",
        network=EvidenceNetConfig(),
        task=et.TaskConfig() if task is None else task,
        params=ParamsSpec(),
    )
    n_syn, n_in = spec.params.n_synapses, spec.params.n_inputs
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    return plant_from(spec, jnp.full(n_syn, 0.001, dtype), jnp.full(n_in, 0.5, dtype))
