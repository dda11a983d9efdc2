"""`simulate_batch` (trials as the last axis of every per-node array) against
``jax.vmap`` of `simulate`, in float64: forward, gradient, per-trial initial
states, and its input errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroctl.biophysics as bp
from neuroctl.errors import ConfigError
from neuroctl.plants.evidence_net import build_network

DT = 0.025  # [ms]


def paper_net():
    """20 three-branch Hay cells (calcium on part of each cell) + 2 readouts."""
    return build_network(pairs=[(0, 1), (1, 2), (2, 0), (3, 20), (4, 21), (12, 3)])


def ball_and_stick():
    """A long cable: more tree groups than the fused axial path takes."""
    cell = bp.Cell(bp.Morphology.ball_and_stick())
    cell = cell.insert(bp.HH(), 0).insert(bp.Leak(g=0.1, e=-65.0), 1)
    syn = bp.Connection(bp.GradedSynapse(g=0.02, e_syn=0.0), bp.Site(0), bp.Site(1, 1))
    return bp.Network.build(
        [cell, cell],
        [syn],
        stimuli=[bp.Site(0)],
        recordings=[bp.Site(1), bp.Site(0, 1)],
    )


def currents(net, b, T, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(0.3 + 0.2 * rng.standard_normal((b, T, net.n_stimuli)))  # nA


def by_vmap(net, p, s, x, scheme="be"):
    return jax.vmap(lambda xi: bp.simulate(net, p, s, xi, DT, scheme=scheme))(x)


@pytest.mark.parametrize("scheme", ["be", "cn"])
@pytest.mark.parametrize("make", [paper_net, ball_and_stick])
def test_equals_vmap_of_simulate(make, scheme):
    net = make()
    p = net.default_params
    s = bp.init_state(net, p, -65.0, jnp.float64)
    x = currents(net, 3, 400)
    (fa, ra), (fb, rb) = (
        by_vmap(net, p, s, x, scheme),
        bp.simulate_batch(net, p, s, x, DT, scheme=scheme),
    )
    assert rb.shape == ra.shape == (3, 400, len(net.recording_nodes))
    assert float(jnp.ptp(ra)) > 20.0  # the trials spike: a real comparison [mV]
    np.testing.assert_allclose(rb, ra, rtol=0, atol=1e-9)
    for a, b in zip(jax.tree.leaves(fa), jax.tree.leaves(fb), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)


def test_gradient_equals_vmap_of_simulate():
    """W.r.t. the synaptic conductances [µS], checkpointed as in training."""
    net = paper_net()
    p0 = net.default_params
    s = bp.init_state(net, p0, -65.0, jnp.float64)
    x = currents(net, 2, 300, seed=1)

    def loss(g, run):
        p = net.with_param(p0, bp.GradedSynapse, "g", g)
        return run(p)[1][:, -100:, :2].mean()

    g0 = p0.synapses[0].g
    ga = jax.grad(loss)(g0, lambda p: by_vmap(net, p, s, x))
    gb = jax.grad(loss)(
        g0, lambda p: bp.simulate_batch(net, p, s, x, DT, checkpoint_lengths=(20, 15))
    )
    assert float(jnp.abs(ga).max()) > 0
    np.testing.assert_allclose(gb, ga, rtol=1e-9, atol=1e-12 * float(jnp.abs(ga).max()))


def test_one_initial_state_per_trial():
    net = ball_and_stick()
    p = net.default_params
    states = [bp.init_state(net, p, v0, jnp.float64) for v0 in (-70.0, -65.0, -60.0)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *states)
    x = currents(net, 3, 200, seed=2)
    ra = jax.vmap(lambda s, xi: bp.simulate(net, p, s, xi, DT)[1])(stacked, x)
    rb = bp.simulate_batch(net, p, stacked, x, DT)[1]
    np.testing.assert_allclose(rb, ra, rtol=0, atol=1e-9)
    assert float(jnp.abs(ra[0, 0] - ra[2, 0]).max()) > 5.0  # the starts differ [mV]


def test_bad_input_names_the_field():
    net = ball_and_stick()
    s = bp.init_state(net, net.default_params, -65.0, jnp.float64)
    with pytest.raises(ConfigError, match=r"stimuli.*\(B, T, 1\)"):
        bp.simulate_batch(net, net.default_params, s, jnp.zeros((10, 1)), DT)
    two = jax.tree.map(lambda a: jnp.stack([a, a]), s)
    with pytest.raises(ConfigError, match=r"state.v.*one per trial of the 3"):
        bp.simulate_batch(net, net.default_params, two, jnp.zeros((3, 10, 1)), DT)
    with pytest.raises(ConfigError, match="dt"):
        bp.simulate_batch(net, net.default_params, s, jnp.zeros((3, 10, 1)), -1.0)
