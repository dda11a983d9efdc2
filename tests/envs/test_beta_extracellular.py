"""`BetaSuppression-v0` with ``stimulation="extracellular"``: DBS through the tissue.

The actuator's potential is the biophysics point-source potential, no current enters
an input site, a zero action is the unstimulated plant (the same rewards as the
somatic env's), a cathode beside the STN axons moves them and a distant one not,
the Gymnasium checker is clean, and the return's gradient matches finite
differences (float64).
"""

import warnings

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import neuroctl  # noqa: F401  (registers the neuroctl/... ids)
from neuroctl import biophysics as bp
from neuroctl.envs import ExtracellularElectrodes, make, rollout_actions
from neuroctl.errors import ConfigError

SHORT = dict(episode_ms=23.1, warm_start_ms=0.0)  # 3 control periods, cold starts
EXTRA = dict(stimulation="extracellular", **SHORT)


def test_the_actuator_is_the_point_source_field():
    env = make("BetaSuppression-v0", n_electrodes=2, dtype="float64", **EXTRA)
    act = env.default_params.actuator
    assert isinstance(act, ExtracellularElectrodes) and act.unit() == "µA"
    net = env.unwrapped.network
    # electrode j: the STN axons' midpoint (x), its group's mean y, 30 µm off (z)
    axon_mid = 20.0 + 150.0  # soma_length + axon_length / 2 [µm]
    positions = [(axon_mid, 80.0, 30.0), (axon_mid, 280.0, 30.0)]
    want = bp.PointElectrodes.build(net, jnp.asarray(positions))
    a = jnp.asarray([-30.0, 12.0])  # [µA]
    np.testing.assert_allclose(act.extracellular(a), want.potential(a), rtol=1e-12)
    inputs, sources = act.apply(a, None)
    assert float(jnp.abs(inputs).max()) == 0.0  # nothing enters an input site
    np.testing.assert_allclose(sources, 1e3 * a)  # [nA] for the energy terms
    space = env.action_space(env.default_params)
    np.testing.assert_array_equal(space.high, [100.0, 100.0])  # [µA]


def test_zero_current_is_the_unstimulated_plant():
    key = jax.random.key(5)
    soma = make("BetaSuppression-v0", dtype="float64", **SHORT)
    extra = make("BetaSuppression-v0", dtype="float64", **EXTRA)
    zero = jnp.zeros((soma.n_steps, 1))
    a = rollout_actions(soma, key, zero)
    b = rollout_actions(extra, key, zero)
    # equal up to float rounding (the field path adds the activating function of
    # V_e = 0: other fused kernels)
    np.testing.assert_allclose(b.rewards, a.rewards, rtol=1e-10)
    np.testing.assert_allclose(b.obs, a.obs, rtol=1e-10, atol=1e-12)


def test_a_cathode_near_the_axons_moves_them_a_distant_one_does_not():
    """One control period at −50 µA: 30 µm from the STN axons their ends move by
    millivolts; 5 mm away (a nearly uniform field along them) by almost nothing."""

    def axon_shift(distance_um: float) -> float:  # [mV]
        env = make(
            "BetaSuppression-v0",
            dtype="float64",
            electrode_distance_um=distance_um,
            **EXTRA,
        ).unwrapped
        key, p = jax.random.key(0), env.default_params
        state = env.init_state(key, p)
        rest, _ = env.transition(key, state, jnp.zeros(1), p)
        hit, _ = env.transition(key, state, jnp.asarray([-50.0]), p)
        nodes = dict(zip(env.readouts, env.network.recording_nodes, strict=True))
        axon = [n for r, n in nodes.items() if r.startswith("v_stn_axon")]
        assert len(axon) == 10
        idx = np.asarray(axon)
        return float(np.max(np.abs(hit.sim.v[idx] - rest.sim.v[idx])))

    assert axon_shift(30.0) > 1.0
    assert axon_shift(5000.0) < 0.1


def test_registered_check_env_clean():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gymnasium.make("neuroctl/BetaSuppression-v0", **EXTRA)
        check_env(env.unwrapped)
        env.reset(seed=0)
        _, reward, _, _, info = env.step(env.action_space.sample())
    assert [str(w.message) for w in caught] == []
    assert np.isfinite(reward) and info["charge"] > 0  # [pC]


def test_return_gradient_matches_finite_differences():
    env = make("BetaSuppression-v0", dtype="float64", **EXTRA)
    key = jax.random.key(3)

    def episode_return(a):  # a constant electrode current [µA]
        return jnp.sum(rollout_actions(env, key, jnp.full((env.n_steps, 1), a)).rewards)

    f = jax.jit(episode_return)
    grad = float(jax.jit(jax.grad(episode_return))(-20.0))
    h = 1e-5  # [µA]
    fd = (float(f(-20.0 + h)) - float(f(-20.0 - h))) / (2 * h)
    assert grad != 0.0
    np.testing.assert_allclose(grad, fd, rtol=1e-4)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"stimulation": "skull"}, "stimulation"),
        (
            {"stimulation": "extracellular", "electrode_distance_um": -5.0},
            "electrode_distance_um",
        ),
        ({"stimulation": "extracellular", "n_electrodes": 0}, "n_electrodes"),
    ],
)
def test_bad_options_name_the_field(options, field):
    with pytest.raises(ConfigError, match=field):
        make("BetaSuppression-v0", **{**SHORT, **options})
