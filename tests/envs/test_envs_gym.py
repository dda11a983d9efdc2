"""The Gymnasium face (single and vector env), registration and the gymnax adapter."""

import warnings

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils import seeding
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import neuroctl  # noqa: F401  (registers the neuroctl/... ids)
from neuroctl.envs import (
    ControlConfig,
    GymEnv,
    GymnaxAdapter,
    GymVectorEnv,
    SpikeRate,
    key_from_np_random,
    rollout_actions,
)
from neuroctl.errors import ConfigError


@pytest.mark.parametrize(
    "env_id", ["neuroctl/SpikeRate-v0", "neuroctl/SpikeRateBallStick-v0"]
)
def test_registered_and_check_env_clean(env_id):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gymnasium.make(env_id, episode_ms=5.0)
        check_env(env.unwrapped)
        obs, _ = env.reset(seed=0)
        for _ in range(5):
            obs, reward, terminated, truncated, info = env.step(
                env.action_space.sample()
            )
    assert [str(w.message) for w in caught] == []
    assert terminated and not truncated and env.observation_space.contains(obs)
    assert isinstance(reward, float) and isinstance(info["charge"], float)


def test_functional_and_gymnasium_paths_agree():
    env = SpikeRate(ControlConfig(episode_ms=10.0, dtype="float64"))
    gym_env = GymEnv(env)
    unit = np.random.default_rng(0).uniform(0.0, 1.2, (env.n_steps, 1))
    unit = unit.astype(np.float32)  # some > 1: clipped
    actions = gym_env.action_map(unit, (env.n_steps,))  # [nA]
    np.testing.assert_allclose(actions, 0.5 * unit)  # [0, 1] → [0, i_max]
    obs, _ = gym_env.reset(seed=11)
    gym_obs, gym_rewards, gym_charge = [obs], [], []
    for u in unit:
        obs, reward, terminated, _, info = gym_env.step(u)
        gym_obs.append(obs)
        gym_rewards.append(reward)
        gym_charge.append(info["charge"])
    assert terminated

    key = key_from_np_random(seeding.np_random(11)[0])
    traj = jax.jit(rollout_actions, static_argnums=0)(env, key, jnp.asarray(actions))
    functional_obs = np.concatenate([traj.obs, traj.final_obs[None]]).astype(np.float32)
    np.testing.assert_allclose(np.stack(gym_obs), functional_obs, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(gym_rewards, traj.rewards, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gym_charge, traj.infos.charge, rtol=1e-12)
    assert bool(traj.dones[-1])


def test_in_float32_the_two_paths_agree_to_float32_rounding():
    """A float32 ball-and-stick: the jitted step and the scanned rollout round
    differently; the module docstring's bound (measured 4.9e-4 mV over 50 ms)."""
    from neuroctl.envs.registry import make

    env = make("SpikeRateBallStick-v0", episode_ms=50.0, dtype="float32")
    gym_env = GymEnv(env)
    unit = np.random.default_rng(0).uniform(0.0, 1.0, (env.n_steps, 1))
    actions = gym_env.action_map(unit.astype(np.float32), (env.n_steps,))
    obs, _ = gym_env.reset(seed=3)
    gym_obs = [obs] + [gym_env.step(u)[0] for u in unit.astype(np.float32)]
    key = key_from_np_random(seeding.np_random(3)[0])
    traj = jax.jit(rollout_actions, static_argnums=0)(env, key, jnp.asarray(actions))
    functional_obs = np.concatenate([traj.obs, traj.final_obs[None]])
    diff = np.abs(np.stack(gym_obs) - functional_obs)
    assert diff.max() <= 1e-3  # [mV, Hz]: rounding, not another episode
    assert np.max(np.abs(np.stack(gym_obs)[:, 0])) > 20.0  # it spiked


def test_gymnasium_step_needs_reset_and_checks_shapes():
    gym_env = gymnasium.make("neuroctl/SpikeRate-v0", episode_ms=2.0).unwrapped
    with pytest.raises(gymnasium.error.ResetNeeded):
        gym_env.step(np.zeros(1, np.float32))
    gym_env.reset(seed=0)
    with pytest.raises(ConfigError, match="action"):
        gym_env.step(np.zeros((1, 1), np.float32))
    _, _, _, _, info = gym_env.step(np.array([np.nan], np.float32))
    assert info["nan_action"] and info["charge"] == 0.0


def test_vector_env_same_step_autoreset():
    envs = gymnasium.make_vec(
        "neuroctl/SpikeRate-v0",
        num_envs=4,
        vectorization_mode="vector_entry_point",
        episode_ms=2.0,
    )
    assert isinstance(envs, GymVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, _ = envs.reset(seed=3)
    assert obs.shape == (4, 4) and envs.observation_space.contains(obs)
    actions = np.full((4, 1), 0.4, np.float32)  # 0.2 nA
    obs, reward, terminated, truncated, info = envs.step(actions)
    assert not terminated.any() and "final_obs" not in info
    obs, reward, terminated, truncated, info = envs.step(actions)
    assert terminated.all() and not truncated.any() and reward.shape == (4,)
    np.testing.assert_array_equal(obs[:, 3], 0.0)  # next episode's first obs
    assert info["_final_obs"].all() and all(o[3] == 1.0 for o in info["final_obs"])
    np.testing.assert_allclose(info["charge"], 0.2, rtol=1e-6)
    assert envs.observation_space.contains(obs)


def test_gymnax_adapter_five_tuple_under_jit_vmap():
    adapter = GymnaxAdapter(SpikeRate(ControlConfig(episode_ms=3.0)))
    params = adapter.default_params
    assert params.max_steps_in_episode == 3 and adapter.num_actions == 1
    n = 5
    reset = jax.jit(jax.vmap(adapter.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(adapter.step, in_axes=(0, 0, 0, None)))
    obs, state = reset(jax.random.split(jax.random.key(0), n), params)
    space = adapter.action_space(params)
    actions = jax.vmap(space.sample)(jax.random.split(jax.random.key(1), n))
    for t in range(3):
        keys = jax.random.split(jax.random.key(2 + t), n)
        obs, state, reward, done, info = step(keys, state, actions, params)
    assert obs.shape == (n, 4) and reward.shape == (n,) and done.all()
    assert isinstance(info, dict) and info["charge"].shape == (n,)
    assert (state.t == 0).all()  # auto-reset
    assert bool(jnp.all(jax.vmap(adapter.observation_space(params).contains)(obs)))


def test_vector_env_final_info_of_a_multi_entry_action():
    """An episode ends in a vector env whose action has several entries.

    The final info keeps each finished env's (K,)-shaped action (it raised before).
    """
    import neuroctl.biophysics as bp
    from neuroctl.envs import ControlEnv, SiteCurrents
    from neuroctl.envs.tasks import NoTask
    from neuroctl.plants import Plant

    cell = bp.Cell(bp.Morphology.single_compartment()).insert(bp.HH(), 0)
    net = bp.Network.build(
        [cell, cell],
        stimuli=[bp.Site(0), bp.Site(1)],
        recordings=[bp.Site(0), bp.Site(1)],
    )
    plant = Plant.from_network(net)
    actuator = SiteCurrents.on(plant, ["input0", "input1"], low=0.0, high=1.0)  # [nA]
    env = ControlEnv.build(
        plant, actuator, NoTask(), config=ControlConfig(episode_ms=2.0)
    )
    envs = GymVectorEnv(env, 3, normalize_actions=False)
    envs.reset(seed=0)
    actions = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], np.float32)
    envs.step(actions)
    _, _, terminated, _, info = envs.step(actions)
    assert terminated.all() and info["_final_info"].all()
    np.testing.assert_allclose(info["final_info"]["action"], actions, rtol=1e-6)
