"""Designed label-0 current profiles (`neuroctl.policies.design`)."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import short_plant

from neuroctl.errors import ConfigError
from neuroctl.plants import evidence_task as et
from neuroctl.plants import load
from neuroctl.policies import design
from neuroctl.policies.gain import EVIDENCE_SCALE


@pytest.fixture(scope="module")
def plant():
    return short_plant()  # 30-ms trial: 1,200 solver steps


def test_power_is_the_envs_mean_squared_current(plant):
    profile = np.array([0.0, 0.2, 0.5, 1.0, 0.3, 0.1])  # 5-ms bins
    stim = design.profile_stimulus(profile, plant.task.n_steps // len(profile))
    np.testing.assert_allclose(stim[:200], 0.0)
    np.testing.assert_allclose(stim[-1], -0.1 * EVIDENCE_SCALE)
    currents = et.stimulus_currents(stim, plant.input_weights, plant.task)  # [nA]
    np.testing.assert_allclose(
        design.profile_power(plant, profile), jnp.mean(currents**2), rtol=1e-12
    )
    np.testing.assert_allclose(
        design.label0_margin(plant, profile),
        plant.logits(stim) @ jnp.array([1.0, -1.0]),
        rtol=1e-12,
    )


def test_the_hand_gate_is_right_and_no_input_is_wrong_on_the_full_trial():
    full = load("evidence_integration")
    starts = np.arange(52) * 10.0  # [ms]
    assert float(design.label0_margin(full, np.zeros(52))) < -1.0  # answers 1
    gate = np.where(starts >= 340.0, 0.4, 0.0)  # policy_late_gate.md: 1000/1000
    assert 0.1 < float(design.label0_margin(full, gate)) < 0.4


@pytest.mark.parametrize("signed", [False, True])
def test_design_keeps_the_power_and_raises_the_margin(plant, signed):
    init = np.linspace(0.05, 0.5, 6)
    power = 0.5 * float(design.profile_power(plant, init))  # [nA²]
    d = design.design_profile(plant, power, init=init, iterations=4, signed=signed)
    np.testing.assert_allclose(design.profile_power(plant, d.profile), power, rtol=1e-9)
    assert d.margins.shape == (4,) and d.power == power
    assert d.margin == pytest.approx(float(design.label0_margin(plant, d.profile)))
    assert d.margin > d.margins[0] + 1e-4  # better than the rescaled start
    assert signed or np.all(d.profile >= 0)


def test_delivery_ratio_is_below_one_and_one_without_noise(plant):
    ratio = design.delivery_ratio(plant.task, periods=20_000)
    assert 0.85 < ratio < 0.97  # positive samples and the clip cost ~7-12 %
    quiet = dataclasses.replace(plant.task, noise_std=1e-6)
    assert design.delivery_ratio(quiet, periods=2_000) == pytest.approx(1.0, abs=1e-3)


def test_profile_policy_requests_the_current_over_the_delivery():
    policy = design.profile_policy([0.0, 0.3], g_max=2.0, delivery=0.5)
    sample = -0.5 * EVIDENCE_SCALE  # a half-strength negative sample [1]
    late = jnp.array([-70.0, -70.0, 0.75, -0.004, sample])  # second bin
    early = late.at[2].set(0.25)
    # gain = (p / delivery) · EVIDENCE_SCALE / (−s) = 0.6 · 2 = 1.2
    np.testing.assert_allclose(policy(policy.initial_carry(), late)[1], 1.2)
    assert float(policy(policy.initial_carry(), early)[1][0]) < 1e-5


def test_bad_design_inputs_name_the_field(plant):
    with pytest.raises(ConfigError, match="n_bins"):
        design.label0_margin(plant, np.ones(7))  # 1,200 steps / 7
    with pytest.raises(ConfigError, match="power"):
        design.design_profile(plant, -1.0, init=np.ones(6))
    with pytest.raises(ConfigError, match="init"):
        design.design_profile(plant, 1e-8, init=np.zeros(6))
    with pytest.raises(ConfigError, match="iterations"):
        design.design_profile(plant, 1e-8, init=np.ones(6), iterations=0)
    with pytest.raises(ConfigError, match="delivery"):
        design.profile_policy([0.1], g_max=2.0, delivery=1.5)
