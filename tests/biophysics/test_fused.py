"""The fused multi-step kernel (Pallas): same maths as `simulate`, its VJP, Triton.

On CPU the kernel runs in Pallas' interpret mode; that it lowers to Triton is
checked by exporting it for CUDA, which needs no GPU. Float64 throughout the
comparisons, so differences are rounding only.
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import DT
from jax.test_util import check_grads

import neuroctl.biophysics as bp
from neuroctl.biophysics.fused import TRITON_CALL, lower_for_cuda, simulate_fused
from neuroctl.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks import hh_nets  # noqa: E402

jax.config.update("jax_enable_x64", True)


def _batch(net, params, b: int, t: int, dtype=jnp.float64, seed: int = 0):
    state = bp.init_state(net, params, -65.0, dtype)
    state = jax.tree.map(lambda x: jnp.broadcast_to(x, (b, *x.shape)), state)
    rng = np.random.default_rng(seed)  # [nA]: spikes in most cells
    stim = jnp.asarray(rng.normal(0.05, 0.05, (b, t, net.n_stimuli)), dtype)
    return state, stim


def _reference(net, params, state, stim, scheme="be"):
    return jax.jit(
        jax.vmap(lambda s, u: bp.simulate(net, params, s, u, DT, scheme=scheme))
    )(state, stim)


@pytest.mark.parametrize("scheme,block", [("be", 1), ("cn", 1), ("be", 4)])
def test_fused_kernel_equals_simulate_on_a_spiking_network(scheme, block):
    net = hh_nets.ours(4)  # 4 three-branch HH cells, 20 graded synapses
    params = net.default_params
    state, stim = _batch(net, params, 3, 200)  # 3 trials; blocks of 4: one padded
    final, rec = jax.jit(
        lambda p, s, u: simulate_fused(
            net, p, s, u, DT, scheme, block=block, segment=50, interpret=True
        )
    )(params, state, stim)
    ref_final, ref_rec = _reference(net, params, state, stim, scheme)
    assert rec.shape == ref_rec.shape == (3, 200, net.n_recordings)
    assert float(ref_rec.max()) > 20.0  # [mV]: the cells spike
    np.testing.assert_allclose(rec, ref_rec, rtol=0, atol=1e-9)  # [mV]
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(ref_final), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def _loss_fns(net, segment, **kwargs):
    w = jnp.linspace(0.5, 1.5, net.n_recordings)[None, None]  # a non-uniform readout

    def loss(final, rec):  # every part of the final state and the recordings
        return (rec * w).mean() + final.v.mean() + final.gates.mean() + final.cai.mean()

    def fused(p, s, u):
        return loss(
            *simulate_fused(net, p, s, u, DT, segment=segment, interpret=True, **kwargs)
        )

    scheme = kwargs.get("scheme", "be")

    def xla(p, s, u):
        return loss(
            *jax.vmap(lambda s1, u1: bp.simulate(net, p, s1, u1, DT, scheme))(s, u)
        )

    return fused, xla


def _assert_same_gradients(net, params, state, stim, segment, **kwargs):
    fused, xla = _loss_fns(net, segment, **kwargs)
    g_fused = jax.jit(jax.grad(fused, argnums=(0, 1, 2)))(params, state, stim)
    g_xla = jax.jit(jax.grad(xla, argnums=(0, 1, 2)))(params, state, stim)
    paths = jax.tree_util.tree_flatten_with_path(g_xla)[0]
    for (path, b), a in zip(paths, jax.tree.leaves(g_fused), strict=True):
        scale = float(jnp.abs(b).max())
        np.testing.assert_allclose(
            a, b, rtol=0, atol=1e-9 * max(scale, 1e-12), err_msg=str(path)
        )
    assert float(jnp.abs(g_fused[2]).max()) > 0  # the stimulus gradient is not zero
    return g_fused


@pytest.mark.parametrize(
    "backward,block,scheme,segment",
    [
        ("fused", 1, "be", 40),
        ("xla", 1, "be", 40),
        ("fused", 4, "be", 40),
        ("fused", 1, "cn", 40),
        ("fused", 1, "be", 1),  # every state stored: the kernel has no replay loop
    ],
)
def test_fused_vjp_equals_the_solver_gradient(backward, block, scheme, segment):
    """Both reverse modes: the backward kernel (trials per program or on lanes,
    3 trials: one padded lane; both schemes) and `simulate`'s VJP per segment."""
    net = hh_nets.ours(3)
    params = net.default_params
    state, stim = _batch(net, params, 3, 120)
    _assert_same_gradients(
        net, params, state, stim, segment, backward=backward, block=block, scheme=scheme
    )


def test_fused_gradient_matches_finite_differences():
    net = hh_nets.ours(2)
    state, stim = _batch(net, net.default_params, 1, 80)
    fused, _ = _loss_fns(net, segment=20)
    field = "gkbar"

    def f(x):  # one HH density [mS/cm²] on every compartment
        return fused(net.with_param(net.default_params, bp.HH, field, x), state, stim)

    check_grads(f, (36.0,), order=1, modes=["rev"], atol=1e-6, rtol=1e-5)


@pytest.mark.slow
def test_the_backward_kernel_equals_the_solver_gradient_on_the_paper_network():
    """Hay's channels and calcium: the cotangents of cai and of the constant eca
    rows (channels that read them) come out of the backward kernel too."""
    from neuroctl.plants import load

    plant = load("evidence_integration")
    net = plant.network
    params = net.cast_params(plant.params, jnp.float64)
    state, stim = _batch(net, params, 2, 60, seed=1)
    g = _assert_same_gradients(net, params, state, 2.0 * stim, 20)
    assert float(jnp.abs(g[1].cai).max()) > 0  # [1/mM]


