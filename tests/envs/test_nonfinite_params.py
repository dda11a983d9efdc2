"""Non-finite env params passed traced under jit flag the step, and nothing NaN
leaks into rewards, observations or info."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neuroctl.envs import make
from neuroctl.envs.params import get_param, override_params
from neuroctl.errors import ConfigError


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


# --- issue #17: params refused when set eagerly, flagged when traced; odd actions


@pytest.fixture(scope="module")
def spike_rate():
    """SpikeRate-v0 (composed), 3 ms, and a jitted reset + two steps."""
    env = make("SpikeRate-v0", episode_ms=3.0, dtype="float64")

    @jax.jit
    def episode(params):
        obs0, state = env.reset(jax.random.key(0), params)
        out = [(obs0, state)]
        for i in (1, 2):
            obs, state, reward, done, info = env.step_env(
                jax.random.key(i), state, jnp.array([0.2]), params
            )
            out.append((obs, state, reward, info))
        return out

    return env, episode


def _finite(*trees) -> bool:
    leaves = [np.asarray(x) for x in jax.tree.leaves(trees)]
    return all(np.all(np.isfinite(x)) for x in leaves if x.dtype.kind == "f")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("task.rate_tau", 0.0),
        ("task.rate_tau", 1e-300),
        ("task.rate_tau", -1e-300),
        ("rate_tau", float("nan")),  # an alias of task.rate_tau
        ("task.target_rate", float("nan")),
        ("task.target_rate", 1e300),
        ("task.target_rate", -1.0),
        ("target_rate", float("inf")),
        ("v_init_jitter", float("nan")),
        ("v_init_jitter", float("-inf")),
        ("v_init_jitter", 1e300),
        ("task.spike_slope", 1e-300),
        ("task.spike_threshold", 1e300),
        ("divergence_penalty", -1.0),
    ],
)
def test_bad_overrides_are_refused_naming_the_param(spike_rate, name, value):
    env, _ = spike_rate
    with pytest.raises(ConfigError) as err:
        override_params(env.default_params, {name: value}, env.param_aliases())
    msg = str(err.value)
    assert msg.startswith(f"env param {name!r}") and f" = {value!r}: " in msg
    assert "expected finite values" in msg
    assert "pass e.g." in msg  # the fix


def test_good_overrides_still_apply(spike_rate):
    env, episode = spike_rate
    params = override_params(
        env.default_params,
        {"task.rate_tau": 10.0, "target_rate": 80.0, "v_init_jitter": 0.0},
        env.param_aliases(),
    )
    assert float(get_param(params, "task.rate_tau")) == 10.0
    assert np.all(np.asarray(get_param(params, "task.target_rate")) == 80.0)
    out = episode(env.prepare_params(params))
    assert _finite(out) and not any(bool(info.diverged) for *_, info in out[1:])


def _traced(env, name: str, value: float):
    old = jnp.asarray(get_param(env.default_params, name))
    return eqx.tree_at(
        lambda p: get_param(p, name), env.default_params, jnp.full_like(old, value)
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("task.target_rate", float("nan")),
        ("task.target_rate", float("inf")),
        ("task.target_rate", float("-inf")),
        ("v_init_jitter", float("nan")),
        ("v_init_jitter", float("inf")),
        ("task.rate_tau", float("nan")),
    ],
)
def test_non_finite_traced_params_keep_reset_finite_and_flag_the_step(
    spike_rate, name, value
):
    """Under jit no check can run: reset stays finite, every step is flagged."""
    env, episode = spike_rate
    (obs0, state0), *steps = episode(_traced(env, name, value))
    assert _finite(obs0, state0.sim)
    for obs, state, reward, info in steps:
        assert bool(info.diverged)
        assert _finite(obs, state.sim, reward, info.charge, info.task)
        assert float(reward) <= -1000.0 + 1e-9  # the divergence penalty


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("task.rate_tau", 0.0),
        ("task.rate_tau", -1e-300),
        ("task.rate_tau", 1e-300),
        ("task.target_rate", 1e300),
        ("task.target_rate", -1e300),
    ],
)
def test_finite_absurd_traced_params_never_give_non_finite_outputs(
    spike_rate, name, value
):
    """A finite param whose reward or rate overflows flags the step instead."""
    env, episode = spike_rate
    (obs0, state0), *steps = episode(_traced(env, name, value))
    assert _finite(obs0, state0.sim)
    for obs, state, reward, info in steps:
        assert _finite(obs, state, reward, info.charge, info.task), info.diverged
    assert any(bool(info.diverged) for *_, info in steps)


@pytest.mark.parametrize(
    "action",
    [
        np.array([object()], dtype=object),
        np.array(["0.2"]),
        np.array([0.2 + 0j]),
        np.array([True]),
    ],
    ids=["object", "str", "complex", "bool"],
)
def test_actions_of_a_non_real_dtype_are_a_config_error(spike_rate, action):
    env, _ = spike_rate
    obs, state = env.reset(jax.random.key(0))
    with pytest.raises(
        ConfigError,
        match=rf"action: got 'array of dtype {action.dtype}'.*"
        r"real \(float or integer\) array of shape \(1,\); cast it",
    ):
        env.step_env(jax.random.key(1), state, action, env.default_params)
