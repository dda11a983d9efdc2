"""Non-finite env params passed traced under jit flag the step, and nothing NaN
leaks into rewards, observations or info."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neuroctl.envs import make
from neuroctl.envs.params import get_param


@pytest.mark.parametrize(
    "field",
    ["task.target_rate", "actuator.high", "task.error_cost", "v_init_jitter"],
)
def test_nan_params_under_jit_are_flagged_and_kept_finite(field):
    env = make("SpikeRate-v0", episode_ms=3.0, dtype="float64")
    params = env.default_params
    bad = eqx.tree_at(
        lambda p: get_param(p, field),
        params,
        jnp.full_like(jnp.asarray(get_param(params, field), float), jnp.nan),
    )

    @jax.jit
    def one_step(p):
        obs, state = env.reset(jax.random.key(0), params)  # a clean start
        return env.step_env(jax.random.key(1), state, jnp.array([0.2]), p)

    obs, state, reward, done, info = one_step(bad)
    assert bool(info.diverged) and bool(done)
    leaves = [obs, reward, info.charge, info.current_power, *jax.tree.leaves(info.task)]
    assert all(np.all(np.isfinite(np.asarray(x))) for x in leaves)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state.sim))
    assert float(reward) <= -1000.0 + 1e-9  # the divergence penalty
    ok = one_step(params)
    assert not bool(ok[4].diverged) and np.isfinite(float(ok[2]))
