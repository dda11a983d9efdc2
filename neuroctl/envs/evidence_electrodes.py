"""`EvidenceStimElectrodes`: stimulate the frozen evidence plant through K electrodes.

Same plant, trial stream, observation and terminal outcome as `EvidenceStim` (this env
holds one and reuses its trial streaming, filter and readout: `EvidenceStim.advance`).
The evidence enters at a fixed gain (``params.evidence_gain``, default 1: the plant as
trained); the action is the current at each of K electrodes [nA], in
``[-i_max, i_max]``. Electrode ``k`` reaches recurrent cell ``i`` through a fixed
spatial weight ``W[i, k]`` [1], at the same basal sites as the evidence::

    I_i(t) = evidence_gain · input_scale · w_i · s(t) + Σ_k W[i, k] · a_k(t)    [nA]

``W`` is built deterministically by `electrode_weights` (cells scattered on a square
sheet from a seed, electrodes on a grid, Gaussian fall-off
``exp(−d²/(2λ²))`` with ``d``, ``λ`` in µm) and is a param leaf, so it can be
vmapped or differentiated. ``a_k(t)`` is the action held over the control period, or a
charge-balanced biphasic pulse of that amplitude (`BiphasicPulse`). Reward per step::

    reward = −energy_cost · mean_{t, k} a_k(t)²        (solver steps, electrodes)

plus the trial outcome on the last step, as in `EvidenceStim`; ``info`` reports the
charge [pC] and mean current power [nA²] of the electrode currents.
"""

import math
from dataclasses import dataclass

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from neuroctl.envs.actuators import BiphasicPulse, held_currents
from neuroctl.envs.core import (
    AbstractEnv,
    AbstractEnvParams,
    ControlConfig,
    Energy,
    check_value,
)
from neuroctl.envs.evidence_stim import (
    EvidenceStim,
    EvidenceStimMetrics,
    EvidenceStimState,
    Outcome,
)
from neuroctl.envs.spaces import Box
from neuroctl.errors import bad_value
from neuroctl.plants.evidence import EvidencePlant
from neuroctl.typing import Array, ArrayLike


