"""Gradients: float64 central finite differences, check_grads, singular points."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import DT, hh_point, step_current, two_cells
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import neuroctl.biophysics as bp

CHANNELS = [
    bp.HH(),
    bp.Leak(),
    bp.NaTs2T(),
    bp.SKv3_1(),
    bp.M(),
    bp.H(),
    bp.CaHVA(),
    bp.CaLVA(),
    bp.SKE2(),
]


def _central(f, x0: float, eps: float) -> float:
    return float((f(x0 + eps) - f(x0 - eps)) / (2 * eps))


def _rollout_loss(net, amp, n_steps):
    stim = step_current(n_steps, 1.0, 1.0, n_steps * DT)[:, None]

    def loss(p, amp=amp):
        s = bp.init_state(net, p, -65.0, jnp.float64)
        return bp.simulate(net, p, s, amp * stim, DT)[1].mean()  # [mV]

    return loss


# (regime, stimulus amplitude [nA], relative tolerance)
REGIMES = [("subthreshold", 0.02, 1e-5), ("spiking", 0.3, 1e-4)]


@pytest.mark.parametrize("regime,amp,rtol", REGIMES)
@pytest.mark.parametrize("field", ["gnabar", "gkbar", "gl"])
def test_channel_density_gradient_matches_finite_differences(regime, amp, rtol, field):
    net = hh_point()
    loss = _rollout_loss(net, amp, 600)  # 15 ms

    def f(x):
        return loss(net.with_param(net.default_params, bp.HH, field, x))

    x0 = float(getattr(net.default_params.channels[0], field)[0])
    grad = jax.grad(f)(x0)
    np.testing.assert_allclose(grad, _central(f, x0, 1e-5 * x0), rtol=rtol)


@pytest.mark.parametrize("regime,amp,rtol", REGIMES)
def test_synaptic_conductance_gradient_matches_finite_differences(regime, amp, rtol):
    net = two_cells()
    loss = _rollout_loss(net, amp, 600)
    base = net.default_params

    def f(g):
        return loss(net.with_param(base, bp.GradedSynapse, "g", g))

    g0 = np.array([0.005, 0.002])
    grad = jax.grad(f)(jnp.asarray(g0))
    for i in range(2):
        e = np.zeros(2)
        e[i] = 1e-5 * g0[i]
        fd = (f(jnp.asarray(g0 + e)) - f(jnp.asarray(g0 - e))) / (2 * e[i])
        np.testing.assert_allclose(grad[i], fd, rtol=rtol)


@pytest.mark.parametrize("regime,amp,rtol", REGIMES)
def test_injected_current_gradient_matches_finite_differences(regime, amp, rtol):
    net = hh_point()
    loss = _rollout_loss(net, amp, 600)
    p = net.default_params
    grad = jax.grad(lambda a: loss(p, a))(amp)
    np.testing.assert_allclose(
        grad, _central(lambda a: loss(p, a), amp, 1e-6), rtol=rtol
    )


def test_per_step_current_gradient_matches_finite_differences():
    net = two_cells()
    p = net.default_params
    s = bp.init_state(net, p, -65.0, jnp.float64)
    base = step_current(400, 0.3, 1.0, 8.0)[:, None]

    def loss(stim):
        return bp.simulate(net, p, s, stim, DT)[1][:, 1].mean()

    grad = jax.grad(loss)(base)
    for t in (10, 150, 300):
        e = jnp.zeros_like(base).at[t, 0].set(1e-6)
        fd = (loss(base + e) - loss(base - e)) / 2e-6
        np.testing.assert_allclose(grad[t, 0], fd, rtol=1e-4, atol=1e-12)


@pytest.mark.parametrize("scheme", ["be", "cn"])
def test_check_grads_on_one_step(scheme):
    net = two_cells()
    p = net.default_params
    s0 = bp.init_state(net, p, -65.0, jnp.float64)
    s = dataclasses.replace(s0, v=s0.v + jnp.array([30.0, -5.0]))  # off rest

    def v_next(p, v, i):
        st = dataclasses.replace(s, v=v)
        return bp.step(net, p, st, i, DT, scheme).v

    check_grads(v_next, (p, s.v, jnp.array([0.2])), order=2, modes=("fwd", "rev"))


def test_hay_network_step_check_grads():
    from neuroctl.plants.evidence_net import build_network

    net = build_network()
    p = net.default_params
    s = bp.init_state(net, p, -65.0, jnp.float64)
    v = s.v + jnp.linspace(-10.0, 40.0, net.n_nodes)

    def f(p, v):
        return bp.step(net, p, dataclasses.replace(s, v=v), jnp.full(20, 0.01), DT).v

    check_grads(f, (p, v), order=1, modes=("fwd", "rev"), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("v_singular", [-40.0, -55.0, -32.0, -60.0, -27.0, -154.9])
@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: type(c).__name__)
def test_rates_value_and_gradient_finite_at_singular_points(channel, v_singular):
    def total(v):
        x_inf, k = channel.gate_dynamics(v, jnp.asarray(5e-5))
        return sum((jnp.sum(a) for a in (*x_inf, *k)), jnp.asarray(v) * 0.0)

    value, grad = jax.value_and_grad(total)(jnp.asarray(v_singular))
    assert np.isfinite(value) and np.isfinite(grad)
    # continuity across the singular point
    near = total(jnp.asarray(v_singular + 1e-7))
    np.testing.assert_allclose(value, near, rtol=1e-6)


def test_efun_series_and_exact_branches_agree():
    from neuroctl.biophysics.rates import efun

    x = jnp.array(
        [-0.1001, -0.0999, 0.0999, 0.1001]
    )  # around the switch at |x/y| = 1e-2
    exact = x / jnp.expm1(x / 10.0)
    np.testing.assert_allclose(efun(x, 10.0), exact, rtol=1e-15)
    np.testing.assert_allclose(
        jax.vmap(jax.grad(lambda x: efun(x, 10.0)))(x),
        jax.vmap(jax.grad(lambda x: x / jnp.expm1(x / 10.0)))(x),
        rtol=1e-9,
    )


@settings(max_examples=60, deadline=None)
@given(v=st.floats(-300.0, 300.0), cai=st.floats(1e-9, 1e-1))
@example(v=-229.42513147708794, cai=0.0625)  # float32 cancellation in efun_pair (CI)
@example(v=-300.0, cai=1e-9)
@example(v=300.0, cai=1e-1)
@example(v=1e30, cai=1e-4)  # a diverged state: float32 dv was NaN (issue #17)
@example(v=-1e30, cai=1e-4)
@example(v=3e38, cai=1e-4)
def test_rates_finite_for_any_voltage(v, cai):
    for ch in CHANNELS:

        def total(v, cai, ch=ch):
            x_inf, k = ch.gate_dynamics(v, cai)
            return sum((jnp.sum(a) for a in (*x_inf, *k)), jnp.asarray(v) * 0.0)

        for dtype in (jnp.float32, jnp.float64):
            val, grads = jax.value_and_grad(total, argnums=(0, 1))(
                jnp.asarray(v, dtype), jnp.asarray(cai, dtype)
            )
            assert np.isfinite(val) and all(np.isfinite(g) for g in grads), (ch, v, cai)
            x_inf, _ = ch.gate_dynamics(jnp.asarray(v, dtype), jnp.asarray(cai, dtype))
            for a in x_inf:
                assert 0.0 <= float(a) <= 1.0


def test_float32_gradient_agrees_with_float64():
    """Spiking rollout: float32 reverse mode within 1 % of float64."""
    net = hh_point()
    stim = step_current(600, 0.3, 1.0, 14.0)[:, None]

    def loss(g, dtype):
        p = net.with_param(net.default_params, bp.HH, "gnabar", g)
        s = bp.init_state(net, p, -65.0, dtype)
        return bp.simulate(net, p, s, stim.astype(dtype), DT)[1].mean()

    g64 = jax.grad(loss)(120.0, jnp.float64)
    g32 = jax.grad(loss)(jnp.float32(120.0), jnp.float32)
    np.testing.assert_allclose(g32, g64, rtol=1e-2)
