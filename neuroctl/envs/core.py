"""The functional environment core: pure, jit-able, vmappable, differentiable.

The API follows gymnax (names and argument order) with the split of Gymnasium's
``FuncEnv`` inside:

* **static config** (`ControlConfig`, a frozen dataclass on the env): solver step,
  control period, episode length, dtype. It sets loop lengths and shapes, so
  changing it recompiles.
* **params** (an env-specific `AbstractEnvParams`, an `eqx.Module`): numbers you may
  `jax.vmap` or `jax.grad` over (target profiles, costs, bounds, cell parameters).
* **state** (an env-specific `AbstractEnvState`): the solver `State`, the control-step
  index and task data; it evolves.

One control step holds the action for ``control_ms`` and advances the solver
``substeps = control_ms / dt`` steps inside one `lax.scan`. Functions:

* ``reset(key, params) -> (obs, state)``
* ``step_env(key, state, action, params) -> (obs, state, reward, done, info)``: pure and
  differentiable, never resets (what BPTT and JVP use);
* ``step(...)``: the same with gymnax-style auto-reset when ``done``;
* ``observation_space(params)``, ``action_space(params)``: `Box` spaces in physical
  units.

Bad input: a wrong action shape or dtype raises `ConfigError` at trace time; NaN
entries of an action become 0 (``info.nan_action``); actions outside the space are
clipped (``info.clipped``); a simulation that leaves the finite, ``|v| <= v_max``
region keeps the previous state, pays ``params.divergence_penalty`` and ends the
episode (``info.diverged``), so observations stay finite. Non-finite env params (e.g.
a NaN target passed traced under ``jit``), and a step whose charge, reward,
observation or metrics come out non-finite (e.g. an overflow from a finite but
absurd traced param), flag the step as diverged the same way; the reward,
observation and info of a diverged step are kept finite. `reset` keeps its
observation and solver state finite (non-finite entries, e.g. from a NaN jitter,
read 0); non-finite params then flag the first step.
"""

import abc
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.biophysics import State
from neuroctl.envs.spaces import Box
from neuroctl.errors import ConfigError, bad_value
from neuroctl.typing import Array, ArrayLike

PyTree = Any


@dataclass(frozen=True)
class ControlConfig:
    """Static timing and numerics of an env (changing any field recompiles).

    Validated on construction (a plain dataclass: never re-run on tracers).
    """

    dt: float = 0.025  # solver step [ms]
    control_ms: float = 1.0  # control period: one action is held this long [ms]
    episode_ms: float = 200.0  # episode length [ms]
    v_max: float = 1000.0  # |v| beyond this (or any non-finite value) = diverged [mV]
    dtype: str = "float32"  # float dtype of states, observations and rewards

    def __post_init__(self) -> None:
        _positive("dt", self.dt, "e.g. dt=0.025 [ms].")
        _positive("control_ms", self.control_ms, "e.g. control_ms=1.0 [ms].")
        _positive("episode_ms", self.episode_ms, "e.g. episode_ms=200.0 [ms].")
        _positive("v_max", self.v_max, "e.g. v_max=1000.0 [mV].")
        _multiple("control_ms", self.control_ms, "dt", self.dt)
        _multiple("episode_ms", self.episode_ms, "control_ms", self.control_ms)
        if self.dtype not in ("float32", "float64"):
            raise bad_value("dtype", self.dtype, "'float32' or 'float64'", "pick one.")

    @property
    def substeps(self) -> int:
        """Solver steps per control step [1]."""
        return round(self.control_ms / self.dt)

    @property
    def n_steps(self) -> int:
        """Control steps per episode [1]."""
        return round(self.episode_ms / self.control_ms)

    @property
    def jnp_dtype(self) -> Any:
        """The float dtype; float64 needs ``jax_enable_x64`` (checked here)."""
        if self.dtype == "float64" and not jax.config.jax_enable_x64:
            raise ConfigError(
                "dtype: got 'float64' while jax_enable_x64 is off; call "
                "jax.config.update('jax_enable_x64', True) first, or use 'float32'."
            )
        return jnp.dtype(self.dtype)

    def replace(self, **changes: Any) -> "ControlConfig":
        """A validated copy with `changes` applied."""
        return dataclasses.replace(self, **changes)


