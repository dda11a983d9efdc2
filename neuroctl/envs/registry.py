"""Named envs: functional `make(name)` and the ``neuroctl/<name>`` Gymnasium ids.

Each entry maps a name to a factory ``(**kwargs) -> AbstractEnv``; ``kwargs`` are
`ControlConfig` fields (``episode_ms``, ``control_ms``, ``dt``, ``v_max``, ``dtype``)
plus env-specific options. Registering a new env (e.g. the evidence-stimulation envs,
which need the trained plant) is one `register` call: the factory runs only when the
env is made, so a missing plant fails at ``make`` with a clear message, not at
``import neuroctl``.

Gymnasium 1.x loads no plugin entry points: ``import neuroctl`` registers the
built-in ids (`neuroctl.GYMNASIUM_IDS`) with lazy entry points here once Gymnasium
is imported, and importing this module calls `register_all` (idempotent).
"""

from collections.abc import Callable
from typing import Any

import gymnasium

from neuroctl.envs.core import AbstractEnv, ControlConfig
from neuroctl.errors import ConfigError

NAMESPACE = "neuroctl"
_FACTORIES: dict[str, Callable[..., AbstractEnv]] = {}


def register(name: str, factory: Callable[..., AbstractEnv]) -> None:
    """Add `name` (e.g. ``"SpikeRate-v0"``) and its Gymnasium id ``neuroctl/<name>``."""
    _FACTORIES[name] = factory
    env_id = f"{NAMESPACE}/{name}"
    if env_id not in gymnasium.registry:
        gymnasium.register(
            id=env_id,
            entry_point="neuroctl.envs.registry:make_gym",
            vector_entry_point="neuroctl.envs.registry:make_gym_vector",
            kwargs={"name": name},
        )


def names() -> list[str]:
    """Registered env names."""
    return sorted(_FACTORIES)


def make(name: str, **kwargs: Any) -> AbstractEnv:
    """The functional env `name`; `kwargs` as described in the module docstring."""
    if name.startswith(f"{NAMESPACE}/"):
        name = name[len(NAMESPACE) + 1 :]
    if name not in _FACTORIES:
        raise ConfigError(f"env {name!r}: unknown; registered envs are {names()}.")
    return _FACTORIES[name](**kwargs)


def make_gym(
    name: str, params=None, render_mode=None, normalize_actions=True, **kwargs: Any
):
    """Gymnasium entry point: `GymEnv` around ``make(name, **kwargs)``."""
    from neuroctl.envs.gym import GymEnv

    env = make(name, **kwargs)
    return GymEnv(env, params, render_mode, normalize_actions)


def make_gym_vector(
    name: str, num_envs: int = 1, params=None, normalize_actions=True, **kwargs: Any
):
    """Gymnasium vector entry point: `GymVectorEnv` around ``make(name, **kwargs)``."""
    from neuroctl.envs.gym import GymVectorEnv

    kwargs.pop("render_mode", None)
    return GymVectorEnv(make(name, **kwargs), num_envs, params, normalize_actions)


def split_config(kwargs: dict[str, Any]) -> tuple[ControlConfig, dict[str, Any]]:
    """`ControlConfig` from the config keys of `kwargs`; the rest is returned."""
    fields = set(ControlConfig.__dataclass_fields__)
    config = ControlConfig(**{k: v for k, v in kwargs.items() if k in fields})
    return config, {k: v for k, v in kwargs.items() if k not in fields}


def _spike_rate(cell: str) -> Callable[..., AbstractEnv]:
    def factory(**kwargs: Any) -> AbstractEnv:
        from neuroctl.envs.spike_rate import spike_rate_control

        config, rest = split_config(kwargs)
        if rest:
            raise ConfigError(
                f"SpikeRate: unknown options {sorted(rest)}; valid options are "
                f"{sorted(ControlConfig.__dataclass_fields__)}."
            )
        return spike_rate_control(config, cell=cell)

    return factory


_EVIDENCE_OPTIONS = ("control_ms", "dtype", "outcome", "v_max")
_TRIAL_OPTIONS = ("trial_ms", "response_window_ms")
_OBSERVE_OPTIONS = ("observe_evidence", "observe_stimulus")
_ELECTRODE_OPTIONS = ("n_electrodes", "sheet_um", "length_constant_um", "seed")


def _evidence_plant(name: str, plant: str, kwargs: dict[str, Any], extra=()):
    """The plant (`plants.load(plant)` or ``"untrained"``) with trial overrides.

    Checks `kwargs` against the evidence options (+ `extra`) and removes the trial
    ones (`trial_ms`, `response_window_ms`: override the plant's task).
    """
    import dataclasses

    from neuroctl.envs.evidence_stim import untrained_plant
    from neuroctl.plants import load

    valid = {*_EVIDENCE_OPTIONS, *_TRIAL_OPTIONS, *extra}
    unknown = sorted(set(kwargs) - valid)
    if unknown:
        raise ConfigError(
            f"{name}: unknown options {unknown}; valid options are "
            f"{sorted({*valid, 'plant'})}."
        )
    p = untrained_plant() if plant == "untrained" else load(plant)
    trial = {k: kwargs.pop(k) for k in _TRIAL_OPTIONS if k in kwargs}
    if trial:
        p = dataclasses.replace(p, task=dataclasses.replace(p.task, **trial))
    return p


