"""EvidenceStimElectrodes (untrained plant, 4-ms trials): routing, energy, pulses,
Gymnasium equivalence, gradients, bad params."""

import warnings

import equinox as eqx
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils import seeding
from gymnasium.utils.env_checker import check_env

import neuroctl  # noqa: F401  (registers the neuroctl/... ids)
from neuroctl.envs import episode_return, key_from_np_random, make, rollout_actions
from neuroctl.envs.core import energy_of
from neuroctl.envs.evidence_electrodes import (
    BiphasicPulse,
    ElectrodeLayout,
    EvidenceStimElectrodes,
    EvidenceStimElectrodesParams,
    electrode_weights,
)
from neuroctl.errors import ConfigError

SHORT = dict(
    plant="untrained", control_ms=1.0, trial_ms=4.0, response_window_ms=(2.0, 4.0)
)
#: one compiled open-loop episode for every functional test here
ROLLOUT = jax.jit(rollout_actions, static_argnums=0)


@pytest.fixture(scope="module")
def env():
    """The hand-written env (float64: the tests enable x64).

    The registered id builds the composed env; tests/envs/test_control.py checks
    that the two step alike.
    """
    import dataclasses

    from neuroctl.envs.evidence_stim import untrained_plant

    plant = untrained_plant()
    trial = {k: SHORT[k] for k in ("trial_ms", "response_window_ms")}
    plant = dataclasses.replace(plant, task=dataclasses.replace(plant.task, **trial))
    return EvidenceStimElectrodes.from_plant(plant, control_ms=SHORT["control_ms"])


@pytest.fixture(scope="module")
def gym_env(env):
    from neuroctl.envs.gym import GymEnv

    return GymEnv(env)


def test_layout_gives_deterministic_gaussian_weights(env):
    layout = ElectrodeLayout(n_electrodes=4, sheet_um=200.0, length_constant_um=50.0)
    w = electrode_weights(layout, 20)
    assert w.shape == (20, 4) and np.all((w > 0) & (w <= 1))
    np.testing.assert_array_equal(w, electrode_weights(layout, 20))  # seeded
    assert not np.allclose(w, electrode_weights(ElectrodeLayout(seed=1), 20))
    np.testing.assert_allclose(layout.electrode_positions()[3], [150.0, 150.0])  # [µm]
    d = np.linalg.norm(layout.cell_positions(20)[7] - [150.0, 150.0])  # [µm]
    np.testing.assert_allclose(w[7, 3], np.exp(-(d**2) / (2 * 50.0**2)), rtol=1e-12)
    np.testing.assert_allclose(env.default_params.electrode_weights, w, rtol=1e-15)
    assert electrode_weights(ElectrodeLayout(n_electrodes=5), 20).shape == (20, 5)


