"""`EvidenceStim`: gate the evidence input of the frozen EI RNN, cheaply and correctly.

The plant is the evidence-integration network (`neuroctl.plants.evidence`). One
episode is one trial of the plant's task. The action is a gain ``g ∈ [0, g_max]``
[1], held for one control period, that scales the evidence current into every
recurrent cell::

    I_i(t) = g · input_scale · w_i · s(t)        [nA]

(``g = 1`` is the plant's native input). Observation: ``[v_readout0 [mV],
v_readout1 [mV], t/T [1]]`` (the seed's), and with ``observe_evidence=True`` a fourth
entry, the mean filtered stimulus so far ``Σ s / steps`` [1] (0 before the first
step): what a stimulator that gates the evidence stream can also read off the
stream itself. With ``observe_stimulus=True`` as well, a fifth entry: the latest
filtered stimulus sample ``s`` [1] (0 before the first step): the gain chosen from
it scales the next control period's samples, which the 80-Hz filter keeps close to
it, so a policy can shape the injected current itself (e.g. hold it nearly
constant, the cheapest current for a given mean drive). Reward per control step::

    reward = −energy_cost · mean_{t, i} I_i(t)²      (mean over solver steps, cells)
             − gain_cost · g²  − charge_cost · Σ_{t, i} |I_i(t)|·dt

plus, on the last step, the task outcome: ``−cross_entropy(margin_scale · logits,
label)`` (``outcome="cross_entropy"``) or ``+1 / −1`` for a correct / wrong decision
(``outcome="sign"``), with ``logits`` = the readouts' mean voltage over the response
window [mV], as the plant was trained (FACTS.md: the closed-loop stimulation
result). ``margin_scale`` [1/mV] = 1 is the plant's own CE; a larger one saturates
at a smaller readout margin (`neuroctl.train.policy`). Every weight is a param, so
the episode return is the objective BPTT minimises (its negative) and RL maximises.

Trials are streamed. They follow `evidence_task.sample_trial` (same key split, so
the same per-trial mean ``μ = ±evidence_mean + jitter``; white noise
``x ~ N(μ, noise_std²)`` per solver step; the task's Butterworth filter, causal, zero
initial state; label = 1 if the summed filtered stimulus is > 0), but the noise is
drawn per control step (``normal(fold_in(noise_key, t))``) and filtered step by step
by the filter's second-order sections (as ``scipy.signal.sosfilt``; float64 equals it
to rounding). Reset is then a few scalars, so auto-reset under `vmap` costs nothing
(drawing and FFT-filtering a whole 20,800-step trial costs ~13 steps), and trials of
any length work. A trial equals ``sample_trial(key)`` in distribution, not draw by
draw; `trial_stimulus` rebuilds an episode's stimulus for offline checks.
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
        energy_cost: weight of the mean squared injected current, per control
            step [1/nA²].
        evidence_mean: |μ| of the trial's white noise [1] (psychometric sweeps).
        divergence_penalty: subtracted once if the simulation diverges [1].
        gain_cost: weight of g², per control step [1].
        charge_cost: weight of the injected charge Σ|I|·dt, per control step [1/pC].
        margin_scale: scale of the readout means inside the terminal CE [1/mV].
    """

    g: ArrayLike
    w: ArrayLike
    g_max: ArrayLike = 2.0  # [1]
    energy_cost: ArrayLike = 100.0  # [1/nA²]
    evidence_mean: ArrayLike = 0.005  # [1]
    divergence_penalty: ArrayLike = 1000.0  # [1]
    gain_cost: ArrayLike = 0.0  # [1]
    charge_cost: ArrayLike = 0.0  # [1/pC]
    margin_scale: ArrayLike = 1.0  # [1/mV]

    def __check_init__(self) -> None:
        check_value("g", self.g, lambda x: np.all(x >= 0), ">= 0 [µS]")
        check_value("w", self.w, lambda x: np.all(x >= 0), ">= 0")
        check_value("g_max", self.g_max, lambda x: np.all(x > 0), "> 0")
        for name in (
            "energy_cost",
            "evidence_mean",
            "divergence_penalty",
            "gain_cost",
            "charge_cost",
        ):
            check_value(name, getattr(self, name), lambda x: np.all(x >= 0), ">= 0")
        check_value(
            "margin_scale", self.margin_scale, lambda x: np.all(x > 0), "> 0 [1/mV]"
        )


