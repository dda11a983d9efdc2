"""EvidenceStim (untrained plant): plant equivalence, energy, outcome, Gymnasium."""

import warnings

import equinox as eqx
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import neuroctl  # noqa: F401  (registers the neuroctl/... ids)
from neuroctl.envs import (
    EvidenceStim,
    episode_keys,
    episode_return,
    make,
    rollout_actions,
    untrained_plant,
)
from neuroctl.envs.evidence_stim import sos_step, trial_stimulus
from neuroctl.errors import ConfigError
from neuroctl.plants import evidence_task as et
from neuroctl.plants.evidence import ENVS_ROOT

TASK = et.TaskConfig(trial_ms=8.0, response_window_ms=(5.0, 8.0))
#: one compiled step for every test here (a 62-compartment network compiles slowly)
STEP = jax.jit(lambda env, *args: env.step_env(*args), static_argnums=0)
STIMULUS = jax.jit(trial_stimulus, static_argnums=0)


@pytest.fixture(scope="module")
def plant():
    return untrained_plant(TASK)


@pytest.fixture(scope="module")
def env(plant):
    return EvidenceStim.from_plant(plant, control_ms=2.0)


@pytest.fixture(scope="module")
def episode(env):
    """Gain 1 (the plant's native input) every step: reset state, step outputs."""
    params = env.default_params
    k_reset, _, _ = episode_keys(jax.random.key(0))
    _, state0 = jax.jit(env.reset)(k_reset, params)
    state, outs = state0, []
    for t in range(env.n_steps):
        out = STEP(env, jax.random.key(t), state, jnp.ones(1), params)
        state = out[1]
        outs.append(out)
    return k_reset, state, outs


def test_streamed_trial_matches_the_task_generator(env, episode):
    k_reset, state, _ = episode
    stimulus = STIMULUS(env, k_reset)  # FFT low-pass of the same white noise
    reference = et.sample_trial(k_reset, TASK)  # same key: same μ, other noise
    np.testing.assert_allclose(state.mean, reference.mean, rtol=1e-15)
    np.testing.assert_allclose(state.stimulus_sum, jnp.sum(stimulus), rtol=1e-9)
    assert int(state.label) == int(jnp.sum(stimulus) > 0)
    white = 0.005 + 0.05 * jax.random.normal(jax.random.key(9), (TASK.n_steps,))
    sos = jnp.asarray(et.filter_sos(TASK))
    _, out = jax.jit(
        lambda w: jax.lax.scan(
            lambda z, x: sos_step(sos, z, x)[::-1], sos[:, :2] * 0, w
        )
    )(white)
    np.testing.assert_allclose(out, et.lowpass(white, TASK), rtol=1e-9, atol=1e-15)


def test_gain_one_reproduces_the_plant(plant, env, episode):
    k_reset, state, outs = episode
    stimulus = STIMULUS(env, k_reset)
    np.testing.assert_allclose(
        env.logits(state), plant.logits(stimulus), rtol=1e-10, atol=1e-10
    )
    currents = np.asarray(plant.currents(stimulus)).reshape(env.n_steps, -1, 20)
    power = [float(o[4].current_power) for o in outs]
    charge = [float(o[4].charge) for o in outs]
    np.testing.assert_allclose(power, (currents**2).mean(axis=(1, 2)), rtol=1e-9)
    np.testing.assert_allclose(
        charge, np.abs(currents).sum(axis=(1, 2)) * TASK.dt, rtol=1e-9
    )


def test_rewards_energy_then_outcome(env, episode):
    _, state, outs = episode
    params = env.default_params
    rewards = [float(o[2]) for o in outs]
    dones = [bool(o[3]) for o in outs]
    assert dones == [False] * (env.n_steps - 1) + [True]
    cost = [float(params.energy_cost * o[4].current_power) for o in outs]
    np.testing.assert_allclose(rewards[:-1], [-c for c in cost[:-1]], rtol=1e-12)
    ce = et.cross_entropy(env.logits(state), state.label)
    np.testing.assert_allclose(rewards[-1], -cost[-1] - ce, rtol=1e-12)
    task = outs[-1][4].task
    assert bool(task.decided) and float(task.cross_entropy) == pytest.approx(float(ce))
    assert not bool(outs[0][4].task.decided)


def test_gain_is_clipped_and_zero_gain_injects_nothing(env):
    state0 = env.init_state(jax.random.key(0), env.default_params)
    params = env.default_params
    *_, info = STEP(env, jax.random.key(0), state0, jnp.array([5.0]), params)
    assert bool(info.clipped) and float(info.action[0]) == 2.0  # g_max
    *_, info = STEP(env, jax.random.key(0), state0, jnp.array([0.0]), params)
    assert float(info.charge) == 0.0 and not bool(info.clipped)


@pytest.mark.slow  # ~20 s: compiles a JVP through the 62-compartment network
def test_return_is_differentiable_in_the_gain(env):
    g = jax.random.uniform(jax.random.key(8), (len(env.plant_g),), maxval=0.01)  # [µS]
    params = eqx.tree_at(lambda p: p.g, env.default_params, g)  # asymmetric readouts

    def ret(g):
        return episode_return(rollout_actions(env, jax.random.key(1), g, params))

    g = jnp.full((env.n_steps, 1), 1.5)
    d = jax.random.normal(jax.random.key(2), g.shape)
    eps = 1e-5

    @jax.jit
    def both(g):  # one compilation: JVP and the two finite-difference points
        _, tangent = jax.jvp(ret, (g,), (d,))
        return tangent, jax.vmap(ret)(jnp.stack([g + eps * d, g - eps * d]))

    tangent, (up, down) = both(g)
    np.testing.assert_allclose(tangent, (up - down) / (2 * eps), rtol=1e-4)


def test_registered_check_env_clean_and_clear_errors():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_env = gymnasium.make("neuroctl/EvidenceStim-v0", plant="untrained")
        assert gym_env.unwrapped.env.n_steps == 520  # the paper's 520-ms trial
        short_trial = dict(control_ms=2.0, trial_ms=4.0, response_window_ms=(2.0, 4.0))
        short = gymnasium.make(
            "neuroctl/EvidenceStim-v0", plant="untrained", **short_trial
        )
        check_env(short.unwrapped)  # gain [0, 2] is exposed as [0, 1]
        observing = gymnasium.make(
            "neuroctl/EvidenceStim-v0",
            plant="untrained",
            observe_evidence=True,
            observe_stimulus=True,
            **short_trial,
        )
        assert observing.observation_space.shape == (5,)
        check_env(observing.unwrapped)
    assert [str(w.message) for w in caught] == []
    with pytest.raises(ConfigError, match="unknown options"):
        make("EvidenceStim-v0", plant="untrained", episode_ms=3.0)
    with pytest.raises(ConfigError, match="outcome"):
        make("EvidenceStim-v0", plant="untrained", outcome="accuracy")
    if not (ENVS_ROOT / "evidence_integration" / "spec.toml").is_file():
        with pytest.raises(ConfigError, match="evidence_integration"):
            make("EvidenceStim-v0")  # no trained plant shipped yet