def test_currents_reach_cells_only_through_the_weights(env):
    params, key = env.default_params, jax.random.key(0)
    n, k = env.n_steps, env.n_electrodes
    zero = ROLLOUT(env, key, jnp.zeros((n, k)), params)
    assert float(jnp.abs(zero.infos.charge).max()) == 0.0
    assert float(zero.rewards[:-1].sum()) == 0.0  # no current, no cost
    action = jnp.zeros((n, k)).at[:, 1].set(0.08)  # [nA] at electrode 1 only
    on = ROLLOUT(env, key, action, params)
    assert float(jnp.abs(on.obs - zero.obs).max()) > 1e-3  # [mV]: it acts
    np.testing.assert_allclose(on.infos.charge, 0.08 * 1.0, rtol=1e-12)  # nA·ms
    np.testing.assert_allclose(on.infos.current_power, 0.08**2 / k, rtol=1e-12)
    np.testing.assert_allclose(
        on.rewards[:-1], -params.energy_cost * 0.08**2 / k, rtol=1e-12
    )
    cut = eqx.tree_at(
        lambda p: p.electrode_weights, params, params.electrode_weights.at[:, 1].set(0)
    )
    off = ROLLOUT(env, key, action, cut)  # electrode 1 reaches no cell
    np.testing.assert_allclose(off.obs, zero.obs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(off.final_obs, zero.final_obs, rtol=0, atol=1e-12)


def test_biphasic_pulse_is_charge_balanced(env):
    pulsed = EvidenceStimElectrodes(
        env.config, env.evidence, env.layout, BiphasicPulse(0.2)
    )
    amplitude = jnp.array([0.1, -0.05, 0.0, 0.07])  # [nA]
    currents = pulsed.electrode_currents(amplitude)  # (40, 4) [nA]
    dt = env.config.dt  # [ms]
    assert currents.shape == (env.config.substeps, 4)
    np.testing.assert_allclose(currents[:8], jnp.tile(amplitude, (8, 1)))  # 1st phase
    np.testing.assert_allclose(currents[8:16], -jnp.tile(amplitude, (8, 1)))
    np.testing.assert_array_equal(currents[16:], 0.0)
    net = jnp.sum(currents, axis=0) * dt  # [pC] per electrode
    np.testing.assert_allclose(net, 0.0, atol=1e-15)
    energy = energy_of(currents, dt)  # what step_env reports as info
    expected = 2 * 0.2 * float(jnp.abs(amplitude).sum())  # [pC]: two phases
    np.testing.assert_allclose(energy.charge, expected, rtol=1e-12)
    with pytest.raises(ConfigError, match="pulse_width_ms.*control_ms / 2"):
        EvidenceStimElectrodes(env.config, env.evidence, env.layout, BiphasicPulse(0.6))
    with pytest.raises(ConfigError, match="pulse_width_ms.*multiple of dt"):
        BiphasicPulse(0.03).phase_steps(env.config)


def test_check_env_clean_and_gym_path_equals_functional(gym_env, env):
    registered = gymnasium.make("neuroctl/EvidenceStimElectrodes-v0", **SHORT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(registered.unwrapped)  # the composed env users get
    assert [str(w.message) for w in caught] == []
    assert registered.action_space == gym_env.action_space
    assert registered.observation_space == gym_env.observation_space
    assert gym_env.action_space.shape == (4,) and gym_env.action_space.low[0] == -1
    unit = np.random.default_rng(0).uniform(-1.2, 1.2, (env.n_steps, 4))
    unit = unit.astype(np.float32)  # some beyond ±1: clipped
    obs, _ = gym_env.reset(seed=5)
    gym_obs, rewards, charge = [obs], [], []
    for u in unit:
        obs, reward, terminated, _, info = gym_env.step(u)
        gym_obs.append(obs)
        rewards.append(reward)
        charge.append(info["charge"])
    assert terminated and info["decided"]
    actions = jnp.asarray(gym_env.action_map(unit, (env.n_steps,)))  # [nA]
    key = key_from_np_random(seeding.np_random(5)[0])
    traj = ROLLOUT(env, key, actions, env.default_params)
    functional = np.concatenate([traj.obs, traj.final_obs[None]]).astype(np.float32)
    np.testing.assert_allclose(np.stack(gym_obs), functional, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(rewards, traj.rewards, rtol=1e-12)
    np.testing.assert_allclose(charge, traj.infos.charge, rtol=1e-12)
    assert bool(traj.infos.clipped.any())


def test_return_gradient_matches_float64_finite_differences(env):
    params = env.default_params
    w = jax.random.uniform(jax.random.key(8), params.g.shape, maxval=0.01)  # [µS]
    params = eqx.tree_at(lambda p: p.g, params, w)  # asymmetric readouts

    def ret(actions, weights):
        p = eqx.tree_at(lambda p: p.electrode_weights, params, weights)
        return episode_return(rollout_actions(env, jax.random.key(1), actions, p))

    def ret_compiled(actions, weights):  # the module's compiled rollout
        p = eqx.tree_at(lambda p: p.electrode_weights, params, weights)
        return float(episode_return(ROLLOUT(env, jax.random.key(1), actions, p)))

    actions = jax.random.uniform(
        jax.random.key(2), (env.n_steps, 4), minval=-0.08, maxval=0.08
    )  # [nA], inside the space: no clipping kinks
    weights = params.electrode_weights
    d_a = jax.random.normal(jax.random.key(3), actions.shape)
    d_w = jax.random.normal(jax.random.key(4), weights.shape)
    eps = 1e-6
    jvp = jax.jit(lambda a, w: jax.jvp(ret, (a, w), (d_a, d_w)))
    value, tangent = jvp(actions, weights)
    np.testing.assert_allclose(value, ret_compiled(actions, weights), rtol=1e-12)
    up = ret_compiled(actions + eps * d_a, weights + eps * d_w)
    down = ret_compiled(actions - eps * d_a, weights - eps * d_w)
    assert abs(float(tangent)) > 1e-6
    np.testing.assert_allclose(tangent, (up - down) / (2 * eps), rtol=1e-4)


def test_bad_params_and_options_name_the_field(env):
    p = env.default_params
    arrays = dict(g=p.g, w=p.w, electrode_weights=p.electrode_weights)
    with pytest.raises(ConfigError, match="i_max"):
        EvidenceStimElectrodesParams(**arrays, i_max=0.0)
    with pytest.raises(ConfigError, match="energy_cost"):
        EvidenceStimElectrodesParams(**arrays, energy_cost=-1.0)
    with pytest.raises(ConfigError, match="evidence_gain"):
        EvidenceStimElectrodesParams(**arrays, evidence_gain=float("nan"))
    with pytest.raises(ConfigError, match="electrode_weights"):
        nan_w = p.electrode_weights.at[0, 0].set(jnp.nan)
        EvidenceStimElectrodesParams(g=p.g, w=p.w, electrode_weights=nan_w)
    bad = eqx.tree_at(lambda q: q.electrode_weights, p, jnp.ones((20, 3)))
    with pytest.raises(ConfigError, match=r"params.electrode_weights.*\(20, 4\)"):
        env.reset(jax.random.key(0), bad)
    with pytest.raises(ConfigError, match="n_electrodes"):
        ElectrodeLayout(n_electrodes=0)
    with pytest.raises(ConfigError, match="length_constant_um"):
        ElectrodeLayout(length_constant_um=-5.0)
    with pytest.raises(ConfigError, match="unknown options"):
        make("EvidenceStimElectrodes-v0", plant="untrained", electrodes=3)
    with pytest.raises(ConfigError, match=r"action.*\(4,\)"):
        env.step_env(jax.random.key(0), env.reset(jax.random.key(0))[1], jnp.zeros(3))
