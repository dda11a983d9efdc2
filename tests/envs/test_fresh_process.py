"""Every registered env makes, resets and steps in a fresh process with JAX's defaults
(x64 off: the float64 evidence plant loads as float32)."""

import subprocess
import sys

CODE = """
import gymnasium, jax, numpy as np, neuroctl
from neuroctl.envs import names
assert not jax.config.jax_enable_x64
for name in names():
    env = gymnasium.make(f"neuroctl/{name}")
    obs, _ = env.reset(seed=0)
    obs, r, term, trunc, info = env.step(env.action_space.sample())
    assert np.all(np.isfinite(obs)) and np.isfinite(r), name
    print(name, obs.dtype, env.unwrapped.env.config.dtype)
"""


def test_every_env_makes_with_jax_defaults():
    res = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    from neuroctl.envs import names

    assert len(lines) == len(names()) >= 5, lines
    assert all(line.endswith("float32 float32") for line in lines), lines


def test_stepping_after_termination_needs_a_reset():
    import gymnasium
    import numpy as np
    import pytest

    from neuroctl.envs import GymEnv, make

    gym = GymEnv(make("SpikeRate-v0", episode_ms=2.0))
    gym.reset(seed=0)
    terminated = False
    while not terminated:
        _, _, terminated, _, _ = gym.step(np.zeros(1))
    with pytest.raises(gymnasium.error.ResetNeeded, match="terminated"):
        gym.step(np.zeros(1))
    gym.reset(seed=1)
    gym.step(np.zeros(1))  # a fresh episode steps again
