"""Extracellular stimulation and LFP recording (neuroctl.biophysics.extracellular).

NEURON 9.0.2 references: scripts/make_extracellular_references.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from extracellular_cases import build, case, electrodes, reference, refined, run

import neuroctl.biophysics as bp
from neuroctl import units
from neuroctl.biophysics.extracellular import (
    LFPElectrodes,
    PointElectrodes,
    membrane_currents,
    point_source_transfer,
    simulate_with_lfp,
)
from neuroctl.errors import ConfigError

DT = 0.025  # [ms]
ONSET = 40  # first step of every NEURON case's first pulse


# --- NEURON: backward Euler, same scheme ------------------------------------------
@pytest.mark.parametrize(
    "name, spikes", [("axon_pulse_supra", 1), ("axon_pulse_sub", 0)]
)
def test_backward_euler_matches_neuron_point_electrode_on_axon(name, spikes):
    v = run(name)
    ref = reference(name)["v_be_mV"][1:]
    err = np.abs(v - ref).max()
    assert err <= 1e-6, f"{name}: max |ΔV| = {err:.3g} mV"
    counts = [int(np.sum((c[:-1] < 0) & (c[1:] >= 0))) for c in v.T]
    assert counts == [spikes] * v.shape[1]


def test_backward_euler_and_lfp_match_neuron_on_ball_and_stick_dbs_train():
    v, phi = run("ball_stick_dbs", lfp=True)
    ref = reference("ball_stick_dbs")
    assert np.abs(v - ref["v_be_mV"][1:]).max() <= 1e-6
    assert np.sum((v[:-1, 2] < 0) & (v[1:, 2] >= 0)) == 2  # two of four pulses fire
    lfp = ref["lfp_be_uV"][1:]
    assert np.abs(phi - lfp).max() <= 1e-6 * np.abs(lfp).max()


def test_lfp_matches_neuron_i_membrane_with_an_iclamp():
    v, phi = run("ball_stick_iclamp_lfp", lfp=True)
    ref = reference("ball_stick_iclamp_lfp")
    assert np.abs(v - ref["v_be_mV"][1:]).max() <= 1e-6
    lfp = ref["lfp_be_uV"][1:]
    assert np.abs(phi - lfp).max() <= 1e-6 * np.abs(lfp).max()
    # NEURON's i_membrane_ excludes the IClamp: its sum is the injected current
    np.testing.assert_allclose(
        ref["imem_sum_be_nA"][1:], ref["iclamp_be_nA"][1:, 0], atol=1e-9
    )


def test_sum_of_sources_with_and_without_electrode_currents():
    cell = bp.Cell(bp.Morphology.ball_and_stick(dend_ncomp=3)).insert(bp.HH())
    net = bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])
    stim = np.zeros((80, 1))
    stim[20:, 0] = 0.3  # [nA]
    total = LFPElectrodes(jnp.ones((1, net.n_nodes)))  # φ = Σ I_m [nA]
    s0 = bp.init_state(net, net.default_params, -65.0, jnp.float64)
    for include, target in ((False, stim[:, 0]), (True, 0.0 * stim[:, 0])):
        _, (_, sums) = simulate_with_lfp(
            net, net.default_params, s0, stim, DT, total, include_electrodes=include
        )
        np.testing.assert_allclose(sums[:, 0], target, atol=1e-9)


# --- Crank–Nicolson: ours is consistent, NEURON's is not ----------------------------
def test_neuron_crank_nicolson_jumps_by_the_change_of_v_ext_ours_converges():
    name = "axon_pulse_supra"
    nrn = reference(name)["v_cn_mV"][1:]
    cn = refined(name, "cn")
    ours, converged = np.asarray(cn(1)), np.asarray(cn(64))
    # without a field both are the same scheme
    assert np.abs(ours[:ONSET] - nrn[:ONSET]).max() <= 1e-6
    # onset step: NEURON's v = ours + ΔV_e (it extrapolates v_i = v + V_e)
    net = build(name)
    i = reference(name)["electrode_currents_uA"]
    jump = electrodes(name, net).potential(i[ONSET] - i[ONSET - 1])
    jump = np.asarray(jump)[net.recording_nodes]
    assert np.abs(jump).max() > 100.0  # [mV]
    np.testing.assert_allclose(nrn[ONSET] - ours[ONSET], jump, atol=1e-6)
    ours_err = np.abs(ours - converged).max()
    nrn_err = np.abs(nrn - converged).max()
    assert ours_err < 1.0 and nrn_err > 100.0, (ours_err, nrn_err)


@pytest.mark.parametrize("name", ["axon_pulse_sub", "axon_pulse_supra"])
def test_crank_nicolson_converges_at_second_order_to_the_backward_euler_limit(name):
    cn, be = refined(name, "cn"), refined(name, "be")
    converged = np.asarray(cn(64))
    errs = [np.abs(np.asarray(cn(r)) - converged).max() for r in (1, 2, 4)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all((orders > 1.8) & (orders < 2.4)), (errs, orders)
    # BE (which matches NEURON) has the same limit: Richardson of dt/32, dt/64
    richardson = 2.0 * np.asarray(be(64)) - np.asarray(be(32))
    assert np.abs(richardson - converged).max() < 5e-3  # [mV]; measured 5e-5, 1.5e-3


# --- analytic checks ----------------------------------------------------------------
def _cable(ncomp=21, length=1000.0, radius=1.0, g_leak=1.0, hh=False) -> bp.Network:
    """A straight sealed cable along x from the origin [µm]; leak in mS/cm², e -65."""
    morph = bp.Morphology.from_parents(
        [-1], ncomp=ncomp, length=length, radius=radius, axial_resistivity=100.0
    )
    cell = bp.Cell(morph).insert(bp.HH() if hh else bp.Leak(g=g_leak, e=-65.0))
    sites = [bp.Site(0, 0, k) for k in range(ncomp)]
    return bp.Network.build([cell], recordings=sites)


def _run(net, el, currents, scheme="be", dt=DT):
    s0 = bp.init_state(net, net.default_params, -65.0, jnp.float64)
    stim = jnp.zeros((len(currents), 0))
    _, v = bp.simulate(
        net, net.default_params, s0, stim, dt, scheme, None, None, el, currents
    )
    return np.asarray(v)


@pytest.mark.parametrize("scheme", ["be", "cn"])
def test_uniform_extracellular_potential_changes_nothing(scheme):
    cell = bp.Cell(bp.Morphology.ball_and_stick(dend_ncomp=5)).insert(bp.HH())
    net = bp.Network.build([cell], recordings=[bp.Site(0), bp.Site(0, 1, 4)])
    uniform = PointElectrodes(jnp.ones((net.n_nodes, 1)))  # V_e = I [mV]
    i = 80.0 * np.random.default_rng(0).standard_normal((200, 1))
    stim = np.zeros((200, 0))
    s0 = bp.init_state(net, net.default_params, -65.0, jnp.float64)
    p = net.default_params
    _, with_ve = bp.simulate(
        net, p, s0, stim, DT, scheme, electrodes=uniform, electrode_currents=i
    )
    _, without = bp.simulate(net, net.default_params, s0, stim, DT, scheme)
    np.testing.assert_array_equal(with_ve, without)


def test_zero_electrode_current_is_bit_identical_to_no_electrodes_under_vmap():
    net = _cable(ncomp=7, hh=True)
    p = net.default_params
    el = PointElectrodes.build(net, [[300.0, 50.0, 0.0]])
    s0 = bp.init_state(net, p, -65.0, jnp.float64)
    stim = jnp.zeros((120, 0))
    currents = jnp.zeros((3, 120, 1)).at[1, 10:20].set(-20.0).at[2, 10:20].set(20.0)

    def run(i):
        return bp.simulate(net, p, s0, stim, DT, electrodes=el, electrode_currents=i)

    batched = jax.jit(jax.vmap(lambda i: run(i)[1]))(currents)
    _, plain = bp.simulate(net, p, s0, stim, DT)
    np.testing.assert_array_equal(batched[0], plain)
    assert np.abs(batched[1] - plain).max() > 1.0  # [mV]: the field acts
    assert np.abs(batched[2] - batched[1]).max() > 1.0  # cathode ≠ anode


def test_cathode_depolarises_beneath_it_anode_hyperpolarises():
    net = _cable()
    p = net.default_params
    el = PointElectrodes.build(net, [[500.0, 50.0, 0.0]])  # above compartment 10
    s0 = bp.init_state(net, p, -65.0, jnp.float64)
    stim = jnp.zeros((8, 0))

    @jax.jit
    def last(i):
        return bp.simulate(net, p, s0, stim, DT, electrodes=el, electrode_currents=i)[
            1
        ][-1]

    for sign in (-1.0, 1.0):  # cathode, anode
        v = np.asarray(last(jnp.full((8, 1), sign * 5.0))) + 65.0  # [mV] from rest
        middle, flank = v[10], v[5]  # flank: the virtual electrode of opposite sign
        assert -sign * middle > 1.0 and sign * flank > 0.0
        assert np.argmax(-sign * v) == 10


def test_uniform_field_polarises_sealed_ends_as_cable_theory_says():
    """V_e = −E x along a sealed passive cable: steady Δv = Eλ sinh(ξ)/cosh(L/2λ)."""
    length, radius, g = 1000.0, 1.0, 1.0  # [µm], [µm], [mS/cm²]
    net = _cable(ncomp=51, length=length, radius=radius, g_leak=g)
    field = 0.01  # E [mV/µm]
    ramp = PointElectrodes(jnp.asarray(-net.xyz[:, :1]))  # V_e = −x · I [mV]
    v = _run(net, ramp, np.full((600, 1), field))[-1] + 65.0  # [mV], 15 ms ≫ τ 1 ms
    x = (np.arange(51) + 0.5) * length / 51  # [µm]
    rm = 1.0 / (g * 1e-3)  # [Ω·cm²]
    lam = np.sqrt(rm * 2 * radius * 1e-4 / (4 * 100.0)) * 1e4  # λ [µm]
    theory = field * lam * np.sinh((x - length / 2) / lam) / np.cosh(length / 2 / lam)
    assert v[-1] > 1.0 and v[0] < -1.0  # the end at lower V_e depolarises
    np.testing.assert_allclose(v[0], -v[-1], rtol=1e-9)
    np.testing.assert_allclose(v, theory, atol=1e-3 * np.abs(theory).max())  # 8e-5


def test_point_source_potential_in_millivolts_per_microampere():
    t = point_source_transfer([[0.0, 100.0, 0.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]])
    # 1 µA at 100 µm in 0.3 S/m: 1e-6 / (4π · 0.3 · 1e-4) V = 2.6526 mV
    np.testing.assert_allclose(t[0, 0], 1e-6 / (4 * np.pi * 0.3 * 1e-4) * 1e3)
    np.testing.assert_allclose(t[1, 0], 1e3 / (4 * np.pi * 0.3 * 1.0))  # r clamped
    g = jax.grad(lambda p: point_source_transfer(p, jnp.zeros((1, 3)))[0, 0])
    assert np.all(np.isfinite(g(jnp.zeros((1, 3)))))


def test_membrane_currents_balance_the_membrane_equation():
    """I_m from Kirchhoff equals C dv/dt + ionic current (BE, new voltage) [nA]."""
    net = _cable(ncomp=9, length=300.0)
    el = PointElectrodes.build(net, [[150.0, 20.0, 0.0]])
    p = net.default_params
    s0 = bp.init_state(net, p, -65.0, jnp.float64)
    v_ext = el.potential(jnp.array([-3.0]))
    s1 = bp.step(net, p, s0, jnp.zeros(0), DT, "be", v_ext)
    i_m = membrane_currents(net, s0.v, s1.v, jnp.zeros(0), "be", v_ext)
    area = net.area * units.MS_PER_CM2_UM2_TO_US  # [µS per mS/cm²]
    cap = net.capacitance * net.area * units.UF_PER_CM2_UM2_TO_US_MS / DT  # [µS]
    expected = cap * (s1.v - s0.v) + area * 1.0 * (s1.v + 65.0)
    np.testing.assert_allclose(i_m, expected, rtol=1e-10, atol=1e-14)
    assert abs(float(jnp.sum(i_m))) < 1e-12  # no electrode: the sources sum to 0


# --- gradients ----------------------------------------------------------------------
def test_gradient_through_electrode_currents_and_position_matches_finite_differences():
    net = _cable(ncomp=6, length=200.0, radius=0.5, hh=True)
    p = net.default_params
    s0 = bp.init_state(net, p, -65.0, jnp.float64)
    stim = jnp.zeros((60, 0))

    def loss(currents, position):
        el = PointElectrodes.build(net, position)
        _, v = bp.simulate(net, p, s0, stim, DT, "cn", None, None, el, currents)
        return jnp.mean((v[30:] + 60.0) ** 2)

    rng = np.random.default_rng(1)
    i0 = jnp.asarray(-3.0 + rng.standard_normal((60, 1)))  # [µA]
    x0 = jnp.array([[100.0, 30.0, 5.0]])  # [µm]
    grad = jax.jit(jax.grad(loss, (0, 1)))
    gi, gx = grad(i0, x0)
    f = jax.jit(loss)
    di, dx = rng.standard_normal(i0.shape), rng.standard_normal(x0.shape)
    eps = 1e-4
    fd_i = (f(i0 + eps * di, x0) - f(i0 - eps * di, x0)) / (2 * eps)
    fd_x = (f(i0, x0 + eps * dx) - f(i0, x0 - eps * dx)) / (2 * eps)
    np.testing.assert_allclose(jnp.vdot(gi, di), fd_i, rtol=1e-5)
    np.testing.assert_allclose(jnp.vdot(gx, dx), fd_x, rtol=1e-5)
    assert abs(float(fd_i)) > 1e-3 and abs(float(fd_x)) > 1e-4
    on_node = jnp.asarray(net.xyz[net.recording_nodes[2]][None, :])
    gi0, gx0 = grad(i0 * 0.01, on_node)
    assert np.all(np.isfinite(gi0)) and np.all(np.isfinite(gx0))


# --- geometry -----------------------------------------------------------------------
def test_default_layout_is_along_x_from_the_parent_end():
    net = bp.Network.build(
        [bp.Cell(bp.Morphology.ball_and_stick(dend_ncomp=2), position=(0, 5, 0))]
    )
    soma, tip = net.xyz[net.node(bp.Site(0))], net.xyz[net.node(bp.Site(0, 1, 1))]
    np.testing.assert_allclose(soma, [10.0, 5.0, 0.0])  # soma 20 µm from the origin
    np.testing.assert_allclose(tip, [20.0 + 150.0, 5.0, 0.0])  # dendrite 200 µm


def test_neuron_case_geometry_matches_the_script_segment_centres():
    name = "ball_stick_dbs"
    net = build(name)
    secs = case(name)["sections"]
    sites = [bp.Site(0, b, k) for b, s in enumerate(secs) for k in range(s["nseg"])]
    ours = net.xyz[[net.node(s) for s in sites]]
    np.testing.assert_allclose(ours, reference(name)["segment_xyz_um"], atol=1e-12)


def test_cell_positions_keep_the_shared_slice_layout():
    cell = bp.Cell(bp.Morphology.ball_and_stick(dend_ncomp=3)).insert(bp.HH())
    moved = bp.Cell(cell.morphology, cell.mechanisms, position=(0.0, 100.0, 0.0))
    a = bp.Network.build([cell, cell])
    b = bp.Network.build([cell, moved])
    assert a.levels == b.levels and np.array_equal(a.parent, b.parent)
    np.testing.assert_allclose(b.xyz[1::2] - b.xyz[0::2], [[0.0, 100.0, 0.0]] * 5)


# --- errors -------------------------------------------------------------------------
def test_bad_extracellular_inputs_say_how_to_fix():
    net = _cable(ncomp=3, length=30.0)
    el = PointElectrodes.build(net, [[0.0, 10.0, 0.0]])
    s0 = bp.init_state(net, net.default_params, -65.0, jnp.float64)
    stim = jnp.zeros((4, 0))
    with pytest.raises(ConfigError, match=r"electrode_currents: .*steps × electrodes"):
        bp.simulate(net, net.default_params, s0, stim, DT, electrodes=el)
    with pytest.raises(ConfigError, match=r"electrodes: got None"):
        bp.simulate(net, net.default_params, s0, stim, DT, electrode_currents=stim)
    with pytest.raises(ConfigError, match=r"i_membrane: .*one current \[nA\] per node"):
        LFPElectrodes.build(net, [[0.0, 5.0, 0.0]]).potential(jnp.zeros(2))
    with pytest.raises(ConfigError, match=r"v_ext: .*one extracellular potential"):
        bp.step(net, net.default_params, s0, jnp.zeros(0), DT, v_ext=jnp.zeros(2))
    with pytest.raises(ConfigError, match=r"sigma: got -0.3"):
        PointElectrodes.build(net, [[0.0, 0.0, 0.0]], sigma=-0.3)
    with pytest.raises(ConfigError, match=r"positions: .*shape \(n, 3\)"):
        LFPElectrodes.build(net, [0.0, 1.0])
    with pytest.raises(
        ConfigError, match=r"positions: got \[\[inf, 0.0, 0.0\]\].*rows \[1\] are not"
    ):
        PointElectrodes.build(net, [[0.0, 1.0, 0.0], [np.inf, 0.0, 0.0]])
    with pytest.raises(
        ConfigError, match=r"positions: got \[\[nan, 1.0, 0.0\]\].*rows \[0\] are not"
    ):
        LFPElectrodes.build(net, [[np.nan, 1.0, 0.0]])
    with pytest.raises(ConfigError, match=r"targets: .*shape \(n, 3\)"):
        point_source_transfer([0.0, 1.0], [[0.0, 0.0, 0.0]])
    with pytest.raises(ConfigError, match=r"currents: .*one current \[µA\]"):
        el.potential(jnp.zeros(2))
    with pytest.raises(ConfigError, match=r"branches\[0\].direction"):
        bp.Morphology((bp.Branch(-1, direction=(0.0, 0.0, 0.0)),))
    with pytest.raises(ConfigError, match=r"cells\[0\].position"):
        bp.Network.build(
            [bp.Cell(bp.Morphology.single_compartment(), position=(0.0, np.nan, 0.0))]
        )