def _positive(name: str, value: object, fix: str) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    if not ok:
        raise bad_value(name, value, "a finite number > 0", fix)


def check_value(name: str, value: ArrayLike, ok, expected: str, fix: str = "") -> None:
    """Raise `ConfigError` unless `value` is finite and ``ok(value)``; skip tracers.

    For `__check_init__` of env params: concrete leaves are checked on
    construction, traced ones (inside `vmap`/`jit`) are left alone (non-finite
    ones flag the episode as diverged instead; see the module docstring).
    """
    fix = fix or f"fix {name}."
    try:
        x = np.asarray(value, dtype=float)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return
    except (TypeError, ValueError):
        raise bad_value(name, value, "a real number or array", fix) from None
    if not (np.all(np.isfinite(x)) and ok(x)):
        raise bad_value(name, value, f"finite values {expected}", fix)


def check_range(
    name: str, value: ArrayLike, low: float, high: float, unit: str, example: float
) -> None:
    """`check_value` for values in ``[low, high]`` [`unit`], suggesting `example`."""
    check_value(
        name,
        value,
        lambda x: np.all((x >= low) & (x <= high)),
        f"in [{low:g}, {high:g}] [{unit}]",
        f"pass e.g. {name}={example!r} [{unit}].",
    )


def _multiple(name: str, value: float, of_name: str, of: float) -> None:
    ratio = value / of
    if round(ratio) < 1 or abs(ratio - round(ratio)) > 1e-6 * ratio:
        raise bad_value(
            name,
            value,
            f"a whole multiple (>= 1) of {of_name}={of}",
            f"round {name} to whole {of_name} steps.",
        )


class Energy(eqx.Module):
    """What one control step injected (all stimulus sites, all solver steps).

    Attributes:
        charge: ``Σ_steps Σ_sites |I|·dt`` [pC] (nA·ms = pC).
        current_power: mean over solver steps and sites of ``I²`` [nA²].
    """

    charge: Array
    current_power: Array


def energy_of(currents: Array, dt: float) -> Energy:
    """`Energy` of injected currents ``(substeps, sites)`` [nA] at step `dt` [ms]."""
    return Energy(
        charge=jnp.sum(jnp.abs(currents)) * dt,  # [nA·ms = pC]
        current_power=jnp.mean(currents**2),  # [nA²]
    )


