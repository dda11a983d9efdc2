"""`neuroctl ship` / `neuroctl evaluate` for `neuroctl train` runs: a sealed network
policy folder that rebuilds its env and policy from the spec alone."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_train_cli import TINY  # the smallest settings that train and report

from neuroctl.cli.train import ShipArgs, TrainArgs, evaluate, ship, train
from neuroctl.errors import ConfigError
from neuroctl.io.checkpoints import CheckpointError
from neuroctl.policies.base import merge
from neuroctl.train.policy_commands import EvaluateArgs
from neuroctl.train.runs import load_run
from neuroctl.train.shipping import load_network_policy


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(
        TrainArgs(env="SpikeRate-v0", env_option=("episode_ms=10.0",), out=out, **TINY)
    )
    return out


def test_a_shipped_run_rebuilds_the_same_policy_and_evaluates(run, tmp_path):
    folder = ship(ShipArgs(run=run, out=tmp_path / "policy"))
    shipped = load_network_policy(folder)
    _, env, env_params, parts, params = load_run(run)
    jax.tree.map(np.testing.assert_array_equal, shipped.params, params)
    obs = jnp.linspace(-1.0, 1.0, env.observation_space().shape[0])
    policy_a, policy_b = merge(shipped.parts, shipped.params), merge(parts, params)
    _, act_a = policy_a(policy_a.initial_carry(), obs)
    _, act_b = policy_b(policy_b.initial_carry(), obs)
    np.testing.assert_array_equal(act_a, act_b)
    card = json.loads((folder / "metrics.json").read_text())
    assert card["spec"]["env"] == "SpikeRate-v0" and "best_constant" in card
    report = evaluate(EvaluateArgs(policy=folder, trials=3, progress=False))
    from_run = evaluate(EvaluateArgs(policy=run, trials=3, progress=False))
    assert report["policy"]["return"] == pytest.approx(from_run["policy"]["return"])
    assert np.isfinite(report["best_constant"]["return"])
    gap = report["policy"]["return"] - report["best_constant"]["return"]
    assert report["difference"]["return"] == pytest.approx(gap, abs=1e-12)


def test_shipping_refuses_an_existing_folder_and_a_changed_spec(run, tmp_path):
    folder = ship(ShipArgs(run=run, out=tmp_path / "p"))
    with pytest.raises(ConfigError, match="--overwrite"):
        ship(ShipArgs(run=run, out=folder))
    ship(ShipArgs(run=run, out=folder, overwrite=True))
    spec = folder / "spec.toml"
    spec.write_text(spec.read_text().replace("episode_ms = 10.0", "episode_ms = 20.0"))
    with pytest.raises(CheckpointError, match="spec.toml"):
        load_network_policy(folder)
    with pytest.raises(ConfigError, match="metrics.json"):
        unfinished = tmp_path / "unfinished"
        unfinished.mkdir()
        (unfinished / "config.json").write_text((run / "config.json").read_text())
        ship(ShipArgs(run=unfinished, out=tmp_path / "q"))
