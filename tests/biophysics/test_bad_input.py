"""Bad input gets a clear error naming the field, the value and the fix."""

import jax.numpy as jnp
import pytest
from helpers import hh_point

import neuroctl.biophysics as bp
from neuroctl.errors import ConfigError


@pytest.mark.parametrize(
    "field,value",
    [
        ("length", 0.0),
        ("radius", -1.0),
        ("axial_resistivity", float("nan")),
        ("capacitance", float("inf")),
    ],
)
def test_non_positive_geometry_is_refused(field, value):
    kwargs = {field: [10.0, value]}
    with pytest.raises(ConfigError, match=rf"branches\[1\]\.{field}: got .*in \["):
        bp.Morphology.from_parents([-1, 0], **kwargs)


def test_zero_compartments_is_refused():
    with pytest.raises(ConfigError, match=r"branches\[0\]\.ncomp: got 0"):
        bp.Morphology.from_parents([-1], ncomp=0)


@pytest.mark.parametrize("parents", [[-1, 2, 1], [-1, 1], [0, -1], [-1, -1], [-1, 5]])
def test_bad_parents_and_cycles_are_refused(parents):
    with pytest.raises(ConfigError, match="parent"):
        bp.Morphology.from_parents(parents)


def test_per_branch_list_of_wrong_length():
    with pytest.raises(
        ConfigError, match=r"length: got \[1.0, 2.0\].*3 values \(one per branch\)"
    ):
        bp.Morphology.from_parents([-1, 0, 0], length=[1.0, 2.0])


def test_unknown_parameter_name_lists_the_valid_ones():
    net = hh_point()
    with pytest.raises(ConfigError, match=r"no parameter 'gna'.*'gnabar'"):
        net.with_param(net.default_params, bp.HH, "gna", 1.0)


def test_mechanism_not_in_network():
    net = hh_point()
    with pytest.raises(ConfigError, match=r"no 'NaTs2T' in this network.*HH"):
        net.with_param(net.default_params, bp.NaTs2T, "g", 1.0)


def test_insert_on_missing_branch_and_twice():
    cell = bp.Cell(bp.Morphology.from_parents([-1, 0]))
    with pytest.raises(ConfigError, match=r"branches: got \[3\]"):
        cell.insert(bp.HH(), [3])
    with pytest.raises(ConfigError, match="already have a HH"):
        cell.insert(bp.HH()).insert(bp.HH(), 1)
    with pytest.raises(ConfigError, match="mechanism: got 'HH'"):
        cell.insert("HH")


def test_bad_sites_name_the_list_entry():
    cell = bp.Cell(bp.Morphology.single_compartment()).insert(bp.HH())
    with pytest.raises(
        ConfigError, match=r"stimuli\[0\]: got Site\(cell=0, branch=0, comp=2\)"
    ):
        bp.Network.build([cell], stimuli=[bp.Site(0, 0, 2)])
    with pytest.raises(ConfigError, match=r"recordings\[1\]"):
        bp.Network.build([cell], recordings=[bp.Site(0), bp.Site(1)])


@pytest.mark.parametrize("dt", [0.0, -0.025, float("nan")])
def test_non_positive_dt_is_refused(dt):
    net = hh_point()
    s = bp.init_state(net, net.default_params)
    with pytest.raises(ConfigError, match=r"dt: got .*> 0 \[ms\]"):
        bp.simulate(net, net.default_params, s, jnp.zeros((5, 1)), dt)


@pytest.mark.parametrize("shape", [(5,), (5, 2), (5, 1, 1)])
def test_mismatched_stimulus_shape_is_refused(shape):
    net = hh_point()
    s = bp.init_state(net, net.default_params)
    with pytest.raises(ConfigError, match=r"stimulus: got 'array of shape .*\(T, 1\)"):
        bp.simulate(net, net.default_params, s, jnp.zeros(shape), 0.025)
    with pytest.raises(ConfigError, match=r"stimulus: .*shape \(1,\)"):
        bp.step(net, net.default_params, s, jnp.zeros((2,)), 0.025)


def test_bad_scheme_and_checkpoint_lengths():
    net = hh_point()
    s = bp.init_state(net, net.default_params)
    with pytest.raises(ConfigError, match="scheme: got 'rk4'"):
        bp.simulate(net, net.default_params, s, jnp.zeros((5, 1)), 0.025, scheme="rk4")
    with pytest.raises(ConfigError, match=r"checkpoint_lengths: got \(2, 2\) .* >= 5"):
        bp.simulate(
            net,
            net.default_params,
            s,
            jnp.zeros((5, 1)),
            0.025,
            checkpoint_lengths=(2, 2),
        )


def test_float64_without_x64_is_refused():
    import jax

    net = hh_point()
    with jax.enable_x64(False):
        with pytest.raises(ConfigError, match="dtype: got 'float64'.*jax_enable_x64"):
            bp.init_state(net, net.default_params, -65.0, jnp.float64)
    with pytest.raises(ConfigError, match="dtype: got .*int32.*float dtype"):
        bp.init_state(net, net.default_params, -65.0, jnp.int32)


@pytest.mark.parametrize(
    "bad",
    [
        {"length": [10.0, 1e-300]},
        {"radius": 1e300},
        {"radius": 1e-300},
        {"axial_resistivity": float("nan")},
        {"capacitance": -1.0},
    ],
)
def test_absurd_geometry_is_refused_before_it_becomes_nan(bad):
    import neuroctl.biophysics as bp

    with pytest.raises(ConfigError, match=next(iter(bad))):
        bp.Morphology.from_parents([-1, 0], **bad)


def test_numpy_scalars_are_accepted_in_morphologies():
    import numpy as np

    import neuroctl.biophysics as bp

    m = bp.Morphology.from_parents(
        [-1, 0], ncomp=np.int64(2), length=[np.float32(10.0), 5.0], radius=np.float64(1)
    )
    assert m.num_compartments == 4 and m.branches[0].length == 10.0


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: bp.Leak(g=float("nan")), "Leak.g"),
        (lambda: bp.Leak(g=-1.0), "Leak.g"),
        (lambda: bp.HH(gnabar=-0.12), "HH.gnabar"),
        (lambda: bp.HH(ek=float("inf")), "HH.ek"),
        (lambda: bp.GradedSynapse(delta=0.0), "GradedSynapse.delta"),
        (lambda: bp.GradedSynapse(g=-0.01), "GradedSynapse.g"),
        (lambda: bp.CalciumDynamics(decay=-1.0), "CalciumDynamics.decay"),
    ],
)
def test_mechanism_parameters_are_validated(make, field):
    with pytest.raises(ConfigError, match=rf"{field}: got"):
        make()


def test_calcium_stays_positive_under_an_absurd_clamp():
    import numpy as np

    cell = (
        bp.Cell(bp.Morphology.single_compartment(10.0, 1.0))
        .insert(bp.NaTs2T())
        .insert(bp.SKv3_1())
        .insert(bp.SKE2())
        .insert(bp.CaHVA())
        .insert(bp.CaLVA())
        .insert(bp.CalciumDynamics())
    )
    net = bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])
    state = bp.init_state(net, net.default_params, -65.0, jnp.float64)
    _, out = bp.simulate(
        net,
        net.default_params,
        state,
        jnp.full((400, 1), 1000.0),  # [nA]: drove cai below 0 and SKE2 to NaN
        0.025,
        record=lambda s: jnp.concatenate([s.v, s.cai]),
    )
    out = np.asarray(out)
    assert np.all(np.isfinite(out)) and out[:, 1].min() > 0
