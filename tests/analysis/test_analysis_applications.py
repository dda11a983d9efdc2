"""Applications of the analysis tools to the evidence plant (short horizons, float64).

The functions behind scripts/analysis_applications.py: open- and closed-loop
exponents, decision sensitivities to injected currents and to conductances.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neuroctl import biophysics as bp
from neuroctl.analysis import evidence as ev
from neuroctl.envs.evidence_stim import untrained_plant
from neuroctl.errors import ConfigError
from neuroctl.plants import evidence_task as et
from neuroctl.plants.evidence import EvidencePlant
from neuroctl.plants.evidence_net import SOMA, EvidenceNetConfig

# 12 ms trials: 480 steps, 12 control periods of 1 ms, 6 bins of 2 ms (80 steps)
TASK = et.TaskConfig(trial_ms=12.0, response_window_ms=(8.0, 12.0))
BIN = 80  # [steps] = 2 ms


@pytest.fixture(scope="module")
def plant():
    """Untrained, with unequal conductances so that the two readouts differ."""
    base = untrained_plant(TASK)
    u = jax.random.uniform(jax.random.key(0), base.g.shape, base.g.dtype)
    g = base.g * (0.5 + u)  # [µS]
    return EvidencePlant(
        base.network,
        et.apply_to_params(base.params, g),
        g,
        base.input_weights,
        base.task,
        "test",
    )


@pytest.fixture(scope="module")
def trial(plant):
    t = plant.sample_trial(jax.random.key(3))
    return et.Trial(t.stimulus * 20.0, t.label, t.mean)  # ≈ 25 pA: spikes


def test_closed_loop_with_unit_gain_is_the_open_loop_plant(plant, trial):
    """g = 1 in closed loop is the plant driven by the stimulus: same exponent."""
    key = jax.random.key(1)
    open_loop = ev.plant_exponent(
        plant, key, trial.stimulus, renorm_every=40, n_transient=80, v_jitter=1.0
    )
    closed = ev.closed_loop_exponent(
        plant,
        ev.constant_gain(1.0),
        trial.stimulus,
        key,
        control_ms=1.0,
        transient_ms=2.0,
        v_jitter=1.0,
    )
    assert np.isfinite(open_loop) and open_loop.shape == ()
    np.testing.assert_allclose(closed, open_loop, rtol=1e-9)


@pytest.mark.slow
def test_closed_loop_rollout_with_unit_gain_is_the_plant(plant, trial):
    rollout = ev.closed_loop_trial(plant, ev.constant_gain(1.0), trial.stimulus)
    np.testing.assert_allclose(rollout.logits, plant.logits(trial.stimulus), rtol=1e-12)
    assert np.all(rollout.gains == 1.0) and rollout.current_power > 0


@pytest.mark.slow
def test_feedback_policy_gives_finite_exponent_and_varying_gain(plant, trial):
    gate = ev.confidence_gate(scale_mv=0.5)
    lam = ev.closed_loop_exponent(
        plant, gate, trial.stimulus, jax.random.key(1), transient_ms=2.0
    )
    assert lam.shape == () and np.isfinite(lam)
    out = ev.closed_loop_trial(plant, gate, trial.stimulus)
    assert out.gains.shape == (12,) and out.logits.shape == (2,)
    assert np.all((out.gains >= 0) & (out.gains <= 2.0))
    assert np.ptp(np.asarray(out.gains)) > 1e-3  # the gain follows the readouts


@pytest.mark.slow
def test_no_input_exponent_is_finite(plant):
    lam = ev.plant_exponent(
        plant, jax.random.key(0), None, n_steps=200, renorm_every=10, n_transient=40
    )
    assert lam.shape == () and np.isfinite(lam)


def test_decision_gradients_match_finite_differences(plant, trial):
    grads = ev.decision_gradients(plant, trial, bin_steps=BIN)
    n_syn = plant.g.shape[0]
    assert grads.wrt_current.shape == (6, 20)
    assert grads.wrt_conductance.shape == grads.ce_wrt_conductance.shape == (n_syn,)
    assert np.all(np.isfinite(grads.wrt_current))
    # one bin (the most sensitive cell in bin 2), central differences [mV/nA]
    fn = ev.decision_function(plant, trial.stimulus, BIN)
    cell = int(np.argmax(np.abs(grads.wrt_current[2])))
    h = 1e-5  # [nA]
    du = jnp.zeros((6, 20)).at[2, cell].set(h)
    fd = (fn(plant.g, du) - fn(plant.g, -du)) / (2 * h)
    assert abs(grads.wrt_current[2, cell]) > 1e-3
    np.testing.assert_allclose(grads.wrt_current[2, cell], fd, rtol=1e-5)


@pytest.mark.slow
def test_cross_entropy_gradient_is_the_direct_one(plant, trial):
    """CE = softplus((1 - 2y) d): its gradient from ∇d equals jax.grad [nats/µS]."""
    grads = ev.decision_gradients(plant, trial, bin_steps=BIN)
    ce = jax.grad(_cross_entropy)(plant.g, plant, trial)
    np.testing.assert_allclose(grads.ce_wrt_conductance, ce, rtol=1e-8, atol=1e-12)


def _cross_entropy(g, plant, trial):
    fn = ev.decision_function(plant, trial.stimulus, BIN)
    d = fn(g, jnp.zeros((6, 20)))
    return et.cross_entropy(jnp.stack([0.0 * d, d]), trial.label)


def test_synapse_labels_follow_the_network(plant):
    labels = ev.synapse_labels(EvidenceNetConfig())
    net = plant.network
    assert len(labels) == plant.g.shape[0] == 109
    assert sum(s.kind == "recurrent" for s in labels) == 69
    pre, post = net.synapse_pre[0], net.synapse_post[0]
    for k, s in enumerate(labels):
        assert pre[k] == net.node_of[bp.Site(s.pre, SOMA)]
        site = bp.Site(s.post) if s.kind == "readout" else bp.Site(s.post, 0)
        assert post[k] == net.node_of[site]
        assert s.sign == ("I" if s.pre < 10 else "E")


def test_bad_bins_and_control_period(plant, trial):
    with pytest.raises(ConfigError, match="bin_steps.*dividing"):
        ev.decision_function(plant, trial.stimulus, 7)
    with pytest.raises(ConfigError, match="control_ms.*multiple of dt"):
        ev.closed_loop_trial(plant, ev.constant_gain(), trial.stimulus, control_ms=0.03)
    with pytest.raises(ConfigError, match="stimulus.*multiple"):
        ev.closed_loop_trial(
            plant, ev.constant_gain(), trial.stimulus[:-1], control_ms=1.0
        )
