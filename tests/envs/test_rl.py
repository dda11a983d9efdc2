"""RL libraries on `SpikeRate`: SB3 PPO (via `SB3VecEnv`) and rejax PPO (via
`GymnaxAdapter`) each improve the return of their untrained policy.

Needs the ``rl`` extra (``pip install -e ".[rl]"``); skipped cleanly without it. The
task: 50-ms episodes, target 0 Hz, then 60 Hz, then 90 Hz; an untrained policy
injects (almost) nothing and pays the full rate error (return ≈ −22 with zero
current), a trained one fires at about the target rate (≈ −2.5 to −3).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neuroctl.envs import GymnaxAdapter, episode_return, make, rollout

EPISODE_MS = 50.0  # [ms]: 50 control steps


def sb3_mean_return(model, venv, n_steps: int, seed: int) -> float:
    """Mean undiscounted return of one deterministic episode per env (fixed seed)."""
    venv.training = False  # freeze the observation normaliser
    venv.seed(seed)
    obs, total = venv.reset(), np.zeros(venv.num_envs)
    for _ in range(n_steps):
        action, _ = model.predict(obs, deterministic=True)
        obs, _, _, _ = venv.step(action)
        total += venv.get_original_reward()
    venv.training = True
    return float(total.mean())


def test_sb3_vec_env_api():
    pytest.importorskip("stable_baselines3")
    from neuroctl.envs import SB3VecEnv

    venv = SB3VecEnv(make("SpikeRate-v0", episode_ms=2.0), num_envs=3)
    venv.seed(4)
    obs = venv.reset()
    assert obs.shape == (3, 4) and venv.action_space.shape == (1,)
    venv.seed(4)
    np.testing.assert_array_equal(venv.reset(), obs)  # seeded
    obs, rewards, dones, infos = venv.step(np.full((3, 1), 0.4, np.float32))
    assert not dones.any() and len(infos) == 3 and rewards.shape == (3,)
    np.testing.assert_allclose(infos[0]["charge"], 0.2, rtol=1e-6)  # 0.4 → 0.2 nA
    obs, rewards, dones, infos = venv.step(np.full((3, 1), 0.4, np.float32))
    assert dones.all() and np.all(obs[:, 3] == 0.0)  # reset at once
    assert infos[2]["terminal_observation"][3] == 1.0
    assert infos[2]["TimeLimit.truncated"] is False
    assert venv.get_attr("render_mode") == [None] * 3


def test_sb3_ppo_improves_spike_rate():
    pytest.importorskip("stable_baselines3")
    torch = pytest.importorskip("torch")
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import VecNormalize

    from neuroctl.envs import SB3VecEnv

    torch.set_num_threads(1)
    env = make("SpikeRate-v0", episode_ms=EPISODE_MS)
    venv = VecNormalize(SB3VecEnv(env, num_envs=8), norm_obs=True, norm_reward=False)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=64,
        batch_size=128,
        n_epochs=5,
        learning_rate=1e-3,
        policy_kwargs=dict(net_arch=[32, 32]),
        seed=0,
        device="cpu",
    )
    # SB3's default logger makes an empty $TMPDIR/SB3-<date> folder on every learn()
    model.set_logger(Logger(folder=None, output_formats=[]))
    before = sb3_mean_return(model, venv, env.n_steps, seed=100)
    model.learn(8192)
    after = sb3_mean_return(model, venv, env.n_steps, seed=100)
    assert after > before + 5.0 and after > -5.0, (before, after)


def test_rejax_ppo_improves_spike_rate():
    rejax = pytest.importorskip("rejax")
    # rejax keeps float32 running statistics and broadcasts actions against bounds
    with jax.enable_x64(False), jax.numpy_rank_promotion("allow"):
        env = make("SpikeRate-v0", episode_ms=EPISODE_MS)
        algo = rejax.PPO.create(
            env=GymnaxAdapter(env),
            total_timesteps=16384,
            eval_freq=16384,
            skip_initial_evaluation=True,
            num_envs=16,
            num_steps=64,
            num_epochs=5,
            num_minibatches=8,
            learning_rate=1e-3,
            normalize_observations=True,
            agent_kwargs=dict(hidden_layer_sizes=(32, 32)),
        )
        algo = algo.replace(eval_callback=lambda algo, ts, key: jnp.zeros(()))

        def mean_return(ts, key):  # deterministic policy (the Gaussian's mean)
            space = env.action_space()

            def policy(obs, _):
                obs = algo.normalize_obs(ts.obs_rms_state, obs)
                dist = algo.actor.apply(
                    ts.actor_ts.params, obs[None], method="_action_dist"
                )
                return jnp.clip(dist.mean()[0], space.low, space.high)

            keys = jax.random.split(key, 32)  # 32 episodes (initial-voltage jitter)
            returns = jax.vmap(lambda k: episode_return(rollout(env, policy, k)))
            return jnp.mean(returns(keys))

        evaluate = jax.jit(mean_return)
        before = float(evaluate(algo.init_state(jax.random.key(0)), jax.random.key(1)))
        ts, _ = jax.jit(algo.train)(jax.random.key(0))
        after = float(evaluate(ts, jax.random.key(1)))
    assert after > before + 1.0 and after > -4.0, (before, after)


def test_ci_installs_the_rl_extra():
    """In CI (``CI=1``, set by .ci/run) the RL tests must run, not skip."""
    import importlib.util
    import os

    if not os.environ.get("CI"):
        pytest.skip("outside CI the rl extra is optional")
    missing = [
        m
        for m in ("stable_baselines3", "torch", "rejax")
        if not importlib.util.find_spec(m)
    ]
    assert not missing, f"CI must install the rl extra; missing {missing}"
