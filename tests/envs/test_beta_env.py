"""`BetaSuppression-v0`: closed-loop DBS of the Rubin–Terman beta plant as an env.

Gymnasium-clean, the functional and Gymnasium paths agree, the return's gradient
matches finite differences (float64), the LFP signal is the extracellular module's
LFP, densities convert to currents as the plant's `dbs_input` does, and 130-Hz DBS
lowers the beta cost that no stimulation pays.
"""

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
from neuroctl.envs import GymEnv, key_from_np_random, make, rollout_actions
from neuroctl.envs.beta import BetaSuppression, density_action
from neuroctl.errors import ConfigError

# short and cheap: 3 control periods (23.1 ms), cold starts (no warm-up to compile)
SHORT = dict(episode_ms=23.1, warm_start_ms=0.0)
WARM = dict(episode_ms=23.1, warm_start_ms=15.4, n_warm=2)  # a bank of 2 starts


def test_registered_check_env_clean_and_named_fields():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gymnasium.make("neuroctl/BetaSuppression-v0", **SHORT)
        check_env(env.unwrapped)
        obs, _ = env.reset(seed=0)
        for _ in range(3):
            obs, reward, terminated, truncated, info = env.step(
                env.action_space.sample()
            )
    assert [str(w.message) for w in caught] == []
    assert terminated and not truncated and env.observation_space.contains(obs)
    assert isinstance(reward, float) and info["charge"] > 0
    fields = make("BetaSuppression-v0", **SHORT).observation_fields()
    assert fields == (
        ("lfp", "nV"),
        *((f"beta_lag{i}", "nV") for i in range(4)),
        ("beta_envelope", "nV"),
        ("t/T", "1"),
    )


