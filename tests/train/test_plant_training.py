"""Plant trainer: learning, bit-identical resume, deterministic evaluation, shipping.

Tiny configs (20-ms trials, 800 steps) keep this fast; float64 comes from conftest.
"""

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neuroctl.errors import ConfigError
from neuroctl.plants import evidence_task as et
from neuroctl.plants.evidence import ENVS_ROOT, spec_from_dict
from neuroctl.plants.evidence_net import EvidenceNetConfig
from neuroctl.train import plant as tr
from neuroctl.train.run import RunConfig, _network_and_step, restore_params, train_plant

TASK = et.TaskConfig(trial_ms=20.0, response_window_ms=(15.0, 20.0))
TRAIN = tr.TrainConfig(
    seed=1, batch=4, lr=0.1, checkpoint_lengths=(), precision="float64"
)
NET = EvidenceNetConfig()


@pytest.fixture(scope="module")
def step_fn():
    return _network_and_step(NET, TASK, TRAIN)[1]


def test_leaf_norm_power_matches_formula():
    g = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.0, 0.0])}
    opt = tr.scale_by_leaf_norm_power(0.8)
    out, _ = opt.update(g, opt.init(g))
    np.testing.assert_allclose(out["a"], g["a"] / 5.0**0.8, rtol=1e-12)
    assert np.all(np.isfinite(out["b"])) and np.all(out["b"] == 0)
    assert isinstance(opt, optax.GradientTransformation)


def test_training_lowers_loss_on_a_fixed_batch(step_fn):
    state = tr.init_state(TRAIN, 109, 20)
    key = jax.random.key(123)  # same trials every iteration
    losses = []
    for _ in range(6):
        state, m = step_fn(state, key)
        losses.append(float(m.loss))
    state, m = step_fn(state, key)  # loss after the last update
    assert float(m.loss) < 0.8 * losses[0], losses + [float(m.loss)]
    assert int(state.step) == 7