@dataclass(frozen=True)
class ElectrodeLayout:
    """Where cells and electrodes sit on a virtual square sheet (static config).

    Cells are placed uniformly at random from `seed`; electrodes on a centred grid of
    ``ceil(√K)`` columns (row-major, first K points).
    """

    n_electrodes: int = 4  # K [1]
    sheet_um: float = 200.0  # side of the square sheet [µm]
    length_constant_um: float = 50.0  # λ of the Gaussian fall-off [µm]
    seed: int = 0  # draws the cell positions

    def __post_init__(self) -> None:
        if not (isinstance(self.n_electrodes, int) and self.n_electrodes >= 1):
            raise bad_value("n_electrodes", self.n_electrodes, "an int >= 1", "e.g. 4.")
        for name in ("sheet_um", "length_constant_um"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise bad_value(name, value, "a finite number > 0 [µm]", "e.g. 50.0.")
            if value <= 0:
                raise bad_value(name, value, "a finite number > 0 [µm]", "e.g. 50.0.")
        if not isinstance(self.seed, int):
            raise bad_value("seed", self.seed, "an int", "e.g. 0.")

    def electrode_positions(self) -> np.ndarray:
        """Electrode centres ``(K, 2)`` [µm]."""
        k = self.n_electrodes
        cols = math.ceil(math.sqrt(k))
        rows = math.ceil(k / cols)
        x = (np.arange(cols) + 0.5) / cols * self.sheet_um  # [µm]
        y = (np.arange(rows) + 0.5) / rows * self.sheet_um  # [µm]
        grid = np.stack(np.meshgrid(x, y), axis=-1).reshape(-1, 2)
        return grid[:k]

    def cell_positions(self, n_cells: int) -> np.ndarray:
        """Cell positions ``(n_cells, 2)`` [µm], uniform on the sheet from `seed`."""
        rng = np.random.default_rng(self.seed)
        return rng.uniform(0.0, self.sheet_um, (n_cells, 2))


def electrode_weights(layout: ElectrodeLayout, n_cells: int) -> np.ndarray:
    """Spatial weights ``W`` ``(n_cells, K)`` [1]: ``exp(−d²/(2λ²))``, d, λ in µm."""
    cells = layout.cell_positions(n_cells)  # [µm]
    electrodes = layout.electrode_positions()  # [µm]
    d2 = np.sum((cells[:, None, :] - electrodes[None, :, :]) ** 2, axis=-1)  # [µm²]
    return np.exp(-d2 / (2.0 * layout.length_constant_um**2))  # [1]


class EvidenceStimElectrodesParams(AbstractEnvParams):
    """Task numbers of `EvidenceStimElectrodes` (leaves: vmap or differentiate).

    Attributes:
        g: synaptic conductances of the plant, ``(n_synapses,)`` [µS].
        w: input weights of the plant, ``(n_cells,)`` [1].
        electrode_weights: spatial weights ``W``, ``(n_cells, K)`` [1].
        evidence_gain: fixed gain of the evidence input [1] (1 = as trained).
        i_max: largest electrode current magnitude (action bound) [nA].
        energy_cost: weight of the electrodes' mean squared current [1/nA²].
        evidence_mean: |μ| of the trial's white noise [1].
        divergence_penalty: subtracted once if the simulation diverges [1].
    """

    g: ArrayLike
    w: ArrayLike
    electrode_weights: ArrayLike
    evidence_gain: ArrayLike = 1.0  # [1]
    i_max: ArrayLike = 0.1  # [nA]
    energy_cost: ArrayLike = 1.0  # [1/nA²]
    evidence_mean: ArrayLike = 0.005  # [1]
    divergence_penalty: ArrayLike = 1000.0  # [1]

    def __check_init__(self) -> None:
        check_value("g", self.g, lambda x: np.all(x >= 0), ">= 0 [µS]")
        check_value("w", self.w, lambda x: np.all(x >= 0), ">= 0")
        check_value("electrode_weights", self.electrode_weights, lambda x: True, "[1]")
        check_value("i_max", self.i_max, lambda x: np.all(x > 0), "> 0 [nA]")
        for name in _NON_NEGATIVE:
            check_value(name, getattr(self, name), lambda x: np.all(x >= 0), ">= 0")


_NON_NEGATIVE = ("evidence_gain", "energy_cost", "evidence_mean", "divergence_penalty")


class EvidenceStimElectrodes(AbstractEnv):
    """K-electrode stimulation of the frozen EI RNN (see the module docstring).

    Build with `EvidenceStimElectrodes.from_plant`.

    Attributes:
        config: timing and dtype (static), the evidence env's.
        evidence: the `EvidenceStim` env whose plant, trials and readout this uses.
        layout: electrode/cell placement (static): K and the default weights.
        pulse: `BiphasicPulse` action transform, or None to hold the action.
    """

    config: ControlConfig = eqx.field(static=True)
    evidence: EvidenceStim = eqx.field(static=True)
    layout: ElectrodeLayout = eqx.field(static=True)
    pulse: BiphasicPulse | None = eqx.field(static=True)

    @classmethod
    def from_plant(
        cls,
        plant: EvidencePlant,
        layout: ElectrodeLayout | None = None,
        pulse: BiphasicPulse | None = None,
        control_ms: float = 1.0,
        dtype: str | None = None,
        outcome: Outcome = "cross_entropy",
        v_max: float = 1000.0,
        observe_evidence: bool = False,
        observe_stimulus: bool = False,
    ) -> "EvidenceStimElectrodes":
        """The env for `plant` (dtype default: the plant's); one trial per episode.

        ``observe_evidence`` / ``observe_stimulus`` add the mean filtered stimulus
        so far and the latest sample [1] to the observation, as in `EvidenceStim`
        (a stimulator that can read the input stream it restores).
        """
        evidence = EvidenceStim.from_plant(
            plant,
            control_ms,
            dtype,
            outcome,
            v_max,
            observe_evidence=observe_evidence,
            observe_stimulus=observe_stimulus,
        )
        layout = ElectrodeLayout() if layout is None else layout
        return cls(evidence.config, evidence, layout, pulse)

    def __check_init__(self) -> None:
        if not isinstance(self.layout, ElectrodeLayout):
            raise bad_value("layout", self.layout, "an ElectrodeLayout", "build one.")
        if self.pulse is not None:
            if not isinstance(self.pulse, BiphasicPulse):
                raise bad_value(
                    "pulse", self.pulse, "a BiphasicPulse or None", "build one."
                )
            self.pulse.phase_steps(self.config)  # the two phases fit one period

    @property
    def n_electrodes(self) -> int:
        """K [1]."""
        return self.layout.n_electrodes

    @property
    def n_cells(self) -> int:
        """Recurrent cells reached by the electrodes [1]."""
        return len(self.evidence.plant_w)

    @property
    def default_params(self) -> EvidenceStimElectrodesParams:
        dtype = self.config.jnp_dtype
        ev = self.evidence
        return EvidenceStimElectrodesParams(
            g=jnp.asarray(ev.plant_g, dtype),
            w=jnp.asarray(ev.plant_w, dtype),
            electrode_weights=jnp.asarray(
                electrode_weights(self.layout, self.n_cells), dtype
            ),
            evidence_mean=ev.task.evidence_mean,
        )

    def check_params(self, params: EvidenceStimElectrodesParams) -> None:
        if not isinstance(params, EvidenceStimElectrodesParams):
            raise bad_value(
                "params",
                params,
                "EvidenceStimElectrodesParams",
                "use env.default_params.",
            )
        shapes = {
            "g": (len(self.evidence.plant_g),),
            "w": (self.n_cells,),
            "electrode_weights": (self.n_cells, self.n_electrodes),
        }
        for name in _NON_NEGATIVE + ("i_max",):
            shapes[name] = ()
        for name, shape in shapes.items():
            got = jnp.shape(getattr(params, name))
            if got != shape:
                raise bad_value(
                    f"params.{name}",
                    f"array of shape {got}",
                    f"shape {shape} (cells × electrodes for electrode_weights)",
                    "start from env.default_params; vmap for batches.",
                )

    def action_space(self, params: EvidenceStimElectrodesParams | None = None) -> Box:
        """Electrode currents ``[-i_max, i_max]``, shape (K,) [nA]."""
        params = self.default_params if params is None else params
        i_max = jnp.asarray(params.i_max)
        return Box(-i_max, i_max, (self.n_electrodes,))

    def observation_space(self, params=None) -> Box:
        """``[v_readout0 [mV], v_readout1 [mV], t/T [1]]`` (+ stimulus entries)."""
        return self.evidence.observation_space()

    def init_state(self, key: Array, params) -> EvidenceStimState:
        return self.evidence.init_state(key, params)

    def electrode_currents(self, action: Array) -> Array:
        """Currents ``(substeps, K)`` [nA] of one control step (pulse or held)."""
        if self.pulse is None:
            return held_currents(action, self.config)
        return self.pulse(action, self.config)

    def transition(self, key, state: EvidenceStimState, action: Array, params):
        """Evidence at the fixed gain plus the electrodes' currents through ``W``."""
        del key  # the trial's randomness is in the state
        currents = self.electrode_currents(action)  # [nA] (substeps, K)
        to_cells = currents @ params.electrode_weights.T  # [nA] (substeps, cells)
        nxt, _ = self.evidence.advance(state, params, params.evidence_gain, to_cells)
        return nxt, currents

    def observation(self, state: EvidenceStimState, params) -> Array:
        return self.evidence.observation(state, params)

    def action_unit(self) -> str:
        return "nA"

    def observation_fields(self) -> tuple[tuple[str, str], ...]:
        return self.evidence.observation_fields()

    def episode_outcome(
        self, task: EvidenceStimMetrics, alive: Array
    ) -> dict[str, Array]:
        return self.evidence.episode_outcome(task, alive)

    def reward(self, state, action, next_state, energy: Energy, params) -> Array:
        cost = params.energy_cost * energy.current_power  # [1/nA²]·[nA²]
        outcome = self.evidence.task_outcome(next_state)
        return -cost + jnp.where(self.terminal(next_state, params), outcome, 0.0)

    def terminal(self, state: EvidenceStimState, params) -> Array:
        return self.evidence.terminal(state, params)

    def metrics(self, state, next_state, params) -> EvidenceStimMetrics:
        return self.evidence.metrics(state, next_state, params)

    def logits(self, state: EvidenceStimState) -> Array:
        """Readout means over the response window [mV] (complete at the trial end)."""
        return self.evidence.logits(state)