def test_functional_and_gymnasium_paths_agree():
    env = make("BetaSuppression-v0", dtype="float64", **SHORT)
    gym_env = GymEnv(env)
    unit = np.random.default_rng(0).uniform(-1.2, 1.2, (env.n_steps, 1))
    unit = unit.astype(np.float32)  # some outside [-1, 1]: clipped
    actions = gym_env.action_map(unit, (env.n_steps,))  # [nA]
    obs, _ = gym_env.reset(seed=7)
    gym_obs, gym_rewards = [obs], []
    for u in unit:
        obs, reward, terminated, _, info = gym_env.step(u)
        gym_obs.append(obs)
        gym_rewards.append(reward)
    assert terminated
    key = key_from_np_random(seeding.np_random(7)[0])
    traj = rollout_actions(env, key, jnp.asarray(actions))
    functional = np.concatenate([traj.obs, traj.final_obs[None]]).astype(np.float32)
    np.testing.assert_allclose(np.stack(gym_obs), functional, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(gym_rewards, traj.rewards, rtol=1e-10, atol=1e-12)


def test_return_gradient_matches_finite_differences():
    env = make("BetaSuppression-v0", dtype="float64", **SHORT)
    key = jax.random.key(3)

    def episode_return(a):  # a constant electrode current [nA]
        actions = jnp.full((env.n_steps, 1), a)
        return jnp.sum(rollout_actions(env, key, actions).rewards)

    f = jax.jit(episode_return)
    grad = float(jax.jit(jax.grad(episode_return))(20.0))
    h = 1e-5  # [nA]; spike timing makes the return curved: FD error 1e-2 at 1e-3
    fd = (float(f(20.0 + h)) - float(f(20.0 - h))) / (2 * h)
    assert grad != 0.0
    np.testing.assert_allclose(grad, fd, rtol=1e-4)


def test_the_lfp_signal_is_the_point_source_lfp():
    """``w · v`` equals `simulate_with_lfp` (electrodes counted with their return)."""
    from neuroctl import biophysics as bp
    from neuroctl.biophysics import LFPElectrodes, simulate_with_lfp
    from neuroctl.envs.beta import LFP_POSITION

    env = make("BetaSuppression-v0", dtype="float64", **SHORT).unwrapped
    net, params = env.network, env.default_params.plant
    state = bp.init_state(net, params, -60.0, jnp.float64)
    stim = np.zeros((200, net.n_stimuli))
    stim[20:40, :10] = 3.0  # [nA] into the STN somata: spikes, axial currents
    lfp = LFPElectrodes.build(net, jnp.asarray([LFP_POSITION]))

    def body(s, x):
        new = bp.step(net, params, s, x, env.config.dt)
        return new, new.v

    _, v = jax.lax.scan(body, state, jnp.asarray(stim))
    _, (_, phi) = simulate_with_lfp(
        net, params, state, stim, env.config.dt, lfp, include_electrodes=True
    )
    w = env.default_params.task.signal_weights  # [nV/mV]
    np.testing.assert_allclose(v @ w, 1e3 * phi[:, 0], rtol=1e-9, atol=1e-9)
    assert float(jnp.max(jnp.abs(v @ w))) > 10.0  # [nV]: a real signal


def test_densities_convert_to_soma_currents_as_the_plant_does():
    from neuroctl.plants.beta import BetaNetConfig

    per_soma = BetaNetConfig().density_to_point(300.0)  # [nA], as dbs_input
    env = make("BetaSuppression-v0", n_electrodes=2, **SHORT)
    a = density_action(env, 300.0)  # each electrode's total [nA]
    np.testing.assert_allclose(a, [5 * per_soma, 5 * per_soma], rtol=1e-6)
    inputs = env.default_params.actuator.to_inputs(a)
    np.testing.assert_allclose(inputs[:10], per_soma, rtol=1e-6)  # STN somata
    np.testing.assert_allclose(inputs[10:], 0.0)  # TC somata
    assert abs(per_soma - 3.016) < 1e-3  # 300 µA/cm² over a 1005-µm² soma


def test_resets_are_keyed_and_differ():
    env = make("BetaSuppression-v0", **WARM)
    params = env.default_params
    keys = jax.random.split(jax.random.key(0), 3)
    _, states = jax.jit(jax.vmap(lambda k: env.reset(k, params)))(keys)
    _, again = jax.jit(jax.vmap(lambda k: env.reset(k, params)))(keys)
    np.testing.assert_array_equal(states.sim.v, again.sim.v)  # same key, same start
    v, onsets = np.asarray(states.sim.v), np.asarray(states.task.onsets)
    assert np.all(np.abs(v[0] - v[1]) > 0) and np.all(onsets[0] != onsets[1])
    assert np.all(np.diff(onsets[0]) > 0)  # ordered pulse onsets [ms]
    bank = params.task.warm  # warm starts: the band-pass already runs
    assert bank.power.shape == (2,) and np.all(np.asarray(bank.power) > 0)


def test_bad_options_name_the_field():
    with pytest.raises(ConfigError, match="unknown options.*control_ms"):
        make("BetaSuppression-v0", control_ms=5.0)
    with pytest.raises(ConfigError, match="signal"):
        make("BetaSuppression-v0", signal="ecog")
    with pytest.raises(ConfigError, match="n_electrodes"):
        make("BetaSuppression-v0", n_electrodes=11, **SHORT)
    with pytest.raises(ConfigError, match="pulse_width_ms"):
        make("BetaSuppression-v0", pulse_width_ms=0.01, **SHORT)
    task = make("BetaSuppression-v0", **SHORT).default_params.task
    with pytest.raises(ConfigError, match="noise_std"):
        eqx.tree_at(lambda t: t.noise_std, task, -1.0).__check_init__()
    assert isinstance(task, BetaSuppression)


def _beta_cost(env, density: float, seeds=(0, 1)) -> float:
    """Mean beta cost (return plus the charge cost) of constant DBS [1]."""
    actions = jnp.broadcast_to(density_action(env, density), (env.n_steps, 1))
    run = jax.jit(rollout_actions, static_argnums=0)
    costs = []
    for seed in seeds:
        traj = run(env, jax.random.key(seed), actions)
        charge = env.default_params.objective.charge * jnp.sum(traj.infos.charge)
        costs.append(-float(jnp.sum(traj.rewards)) - float(charge))
    return float(np.mean(costs))


@pytest.mark.slow
def test_hf_dbs_lowers_the_beta_cost_of_no_stimulation():
    """130-Hz biphasic DBS into STN somata (results/dbs_plant.md: 300 µA/cm²).

    Measured (500 ms, float32, seeds 0/1, a bank of 2 warm starts): beta cost
    8.88/9.02 without stimulation, 2.78/2.94 at 300 µA/cm² (charge 1176 pC),
    0.77/0.76 at 100 µA/cm², 12.0/12.0 at 200 µA/cm² (the STN entrains to a beta
    subharmonic: worse than nothing).
    """
    env = make("BetaSuppression-v0", episode_ms=500.0, n_warm=2)
    none, dbs = _beta_cost(env, 0.0), _beta_cost(env, 300.0)
    assert none > 5.0 and dbs < 0.5 * none, (none, dbs)
