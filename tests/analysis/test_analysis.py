"""Validation of neuroctl.analysis against known answers (float64, see conftest)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroctl.biophysics as bp
from neuroctl import analysis as an
from neuroctl import units
from neuroctl.errors import ConfigError

DT = 0.025  # [ms]
G_LEAK, C_M = 0.1, 1.0  # [mS/cm²], [µF/cm²]: τ = C/g = 10 ms


# ----------------------------------------------------------------- models
def passive_net() -> bp.Network:
    cell = bp.Cell(bp.Morphology.single_compartment(length=20.0, radius=5.0)).insert(
        bp.Leak(g=G_LEAK, e=-70.0)
    )
    return bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])


def two_cells() -> bp.Network:
    cell = bp.Cell(bp.Morphology.single_compartment(18.8, 9.4)).insert(bp.HH())
    cons = [
        bp.Connection(bp.GradedSynapse(g=0.005, e_syn=0.0), bp.Site(0), bp.Site(1)),
        bp.Connection(bp.GradedSynapse(g=0.002, e_syn=-75.0), bp.Site(1), bp.Site(0)),
    ]
    return bp.Network.build(
        [cell, cell],
        cons,
        stimuli=[bp.Site(0), bp.Site(1)],
        recordings=[bp.Site(0), bp.Site(1)],
    )


@pytest.fixture(scope="module")
def two_cell_rest():
    """(network, params, initial state at -65 mV), built once for this module."""
    net = two_cells()
    p = net.default_params
    return net, p, bp.init_state(net, p, -65.0, jnp.float64)


def branched_calcium_cell() -> bp.Network:
    """Root with two children (one zero-area branch point); calcium in branch 1."""
    morph = bp.Morphology.from_parents([-1, 0, 0], length=10.0, radius=1.0)
    cell = (
        bp.Cell(morph)
        .insert(bp.HH(), 0)
        .insert(bp.CaHVA(g=1.0), 1)
        .insert(bp.CalciumDynamics(gamma=0.0006, decay=200.0), 1)
        .insert(bp.Leak(g=0.03, e=-70.0))
    )
    return bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])


def solver_step(net, params, scheme="be"):
    def step(state, stim):
        return bp.step(net, params, state, stim, DT, scheme)

    return step


def lorenz_rk4(x, _, h=0.01, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    def f(y):
        return jnp.stack(
            [
                sigma * (y[1] - y[0]),
                y[0] * (rho - y[2]) - y[1],
                y[0] * y[1] - beta * y[2],
            ]
        )

    k1 = f(x)
    k2 = f(x + 0.5 * h * k1)
    k3 = f(x + 0.5 * h * k2)
    k4 = f(x + h * k3)
    return x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def known_linear_map(dt=0.1):
    """A = P D P⁻¹: moduli 0.97, 0.8 (complex pair, angle 0.7 rad), 0.3 (μ = -0.3)."""
    p = np.random.default_rng(0).normal(size=(4, 4))
    d = np.zeros((4, 4))
    d[0, 0], d[3, 3] = 0.97, -0.3
    c, s = math.cos(0.7), math.sin(0.7)
    d[1:3, 1:3] = 0.8 * np.array([[c, -s], [s, c]])
    expected = np.log([0.97, 0.8, 0.8, 0.3]) / dt  # [1/time]
    return jnp.asarray(p @ d @ np.linalg.inv(p)), expected, np.linalg.cond(p)


# ----------------------------------------------------------------- linear maps
@pytest.mark.parametrize("k", [1, 2, 4])
def test_linear_map_exponents_are_log_moduli_over_dt(k):
    a, expected, cond = known_linear_map()
    n_measured = 2000
    lam = an.lyapunov_spectrum(
        lambda x, _: a @ x,
        jnp.ones(4),
        dt=0.1,
        k=k,
        n_steps=100 + n_measured,
        n_transient=100,
    )
    # Real, simple eigenvalues: exact once the tangents have aligned (transient).
    np.testing.assert_allclose(lam[0], expected[0], rtol=1e-9)
    if k == 4:
        np.testing.assert_allclose(lam[3], expected[3], rtol=1e-9)
    # The complex pair: R_ii oscillate with the rotation; their sums telescope to
    # log-volume ratios bounded by log cond(P), so the error is <= 2 log κ / (T dt).
    np.testing.assert_allclose(
        lam[1:3], expected[1 : min(k, 3)], atol=2 * math.log(cond) / (n_measured * 0.1)
    )


def test_linear_map_with_renormalisation_interval_and_ftle():
    a, expected, _ = known_linear_map()
    kw = dict(dt=0.1, n_steps=1000, n_transient=200, renorm_every=5, k=4)
    lam = an.lyapunov_spectrum(lambda x, _: a @ x, jnp.ones(4), **kw)
    ftle = an.finite_time_exponents(lambda x, _: a @ x, jnp.ones(4), **kw)
    assert ftle.shape == (160, 4)  # 800 measured steps / 5
    np.testing.assert_allclose(ftle.mean(0), lam, rtol=1e-12)
    np.testing.assert_allclose(ftle[:, 0], expected[0], rtol=1e-9)  # constant rate


# ----------------------------------------------------------------- passive membrane
def test_passive_membrane_exponent_is_backward_euler_multiplier():
    net = passive_net()
    p = net.default_params
    s = bp.init_state(net, p, -60.0, jnp.float64)  # off rest: v relaxes
    stim = jnp.zeros((400, 1))
    mask = an.solver_state_mask(net, s)
    lam = an.max_lyapunov_exponent(solver_step(net, p), s, stim, dt=DT, mask=mask)
    exact = math.log(1.0 / (1.0 + DT * G_LEAK / C_M)) / DT  # [1/ms], discrete map
    np.testing.assert_allclose(lam, exact, rtol=1e-12)
    # The ODE's -g/C [mS/cm² / µF/cm² = 1/ms], to first order in dt:
    # log(1/(1+x))/dt = -g/C + (g/C)² dt / 2 + O(dt²).
    assert abs(lam + G_LEAK / C_M) <= (G_LEAK / C_M) ** 2 * DT


def test_passive_membrane_error_is_first_order_in_dt():
    net = passive_net()
    p = net.default_params
    s = bp.init_state(net, p, -60.0, jnp.float64)
    mask = an.solver_state_mask(net, s)
    errs = []
    for dt in (0.1, 0.05):
        step = lambda st, u, dt=dt: bp.step(net, p, st, u, dt)  # noqa: E731
        lam = an.max_lyapunov_exponent(step, s, jnp.zeros((20, 1)), dt=dt, mask=mask)
        errs.append(float(lam) + G_LEAK / C_M)
    np.testing.assert_allclose(errs[0] / errs[1], 2.0, rtol=0.01)


def test_unmasked_constant_components_give_zero_exponents():
    net = passive_net()
    p = net.default_params
    s = bp.init_state(net, p, -70.0, jnp.float64)
    # A 300 ms transient (30 τ) aligns the tangents with the neutral directions.
    lam = an.lyapunov_spectrum(
        solver_step(net, p),
        s,
        jnp.zeros((16_000, 1)),
        dt=DT,
        n_transient=12_000,
        renorm_every=20,
    )
    assert lam.shape == (3,)  # v, cai, eca (Leak has no gates)
    np.testing.assert_allclose(lam[:2], 0.0, atol=1e-10)  # cai, eca carried: μ = 1
    np.testing.assert_allclose(
        lam[2], math.log(1 / (1 + DT * G_LEAK / C_M)) / DT, rtol=1e-10
    )


# ----------------------------------------------------------------- Lorenz
def test_lorenz_spectrum():
    # 60,000 RK4 steps of h = 0.01 (600 time units) after a 10-unit transient. Over
    # 32 random initial conditions this run length gave std (0.007, 0.0015, 0.007)
    # and max |error| (0.022, 0.005, 0.020) for (λ1, λ2, λ3); ±0.05 is > 6 std.
    lam = an.lyapunov_spectrum(
        lorenz_rk4,
        jnp.array([1.0, 1.0, 1.0]),
        dt=0.01,
        n_steps=61_000,
        n_transient=1000,
        renorm_every=10,
    )
    np.testing.assert_allclose(lam, [0.9056, 0.0, -14.5723], atol=0.05)


def test_lorenz_sum_of_exponents_is_mean_log_det_rate():
    x0, n_tr, n = jnp.array([1.0, 1.0, 1.0]), 500, 5000
    lam = an.lyapunov_spectrum(
        lorenz_rk4, x0, dt=0.01, n_steps=n_tr + n, n_transient=n_tr, renorm_every=5
    )

    def body(x, _):
        logdet = jnp.linalg.slogdet(an.jacobian(lorenz_rk4, x, None))[1]
        return lorenz_rk4(x, None), logdet

    x = jax.lax.scan(body, x0, None, n_tr)[0]
    rate = jax.lax.scan(body, x, None, n)[1].mean() / 0.01
    np.testing.assert_allclose(lam.sum(), rate, rtol=1e-10)  # QR identity: exact
    # and the flow's divergence -(σ + 1 + β), up to RK4's O(h⁴) error:
    np.testing.assert_allclose(lam.sum(), -(10 + 1 + 8 / 3), rtol=1e-4)


def test_memory_is_independent_of_horizon():
    def temp_bytes(n_steps):
        f = jax.jit(
            lambda x: an.max_lyapunov_exponent(lorenz_rk4, x, dt=0.01, n_steps=n_steps)
        )
        return f.lower(jnp.ones(3)).compile().memory_analysis().temp_size_in_bytes

    assert temp_bytes(1_000) == temp_bytes(1_000_000)


def test_jit_and_vmap_over_initial_states():
    x0 = jnp.array([[1.0, 1.0, 1.0], [-2.0, 3.0, 20.0]])

    def lam(x):
        return an.lyapunov_spectrum(lorenz_rk4, x, dt=0.01, n_steps=200, k=2)

    np.testing.assert_allclose(jax.jit(jax.vmap(lam))(x0)[1], lam(x0[1]), rtol=1e-10)


# ----------------------------------------------------------------- solver state
def test_mask_and_spectrum_of_constant_and_algebraic_components():
    net = branched_calcium_cell()
    p = net.default_params
    s = bp.init_state(net, p, -60.0, jnp.float64)  # the block structure holds anywhere
    mask = an.solver_state_mask(net, s)
    n_const = 2 * 3  # cai and eca at the 3 nodes without calcium dynamics
    assert mask.sum() == mask.size - n_const - 1  # ... and the branch point's v
    u = jnp.zeros(1)
    for scheme, bp_multiplier in (("be", 0.0), ("cn", -1.0)):
        step = solver_step(net, p, scheme)
        full = np.linalg.eigvals(an.jacobian(step, s, u))
        kept = an.jacobian_spectrum(step, s, u, dt=DT, mask=mask).multipliers
        expected = np.concatenate([kept, np.ones(n_const), [bp_multiplier]])
        np.testing.assert_allclose(
            np.sort_complex(full), np.sort_complex(expected), atol=1e-9
        )
        # eca = Nernst(cai) in the calcium compartment: one multiplier 0 stays.
        assert np.sum(np.abs(kept) < 1e-12) == 1


def test_lyapunov_exponents_at_fixed_point_are_jacobian_rates():
    morph = bp.Morphology.from_parents(
        [-1, 0, 0], length=[10.0, 200.0, 50.0], radius=1.0
    )
    cell = bp.Cell(morph).insert(bp.Leak(g=0.1, e=-65.0))
    net = bp.Network.build([cell], stimuli=[bp.Site(0)])
    p = net.default_params
    s = bp.init_state(net, p, -65.0, jnp.float64)  # rest = e_leak: a fixed point
    mask, step = an.solver_state_mask(net, s), solver_step(net, p)
    lam = an.lyapunov_spectrum(
        step,
        s,
        jnp.zeros((2000, 1)),
        dt=DT,
        mask=mask,
        n_transient=1000,
        renorm_every=10,
    )
    rates = an.jacobian_spectrum(step, s, jnp.zeros(1), dt=DT, mask=mask).rates
    assert lam.shape == rates.shape == (3,)  # 3 compartment voltages
    np.testing.assert_allclose(lam, rates, rtol=1e-8)


def test_jvp_equals_vjp_on_two_cell_network(key, two_cell_rest):
    net, p, s0 = two_cell_rest
    stim = jnp.zeros((400, 2)).at[40:200, 0].set(0.3)  # [nA]: cell 0 spikes

    def rec(params, stimulus, state):
        return bp.simulate(net, params, state, stimulus, DT)[1]

    args = (p, stim, s0)
    keys = jax.random.split(key, 4)
    dirs = tuple(an.random_direction(k, a) for k, a in zip(keys, args, strict=False))
    # parameters, stimulus and initial state at once; jit: one compile, not three
    check = jax.jit(lambda *a: an.jvp_vjp_check(rec, *a))(args, dirs, keys[3])
    assert check.rel_error < 1e-10, check
    assert abs(check.forward) > 1e-6


def test_tangent_rollout_matches_directional_derivative(key, two_cell_rest):
    net, p, s0 = two_cell_rest
    stim = jnp.full((200, 2), 0.1)
    ds = an.random_direction(key, s0)
    rec_nodes = net.recording_nodes
    out, d_out = an.tangent_rollout(
        solver_step(net, p), s0, stim, ds, record=lambda s: s.v[rec_nodes]
    )
    ref, d_ref = an.directional_derivative(
        lambda s: bp.simulate(net, p, s, stim, DT)[1], (s0,), (ds,)
    )
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    np.testing.assert_allclose(d_out, d_ref, rtol=1e-9, atol=1e-12)


def test_impulse_response_of_passive_membrane_is_analytic():
    net = passive_net()
    p = net.default_params
    s0 = bp.init_state(net, p, -70.0, jnp.float64)  # at rest
    t, at = 100, 10
    resp = an.impulse_responses(
        lambda u: bp.simulate(net, p, s0, u, DT)[1], jnp.zeros((t, 1)), at_step=at
    )
    area = units.cylinder_area(20.0, 5.0)  # [µm²]
    cap = C_M * area * units.UF_PER_CM2_UM2_TO_US_MS / DT  # [µS]
    g = G_LEAK * area * units.MS_PER_CM2_UM2_TO_US  # [µS]
    steps = np.arange(t) - at
    expected = np.where(steps >= 0, (cap / (cap + g)) ** np.maximum(steps, 0), 0.0) / (
        cap + g
    )  # [mV/nA]: jump 1/(C/dt + g), then BE decay
    assert resp.shape == (1, t, 1)
    np.testing.assert_allclose(resp[0, :, 0], expected, rtol=1e-12, atol=1e-15)


def test_impulse_responses_per_site_on_two_cells(two_cell_rest):
    net, p, s0 = two_cell_rest
    stim = jnp.zeros((200, 2))
    resp = an.impulse_responses(
        lambda u: bp.simulate(net, p, s0, u, DT)[1], stim, at_step=5, n_pulse=4
    )
    assert resp.shape == (2, 200, 2)
    np.testing.assert_allclose(resp[:, :5], 0.0, atol=1e-15)  # causal
    assert resp[0, 10, 0] > 0 and resp[1, 10, 1] > 0  # depolarises the pulsed cell
    assert abs(resp[0, 50, 1]) > 0  # and reaches the other through the synapse


# ----------------------------------------------------------------- bad input
def _lin(x, _):
    return 0.5 * x


@pytest.mark.parametrize("dt", [0.0, -0.025, float("nan"), "fast"])
def test_bad_dt(dt):
    with pytest.raises(ConfigError, match=r"dt: got .* expected a finite time step"):
        an.max_lyapunov_exponent(_lin, jnp.ones(2), dt=dt, n_steps=10)


def test_non_finite_state():
    with pytest.raises(
        ConfigError,
        match=r"state: got non-finite values at flat "
        r"indices \[1\]",
    ):
        an.max_lyapunov_exponent(_lin, jnp.array([1.0, jnp.nan]), dt=0.1, n_steps=10)


def test_non_finite_state_under_jit():
    f = jax.jit(lambda x: an.max_lyapunov_exponent(_lin, x, dt=0.1, n_steps=10))
    with pytest.raises(Exception, match="state: non-finite"):
        f(jnp.array([1.0, jnp.inf]))


@pytest.mark.parametrize("k", [0, 4, 2.0])
def test_k_out_of_range(k):
    with pytest.raises(ConfigError, match=r"k: got .* expected an int in \[1, 3\]"):
        an.lyapunov_spectrum(_lin, jnp.ones(3), dt=0.1, n_steps=10, k=k)


def test_k_larger_than_kept_components():
    with pytest.raises(ConfigError, match=r"k: got 2 .*\[1, 1\]"):
        an.lyapunov_spectrum(
            _lin,
            jnp.ones(3),
            dt=0.1,
            n_steps=10,
            k=2,
            mask=np.array([True, False, False]),
        )


@pytest.mark.parametrize("n_steps,n_transient", [(10, 0), (12, 3)])
def test_renormalisation_interval_must_divide_horizon(n_steps, n_transient):
    with pytest.raises(ConfigError, match=r"renorm_every: got 4 .* a divisor of"):
        an.max_lyapunov_exponent(
            _lin,
            jnp.ones(2),
            dt=0.1,
            n_steps=n_steps,
            n_transient=n_transient,
            renorm_every=4,
        )


def test_transient_must_leave_steps():
    with pytest.raises(ConfigError, match=r"n_transient: got 10 .*\[0, 10\)"):
        an.max_lyapunov_exponent(_lin, jnp.ones(2), dt=0.1, n_steps=10, n_transient=10)


def test_bad_mask_and_inputs():
    with pytest.raises(ConfigError, match=r"mask: got .*shape \(3,\)"):
        an.max_lyapunov_exponent(
            _lin, jnp.ones(2), dt=0.1, n_steps=4, mask=np.ones(3, bool)
        )
    with pytest.raises(ConfigError, match=r"n_steps: got None"):
        an.max_lyapunov_exponent(_lin, jnp.ones(2), dt=0.1)
    with pytest.raises(ConfigError, match=r"inputs: got .*\[4, 5\]"):
        two_lengths = (jnp.ones(4), jnp.ones(5))
        an.max_lyapunov_exponent(lambda x, u: x, jnp.ones(2), two_lengths, dt=0.1)


def test_bad_impulse_and_directions():
    with pytest.raises(ConfigError, match=r"at_step, n_pulse: got \(9, 2\)"):
        an.impulse_responses(lambda u: u, jnp.zeros((10, 2)), at_step=9, n_pulse=2)
    with pytest.raises(ConfigError, match=r"directions: got '1 entries'.*expected 2"):
        an.directional_derivative(lambda a, b: a * b, (1.0, 2.0), (1.0,))
    with pytest.raises(ConfigError, match=r"directions\[0\]"):
        an.directional_derivative(lambda a: a[0], ((1.0, 2.0),), (1.0,))
