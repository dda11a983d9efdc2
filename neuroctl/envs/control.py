"""`ControlEnv`: plant × actuator × task × objective × observation, no subclass each.

Any `neuroctl.plants.Plant` becomes a control problem by choosing:

* an actuator (`neuroctl.envs.actuators`: currents at input sites, electrodes
  through a weight matrix, or extracellular point electrodes whose field acts on
  the cable; held or biphasic pulses; bounds in nA, or µA extracellular);
* a task (`neuroctl.envs.tasks`: what the readouts should do, and its reward);
* an objective (`neuroctl.envs.objectives.EnergyCost`: weights on mean I², charge
  and mean a² per control step);
* the observation: names of plant readouts [mV], task fields and ``"t/T"`` [1].

Reward per control step = task reward − energy cost; the episode ends after
``config.n_steps`` steps. Every episode starts at the plant's ``v_init`` plus a
uniform jitter of ``±params.v_init_jitter`` [mV] (gates at steady state). The
components with their numbers are the env's params (`ControlParams`: vmap or
differentiate over bounds, weights, targets, costs, the plant's conductances);
the env itself holds only static structure, so it is hashable and jit-static.

A network of your own, as an env in a few lines::

    plant = Plant.from_network(net, inputs=("soma",), readouts=("soma", "dend"))
    env = ControlEnv.build(
        plant,
        SiteCurrents.on(plant, ["soma"], low=0.0, high=0.5),        # [nA]
        RateTracking(readout=plant.readout("soma"), target_rate=target),
        EnergyCost(charge=0.1),                                      # [1/pC]
        observe=("soma", "rate", "target_rate", "t/T"),
        config=ControlConfig(episode_ms=200.0),
    )
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl import biophysics as bp
from neuroctl.envs.actuators import AbstractActuator
from neuroctl.envs.core import (
    AbstractEnv,
    AbstractEnvParams,
    AbstractEnvState,
    ControlConfig,
    Energy,
    check_range,
    check_value,
)
from neuroctl.envs.objectives import EnergyCost
from neuroctl.envs.spaces import Box
from neuroctl.envs.tasks import AbstractTask
from neuroctl.errors import bad_value
from neuroctl.plants.base import Plant
from neuroctl.typing import Array, ArrayLike

TIME = "t/T"


class ControlParams(AbstractEnvParams):
    """The numbers of a `ControlEnv` (all leaves; start from ``env.default_params``).

    Attributes:
        plant: the plant's network parameters (`bp.Params`).
        actuator: the actuator (bounds [nA], weights [1]).
        task: the task (targets, costs).
        objective: the energy cost weights.
        v_init_jitter: half-width of the uniform jitter of the initial potential [mV].
        divergence_penalty: subtracted once if the simulation diverges [1].
    """

    plant: bp.Params
    actuator: AbstractActuator
    task: AbstractTask
    objective: EnergyCost
    v_init_jitter: ArrayLike = 0.0  # [mV]
    divergence_penalty: ArrayLike = 1000.0  # [1]

    def __check_init__(self) -> None:
        check_range("v_init_jitter", self.v_init_jitter, 0.0, 1e3, "mV", 2.0)
        check_value(
            "divergence_penalty",
            self.divergence_penalty,
            lambda x: np.all(x >= 0),
            ">= 0",
            "pass e.g. divergence_penalty=1000.0.",
        )


class ControlState(AbstractEnvState):
    """State of a `ControlEnv`: solver state, control step, the task's state."""

    sim: bp.State
    t: Array
    task: object


class _Defaults:
    """A hashable (by identity) holder of the env's default params."""

    def __init__(self, params: ControlParams):
        self.params = params