class StepInfo(eqx.Module):
    """Per-step diagnostics returned as ``info`` by `step_env` and `step`.

    Attributes:
        charge: injected charge over the step [pC].
        current_power: mean squared injected current over the step [nA²].
        action: the action actually applied (NaN → 0, then clipped) [action units].
        clipped: the action was outside the action space and was clipped [bool].
        nan_action: the action had NaN entries, applied as 0 [bool].
        diverged: the simulation diverged; the previous state was kept and the
            episode ended [bool].
        t_ms: simulated time at the end of the step [ms].
        task: env-specific metrics (a small module; see each env).
    """

    charge: Array
    current_power: Array
    action: Array
    clipped: Array
    nan_action: Array
    diverged: Array
    t_ms: Array
    task: PyTree

    def as_dict(self) -> dict[str, Array]:
        """Flat dict (Gymnasium / rejax style); task metric names are kept as is."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        task = out.pop("task")
        if task is not None:
            out.update(
                {f.name: getattr(task, f.name) for f in dataclasses.fields(task)}
            )
        return out


class AbstractEnvParams(eqx.Module):
    """Base of env params: every env has a divergence penalty."""

    divergence_penalty: eqx.AbstractVar[ArrayLike]  # subtracted once on divergence [1]


class AbstractEnvState(eqx.Module):
    """Base of env states: every env has a solver state and a step index."""

    sim: eqx.AbstractVar[State]  # solver state (v [mV], gates, ...)
    t: eqx.AbstractVar[Array]  # control steps taken [1], int32


def tree_where(cond: ArrayLike, on_true: PyTree, on_false: PyTree) -> PyTree:
    """Leafwise ``jnp.where(cond, on_true, on_false)`` (scalar `cond`)."""
    return jax.tree.map(lambda a, b: jnp.where(cond, a, b), on_true, on_false)


def cast_floats(tree: PyTree, dtype: Any) -> PyTree:
    """`tree` with every float leaf (Python floats included) cast to `dtype`."""

    def cast(x):
        if isinstance(x, float) or (
            eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.floating)
        ):
            return jnp.asarray(x, dtype)
        return x

    return jax.tree.map(cast, tree)


def episode_keys(key: Array) -> tuple[Array, Array, Array]:
    """``(reset, steps, policy)`` keys of one episode; step ``t`` uses `step_key`.

    `rollout` and the Gymnasium face both derive keys this way, so a seeded episode
    is identical along both paths.
    """
    k_reset, k_steps, k_policy = jax.random.split(key, 3)
    return k_reset, k_steps, k_policy


def step_key(k_steps: Array, t: ArrayLike) -> Array:
    """The key of control step `t` of an episode (a `fold_in`, no carried state)."""
    return jax.random.fold_in(k_steps, t)


class AbstractEnv(eqx.Module):
    """A functional environment: subclasses implement the task, this class the protocol.

    Subclasses hold static fields only (config, compiled network), so an env is a
    hashable pytree without leaves: pass it to `jax.jit` / `eqx.filter_jit` freely.
    They implement `default_params`, `check_params`, `action_space`,
    `observation_space`, `init_state`, `transition`, `observation`, `reward`,
    `terminal` and `metrics`; `reset`, `step_env` and `step` are provided.
    """

    config: eqx.AbstractVar[ControlConfig]

    # ------------------------------------------------------------------ the task

    @property
    @abc.abstractmethod
    def default_params(self) -> AbstractEnvParams:
        """Default params (concrete arrays in the config's dtype)."""

    @abc.abstractmethod
    def check_params(self, params: AbstractEnvParams) -> None:
        """Raise `ConfigError` naming the field if `params` do not fit this env."""

    @abc.abstractmethod
    def action_space(self, params: AbstractEnvParams | None = None) -> Box:
        """The action `Box` [action units]."""

    @abc.abstractmethod
    def observation_space(self, params: AbstractEnvParams | None = None) -> Box:
        """The observation `Box` [observation units]."""

    @abc.abstractmethod
    def init_state(self, key: Array, params: AbstractEnvParams) -> AbstractEnvState:
        """The state at the start of an episode."""

    @abc.abstractmethod
    def transition(
        self, key: Array, state: AbstractEnvState, action: Array, params
    ) -> tuple[AbstractEnvState, Array]:
        """Hold `action` one control step: next state, currents ``(substeps, sites)``.

        Currents are what was injected [nA] at each solver step and stimulus site;
        the core turns them into `Energy`.
        """

    @abc.abstractmethod
    def observation(self, state: AbstractEnvState, params) -> Array:
        """The observation of `state`."""

    @abc.abstractmethod
    def reward(self, state, action: Array, next_state, energy: Energy, params) -> Array:
        """Reward of the transition `state` → `next_state` under `action`."""

    @abc.abstractmethod
    def terminal(self, state: AbstractEnvState, params) -> Array:
        """Whether `state` ends the episode (bool scalar)."""

    @abc.abstractmethod
    def metrics(self, state, next_state, params) -> PyTree:
        """Env-specific metrics for ``info.task`` (a small module of scalars)."""

    def observation_fields(self) -> tuple[tuple[str, str], ...]:
        """``(name, unit)`` of each observation entry (plots, policies' inputs).

        The default names them by position; envs override it.
        """
        n = self.observation_space().shape[0]
        return tuple((f"obs[{i}]", "") for i in range(n))

    def action_unit(self) -> str:
        """The unit of the action (axis labels, reports); envs override it."""
        return "1"

    def param_aliases(self) -> dict[str, str]:
        """Other names of params: ``{alias: dotted name}`` (`neuroctl.envs.params`).

        E.g. ``{"i_max": "actuator.high"}``, so names that users and recorded
        runs know keep working after an env was recomposed. Default: none.
        """
        return {}

    def episode_outcome(self, task: PyTree, alive: Array) -> dict[str, Array]:
        """Per-episode task outcome from the stacked ``info.task`` of its steps.

        Args:
            task: `metrics` of every control step (leaves with a leading ``T``).
            alive: steps up to and including the first ``done``, ``(T,)``.

        Returns:
            Named scalars; the default is each metric's mean over the alive
            steps. An entry ``"correct"`` (1 per right decision) is reported as an
            accuracy with a Wilson interval by `neuroctl.train.evaluate`.
        """
        if task is None:
            return {}
        w = alive / jnp.maximum(jnp.sum(alive), 1)
        return {
            f.name: jnp.sum(w * getattr(task, f.name)) for f in dataclasses.fields(task)
        }

    # ------------------------------------------------------------- the protocol

    @property
    def unwrapped(self) -> "AbstractEnv":
        """The innermost env under any wrappers (`neuroctl.envs.wrappers`)."""
        return self

    @property
    def n_steps(self) -> int:
        """Control steps per episode [1]."""
        return self.config.n_steps

    def prepare_params(self, params: AbstractEnvParams | None) -> AbstractEnvParams:
        """`params` (default if None), checked and cast to the config's dtype."""
        params = self.default_params if params is None else params
        self.check_params(params)
        return cast_floats(params, self.config.jnp_dtype)

    def reset(
        self, key: Array, params: AbstractEnvParams | None = None
    ) -> tuple[Array, AbstractEnvState]:
        """Start an episode: ``(obs, state)``."""
        params = self.prepare_params(params)
        state = self.init_state(key, params)
        obs = self.observation(state, params)
        # finite for any params (e.g. NaN ones traced under jit): non-finite entries
        # read 0, and non-finite params flag the first step as diverged
        state = eqx.tree_at(lambda s: s.sim, state, _finite_tree(state.sim))
        return _finite(obs), state

    def step_env(self, key: Array, state, action: ArrayLike, params=None):
        """One control step, no auto-reset: ``(obs, state, reward, done, info)``.

        Pure and differentiable in `state`, `action` and `params`.
        """
        params = self.prepare_params(params)
        action, clipped, nan_action = self._sanitise(action, params)
        proposed, currents = self.transition(key, state, action, params)
        energy = energy_of(currents, self.config.dt)
        diverged = (
            self._diverged(proposed)
            | ~_all_finite(params)
            | ~self._outputs_finite(state, action, proposed, energy, params)
        )
        next_state = tree_where(diverged, self._keep(state, proposed), proposed)
        energy = _finite_where(diverged, energy)
        reward = self.reward(state, action, next_state, energy, params)
        penalty = jnp.where(
            jnp.isfinite(params.divergence_penalty), params.divergence_penalty, 1e3
        )
        reward = jnp.where(diverged, _finite(reward) - penalty, reward)
        done = self.terminal(next_state, params) | diverged
        info = StepInfo(
            charge=energy.charge,
            current_power=energy.current_power,
            action=action,
            clipped=clipped,
            nan_action=nan_action,
            diverged=diverged,
            t_ms=next_state.t * jnp.asarray(self.config.control_ms, reward.dtype),
            task=_finite_where(diverged, self.metrics(state, next_state, params)),
        )
        obs = _finite_where(diverged, self.observation(next_state, params))
        return obs, next_state, reward, done, info

    def step(self, key: Array, state, action: ArrayLike, params=None):
        """`step_env`, then a fresh episode where ``done`` (gymnax-style auto-reset).

        The returned obs/state are the reset ones where ``done``; reward, done and
        info describe the step just taken. The reset runs under `lax.cond`, so an
        unbatched call pays for it only when ``done``; under `vmap` the cond becomes
        a select and every step computes a reset (cheap for `SpikeRate`; a trial
        draw for `EvidenceStim`).
        """
        k_step, k_reset = jax.random.split(key)
        obs, next_state, reward, done, info = self.step_env(
            k_step, state, action, params
        )
        obs, next_state = jax.lax.cond(
            done,
            lambda: self.reset(k_reset, params),
            lambda: (obs, next_state),
        )
        return obs, next_state, reward, done, info

    def _sanitise(self, action: ArrayLike, params) -> tuple[Array, Array, Array]:
        space = self.action_space(params)
        _check_action(action, space.shape)
        action = jnp.asarray(action, self.config.jnp_dtype)
        is_nan = jnp.isnan(action)
        action = jnp.where(is_nan, 0.0, action)
        outside = jnp.any((action < space.low) | (action > space.high))
        return jnp.clip(action, space.low, space.high), outside, jnp.any(is_nan)

    def _outputs_finite(self, state, action, proposed, energy: Energy, params):
        """Whether the proposed step's energy, reward, obs and metrics are finite.

        A finite but absurd param traced under jit (e.g. ``rate_tau = 1e-300`` ms)
        can overflow them while the solver state stays finite.
        """
        outputs = (
            energy,
            self.reward(state, action, proposed, energy, params),
            self.observation(proposed, params),
            self.metrics(state, proposed, params),
        )
        return _all_finite(outputs)

    def _diverged(self, state: AbstractEnvState) -> Array:
        """Non-finite solver state or ``|v| > v_max`` (other state derives from it)."""
        floats = jax.tree.leaves(eqx.filter(state.sim, eqx.is_inexact_array))
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in floats]))
        return ~finite | (jnp.max(jnp.abs(state.sim.v)) > self.config.v_max)

    @staticmethod
    def _keep(state: AbstractEnvState, proposed: AbstractEnvState):
        """The fallback after divergence: the old state at the new step index."""
        return eqx.tree_at(lambda s: s.t, state, proposed.t)


