"""Functional env core and SpikeRate: physics, gradients, transformations, bad input."""

import hashlib
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neuroctl import biophysics as bp
from neuroctl.envs import (
    ControlConfig,
    SpikeRate,
    SpikeRateParams,
    episode_return,
    make,
    rollout_actions,
)
from neuroctl.errors import ConfigError


def short_env(episode_ms: float = 10.0, cell: str = "single") -> SpikeRate:
    return SpikeRate(ControlConfig(episode_ms=episode_ms, dtype="float64"), cell)


@pytest.fixture(scope="module")
def env():
    return short_env()


@pytest.fixture(scope="module")
def step_env(env):
    return jax.jit(env.step_env)


@pytest.fixture(scope="module")
def first(env):
    """Reset state of the 10-ms env with the default params (key 0)."""
    return env.reset(jax.random.key(0), env.default_params)


def test_step_reports_units_and_energy(env, step_env, first):
    obs, state = first
    assert obs.shape == (4,) and obs[3] == 0.0 and obs[1] == 0.0
    obs, state, reward, done, info = step_env(
        jax.random.key(1), state, jnp.array([0.2]), env.default_params
    )
    assert int(state.t) == 1 and not bool(done)
    np.testing.assert_allclose(info.charge, 0.2 * 1.0, rtol=1e-12)  # nA·ms = pC
    np.testing.assert_allclose(info.current_power, 0.2**2, rtol=1e-12)  # [nA²]
    np.testing.assert_allclose(info.t_ms, 1.0)
    np.testing.assert_allclose(obs[3], 0.1)  # t/T after 1 of 10 steps
    expected = -1e-4 * (obs[1] - 0.0) ** 2 - 0.1 * 0.2  # target 0 Hz in step 0
    np.testing.assert_allclose(reward, expected, rtol=1e-12)


def test_rate_estimate_matches_counted_spikes():
    env = SpikeRate(ControlConfig(episode_ms=200.0, dtype="float64"))
    actions = jnp.full((env.n_steps, 1), 0.2)  # [nA]: ≈ 80 Hz tonic firing
    traj = jax.jit(rollout_actions, static_argnums=0)(env, jax.random.key(0), actions)
    net = env.network
    s0 = bp.init_state(net, net.default_params, float(traj.obs[0, 0]), jnp.float64)
    _, v = jax.jit(bp.simulate, static_argnums=(0, 4))(
        net, net.default_params, s0, jnp.full((8000, 1), 0.2), 0.025
    )
    v = np.asarray(v[4000:, 0])  # last 100 ms
    counted = np.sum((v[1:] > -20) & (v[:-1] <= -20)) / 0.1  # [Hz]
    estimated = float(jnp.mean(traj.infos.task.rate[100:]))
    assert 70 < counted < 95
    assert abs(estimated - counted) < 0.1 * counted


def test_return_gradient_matches_finite_differences():
    env = short_env(20.0)  # two spikes: the return depends on spike timing
    params = SpikeRateParams(target_rate=jnp.full(env.n_steps, 60.0))
    key, eps = jax.random.key(3), 1e-6

    def ret(actions, params):
        return episode_return(rollout_actions(env, key, actions, params))

    def ret_tau(actions, tau):  # [ms]
        return ret(actions, eqx.tree_at(lambda p: p.rate_tau, params, tau))

    @jax.jit  # one compilation: gradients and all finite-difference points
    def grads_and_points(actions, dirs):
        grads = jax.grad(ret, argnums=(0, 1))(actions, params)
        shifted = jnp.concatenate(
            [actions[None] + eps * dirs, actions[None] - eps * dirs]
        )
        points = jax.vmap(ret, in_axes=(0, None))(shifted, params)
        taus = params.rate_tau + jnp.array([1e-4, -1e-4])
        return grads, points, jax.vmap(ret_tau, in_axes=(None, 0))(actions, taus)

    shape = (env.n_steps, 1)
    actions = jax.random.uniform(jax.random.key(4), shape, minval=0.2, maxval=0.5)
    dirs = jax.random.normal(jax.random.key(5), (3, *shape))
    (g_actions, g_params), points, tau_points = grads_and_points(actions, dirs)
    assert np.abs(g_actions).max() > 0
    fd = (points[:3] - points[3:]) / (2 * eps)
    directional = jnp.einsum("kti,ti->k", dirs, g_actions)
    np.testing.assert_allclose(directional, fd, rtol=1e-4)
    fd_tau = (tau_points[0] - tau_points[1]) / 2e-4
    np.testing.assert_allclose(g_params.rate_tau, fd_tau, rtol=1e-4)


def test_jit_equals_eager():
    env = SpikeRate(ControlConfig(control_ms=0.1, episode_ms=0.2, dtype="float64"))
    params = env.default_params
    obs, state = env.reset(jax.random.key(0), params)
    args = (jax.random.key(1), state, jnp.array([0.3]), params)
    jitted = jax.jit(env.step_env)(*args)
    with jax.disable_jit():
        eager = env.step_env(*args)
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_vmap_over_params_and_keys(env):
    targets = jnp.array([0.0, 50.0, 100.0])
    batch = jax.vmap(lambda r: SpikeRateParams(target_rate=jnp.full(env.n_steps, r)))(
        targets
    )
    keys = jax.random.split(jax.random.key(7), 3)
    actions = jnp.full((env.n_steps, 1), 0.25)
    run = jax.jit(lambda k, p: rollout_actions(env, k, actions, p))
    batched = jax.vmap(run)(keys, batch)
    for i in range(3):
        one = run(keys[i], jax.tree.map(lambda x, i=i: x[i], batch))
        np.testing.assert_allclose(batched.rewards[i], one.rewards, rtol=1e-12)
        np.testing.assert_allclose(batched.obs[i], one.obs, rtol=1e-12)
    assert len(set(np.asarray(batched.obs[:, 0, 0]).round(6))) == 3  # keyed jitter
    assert len(set(np.asarray(batched.rewards.sum(1)).round(6))) == 3


