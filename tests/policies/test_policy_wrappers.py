"""Policy wrappers compose around any policy and read observation fields by name."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from neuroctl.envs.registry import make
from neuroctl.errors import ConfigError
from neuroctl.policies import (
    MLP,
    CurrentShaping,
    CurrentTracking,
    EvidenceSwitch,
    OpenLoop,
    ReadoutFeedback,
)
from neuroctl.policies.base import split
from neuroctl.train import bptt
from neuroctl.train import evaluate as ev

SHORT = dict(plant="untrained", trial_ms=20.0, response_window_ms=(15.0, 20.0))


@pytest.fixture(scope="module")
def env_io():
    env = make(
        "EvidenceStim-v0",
        dtype="float64",
        observe_evidence=True,
        observe_stimulus=True,
        **SHORT,
    )
    params = env.prepare_params(None)
    return env, params, bptt.policy_io(env, params, 0.25)


def test_the_env_names_its_fields_in_the_policy_io(env_io):
    env, _, io = env_io
    assert io.obs_fields == tuple(name for name, _ in env.observation_fields())
    assert {"v_readout0", "v_readout1", "t/T", "mean_stimulus", "stimulus"} <= set(
        io.obs_fields
    )


def test_each_wrapper_acts_on_the_field_it_names(env_io):
    """The switch and the shaping read their fields wherever they sit in the
    observation (here: the env's own order, not the shipped policies')."""
    _, _, io = env_io
    mean, sample = io.field("mean_stimulus", "test"), io.field("stimulus", "test")
    base = OpenLoop(io, n_bins=2, init_fraction=0.25, dtype=jnp.float64)
    obs = jnp.zeros(len(io.obs_fields))
    switch = EvidenceSwitch(io, base)
    a0 = base(base.initial_carry(), obs)[1]
    assert float(switch(0, obs.at[mean].set(-1e-3))[1][0]) == pytest.approx(
        float(a0[0])
    )
    assert float(switch(0, obs.at[mean].set(1e-3))[1][0]) == io.action_low[0]
    shaped = CurrentShaping(io, base)  # request a0 at a half-strength sample: 2·a0
    half = obs.at[sample].set(-0.0025)
    np.testing.assert_allclose(shaped(0, half)[1], np.minimum(2 * a0, io.action_high))
    assert float(shaped(0, obs.at[sample].set(0.001))[1][0]) == io.action_low[0]


def test_a_composed_policy_trains_with_the_generic_trainer(env_io):
    """EvidenceSwitch(CurrentShaping(ReadoutFeedback(MLP))): the feedback and the
    network both get gradients, and the policy runs through `run_policy`."""
    env, params, io = env_io
    inner = MLP(io, hidden=4, init_fraction=0.25, rngs=nnx.Rngs(0))
    policy = EvidenceSwitch(
        io, CurrentShaping(io, ReadoutFeedback(io, inner, n_ref=4, onset=0.5))
    )
    parts, p = split(policy)
    keys = ev.evaluation_keys(3)
    stats = ev.run_policy(env, params, parts, p, keys)
    assert np.all(np.isfinite(stats["return"]))
    cfg = bptt.BPTTConfig(batch=2, lr=0.01)
    step, state = bptt.make_train_step(env, params, parts, cfg), bptt.init_state(p, cfg)
    state, metrics = step(state)
    assert np.isfinite(float(metrics.grad_norm)) and float(metrics.grad_norm) > 0
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.params, p)
    assert moved["inner"]["inner"]["inner"]["out"]["bias"]  # the network trained


def test_tracking_keeps_books_in_its_own_carry(env_io):
    _, _, io = env_io
    base = OpenLoop(io, n_bins=2, init_fraction=0.25, dtype=jnp.float64)
    policy = CurrentTracking(io, base, dtype=jnp.float64)
    counter, books = policy.initial_carry()
    assert counter.dtype == jnp.int32 and books.shape == (3,)


def test_a_missing_field_or_a_wide_action_is_a_clear_error(env_io):
    _, _, io = env_io
    import dataclasses

    narrow = dataclasses.replace(
        io, obs_fields=tuple(f for f in io.obs_fields if f != "stimulus")
    )
    with pytest.raises(ConfigError, match="CurrentShaping.*'stimulus'"):
        CurrentShaping(narrow, OpenLoop(io))
    wide = dataclasses.replace(io, action_low=(0.0, 0.0), action_high=(1.0, 1.0))
    with pytest.raises(ConfigError, match="CurrentShaping: action"):
        CurrentShaping(wide, OpenLoop(wide))
    for policy in (EvidenceSwitch(io, OpenLoop(io)), CurrentShaping(io, OpenLoop(io))):
        with pytest.raises(ConfigError, match="obs"):  # JAX would clamp the index
            policy(policy.initial_carry(), jnp.zeros(2))