def _all_finite(tree: PyTree) -> Array:
    """Whether every float leaf of `tree` is finite (params may be traced)."""
    leaves = jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))
    if not leaves:
        return jnp.asarray(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _finite(x: Array) -> Array:
    return jnp.where(jnp.isfinite(x), x, 0.0)


def _finite_tree(tree: PyTree) -> PyTree:
    """`tree` with non-finite float entries set to 0."""
    return jax.tree.map(lambda x: _finite(x) if eqx.is_inexact_array(x) else x, tree)


def _finite_where(cond: Array, tree: PyTree) -> PyTree:
    """`tree` with non-finite float entries set to 0 where `cond` (a diverged step)."""

    def leaf(x):
        if not eqx.is_inexact_array(x):
            return x
        return jnp.where(cond, _finite(x), x)

    return jax.tree.map(leaf, tree)


def _check_action(action: ArrayLike, shape: tuple[int, ...]) -> None:
    try:
        got = np.shape(action)
    except ValueError:  # a ragged nested list
        got = "ragged"
    if got != shape:
        raise bad_value(
            "action",
            f"array of shape {got}",
            f"shape {shape} (see env.action_space(params))",
            f"pass e.g. jnp.zeros({shape}); batch with jax.vmap, not by adding axes.",
        )
    dtype = _dtype_of(action)
    real = dtype is not None and (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    )
    if not real:
        raise bad_value(
            "action",
            f"array of dtype {dtype}",
            f"a real (float or integer) array of shape {shape}",
            f"cast it, e.g. np.asarray(action, np.float32) with shape {shape}.",
        )


def _dtype_of(action: ArrayLike) -> np.dtype | None:
    """The dtype of `action` (arrays, tracers, lists), None if it has none."""
    dtype = getattr(action, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(action).dtype
        except (TypeError, ValueError):
            return None
    try:
        return np.dtype(dtype)
    except TypeError:  # e.g. JAX's key dtypes
        return None
