"""Observation selection is a wrapper; env params are addressed by dotted names."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neuroctl.envs import make
from neuroctl.envs.core import ControlConfig
from neuroctl.envs.params import numeric_params, override_params
from neuroctl.envs.rollout import rollout_actions
from neuroctl.envs.spike_rate import spike_rate_control
from neuroctl.envs.wrappers import ObserveFields
from neuroctl.errors import ConfigError


def _env():
    return spike_rate_control(ControlConfig(episode_ms=5.0, dtype="float64"))


def test_observe_fields_selects_and_orders_the_named_entries():
    full = _env()
    names = [n for n, _ in full.observation_fields()]
    assert names == ["v_soma", "rate", "target_rate", "t/T"]
    env = ObserveFields(full, ("t/T", "v_soma"))
    assert env.observation_fields() == (("t/T", "1"), ("v_soma", "mV"))
    key, actions = jax.random.key(3), jnp.full((full.n_steps, 1), 0.3)
    a = rollout_actions(full, key, actions)
    b = rollout_actions(env, key, actions)
    np.testing.assert_array_equal(b.obs, a.obs[:, [3, 0]])
    np.testing.assert_array_equal(b.rewards, a.rewards)  # only what it sees changes
    space, whole = env.observation_space(), full.observation_space()
    np.testing.assert_array_equal(space.low, whole.low[jnp.array([3, 0])])
    assert space.shape == (2,) and env.n_steps == full.n_steps
    assert env.network is full.network  # other attributes read through


def test_observe_fields_names_a_missing_field():
    with pytest.raises(ConfigError, match="'spikes'.*one of \\['v_soma'"):
        ObserveFields(_env(), ("v_soma", "spikes"))
    with pytest.raises(ConfigError, match="distinct"):
        ObserveFields(_env(), ("v_soma", "v_soma"))


def test_wrappers_compose_and_stay_jit_static():
    env = ObserveFields(ObserveFields(_env(), ("rate", "t/T")), ("t/T",))
    step = jax.jit(env.step_env, static_argnums=())
    obs, state = env.reset(jax.random.key(0))
    obs2, *_ = step(jax.random.key(1), state, jnp.array([0.1]))
    assert obs.shape == obs2.shape == (1,)
    hash(env)  # static: usable as a jit static argument
    assert env.unwrapped is env.env.env


def test_params_by_dotted_name_or_alias():
    env = make("SpikeRate-v0", episode_ms=5.0)
    params = env.default_params
    names = numeric_params(params)
    assert {"actuator.high", "objective.charge", "task.error_cost"} <= set(names)
    assert not any(n.startswith("plant.") for n in names)  # no per-compartment lists
    p = override_params(
        params, {"objective.charge": 0.5, "i_max": 0.25}, env.param_aliases()
    )
    assert float(p.objective.charge) == 0.5
    assert np.asarray(p.actuator.high).tolist() == [0.25]  # every site
    with pytest.raises(ConfigError, match="'chrage'.*objective.charge"):
        override_params(params, {"chrage": 1.0}, env.param_aliases())
    with pytest.raises(ConfigError, match="a number"):
        override_params(params, {"objective.charge": "x"})
