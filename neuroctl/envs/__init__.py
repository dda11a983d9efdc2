"""Control environments: a functional (gymnax-style) core, concrete envs, adapters.

Functional API (pure; `jit`, `vmap`, `grad` compose)::

    env = SpikeRate()                    # or make("SpikeRate-v0", episode_ms=50.0)
    params = env.default_params
    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step_env(key, state, action, params)

Composed envs for any network: `ControlEnv.build(plant, actuator, task, EnergyCost,
observe=...)` with `SiteCurrents`/`Electrodes` (+ `BiphasicPulse`), `RateTracking`/
`NoTask`; `ObserveFields(env, fields)` chooses what a policy sees. Params are
addressed by dotted names (`neuroctl.envs.params`), e.g. ``task.input_gain``.

Registered envs (`make(name)`, all composed `ControlEnv`s): ``SpikeRate-v0`` /
``SpikeRateBallStick-v0`` (HH point or ball-and-stick cell, soma current → target
rate), ``EvidenceStim-v0`` (gain on the evidence input of the frozen EI RNN
plant), ``EvidenceStimElectrodes-v0`` (currents at K electrodes into the same
plant). The hand-written `SpikeRate`, `EvidenceStim`, `EvidenceStimElectrodes`
classes they replaced remain as references (tests check they step alike).

Gymnasium: ``gymnasium.make("neuroctl/SpikeRate-v0")`` (ids registered on
``import neuroctl``: `names()`), `GymEnv`, `GymVectorEnv`; rejax/purejaxrl:
`GymnaxAdapter`; Stable-Baselines3: `SB3VecEnv` (needs the ``rl`` extra).
"""

from neuroctl.envs.actuators import BiphasicPulse as BiphasicPulse
from neuroctl.envs.actuators import Electrodes as Electrodes
from neuroctl.envs.actuators import ExtracellularElectrodes as ExtracellularElectrodes
from neuroctl.envs.actuators import SiteCurrents as SiteCurrents
from neuroctl.envs.control import ControlEnv as ControlEnv
from neuroctl.envs.control import ControlParams as ControlParams
from neuroctl.envs.core import AbstractEnv as AbstractEnv
from neuroctl.envs.core import AbstractEnvParams as AbstractEnvParams
from neuroctl.envs.core import AbstractEnvState as AbstractEnvState
from neuroctl.envs.core import ControlConfig as ControlConfig
from neuroctl.envs.core import Energy as Energy
from neuroctl.envs.core import StepInfo as StepInfo
from neuroctl.envs.core import episode_keys as episode_keys
from neuroctl.envs.core import step_key as step_key
from neuroctl.envs.gym import GymEnv as GymEnv
from neuroctl.envs.gym import GymnaxAdapter as GymnaxAdapter
from neuroctl.envs.gym import GymVectorEnv as GymVectorEnv
from neuroctl.envs.gym import key_from_np_random as key_from_np_random
from neuroctl.envs.objectives import EnergyCost as EnergyCost
from neuroctl.envs.registry import make as make
from neuroctl.envs.registry import names as names
from neuroctl.envs.rollout import Trajectory as Trajectory
from neuroctl.envs.rollout import episode_return as episode_return
from neuroctl.envs.rollout import rollout as rollout
from neuroctl.envs.rollout import rollout_actions as rollout_actions
from neuroctl.envs.spaces import Box as Box
from neuroctl.envs.spike_rate import SpikeRate as SpikeRate
from neuroctl.envs.spike_rate import SpikeRateParams as SpikeRateParams
from neuroctl.envs.spike_rate import SpikeRateState as SpikeRateState
from neuroctl.envs.tasks import NoTask as NoTask
from neuroctl.envs.tasks import RateTracking as RateTracking
from neuroctl.envs.wrappers import ObserveFields as ObserveFields

# `EvidenceStim` imports the plant's task (scipy.signal, ~2 s); `import neuroctl`
# (which registers the Gymnasium ids) should not pay for it, so it loads on first use.
# `SB3VecEnv` imports stable_baselines3 (the optional ``rl`` extra).
_LAZY = {
    "EvidenceStim": "evidence_stim",
    "EvidenceStimParams": "evidence_stim",
    "EvidenceStimState": "evidence_stim",
    "untrained_plant": "evidence_stim",
    "EvidenceStimElectrodes": "evidence_electrodes",
    "EvidenceStimElectrodesParams": "evidence_electrodes",
    "ElectrodeLayout": "evidence_electrodes",
    "SB3VecEnv": "sb3",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"neuroctl.envs.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'neuroctl.envs' has no attribute {name!r}")