@pytest.mark.slow
def test_fused_kernel_equals_simulate_on_the_paper_network():
    from neuroctl.plants import load

    plant = load("evidence_integration")  # 82 nodes, Hay channels, calcium
    net, params = plant.network, plant.params
    assert net.calcium_block  # calcium dynamics are inside the kernel too
    state, stim = _batch(net, params, 2, 200, seed=1)
    stim = stim * 2.0  # [nA]
    final, rec = jax.jit(
        lambda p, s, u: simulate_fused(net, p, s, u, DT, interpret=True)
    )(params, state, stim)
    ref_final, ref_rec = _reference(
        net, net.cast_params(params, jnp.float64), state, stim
    )
    assert float(ref_rec.max()) > 0.0  # [mV]: spikes
    np.testing.assert_allclose(rec, ref_rec, rtol=0, atol=1e-9)
    np.testing.assert_allclose(final.cai, ref_final.cai, rtol=1e-10, atol=0)


def test_fused_kernel_lowers_to_one_triton_kernel_for_cuda():
    net = hh_nets.ours(4)
    state, stim = _batch(net, net.default_params, 64, 100, jnp.float32)

    def run(p, s, u):
        return simulate_fused(net, p, s, u, DT, segment=25, block=32)

    fwd = lower_for_cuda(run, net.default_params, state, stim)
    assert fwd.count(TRITON_CALL) == 1 and "grid_x = 2" in fwd  # 64 trials on lanes
    for backward, kernels in (("fused", 2), ("xla", 1)):  # xla: the backward is XLA's

        def loss(p, s, u, backward=backward):
            return simulate_fused(
                net, p, s, u, DT, segment=25, block=32, backward=backward
            )[1].mean()

        grad = lower_for_cuda(jax.grad(loss), net.default_params, state, stim)
        assert grad.count(TRITON_CALL) == kernels, backward


def test_the_paper_network_lowers_to_triton():
    """Hay's channels (pow, cosh, expm1) and calcium dynamics lower too, and so
    does their VJP: one forward and one backward kernel for a gradient."""
    from neuroctl.plants.evidence_net import build_network

    net = build_network()
    state, stim = _batch(net, net.default_params, 32, 40, jnp.float32)
    text = lower_for_cuda(
        jax.grad(lambda p, s, u: simulate_fused(net, p, s, u, DT)[1].mean()),
        net.default_params,
        state,
        stim,
    )
    assert text.count(TRITON_CALL) == 2 and text.count("grid_x = 32") == 2


def test_an_operation_triton_lacks_fails_at_lowering(monkeypatch):
    """The lowering check is real: a slice of a lane vector inside the kernel is
    refused (Triton has no such operation)."""
    from neuroctl.biophysics import fused

    original = fused._hines_rows

    def with_slice(plan, diag, rhs):
        x = original(plan, diag, rhs)
        return [x[0] + x[0][:2].sum()] + x[1:]

    monkeypatch.setattr(fused, "_hines_rows", with_slice)
    net = hh_nets.ours(2)
    state, stim = _batch(net, net.default_params, 32, 10, jnp.float32)
    with pytest.raises(NotImplementedError, match="Triton"):
        lower_for_cuda(
            lambda p, s, u: simulate_fused(net, p, s, u, DT, block=32),
            net.default_params,
            state,
            stim,
        )


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(segment=7), "segment"),
        (dict(block=24), "block"),
        (dict(segment=2.5), "segment"),
        (dict(scheme="rk4"), "scheme"),
        (dict(backward="jvp"), "backward"),
        (dict(dt=-0.025), "dt"),
        (dict(stimulus="2d"), "stimulus"),
        (dict(stimulus="batch"), "state"),
    ],
)
def test_bad_arguments_name_the_field(change, match):
    net = hh_nets.ours(2)
    state, stim = _batch(net, net.default_params, 2, 20)
    change = dict(change)
    if change.pop("stimulus", None) == "2d":
        stim = stim[0]
    elif not change:
        stim = jnp.concatenate([stim, stim])
    kwargs = dict(dt=DT, interpret=True) | change
    with pytest.raises(ConfigError, match=match):
        simulate_fused(net, net.default_params, state, stim, **kwargs)


@pytest.mark.parametrize("stimulated,recorded", [(False, True), (True, False)])
def test_networks_without_stimuli_or_recordings(stimulated, recorded):
    cell = bp.Cell(bp.Morphology.ball_and_stick()).insert(bp.HH(), 0)
    net = bp.Network.build(
        [cell],
        stimuli=[bp.Site(0)] * stimulated,
        recordings=[bp.Site(0, 1, 0)] * recorded,
    )
    state, stim = _batch(net, net.default_params, 2, 30)
    final, rec = simulate_fused(
        net, net.default_params, state, stim, DT, interpret=True
    )
    ref_final, ref_rec = _reference(net, net.default_params, state, stim)
    assert rec.shape == ref_rec.shape == (2, 30, int(recorded))
    np.testing.assert_allclose(final.v, ref_final.v, rtol=0, atol=1e-10)
    np.testing.assert_allclose(rec, ref_rec, rtol=0, atol=1e-10)

    def loss(simulate_2):  # the backward kernel with empty site sets
        return lambda p, s: simulate_2(p, s)[0].v.sum() + simulate_2(p, s)[1].sum()

    grads = [
        jax.grad(loss(run), argnums=(0, 1))(net.default_params, state)
        for run in (
            lambda p, s: simulate_fused(
                net, p, s, stim, DT, segment=10, interpret=True
            ),
            lambda p, s: jax.vmap(lambda s1, u1: bp.simulate(net, p, s1, u1, DT))(
                s, stim
            ),
        )
    ]
    for a, b in zip(*map(jax.tree.leaves, grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
