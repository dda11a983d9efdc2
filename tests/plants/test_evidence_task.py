"""The evidence-integration task: trials, filter, currents, readout, bounds, loss."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from neuroctl.errors import ConfigError
from neuroctl.plants import evidence_task as et
from neuroctl.plants.evidence_net import build_network

CFG = et.TaskConfig()
SHORT = et.TaskConfig(trial_ms=20.0, response_window_ms=(15.0, 20.0))


def _batch(n: int, cfg=CFG, evidence=None, seed: int = 0) -> et.Trial:
    keys = jax.random.split(jax.random.key(seed), n)
    return jax.jit(jax.vmap(lambda k: et.sample_trial(k, cfg, evidence)))(keys)


@pytest.fixture(scope="module")
def batch() -> et.Trial:
    return _batch(512)


@pytest.fixture(scope="module")
def net():
    return build_network()


def test_config_derived_quantities():
    assert CFG.n_steps == 20_800
    assert CFG.window == slice(20_000, 20_800)
    assert CFG.sample_rate_hz == pytest.approx(40_000.0)
    assert SHORT.n_steps == 800 and SHORT.window == slice(600, 800)


def test_trials_deterministic_per_key_and_differ_across_keys(key):
    a, b = et.sample_trial(key, CFG), et.sample_trial(key, CFG)
    c = et.sample_trial(jax.random.key(1), CFG)
    assert a.stimulus.shape == (CFG.n_steps,)
    np.testing.assert_array_equal(a.stimulus, b.stimulus)
    assert a.label == b.label and a.mean == b.mean
    assert not np.allclose(a.stimulus, c.stimulus)


def test_labels_balanced_and_equal_sign_of_summed_stimulus(batch):
    frac = float(jnp.mean(batch.label))
    assert 0.4 < frac < 0.6
    np.testing.assert_array_equal(batch.label, jnp.sum(batch.stimulus, axis=1) > 0)
    means = np.abs(np.asarray(batch.mean))  # |μ| = 0.005 ± jitter 0.0002
    assert np.all(np.abs(means - CFG.evidence_mean) < 6 * CFG.mean_jitter_std)
    # with |μ| = 0.005 the summed evidence almost always has the sign of μ
    assert np.mean(np.asarray(batch.label) == (np.asarray(batch.mean) > 0)) > 0.99


def test_zero_evidence_gives_balanced_labels():
    trials = _batch(512, SHORT, evidence=0.0, seed=1)  # balance needs no long trial
    assert 0.4 < float(jnp.mean(trials.label)) < 0.6
    assert np.all(np.abs(np.asarray(trials.mean)) < 6 * CFG.mean_jitter_std)


def test_lowpass_matches_scipy_sosfilt(key):
    x = jax.random.normal(key, (CFG.n_steps,))
    expected = scipy.signal.sosfilt(et.filter_sos(CFG), np.asarray(x))
    np.testing.assert_allclose(et.lowpass(x, CFG), expected, atol=1e-10)


@pytest.mark.parametrize(
    "freq_hz, gain_lo, gain_hi",
    [
        (0.0, 0.999, 1.001),  # DC passes
        (20.0, 0.99, 1.01),  # well inside the pass band
        (80.0, 0.68, 0.73),  # −3 dB at the cutoff
        (1000.0, 0.0, 1e-6),  # order 6: |H| ≈ (80/1000)^6 ≈ 2.6e-7
    ],
)
def test_lowpass_gain_on_sinusoids(freq_hz, gain_lo, gain_hi):
    t = np.arange(CFG.n_steps) * CFG.dt * 1e-3  # [s]
    x = np.cos(2 * np.pi * freq_hz * t)
    y = np.asarray(et.lowpass(x, CFG))
    steady = slice(CFG.n_steps // 2, None)  # after the transient (≈ 30 ms)
    gain = np.sqrt(np.mean(y[steady] ** 2) / np.mean(x[steady] ** 2))
    assert gain_lo <= gain <= gain_hi


def test_stimulus_currents_shape_and_units(key):
    trial = et.sample_trial(key, SHORT)
    w = jnp.linspace(0.0, 1.0, 20)
    i = et.stimulus_currents(trial.stimulus, w, SHORT)
    assert i.shape == (SHORT.n_steps, 20)
    np.testing.assert_allclose(i[:, 0], 0.0)
    np.testing.assert_allclose(i[:, -1], SHORT.input_scale * trial.stimulus)  # [nA]
    doubled = dataclasses.replace(SHORT, input_scale=2 * SHORT.input_scale)
    np.testing.assert_allclose(et.stimulus_currents(trial.stimulus, w, doubled), 2 * i)


def test_bounded_params_stay_in_range(key):
    tp = et.TrainableParams(
        syn_logits=jnp.array([-1e4, -3.0, 0.0, 3.0, 1e4]),
        input_logits=jnp.array([-1e4, 0.0, 1e4]),
    )
    g, w = tp.to_physical(CFG)
    assert np.all((g >= 0) & (g <= CFG.g_max)) and np.all((w >= 0) & (w <= 1))
    np.testing.assert_allclose(g[np.array([0, 2, 4])], [0.0, CFG.g_max / 2, CFG.g_max])
    init = et.init_trainable(key, 110)
    g0, w0 = init.to_physical(CFG)
    assert g0.shape == (110,) and w0.shape == (20,)
    np.testing.assert_allclose(jnp.mean(g0), 0.1 * CFG.g_max, rtol=0.05)


def test_apply_to_params_replaces_conductances(net):
    p = net.default_params
    g = jnp.linspace(0.0, 0.01, p.synapses[0].g.shape[0])
    np.testing.assert_array_equal(et.apply_to_params(p, g).synapses[0].g, g)
    with pytest.raises(ConfigError, match="n_syn"):
        et.apply_to_params(p, g[:-1])


def test_readout_logits_use_window_and_readout_columns():
    rec = jnp.zeros((SHORT.n_steps, 22)).at[:, 2:].set(99.0)
    rec = rec.at[SHORT.window, 0].set(-50.0).at[SHORT.window, 1].set(-60.0)
    rec = rec.at[: SHORT.window.start, :2].set(1e3)  # outside the window: ignored
    logits = et.readout_logits(rec, SHORT)
    np.testing.assert_allclose(logits, [-50.0, -60.0])
    assert et.accuracy(logits, 0) == 1.0 and et.accuracy(logits, 1) == 0.0
    np.testing.assert_allclose(et.cross_entropy(logits, 0), np.log1p(np.exp(-10.0)))


def test_short_trial_loss_and_gradient_finite_nonzero(net, key):
    trial = et.sample_trial(key, SHORT)
    tp = et.init_trainable(
        jax.random.key(1), net.default_params.synapses[0].g.shape[0], dtype=jnp.float64
    )

    def loss(tp):
        return et.trial_loss(
            net, net.default_params, tp, trial, SHORT, checkpoint_lengths=(10, 10, 8)
        )

    (value, (logits, label)), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(
        tp
    )
    assert np.isfinite(value) and logits.shape == (2,) and label == trial.label
    for leaf in jax.tree.leaves(grads):
        assert np.all(np.isfinite(leaf)) and np.any(leaf != 0)
    assert np.any(grads.input_logits != 0)


def test_trial_loss_rejects_mismatched_trial(net, key):
    tp = et.init_trainable(key, net.default_params.synapses[0].g.shape[0])
    with pytest.raises(ConfigError, match="trial.stimulus"):
        et.trial_loss(net, net.default_params, tp, et.sample_trial(key, SHORT), CFG)


@pytest.mark.parametrize(
    "field, value",
    [
        ("dt", 0.0),
        ("dt", float("nan")),
        ("trial_ms", -1.0),
        ("trial_ms", 520.01),
        ("response_window_ms", (500.0, 530.0)),
        ("response_window_ms", (510.0, 500.0)),
        ("evidence_mean", -0.1),
        ("noise_std", float("inf")),
        ("mean_jitter_std", -1.0),
        ("filter_order", 0),
        ("filter_order", 2.5),
        ("filter_cutoff_hz", 30_000.0),
        ("input_scale", 0.0),
        ("g_max", -0.01),
        ("v_init", float("nan")),
    ],
)
def test_bad_config_raises_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"^{field}: got"):
        et.TaskConfig(**{field: value})


def test_jit_sample_does_not_recompile_and_vmaps_over_evidence():
    traces = []

    @jax.jit
    def f(k, e):
        traces.append(1)
        return et.sample_trial(k, SHORT, e)

    f(jax.random.key(0), 0.01)
    f(jax.random.key(1), 0.02)
    assert len(traces) == 1
    trials = jax.vmap(lambda e: et.sample_trial(jax.random.key(0), SHORT, e))(
        jnp.array([0.0, 0.01])
    )
    assert trials.stimulus.shape == (2, SHORT.n_steps)