def _evidence_stim(plant: str = "evidence_integration", **kwargs: Any) -> AbstractEnv:
    """The gain on the evidence input of a shipped plant (or ``"untrained"``).

    A composed env (`evidence_trial.evidence_control`) that steps as the
    hand-written `EvidenceStim` did. Options: `control_ms`, `dtype`, `outcome`,
    `v_max`, `observe_evidence`, `observe_stimulus` and `trial_ms`,
    `response_window_ms` (override the plant's task, e.g. for short smoke tests).
    """
    from neuroctl.envs.evidence_trial import evidence_control

    p = _evidence_plant("EvidenceStim", plant, kwargs, _OBSERVE_OPTIONS)
    return evidence_control(p, **kwargs)


def _evidence_electrodes(
    plant: str = "evidence_integration", pulse_width_ms: float | None = None, **kwargs
) -> AbstractEnv:
    """`EvidenceStimElectrodes` on a shipped plant or ``"untrained"``.

    Options: those of `_evidence_stim` (observe flags included), the
    `ElectrodeLayout` fields
    (`n_electrodes`, `sheet_um` [µm], `length_constant_um` [µm], `seed`) and
    `pulse_width_ms` [ms] (a `BiphasicPulse` per control step; None holds the action).
    """
    import jax.numpy as jnp

    from neuroctl.envs.actuators import BiphasicPulse, Electrodes
    from neuroctl.envs.evidence_electrodes import ElectrodeLayout, electrode_weights
    from neuroctl.envs.evidence_trial import evidence_control

    p = _evidence_plant(
        "EvidenceStimElectrodes", plant, kwargs, _ELECTRODE_OPTIONS + _OBSERVE_OPTIONS
    )
    layout = ElectrodeLayout(
        **{k: kwargs.pop(k) for k in _ELECTRODE_OPTIONS if k in kwargs}
    )
    n_cells = int(jnp.shape(p.input_weights)[0])
    weights = jnp.asarray(electrode_weights(layout, n_cells))
    pulse = None if pulse_width_ms is None else BiphasicPulse(pulse_width_ms)
    electrodes = Electrodes(weights, i_max=0.1, pulse=pulse)  # [nA]
    return evidence_control(p, electrodes, energy_cost=1.0, **kwargs)


_BETA_OPTIONS = (
    "signal",
    "n_electrodes",
    "frequency_hz",
    "pulse_width_ms",
    "i_max",
    "episode_ms",
    "dtype",
    "v_max",
    "lfp_position_um",
    "charge_cost",
    "beta_cost",
    "warm_start_ms",
    "n_warm",
    "stimulation",
    "electrode_distance_um",
)


def _beta_suppression(plant: str = "beta_parkinsonian", **kwargs: Any) -> AbstractEnv:
    """Closed-loop DBS of a shipped beta plant (`neuroctl.envs.beta.beta_control`).

    Options: `plant` (``"beta_parkinsonian"``, ``"beta_healthy"``), `signal`
    (``"lfp"`` [nV] or ``"stn"`` [mV]), `n_electrodes`, `frequency_hz` [Hz] (sets
    the control period: one biphasic pulse per period), `pulse_width_ms` [ms],
    `i_max` [nA, or µA extracellular], `episode_ms` [ms], `dtype`, `v_max` [mV],
    `lfp_position_um` [µm], `charge_cost` [1/pC], `beta_cost` [1/(unit²·s)],
    `warm_start_ms` [ms], `n_warm`, `stimulation` (``"soma"`` or
    ``"extracellular"``), `electrode_distance_um` [µm]. `control_ms` and `dt` are
    not options (set by `frequency_hz` and the plant).
    """
    from neuroctl.envs.beta import beta_control

    unknown = sorted(set(kwargs) - set(_BETA_OPTIONS))
    if unknown:
        raise ConfigError(
            f"BetaSuppression: unknown options {unknown}; valid options are "
            f"{sorted({*_BETA_OPTIONS, 'plant'})} (control_ms follows from "
            "frequency_hz: one pulse per control period)."
        )
    return beta_control(plant, **kwargs)


def register_all() -> None:
    """Register the built-in envs (safe to call more than once).

    ``EvidenceStim-v0`` and ``EvidenceStimElectrodes-v0`` need a shipped plant
    (``envs/evidence_integration``) or ``plant="untrained"``; ``BetaSuppression-v0``
    a shipped beta plant (``envs/beta_parkinsonian``); it is checked when the env
    is made, not here.
    """
    register("SpikeRate-v0", _spike_rate("single"))
    register("SpikeRateBallStick-v0", _spike_rate("ball_and_stick"))
    register("EvidenceStim-v0", _evidence_stim)
    register("EvidenceStimElectrodes-v0", _evidence_electrodes)
    register("BetaSuppression-v0", _beta_suppression)


register_all()