class EvidenceStimState(AbstractEnvState):
    """State of `EvidenceStim`.

    Attributes:
        sim: solver state of the network.
        t: control steps taken [1], int32.
        noise_key: key of the trial's white noise (step ``t`` folds in ``t``).
        mean: the trial's white-noise mean μ [1].
        filter_state: Butterworth second-order-section state, ``(sections, 2)`` [1].
        stimulus_sum: filtered stimulus summed so far [1]; label = (sum > 0).
        readout_sum: readout voltages summed over response-window steps so far [mV].
        stimulus_now: the latest filtered stimulus sample [1] (0 at reset).
    """

    sim: bp.State
    t: Array
    noise_key: Array
    mean: Array
    filter_state: Array
    stimulus_sum: Array
    readout_sum: Array
    stimulus_now: Array

    @property
    def label(self) -> Array:
        """The trial's answer so far (final at the end): 1 if Σ stimulus > 0."""
        return (self.stimulus_sum > 0).astype(jnp.int32)


class EvidenceStimMetrics(eqx.Module):
    """``info.task``: the outcome, filled in on the last step (0 before it).

    Attributes:
        decided: this step ended the trial [bool].
        correct: 1.0 if the decision was right (last step only) [1].
        cross_entropy: of the readout means vs the label (last step only) [nats].
        margin: readout mean of the correct class minus the other's (last step
            only) [mV]; < 0: a wrong decision.
        label: the trial's class so far (1: summed evidence > 0) [1].
    """

    decided: Array
    correct: Array
    cross_entropy: Array
    margin: Array
    label: Array


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
        observe_evidence: append the mean filtered stimulus so far [1] to the
            observation (static).
        observe_stimulus: also append the latest filtered stimulus sample [1]
            (static; needs ``observe_evidence``).
    """

    config: ControlConfig = eqx.field(static=True)
    network: bp.Network = eqx.field(static=True)
    task: et.TaskConfig = eqx.field(static=True)
    outcome: str = eqx.field(static=True)
    plant_g: tuple[float, ...] = eqx.field(static=True)
    plant_w: tuple[float, ...] = eqx.field(static=True)
    observe_evidence: bool = eqx.field(static=True, default=False)
    observe_stimulus: bool = eqx.field(static=True, default=False)

    @classmethod
    def from_plant(
        cls,
        plant: EvidencePlant,
        control_ms: float = 1.0,
        dtype: str | None = None,
        outcome: Outcome = "cross_entropy",
        v_max: float = 1000.0,
        observe_evidence: bool = False,
        observe_stimulus: bool = False,
    ) -> "EvidenceStim":
        """The env for `plant`, one trial per episode (dtype default: the plant's).

        ``observe_evidence=True`` appends the mean filtered stimulus so far [1] to
        the observation; ``observe_stimulus=True`` (with it) also the latest
        filtered stimulus sample [1].
        """
        if not isinstance(plant, EvidencePlant):
            raise bad_value("plant", plant, "an EvidencePlant", "use plants.load().")
        if outcome not in OUTCOMES:
            raise bad_value("outcome", outcome, f"one of {OUTCOMES}", "pick one.")
        for name, flag in (
            ("observe_evidence", observe_evidence),
            ("observe_stimulus", observe_stimulus),
        ):
            if not isinstance(flag, bool):
                raise bad_value(name, flag, "True or False", "pass a bool.")
        if observe_stimulus and not observe_evidence:
            raise bad_value(
                "observe_stimulus",
                observe_stimulus,
                "False unless observe_evidence=True (the sample is the fifth entry, "
                "after the mean stimulus)",
                "also pass observe_evidence=True.",
            )
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
        return cls(
            config,
            plant.network,
            task,
            outcome,
            g,
            w,
            observe_evidence,
            observe_stimulus,
        )

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
        """``[v0 [mV], v1 [mV], t/T [1]]`` (+ mean stimulus [1], + sample [1])."""
        v = self.config.v_max
        low, high = [-v, -v, 0.0], [v, v, 1.0]
        n_stimulus = int(self.observe_evidence) + int(self.observe_stimulus)
        # the filtered stimulus is unbounded; ±1 is ~200σ
        low, high = low + [-1.0] * n_stimulus, high + [1.0] * n_stimulus
        return Box(np.array(low), np.array(high), (len(low),))

    def init_state(self, key: Array, params: EvidenceStimParams) -> EvidenceStimState:
        """A new trial: μ drawn as `evidence_task.sample_trial` draws it."""
        dtype = self.config.jnp_dtype
        k_sign, k_jitter, k_noise = jax.random.split(key, 3)
        sign = jnp.where(jax.random.bernoulli(k_sign), 1.0, -1.0)
        jitter = self.task.mean_jitter_std * jax.random.normal(k_jitter, (), dtype)
        sim = bp.init_state(
            self.network, self._net_params(params), self.task.v_init, dtype
        )
        return EvidenceStimState(
            sim=sim,
            t=jnp.zeros((), jnp.int32),
            noise_key=k_noise,
            mean=(sign * params.evidence_mean + jitter).astype(dtype),
            filter_state=jnp.zeros((self._sos().shape[0], 2), dtype),
            stimulus_sum=jnp.zeros((), dtype),
            readout_sum=jnp.zeros(et.N_READOUTS, dtype),
            stimulus_now=jnp.zeros((), dtype),
        )

    def _sos(self) -> np.ndarray:
        """Butterworth second-order sections ``(sections, 6)`` (NumPy constants)."""
        return et.filter_sos(self.task)

    def _net_params(self, params: EvidenceStimParams) -> bp.Params:
        net_params = self.network.cast_params(
            self.network.default_params, self.config.jnp_dtype
        )
        return et.apply_to_params(net_params, params.g)

    def white_noise(self, state: EvidenceStimState) -> Array:
        """Unfiltered evidence ``x ~ N(μ, noise_std²)`` of control step `state.t`."""
        n, dtype = self.config.substeps, state.mean.dtype
        z = jax.random.normal(jax.random.fold_in(state.noise_key, state.t), (n,), dtype)
        return state.mean + self.task.noise_std * z

    def transition(self, key, state: EvidenceStimState, gain: Array, params):
        """Filter, gate and inject the evidence for `substeps` solver steps."""
        del key  # the trial's randomness is in the state
        return self.advance(state, params, gain[0])

    def advance(
        self,
        state: EvidenceStimState,
        params: AbstractEnvParams,
        gain: ArrayLike,
        extra: Array | None = None,
    ) -> tuple[EvidenceStimState, Array]:
        """Run one control period: evidence at `gain` plus `extra` basal currents.

        Shared by the envs on this plant (as are `init_state`, `observation`,
        `logits`, `terminal`, `metrics`): `params` needs ``g`` [µS], ``w`` [1] and
        ``evidence_mean`` [1], not necessarily an `EvidenceStimParams`.

        Args:
            state: the state at the start of the control step.
            params: env params with the plant's ``g`` and ``w``.
            gain: evidence gain [1]; cell ``i`` gets ``gain·input_scale·w_i·s(t)``.
            extra: further currents ``(substeps, n_cells)`` [nA] at the same basal
                sites (e.g. electrodes), or None.

        Returns:
            The next state and the evidence currents ``(substeps, n_cells)`` [nA].
        """
        n, net = self.config.substeps, self.network
        net_params = self._net_params(params)
        sos = jnp.asarray(self._sos(), state.mean.dtype)
        rows = state.t * n + jnp.arange(n)  # recording row of each step's end state
        window = self.task.window
        in_window = (rows >= window.start) & (rows < window.stop)
        readouts = net.recording_nodes[: et.N_READOUTS]
        scale = gain * self.task.input_scale * params.w  # [nA per unit stimulus]

        def substep(carry, inputs):
            sim, z, total, acc, _ = carry
            x, counted, i_extra = inputs
            s, z = sos_step(sos, z, x)  # filtered stimulus [1]
            i_t = scale * s  # [nA] per cell
            i_in = i_t if i_extra is None else i_t + i_extra  # [nA]
            sim = bp.step(net, net_params, sim, i_in, self.config.dt)
            acc = acc + jnp.where(counted, sim.v[readouts], 0.0)
            return (sim, z, total + s, acc, s), i_t

        carry = (
            state.sim,
            state.filter_state,
            state.stimulus_sum,
            state.readout_sum,
            state.stimulus_now,
        )
        (sim, z, total, acc, s_now), currents = jax.lax.scan(
            substep, carry, (self.white_noise(state), in_window, extra)
        )
        nxt = EvidenceStimState(
            sim, state.t + 1, state.noise_key, state.mean, z, total, acc, s_now
        )
        return nxt, currents

    def logits(self, state: EvidenceStimState) -> Array:
        """Readout means over the response window [mV] (complete at the trial end)."""
        window = self.task.window
        return state.readout_sum / (window.stop - window.start)

    def observation(self, state: EvidenceStimState, params) -> Array:
        readouts = self.network.recording_nodes[: et.N_READOUTS]
        t_frac = jnp.asarray(
            jnp.minimum(state.t / self.n_steps, 1.0), state.sim.v.dtype
        )
        obs = [state.sim.v[readouts], t_frac[None]]
        if self.observe_evidence:
            steps = jnp.maximum(state.t * self.config.substeps, 1)
            obs.append((state.stimulus_sum / steps).astype(state.sim.v.dtype)[None])
        if self.observe_stimulus:
            obs.append(state.stimulus_now.astype(state.sim.v.dtype)[None])
        return jnp.concatenate(obs)

    def observation_fields(self) -> tuple[tuple[str, str], ...]:
        fields = [("v_readout0", "mV"), ("v_readout1", "mV"), ("t/T", "1")]
        if self.observe_evidence:
            fields.append(("mean_stimulus", "1"))
        if self.observe_stimulus:
            fields.append(("stimulus", "1"))
        return tuple(fields)

    def episode_outcome(
        self, task: EvidenceStimMetrics, alive: Array
    ) -> dict[str, Array]:
        """The trial's decision: ``correct`` (1/0) and its cross-entropy [nats]."""
        return decision_outcome(task, alive)

    def reward(self, state, action, next_state, energy: Energy, params) -> Array:
        cost = (
            params.energy_cost * energy.current_power  # [1/nA²]·[nA²]
            + params.gain_cost * jnp.mean(action**2)  # [1]·[1]
            + params.charge_cost * energy.charge  # [1/pC]·[pC]
        )
        outcome = self.task_outcome(next_state, params.margin_scale)
        return -cost + jnp.where(self.terminal(next_state, params), outcome, 0.0)

    def task_outcome(self, state: EvidenceStimState, margin_scale=1.0) -> Array:
        """Terminal reward of a finished trial: −CE or ±1 (see `outcome`) [1].

        `margin_scale` [1/mV] multiplies the readout means inside the CE.
        """
        return task_outcome(self.logits(state), state.label, self.outcome, margin_scale)

    def terminal(self, state: EvidenceStimState, params) -> Array:
        return state.t >= self.n_steps

    def metrics(self, state, next_state, params) -> EvidenceStimMetrics:
        decided = self.terminal(next_state, params)
        return decision_metrics(decided, self.logits(next_state), next_state.label)


def task_outcome(logits: Array, label: Array, outcome: str, margin_scale) -> Array:
    """Terminal reward of a decision: ``−CE(margin_scale·logits)`` or ±1 [1].

    Two classes: the CE is ``softplus(−margin_scale·margin)``; `margin_scale` = 1
    [1/mV] is the plant's own loss (multiplying by 1 is exact).
    """
    if outcome == "sign":
        return 2.0 * et.accuracy(logits, label) - 1.0
    return -et.cross_entropy(margin_scale * logits, label)


def decision_metrics(
    decided: Array, logits: Array, label: Array
) -> EvidenceStimMetrics:
    """The trial's `EvidenceStimMetrics` (outcomes 0 unless `decided`)."""
    correct = et.accuracy(logits, label)
    ce = et.cross_entropy(logits, label)
    diff = logits[1] - logits[0]  # r1 − r0 [mV]
    margin = jnp.where(label == 1, diff, -diff)
    return EvidenceStimMetrics(
        decided=decided,
        correct=jnp.where(decided, correct, 0.0),
        cross_entropy=jnp.where(decided, ce, 0.0),
        margin=jnp.where(decided, margin, 0.0),
        label=jnp.asarray(label, jnp.int32),
    )


def decision_outcome(task: EvidenceStimMetrics, alive: Array) -> dict[str, Array]:
    """``correct`` [1] and ``cross_entropy`` [nats] of a trial (set at its end)."""
    return {
        "correct": jnp.sum(jnp.where(alive, task.correct, 0.0)),
        "cross_entropy": jnp.sum(jnp.where(alive, task.cross_entropy, 0.0)),
    }


def sos_step(sos: Array, z: Array, x: Array) -> tuple[Array, Array]:
    """One sample through cascaded biquads (direct form II transposed, as scipy).

    Args:
        sos: second-order sections ``(sections, 6)``: ``b0 b1 b2 1 a1 a2``.
        z: their state ``(sections, 2)``.
        x: the input sample.

    Returns:
        The output sample and the new state.
    """
    new = []
    for k in range(sos.shape[0]):  # static: 3 sections for order 6
        b0, b1, b2, _, a1, a2 = (sos[k, j] for j in range(6))
        y = b0 * x + z[k, 0]
        new.append(jnp.stack([b1 * x - a1 * y + z[k, 1], b2 * x - a2 * y]))
        x = y
    return x, jnp.stack(new)


def trial_stimulus(env: EvidenceStim, key: Array, params=None) -> Array:
    """The filtered stimulus ``(n_solver_steps,)`` [1] of the episode reset with `key`.

    For checks and plots: the white noise of every control step, filtered at once
    with `evidence_task.lowpass` (FFT), which the streamed filter matches.
    """
    params = env.prepare_params(params)
    state = env.init_state(key, params)
    steps = jnp.arange(env.n_steps)
    white = jax.vmap(lambda t: env.white_noise(eqx.tree_at(lambda s: s.t, state, t)))
    return et.lowpass(white(steps).reshape(-1), env.task)


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