def test_resume_continues_bit_identically(tmp_path):
    full = train_plant(
        RunConfig(tmp_path / "a", 4, save_every=2, progress=False), TRAIN, TASK
    )
    train_plant(RunConfig(tmp_path / "b", 2, save_every=2, progress=False), TRAIN, TASK)
    with pytest.raises(ConfigError, match="pass --resume"):
        train_plant(RunConfig(tmp_path / "b", 4, progress=False), TRAIN, TASK)
    resumed = train_plant(
        RunConfig(tmp_path / "b", 4, save_every=2, resume=True, progress=False),
        TRAIN,
        TASK,
    )
    for x, y in zip(jax.tree.leaves(full), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(x, y)
    logs = [
        [json.loads(r) for r in (tmp_path / d / "log.jsonl").read_text().splitlines()]
        for d in "ab"
    ]
    assert [r["iteration"] for r in logs[1]] == [1, 2, 3, 4]
    for a, b in zip(*logs, strict=True):
        assert (a["loss"], a["accuracy"], a["grad_norm"]) == (
            b["loss"],
            b["accuracy"],
            b["grad_norm"],
        )


def test_resume_rejects_a_changed_config(tmp_path):
    train_plant(RunConfig(tmp_path, 1, progress=False), TRAIN, TASK)
    other = tr.TrainConfig(
        seed=2, batch=4, lr=0.1, checkpoint_lengths=(), precision="float64"
    )
    with pytest.raises(
        ConfigError, match=r"train\.seed: saved \d+, requested 2.*only train\.lr"
    ):
        train_plant(RunConfig(tmp_path, 2, resume=True, progress=False), other, TASK)


def test_freeze_load_and_evaluation_are_exact_and_deterministic(tmp_path):
    from neuroctl.plants import load
    from neuroctl.train.ship import evaluate_accuracy, freeze

    train_plant(RunConfig(tmp_path / "run", 1, progress=False), TRAIN, TASK)
    card = freeze(tmp_path / "run", tmp_path / "envs" / "tiny", trials=4, chunk=4)
    assert card["iterations"] == 1 and card["eval_seed"] == tr.EVAL_SEED
    plant = load("tiny", root=tmp_path / "envs")
    params, _ = restore_params(tmp_path / "run", TRAIN, 109, 20)
    g, w = params.to_physical(TASK)
    np.testing.assert_array_equal(plant.g, g)
    np.testing.assert_array_equal(plant.input_weights, w)
    assert plant.task == TASK
    a = evaluate_accuracy(plant, 4, chunk=4)
    assert a == evaluate_accuracy(plant, 4, chunk=4) == (card["correct"], 4)
    keys = tr.evaluation_keys(6)
    train_keys = jax.random.split(tr.step_key(TRAIN, 0), TRAIN.batch)
    raw = lambda ks: {tuple(np.asarray(jax.random.key_data(k)).ravel()) for k in ks}  # noqa: E731
    assert not raw(keys) & raw(train_keys)
    with pytest.raises(ConfigError, match="reserved for held-out"):
        tr.TrainConfig(seed=tr.EVAL_SEED)


def test_spec_rejects_unknown_keys_listing_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown keys \['bogus'\]; valid keys are"):
        spec_from_dict({"name": "x", "task": {"bogus": 1}})
    with pytest.raises(ConfigError, match="unknown top-level keys"):
        spec_from_dict({"name": "x", "extra": 1})


def test_wilson_interval_brackets_the_estimate():
    from neuroctl.train.evaluate import wilson_interval

    lo, hi = wilson_interval(990, 1000)
    assert lo < 0.99 < hi and hi - lo < 0.02


def test_percent_of_pairs_episodes_and_refuses_summaries():
    from neuroctl.train.evaluate import percent_of

    ref = {"beta_power": np.array([2.0, 4.0, 8.0])}
    got = {"beta_power": np.array([1.0, 1.0, 8.0])}  # 50 %, 25 %, 100 %
    mean, sem = percent_of(got, ref, "beta_power")
    assert mean == pytest.approx(175 / 3)
    assert sem == pytest.approx(np.std([50, 25, 100], ddof=1) / np.sqrt(3))
    with pytest.raises(ConfigError, match=r"percent_of: beta_power: got .shape \(\)."):
        percent_of({"beta_power": 1.0}, {"beta_power": 2.0}, "beta_power")


SHIPPED = ENVS_ROOT / "evidence_integration" / "spec.toml"


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped plant yet")
def test_shipped_plant_loads_and_performs():
    from neuroctl.plants import load
    from neuroctl.train.ship import evaluate_accuracy

    t0 = time.perf_counter()
    plant = load("evidence_integration")
    assert plant.g.shape == (109,) and plant.input_weights.shape == (20,)
    assert plant.g.dtype == jnp.float64
    correct, n = evaluate_accuracy(plant, 64, chunk=32)
    assert correct / n >= 0.97, (correct, n)
    print(f"shipped plant: {correct}/{n} in {time.perf_counter() - t0:.0f} s")


def test_plants_load_names_the_missing_plant(tmp_path: Path):
    from neuroctl.plants import load

    with pytest.raises(ConfigError, match="'nope': no folder .*shipped plants"):
        load("nope", root=tmp_path)
    with pytest.raises(
        ConfigError, match="'evidence_integraton'.*evidence_integration"
    ):
        load("evidence_integraton")


def test_provenance_names_the_commit_and_whether_the_tree_differs(
    tmp_path, monkeypatch
):
    import shutil
    import subprocess

    from neuroctl.train import ship

    got = ship.provenance()
    assert set(got) >= {"git_commit", "git_dirty", "date_utc", "hardware"}
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    monkeypatch.setattr(ship, "PACKAGE_DIR", tmp_path)  # as if installed there
    clean = ship.provenance()
    (tmp_path / "a.py").write_text("x = 2\n")
    dirty = ship.provenance()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "new.py").write_text("")  # untracked files do not count
    untracked = ship.provenance()
    assert len(clean["git_commit"]) == 40
    flags = (clean["git_dirty"], dirty["git_dirty"], untracked["git_dirty"])
    assert flags == (False, True, False)
    short = clean["git_commit"][:7]
    assert ship.code_version(clean) == short
    assert ship.code_version(dirty) == f"{short} + changes"
    monkeypatch.setattr(ship, "PACKAGE_DIR", tmp_path / "missing")
    outside = ship.provenance()
    assert outside["git_dirty"] is None  # no checkout: unknown
    assert ship.code_version(outside) == "?"
