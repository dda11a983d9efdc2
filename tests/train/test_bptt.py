"""The one BPTT trainer: loss = −return (== the Gymnasium face), gradients, learning,
bit-identical resume, best-validated parameters."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils import seeding
from helpers import gymnasium_return

from neuroctl.envs import make
from neuroctl.envs.gym import key_from_np_random
from neuroctl.envs.rollout import episode_return
from neuroctl.policies.base import split
from neuroctl.policies.networks import build_policy
from neuroctl.train import bptt
from neuroctl.train import evaluate as ev
from neuroctl.train.runs import RunOptions, RunSpec, train_run

SHORT_TRIAL = {
    "plant": "untrained",
    "trial_ms": 20.0,
    "response_window_ms": (15.0, 20.0),
}
SHORT = {
    "SpikeRate-v0": {"episode_ms": 20.0},
    "SpikeRateBallStick-v0": {"episode_ms": 20.0},
    "EvidenceStim-v0": SHORT_TRIAL,
    "EvidenceStimElectrodes-v0": {**SHORT_TRIAL, "pulse_width_ms": 0.1},
}


def _policy(env, params, kind="mlp", seed=1):
    io = bptt.policy_io(env, params, 0.3)
    policy = build_policy(kind, io, seed=seed, hidden=8, dtype=env.config.jnp_dtype)
    parts, pol = split(policy)
    pol = jax.tree.map(
        lambda x: x + 0.3 * jnp.sin(jnp.arange(x.size)).reshape(x.shape), pol
    )
    return parts, pol  # perturbed, so actions vary with the observation


@pytest.mark.parametrize("name", sorted(SHORT))
def test_bptt_loss_equals_minus_the_gymnasium_return(name):
    env = make(name, dtype="float64", **SHORT[name])
    params = env.prepare_params(None)
    parts, pol = _policy(env, params)
    key = key_from_np_random(seeding.np_random(7)[0])
    traj = bptt.episode(env, params, parts, pol, key)
    loss = -episode_return(traj)
    total, t = gymnasium_return(env, params, traj.actions, seed=7)
    assert t == env.n_steps
    assert abs(float(loss) + total) <= 1e-10 * (1.0 + abs(total))
    assert np.ptp(np.asarray(traj.actions)) > 0  # closed loop: actions vary


def test_bptt_gradient_matches_finite_differences():
    env = make("SpikeRate-v0", dtype="float64", episode_ms=10.0)
    params = env.prepare_params(None)
    parts, pol = split(
        build_policy("constant", bptt.policy_io(env, params, 0.5), dtype=jnp.float64)
    )
    key = jax.random.key(3)

    def loss(z):
        return -episode_return(bptt.episode(env, params, parts, {"z": z}, key))

    z = pol["z"]
    grad = jax.grad(loss)(z)
    h = 1e-6
    fd = (loss(z + h) - loss(z - h)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
    assert abs(float(grad[0])) > 1e-6


def _spec(lr=0.02):
    return RunSpec(
        env="SpikeRate-v0",
        env_options={"episode_ms": 50.0},
        precision="float64",
        train=bptt.BPTTConfig(batch=4, lr=lr),
    )


def test_training_improves_the_held_out_return(tmp_path):
    spec = _spec()
    run = train_run(
        spec, RunOptions(tmp_path / "run", 40, progress=False, validate_every=5)
    )
    keys = ev.evaluation_keys(32)
    fresh = ev.summarise(ev.run_constant(run.env, run.env_params, [0.25], keys))
    trained = ev.summarise(
        ev.run_policy(run.env, run.env_params, run.parts, run.best_params, keys)
    )
    # measured: fresh (0.25 nA throughout) −3.37, trained −2.89 (iteration 30)
    assert trained["return"] > fresh["return"] + 0.2
    assert trained["charge"] < fresh["charge"]
    assert run.best_iteration > 0


def test_paired_difference_removes_what_the_episodes_share():
    """Trained − constant on the same episodes: the s.e.m. of the differences, not
    of either side (which carries each episode's own difficulty)."""
    from neuroctl.errors import ConfigError

    rng = np.random.default_rng(0)
    shared = rng.normal(0.0, 1.0, 50)  # what an episode does to both controllers
    a = {"return": shared + 0.1 + rng.normal(0.0, 0.01, 50)}
    b = {"return": shared + rng.normal(0.0, 0.01, 50)}
    d = ev.paired_difference(a, b)
    diff = a["return"] - b["return"]
    assert d["episodes"] == 50
    assert d["return"] == pytest.approx(diff.mean(), rel=1e-12)
    assert d["return_sem"] == pytest.approx(diff.std(ddof=1) / np.sqrt(50), rel=1e-12)
    assert d["return_sem"] < 0.05 * ev.summarise(a)["return_sem"]
    assert d["return"] > 3 * d["return_sem"]  # clear, though < either side's s.e.m.
    with pytest.raises(ConfigError, match="paired_difference: return"):
        ev.paired_difference(a, {"return": b["return"][:10]})


def _log(path):
    return [
        {k: v for k, v in json.loads(x).items() if k not in ("step_s", "wall_s")}
        for x in path.read_text().splitlines()
    ]


def test_resume_is_bit_identical(tmp_path):
    spec = _spec()
    opts = {"progress": False, "save_every": 2, "validate_every": 2}
    whole = train_run(spec, RunOptions(tmp_path / "a", 4, **opts))
    train_run(spec, RunOptions(tmp_path / "b", 2, **opts))
    resumed = train_run(spec, RunOptions(tmp_path / "b", 4, resume=True, **opts))
    for a, b in zip(
        jax.tree.leaves(whole.state), jax.tree.leaves(resumed.state), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert _log(tmp_path / "a" / "log.jsonl") == _log(tmp_path / "b" / "log.jsonl")
    assert (whole.best_iteration, whole.best_return) == (
        resumed.best_iteration,
        resumed.best_return,
    )


def test_a_config_change_on_resume_names_the_field(tmp_path):
    from neuroctl.errors import ConfigError

    train_run(_spec(), RunOptions(tmp_path, 1, progress=False))
    with pytest.raises(
        ConfigError, match=r"spec\.train\.lr: saved 0\.02, requested 0\.03"
    ):
        train_run(_spec(lr=0.03), RunOptions(tmp_path, 2, resume=True, progress=False))
    with pytest.raises(ConfigError, match="--resume"):
        train_run(_spec(), RunOptions(tmp_path, 2, progress=False))


@pytest.mark.parametrize(
    ("field", "value"),
    [("batch", 0), ("lr", float("nan")), ("seed", -1), ("truncation", 1.5)],
)
def test_bad_bptt_settings_name_the_field(field, value):
    from neuroctl.errors import ConfigError

    with pytest.raises(ConfigError, match=field):
        bptt.BPTTConfig(**{field: value})