class ControlEnv(AbstractEnv):
    """A plant under an actuator, with a task, an energy cost and an observation.

    Build with `ControlEnv.build` (see the module docstring).

    Attributes:
        config: timing and dtype (static).
        network: the plant's compiled network (static).
        v_init: the plant's resting potential [mV] (static).
        readouts: the plant's readout names (static).
        observe: the observation's fields, in order (static).
        name: a name for reports (static).
    """

    config: ControlConfig = eqx.field(static=True)
    network: bp.Network = eqx.field(static=True)
    v_init: float = eqx.field(static=True)
    readouts: tuple[str, ...] = eqx.field(static=True)
    observe: tuple[str, ...] = eqx.field(static=True)
    defaults: _Defaults = eqx.field(static=True)
    name: str = eqx.field(static=True, default="control")
    aliases: tuple[tuple[str, str], ...] = eqx.field(static=True, default=())

    @classmethod
    def build(
        cls,
        plant: Plant,
        actuator: AbstractActuator,
        task: AbstractTask,
        objective: EnergyCost | None = None,
        observe: tuple[str, ...] | None = None,
        config: ControlConfig | None = None,
        v_init_jitter: float = 0.0,
        name: str = "control",
        aliases: dict[str, str] | None = None,
    ) -> "ControlEnv":
        """The env; `observe` defaults to every readout, the task's fields, t/T.

        `aliases` (``{alias: dotted param name}``) are other names of its params
        (`param_aliases`).
        """
        config = ControlConfig() if config is None else config
        if not isinstance(plant, Plant):
            raise bad_value("plant", plant, "a Plant", "use Plant.from_network().")
        names = (*plant.readouts, *(f for f, _ in task.fields()), TIME)
        observe = names if observe is None else tuple(observe)
        for field in observe:
            if field not in names:
                raise bad_value(
                    "observe", field, f"fields of {list(names)}", "pick from those."
                )
        params = ControlParams(
            plant.params, actuator, task, objective or EnergyCost(), v_init_jitter
        )
        return cls(
            config,
            plant.network,
            plant.v_init,
            plant.readouts,
            observe,
            _Defaults(params),
            name,
            tuple(sorted((aliases or {}).items())),
        )

    @property
    def default_params(self) -> ControlParams:
        return self.defaults.params

    def check_params(self, params: ControlParams) -> None:
        want = self.defaults.params
        if not isinstance(params, ControlParams):
            raise bad_value(
                "params", params, "ControlParams", "use env.default_params."
            )
        for part in ("actuator", "task", "objective"):
            if type(getattr(params, part)) is not type(getattr(want, part)):
                raise bad_value(
                    f"params.{part}",
                    type(getattr(params, part)).__name__,
                    type(getattr(want, part)).__name__,
                    "change leaves of env.default_params, not the component kind.",
                )

    def action_space(self, params: ControlParams | None = None) -> Box:
        params = self.default_params if params is None else params
        return params.actuator.action_space()

    def action_unit(self) -> str:
        return self.defaults.params.actuator.unit()

    def param_aliases(self) -> dict[str, str]:
        return dict(self.aliases)

    def observation_fields(self) -> tuple[tuple[str, str], ...]:
        units = {r: "mV" for r in self.readouts}
        units.update(dict(self.defaults.params.task.fields()), **{TIME: "1"})
        return tuple((f, units[f]) for f in self.observe)

    def observation_space(self, params: ControlParams | None = None) -> Box:
        """Readouts ``±v_max`` [mV], task fields within their bounds, t/T in [0, 1]."""
        params = self.default_params if params is None else params
        v = self.config.v_max
        bounds = {r: (-v, v) for r in self.readouts}
        bounds.update(params.task.bounds(self.config.dt), **{TIME: (0.0, 1.0)})
        low = jnp.stack([jnp.asarray(bounds[f][0], float) for f in self.observe])
        high = jnp.stack([jnp.asarray(bounds[f][1], float) for f in self.observe])
        return Box(low, high, (len(self.observe),))

    def init_state(self, key: Array, params: ControlParams) -> ControlState:
        dtype = self.config.jnp_dtype
        jitter = jax.random.uniform(key, (), dtype, -1.0, 1.0) * params.v_init_jitter
        net_params = self.network.cast_params(params.plant, dtype)
        sim = bp.init_state(self.network, net_params, self.v_init + jitter, dtype)
        sim = params.task.init_sim(key, sim)
        task = params.task.init(key, dtype)
        return ControlState(sim, jnp.zeros((), jnp.int32), task)

    def transition(self, key, state: ControlState, action: Array, params):
        """Hold `action` (or pulse it) for `substeps` solver steps.

        Per solver step: the task's own drive (e.g. a stimulus stream), the
        actuator's currents on top of it, one solver step, and the task watching the
        readouts (`AbstractTask.substep_states`: the full states if it asks).
        """
        del key  # the plant is deterministic; a task's randomness is in its state
        n, dt, nodes = (
            self.config.substeps,
            self.config.dt,
            self.network.recording_nodes,
        )
        net_params = self.network.cast_params(params.plant, self.config.jnp_dtype)
        task, actuator = params.task, params.actuator
        waveform = actuator.sources(action, self.config)  # (substeps, n_act)
        xs = task.period_inputs(state.task, state.t, n)
        rows = state.t * n + jnp.arange(n)  # solver steps of the episode [1]

        def substep(carry, inputs):
            sim, task_state = carry
            a, x, row = inputs
            task_state, drive = task.drive(task_state, x)
            i_in, sources = actuator.apply(a, drive)  # [nA]
            # No `jax.checkpoint` around this solver step: BPTT
            # (`rollout.closed_loop`) rematerialises each control step already, and
            # one more level inside it recomputed every solver step once more in the
            # backward pass: a BPTT iteration (EvidenceStim-v0, 8 trials, float64)
            # took 3.58 s with it against 3.42 s without (pinned, interleaved, min
            # of 3 rounds; results/README.md).
            v_ext = actuator.extracellular(a)  # [mV] or None (static)
            new = bp.step(self.network, net_params, sim, i_in, dt, v_ext=v_ext)
            task_state = task.substep_states(task_state, sim, new, nodes, dt, row)
            return (new, task_state), sources

        (sim, task_state), sources = jax.lax.scan(
            substep, (state.sim, state.task), (waveform, xs, rows)
        )
        return ControlState(sim, state.t + 1, task_state), sources

    def observation(self, state: ControlState, params: ControlParams) -> Array:
        dtype = state.sim.v.dtype
        values = {
            r: state.sim.v[n]
            for r, n in zip(self.readouts, self.network.recording_nodes, strict=True)
        }
        values.update(params.task.observe(state.task, state.t))
        values[TIME] = jnp.minimum(state.t / self.n_steps, 1.0)
        return jnp.stack([jnp.asarray(values[f], dtype) for f in self.observe])

    def reward(self, state, action, next_state, energy: Energy, params) -> Array:
        task = params.task.reward(state.task, next_state.task, state.t)
        return task - params.objective(energy, action)

    def terminal(self, state: ControlState, params) -> Array:
        return state.t >= self.n_steps

    def metrics(self, state, next_state, params):
        return params.task.metrics(state.task, next_state.task, state.t)

    def episode_outcome(self, task, alive: Array) -> dict[str, Array]:
        return self.defaults.params.task.summarise(task, alive)
