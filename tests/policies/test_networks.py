"""The generic policies: actions inside the box, fresh actions, carries, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neuroctl.errors import ConfigError
from neuroctl.policies.base import merge, split
from neuroctl.policies.networks import POLICY_KINDS, PolicyIO, build_policy

IO = PolicyIO(
    obs_loc=(-65.0, 10.0, 0.5),
    obs_scale=(20.0, 5.0, 0.3),
    action_low=(-0.1, 0.0),
    action_high=(0.1, 2.0),
    n_steps=10,
)


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_fresh_policy_applies_the_initial_action(kind):
    policy = build_policy(kind, IO, init_fraction=0.25, dtype=jnp.float64)
    carry, action = policy(policy.initial_carry(), jnp.array([-60.0, 3.0, 0.1]))
    want = np.array([-0.05, 0.5])  # low + 0.25·(high − low)
    np.testing.assert_allclose(action, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_actions_stay_inside_the_box_for_any_observation_and_params(kind):
    policy = build_policy(kind, IO, seed=3, dtype=jnp.float64)
    parts, params = split(policy)
    wild = jax.tree.map(lambda x: x * 1e3 + 7.0, params)  # far from the fresh values
    policy = merge(parts, wild)
    carry = policy.initial_carry()
    for obs in ([1e6, -1e6, 3.0], [0.0, 0.0, 0.0], [-65.0, 10.0, 0.5]):
        carry, a = policy(carry, jnp.asarray(obs))
        assert np.all(np.asarray(a) >= [-0.1, 0.0]) and np.all(
            np.asarray(a) <= [0.1, 2]
        )
        assert a.shape == (2,)


def test_open_loop_steps_through_its_bins_and_reads_no_observation():
    policy = build_policy("open_loop", IO, n_bins=5, dtype=jnp.float64)
    parts, params = split(policy)
    profile = params["profile"]
    params = {"profile": profile + jnp.arange(5.0)[:, None]}  # a different z per bin
    policy = merge(parts, params)
    carry, seen = policy.initial_carry(), []
    for t in range(10):
        carry, a = policy(carry, jnp.full(3, float(t)))  # obs varies, ignored
        seen.append(np.asarray(a))
        assert int(carry) == t + 1
    seen = np.array(seen)
    np.testing.assert_array_equal(seen[0::2], seen[1::2])  # 2 steps per bin
    assert len(np.unique(seen[:, 1])) == 5


def test_gru_carries_memory():
    policy = build_policy("gru", IO, hidden=8, dtype=jnp.float64)
    c0 = policy.initial_carry()
    assert c0.shape == (8,)
    c1, _ = policy(c0, jnp.array([-40.0, 20.0, 0.2]))
    assert not np.allclose(c1, c0)


def test_a_wrong_observation_is_a_clear_error():
    policy = build_policy("mlp", IO)
    with pytest.raises(ConfigError, match=r"obs: .*shape \(3,\)"):
        policy(policy.initial_carry(), jnp.zeros(5))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": 0}, "hidden"),
        ({"n_bins": 0}, "n_bins"),
        ({"init_fraction": 1.0}, "init_fraction"),
        ({"init_fraction": float("nan")}, "init_fraction"),
    ],
)
def test_bad_policy_arguments_name_the_field(kwargs, match):
    kind = "open_loop" if "n_bins" in kwargs else "mlp"
    with pytest.raises(ConfigError, match=match):
        build_policy(kind, IO, **kwargs)


def test_unbounded_actions_and_unknown_kinds_are_refused():
    io = PolicyIO((0.0,), (1.0,), (-np.inf,), (1.0,), 5)
    with pytest.raises(ConfigError, match="action bounds"):
        build_policy("constant", io)
    with pytest.raises(ConfigError, match="policy"):
        build_policy("transformer", IO)
