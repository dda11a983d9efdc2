import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import DT, hh_point, step_current, two_cells

import neuroctl.biophysics as bp


def _passive(g_ms=0.1, e=-70.0, cm=1.0):
    morph = bp.Morphology.single_compartment(length=20.0, radius=5.0, capacitance=cm)
    cell = bp.Cell(morph).insert(bp.Leak(g=g_ms, e=e))
    return bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])


@pytest.mark.parametrize("scheme", ["be", "cn"])
def test_passive_membrane_matches_the_rc_solution(scheme):
    """Units end to end: tau = c_m/g [ms], v_inf = e + I/(g A) [mV]."""
    g, e, cm, amp = 0.1, -70.0, 1.0, 0.005  # mS/cm², mV, µF/cm², nA
    net = _passive(g, e, cm)
    area = 2 * np.pi * 5.0 * 20.0  # [µm²]
    tau = cm / g  # [ms]
    dv_inf = amp / area * 1e5 / g  # nA/µm² → µA/cm², / (mS/cm²) → mV
    n = 400
    state = bp.init_state(net, net.default_params, e, jnp.float64)
    _, v = bp.simulate(
        net, net.default_params, state, jnp.full((n, 1), amp), DT, scheme
    )
    # the exact discrete recurrence of each scheme
    r = DT / tau
    factor = 1 / (1 + r) if scheme == "be" else (1 - r / 2) / (1 + r / 2)
    expected = e + dv_inf * (1 - factor ** np.arange(1, n + 1))
    np.testing.assert_allclose(v[:, 0], expected, rtol=0, atol=1e-10)
    # and the continuous solution, to the scheme's order
    t = DT * np.arange(1, n + 1)
    exact = e + dv_inf * (1 - np.exp(-t / tau))
    # global error peaks near t = tau: ~0.18 dv_inf r (BE), ~0.05 dv_inf r² (CN)
    tol = 0.25 * dv_inf * r if scheme == "be" else 0.25 * dv_inf * r**2
    assert np.abs(v[:, 0] - exact).max() < tol


def test_resting_state_is_steady_without_input():
    net = _passive()
    s = bp.init_state(net, net.default_params, -70.0, jnp.float64)
    _, v = bp.simulate(net, net.default_params, s, jnp.zeros((100, 1)), DT)
    np.testing.assert_allclose(v, -70.0, atol=1e-12)


def test_two_compartment_charge_sharing_conserves_charge():
    """No membrane current: total charge C·A·v is conserved by the axial coupling."""
    morph = bp.Morphology.from_parents(
        [-1, 0],
        ncomp=[1, 3],
        length=[20.0, 60.0],
        radius=[5.0, 1.0],
        axial_resistivity=100.0,
    )
    cell = bp.Cell(morph).insert(bp.Leak(g=0.0, e=0.0))
    net = bp.Network.build([cell], recordings=[bp.Site(0), bp.Site(0, 1, 2)])
    s = bp.init_state(net, net.default_params, -65.0, jnp.float64)
    s = bp.State(v=s.v.at[0].set(0.0), gates=s.gates, cai=s.cai, eca=s.eca, syn=s.syn)
    end, _ = bp.simulate(net, net.default_params, s, jnp.zeros((4000, 0)), DT)
    q0 = np.sum(net.area * net.capacitance * np.asarray(s.v))
    q1 = np.sum(net.area * net.capacitance * np.asarray(end.v))
    np.testing.assert_allclose(q1, q0, rtol=1e-10)
    comps = np.asarray(end.v)[net.area > 0]
    assert np.ptp(comps) < 1e-6  # equalised


def test_jit_equals_eager_and_vmap_equals_loop():
    net = two_cells()
    p = net.default_params
    s = bp.init_state(net, p, -65.0, jnp.float64)
    stim = step_current(40, 0.3, 0.2, 0.5)[:, None]
    run = lambda st: bp.simulate(net, p, s, st, DT)[1]  # noqa: E731
    with jax.disable_jit():
        eager = run(stim)
    np.testing.assert_allclose(jax.jit(run)(stim), eager, rtol=1e-12, atol=1e-12)
    batch = jnp.stack([stim, 2 * stim, 0 * stim])
    batched = jax.jit(jax.vmap(run))(batch)
    for i in range(3):
        np.testing.assert_allclose(batched[i], run(batch[i]), rtol=1e-12, atol=1e-12)


def test_vmap_over_parameters():
    net = hh_point()
    p = net.default_params
    s = bp.init_state(net, p, -65.0, jnp.float64)
    stim = step_current(400, 0.2, 1.0, 8.0)[:, None]

    def peak(gna):
        q = net.with_param(p, bp.HH, "gnabar", gna)
        return bp.simulate(net, q, s, stim, DT)[1].max()

    gnas = jnp.array([60.0, 120.0])
    np.testing.assert_allclose(
        jax.vmap(peak)(gnas), [peak(60.0), peak(120.0)], rtol=1e-12
    )


def test_second_call_does_not_recompile():
    net = hh_point()
    p = net.default_params
    s = bp.init_state(net, p, -65.0, jnp.float64)
    traces = []

    @jax.jit
    def run(stim):
        traces.append(1)
        return bp.simulate(net, p, s, stim, DT)[1]

    run(jnp.zeros((50, 1)))
    run(jnp.ones((50, 1)))
    assert len(traces) == 1


@pytest.mark.parametrize("lengths", [(5, 8), (4, 4, 4), (3, 3, 3, 3)])
def test_checkpointed_scan_equals_plain_scan_in_value_and_gradient(lengths):
    net = two_cells()
    p = net.default_params
    s = bp.init_state(net, p, -65.0, jnp.float64)
    stim = step_current(37, 0.3, 0.1, 0.6)[:, None]  # 37 steps: not a product

    def loss(p, ck):
        return bp.simulate(net, p, s, stim, DT, checkpoint_lengths=ck)[1].mean()

    np.testing.assert_allclose(loss(p, lengths), loss(p, None), rtol=1e-13)
    g0 = jax.grad(loss)(p, None)
    g1 = jax.grad(loss)(p, lengths)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_checkpoint_lengths_for_covers_the_paper_trial():
    lengths = bp.checkpoint_lengths_for(20_800, 3)
    assert np.prod(lengths) >= 20_800 and max(lengths) <= 28
