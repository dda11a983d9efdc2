"""Mechanism parameters of absurd magnitude are refused at construction, naming the
field, the value, the range and a fix; every accepted value simulates finitely."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroctl.biophysics as bp
from neuroctl.biophysics import basal_ganglia as bg
from neuroctl.biophysics import bounds
from neuroctl.biophysics.calcium import CAI_FLOOR
from neuroctl.errors import ConfigError

# (class, field, value): each passed validation before and overflowed the float32
# state to NaN with no error (results/reliability.md, "solver constructors")
ABSURD = [
    (bp.CaHVA, "g", 1e300),
    (bp.H, "e_h", 3.544588103452738e150),
    (bp.NaTs2T, "g", np.float64(1.1573040538349565e182)),
    (bp.H, "g", 1e300),
    (bp.HH, "gnabar", 1e300),
    (bp.HH, "el", -1e38),
    (bp.Leak, "g", np.float32(1e38)),
    (bp.Leak, "e", 1e6),
    (bp.M, "e_k", 1e38),
    (bp.SKv3_1, "g", 1e38),
    (bp.CaLVA, "g", 1e38),
    (bp.SKE2, "e_k", -1e300),
    (bp.HH, "temperature", 1e4),
    (bp.CalciumDynamics, "decay", 1e-300),
    (bp.CalciumDynamics, "decay", 1e300),
    (bp.CalciumDynamics, "depth", 1e-300),
    (bp.CalciumDynamics, "gamma", 1e300),
    (bp.CalciumDynamics, "cao", 1e-300),
    (bp.CalciumDynamics, "cai0", 1e300),
    (bp.CalciumDynamics, "min_cai", 1e38),
    (bp.GradedSynapse, "g", 1e38),
    (bp.GradedSynapse, "e_syn", 1e300),
    (bp.GradedSynapse, "v_th", -1e300),
    (bp.GradedSynapse, "delta", 1e-300),
    (bp.GradedSynapse, "k_minus", 1e-300),
    (bp.GradedSynapse, "k_minus", 1e300),
    (bg.RTSynapse, "beta", 1e-300),
    (bg.RTSynapse, "sigma_h", 1e-300),
    (bg.AppliedCurrent, "i_app", 1e300),
    (bg.CalciumActivatedK, "k1", 1e-300),
    (bg.STNChannels, "g_na", 1e300),
]


@pytest.mark.parametrize(("cls", "field", "value"), ABSURD)
def test_absurd_magnitudes_are_refused_naming_field_value_and_range(cls, field, value):
    with pytest.raises(ConfigError) as err:
        cls(**{field: value})
    msg = str(err.value)
    assert msg.startswith(f"{cls.__name__}.{field}: got ")
    assert f"got {value!r} " in msg  # the value
    assert "expected finite values in " in msg  # the range, with its unit
    assert f"pass e.g. {cls.__name__}({field}=" in msg  # the fix


def test_messages_state_the_unit():
    with pytest.raises(ConfigError, match=r"\[0, 1e\+06\] mS/cm² .*HH\(gnabar=120.0\)"):
        bp.HH(gnabar=1e300)
    with pytest.raises(ConfigError, match=r"\[0.001, 1e\+09\] ms \(a time constant\)"):
        bp.CalciumDynamics(decay=1e-300)


def test_with_param_applies_the_same_ranges():
    cell = bp.Cell(bp.Morphology.single_compartment(18.8, 9.4)).insert(bp.HH())
    net = bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])
    with pytest.raises(ConfigError, match=r"HH.gnabar: got 1e\+300.*\[0, 1e\+06\]"):
        net.with_param(net.default_params, bp.HH, "gnabar", 1e300)
    params = net.with_param(net.default_params, bp.HH, "gnabar", 1e6)  # the edge
    assert float(params.channels[0].gnabar[0]) == 1e6


def test_numpy_scalars_are_accepted_and_keep_float32():
    ch = bp.HH(gnabar=np.float32(120.0), temperature=np.float64(6.3))
    assert type(ch.temperature) is float  # a static field: a plain, weak float
    cell = bp.Cell(bp.Morphology.single_compartment(18.8, 9.4)).insert(ch)
    cell = cell.insert(bp.CalciumDynamics(temperature=np.int64(34)))
    net = bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])
    state = bp.init_state(net, net.default_params)  # float32
    final, out = bp.simulate(
        net, net.default_params, state, jnp.full((20, 1), 0.1), 0.025
    )
    assert final.gates.dtype == jnp.float32 and np.all(np.isfinite(out))


def _shipped_mechanisms():
    """Every mechanism the shipped models insert (their constructors ran)."""
    from neuroctl.plants.beta import BetaNetConfig, gp_cell, stn_cell, tc_cell
    from neuroctl.plants.evidence_net import EvidenceNetConfig, recurrent_cell

    cfg = BetaNetConfig()
    cells = [
        recurrent_cell(EvidenceNetConfig()),
        stn_cell(cfg, 25.0),
        gp_cell(cfg, 8.0),
        tc_cell(cfg, 0.0),
    ]
    return [m for c in cells for m, _ in c.mechanisms]


def test_shipped_models_construct_and_sit_inside_the_ranges():
    from neuroctl.plants.beta import HEALTHY, PARKINSONIAN, BetaNetConfig, connections

    mechanisms = _shipped_mechanisms()
    assert {type(m).__name__ for m in mechanisms} >= {"NaTs2T", "SKE2", "STNCalcium"}
    for bg_params in (HEALTHY, PARKINSONIAN):
        mechanisms += [c.synapse for c in connections(BetaNetConfig(), bg_params)]
    for m in mechanisms:
        for f in dataclasses.fields(m):
            bound = type(m).param_bound(f.name)
            assert bound is not None, (type(m).__name__, f.name)  # every kind known
            assert bound.contains(np.asarray(getattr(m, f.name), float))


def _edges(bound: bounds.Bound) -> list[float]:
    low = np.nextafter(bound.low, np.inf) if bound.open_low else bound.low
    return [float(low), bound.high] + ([1e-30, 1e-300] if bound.open_low else [])


KINDS = [
    (bp.Leak, []),
    (bp.HH, []),
    (bp.NaTs2T, []),
    (bp.H, []),
    (bp.SKE2, [bp.CaHVA(), bp.CalciumDynamics()]),
    (bp.CaHVA, [bp.CalciumDynamics()]),
    (bp.CalciumDynamics, [bp.CaHVA(), bp.SKE2()]),
    (bg.CalciumActivatedK, [bg.STNCalcium(), bp.CalciumDynamics(min_cai=0.0)]),
    (bg.AppliedCurrent, []),
]


@pytest.mark.parametrize(
    ("cls", "others"), KINDS, ids=lambda x: getattr(x, "__name__", "")
)
def test_every_accepted_edge_value_simulates_finitely(cls, others):
    """Each field at each end of its range (others at their defaults), float32."""
    cell = bp.Cell(bp.Morphology.single_compartment(18.8, 9.4)).insert(cls())
    for m in others + ([] if cls is bp.Leak else [bp.Leak()]):
        cell = cell.insert(m)
    net = bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])

    @jax.jit
    def run(params, amp):
        state = bp.init_state(net, params)
        _, out = bp.simulate(
            net,
            params,
            state,
            jnp.full((40, 1), amp, jnp.float32),
            0.025,
            record=lambda s: jnp.concatenate([s.v, s.gates, s.cai, s.eca]),
        )
        return out

    fields = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("static")]
    for name in fields:
        for value in _edges(cls.param_bound(name)):
            cls(**{name: value})  # accepted by the constructor
            params = net.with_param(net.default_params, cls, name, value)
            for amp in (0.1, 1000.0):  # [nA]
                out = np.asarray(run(params, amp))
                assert np.all(np.isfinite(out)), (cls.__name__, name, value, amp)


def test_synapse_edge_values_simulate_finitely():
    fields = ("g", "e_syn", "v_th", "delta", "k_minus")
    cell = bp.Cell(bp.Morphology.single_compartment(18.8, 9.4)).insert(bp.HH())
    syn = bp.Connection(bp.GradedSynapse(), bp.Site(0), bp.Site(1))
    net = bp.Network.build(
        [cell, cell], [syn], stimuli=[bp.Site(0)], recordings=[bp.Site(1)]
    )

    @jax.jit
    def run(params):
        state = bp.init_state(net, params)
        _, out = bp.simulate(
            net,
            params,
            state,
            jnp.full((40, 1), 0.5, jnp.float32),
            0.025,
            record=lambda s: jnp.concatenate([s.v, *s.syn]),
        )
        return out

    for name in fields:
        for value in _edges(bp.GradedSynapse.param_bound(name)):
            bp.GradedSynapse(**{name: value})
            params = net.with_param(net.default_params, bp.GradedSynapse, name, value)
            assert np.all(np.isfinite(np.asarray(run(params)))), (name, value)


def test_a_calcium_concentration_is_never_negative():
    """SKE2 reads a negative cai as 0; init_state floors even a traced cai0 < 0."""
    (z_inf,), _ = bp.SKE2().gate_dynamics(-65.0, jnp.array([-1.0, -1e-7, 0.0, 1e-3]))
    assert np.all(np.isfinite(z_inf)) and np.all((z_inf >= 0) & (z_inf <= 1))

    cell = (
        bp.Cell(bp.Morphology.single_compartment(18.8, 9.4))
        .insert(bp.CaHVA())
        .insert(bp.SKE2())
        .insert(bp.CalciumDynamics())
    )
    net = bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])

    @jax.jit
    def start(cai0):  # traced: the constructor's check cannot run
        params = net.with_param(net.default_params, bp.CalciumDynamics, "cai0", cai0)
        return bp.init_state(net, params, -65.0, jnp.float64)

    state = start(-1.0)
    assert float(state.cai[0]) == CAI_FLOOR
    assert np.all(np.isfinite(state.gates)) and np.all(np.isfinite(state.eca))
    with pytest.raises(ConfigError, match=r"CalciumDynamics.cai0: got -1"):
        bp.CalciumDynamics(cai0=-1.0)