_SCRIPT = """
import hashlib, jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
from neuroctl.envs import ControlConfig, SpikeRate, rollout
env = SpikeRate(ControlConfig(episode_ms=20.0, dtype="float64"))
policy = lambda obs, key: jax.random.uniform(key, (1,), minval=0.0, maxval=0.5)
traj = jax.jit(rollout, static_argnums=(0, 1))(env, policy, jax.random.key(42))
h = hashlib.sha256()
for leaf in jax.tree.leaves(traj):
    h.update(np.asarray(leaf).tobytes())
print(h.hexdigest())
"""


def test_seeded_rollouts_bit_identical_across_processes():
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    digests = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert len(digests[0]) == 64 and digests[0] == digests[1]
    assert hashlib.sha256(b"").hexdigest() not in digests


def test_auto_reset_step_restarts_the_episode():
    env = short_env(2.0)
    params = env.default_params
    _, state = env.reset(jax.random.key(0), params)
    step = jax.jit(env.step)
    _, state, _, done, _ = step(jax.random.key(1), state, jnp.array([0.1]), params)
    assert not bool(done)
    obs, state, _, done, info = step(jax.random.key(2), state, jnp.array([0.1]), params)
    assert bool(done) and int(state.t) == 0 and float(obs[3]) == 0.0
    np.testing.assert_allclose(info.t_ms, 2.0)  # info describes the finished step


# ------------------------------------------------------------------------ bad input


def test_wrong_action_shape_is_a_clear_trace_time_error(env, first):
    _, state = first
    with pytest.raises(
        ConfigError, match=r"action: got 'array of shape \(2,\)'.*\(1,\)"
    ):
        env.step_env(jax.random.key(0), state, jnp.zeros(2), env.default_params)
    with pytest.raises(ConfigError, match=r"shape \(\)"):
        jax.jit(env.step_env)(jax.random.key(0), state, 0.1, env.default_params)


@pytest.mark.parametrize(
    "action, applied, clipped, nan",
    [
        (5.0, 0.5, True, False),
        (-1.0, 0.0, True, False),
        (np.nan, 0.0, False, True),
        (0.3, 0.3, False, False),
    ],
)
def test_actions_are_clipped_and_nan_zeroed(
    env, step_env, first, action, applied, clipped, nan
):
    _, state = first
    obs, _, reward, _, info = step_env(
        jax.random.key(0), state, jnp.array([action]), env.default_params
    )
    assert bool(info.clipped) is clipped and bool(info.nan_action) is nan
    np.testing.assert_allclose(info.action, [applied])
    np.testing.assert_allclose(info.charge, applied * 1.0, atol=1e-15)  # [pC]
    assert np.all(np.isfinite(obs)) and np.isfinite(reward)


def test_divergence_ends_the_episode_with_finite_obs(env, first):
    obs0, state = first
    params = SpikeRateParams(target_rate=jnp.zeros(env.n_steps), i_max=1e9)  # [nA]
    obs, nxt, reward, done, info = jax.jit(env.step_env)(
        jax.random.key(0), state, jnp.array([1e9]), params
    )
    assert bool(info.diverged) and bool(done)
    assert np.all(np.isfinite(obs)) and np.isfinite(reward)
    np.testing.assert_array_equal(obs[:3], obs0[:3])  # last good state kept
    assert int(nxt.t) == 1 and reward <= -1000.0  # divergence penalty paid


def test_bad_params_name_the_field(env):
    with pytest.raises(ConfigError, match="i_max"):
        SpikeRateParams(target_rate=jnp.zeros(10), i_max=-1.0)
    with pytest.raises(ConfigError, match="rate_tau"):
        SpikeRateParams(target_rate=jnp.zeros(10), rate_tau=0.0)
    with pytest.raises(ConfigError, match="charge_cost"):
        SpikeRateParams(target_rate=jnp.zeros(10), charge_cost=float("nan"))
    with pytest.raises(ConfigError, match="target_rate"):
        SpikeRateParams(target_rate=jnp.array([-5.0]))
    with pytest.raises(ConfigError, match=r"params.target_rate.*\(10,\)"):
        env.reset(jax.random.key(0), SpikeRateParams(target_rate=jnp.zeros(7)))


def test_bad_config_and_names_are_clear_errors():
    with pytest.raises(ConfigError, match="control_ms"):
        ControlConfig(control_ms=0.03)
    with pytest.raises(ConfigError, match="episode_ms"):
        ControlConfig(episode_ms=-1.0)
    with pytest.raises(ConfigError, match="cell"):
        SpikeRate(cell="pyramidal")
    with pytest.raises(ConfigError, match="SpikeRate-v0"):
        make("NoSuchEnv-v0")
    with pytest.raises(ConfigError, match="unknown options"):
        make("SpikeRate-v0", episode_len=3)
