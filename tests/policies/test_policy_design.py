"""Designed label-0 current profiles (`neuroctl.policies.design`)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import short_plant

from neuroctl.envs.core import episode_keys
from neuroctl.envs.evidence_stim import trial_stimulus
from neuroctl.errors import ConfigError
from neuroctl.plants import evidence_task as et
from neuroctl.plants import load
from neuroctl.policies import design, make_policy
from neuroctl.policies.gain import EVIDENCE_SCALE
from neuroctl.train import policy as tp
from neuroctl.train.policy_eval import run_trials


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
    np.testing.assert_allclose(at_time(policy, late)[1], 1.2)
    assert float(at_time(policy, early)[1][0]) < 1e-5


def test_bad_design_inputs_name_the_field(plant):
    with pytest.raises(ConfigError, match="n_bins"):
        design.label0_margin(plant, np.ones(7))  # 1,200 steps / 7
    with pytest.raises(ConfigError, match="power"):
        design.design_profile(plant, -1.0, init=np.ones(6))
    with pytest.raises(ConfigError, match="init"):
        design.design_profile(plant, 1e-8, init=np.zeros(6))
    with pytest.raises(ConfigError, match="init"):
        design.design_profile(plant, 1e-8, init=np.zeros(6), signed=True)
    with pytest.raises(ConfigError, match="iterations"):
        design.design_profile(plant, 1e-8, init=np.ones(6), iterations=0)
    with pytest.raises(ConfigError, match="delivery"):
        design.profile_policy([0.1], g_max=2.0, delivery=1.5)


FB_OBS = jnp.array([-70.0, -70.3, 0.9, -0.004, -0.005])  # d = +0.3 mV, late


def at_time(policy, obs, carry=None, n_steps=520):
    """`policy` on `obs` at the control step of its t/T (``obs[2]``): the open-loop
    profile inside counts control steps in its carry (the int32 leaf)."""
    step = jnp.asarray(round(float(obs[2]) * n_steps), jnp.int32)
    carry = policy.initial_carry() if carry is None else carry
    carry = jax.tree.map(lambda c: step if c.dtype == jnp.int32 else c, carry)
    return policy(carry, obs)


def test_fresh_feedback_profile_is_the_current_shaped_profile():
    fresh = make_policy("feedback_profile", n_bins=4, g_init=0.5, n_obs=5)
    profile = make_policy("open_loop", n_bins=4, g_init=0.5, n_obs=5)
    for obs in (FB_OBS, FB_OBS.at[2].set(0.1), FB_OBS.at[4].set(0.002)):
        np.testing.assert_array_equal(at_time(fresh, obs)[1], at_time(profile, obs)[1])
    with pytest.raises(ConfigError, match="n_obs"):
        make_policy("feedback_profile", n_obs=4)
    with pytest.raises(ConfigError, match="observe-stimulus"):
        tp.PolicyTrainConfig(policy="feedback_profile", observe_evidence=True)


def test_feedback_corrects_the_current_by_the_readout_error_after_the_onset():
    # profile 0.4 in both bins; reference 0.1 mV → 0.5 mV over t/T = 0..1
    policy = design.feedback_policy(
        [0.4, 0.4], np.array([0.1, 0.3, 0.5]), g_max=2.0, feedback_gain=2.0
    )

    def gain(obs):  # s = −0.005: gain = requested current [1]
        return float(at_time(policy, obs)[1][0])

    # t/T 0.9: reference 0.46 mV, observed 0.3 → 0.16 mV behind: 0.4 + 2·0.16
    np.testing.assert_allclose(gain(FB_OBS), 0.4 + 2.0 * 0.16, rtol=1e-9)
    assert gain(FB_OBS.at[2].set(0.5)) == pytest.approx(0.4)  # before the onset
    ahead = FB_OBS.at[1].set(-71.0)  # d = 1 mV, far ahead: no current, not < 0
    assert gain(ahead) == 0.0
    assert gain(FB_OBS.at[3].set(0.004)) == 0.0  # label-1 evidence: off
    parts, params = tp.split(policy)
    grads = jax.grad(lambda p: at_time(tp.merge(parts, p), FB_OBS)[1][0])(params)
    feedback = grads["inner"]["inner"]  # EvidenceSwitch(CurrentShaping(feedback))
    assert float(feedback["feedback_gain"][0]) == pytest.approx(0.16)
    assert np.all(np.isfinite(feedback["reference"])) and np.any(feedback["reference"])


def test_reference_is_the_noise_free_readout_difference(plant):
    profile = np.array([0.0, 0.2, 0.5, 1.0, 0.3, 0.1])
    ref = design.reference_trajectory(plant, profile, n_ref=30)  # every 1 ms
    rec = plant.simulate(design.profile_stimulus(profile, 200))
    assert ref.shape == (31,) and ref[0] == 0.0
    np.testing.assert_allclose(ref[1:], rec[39::40, 0] - rec[39::40, 1], rtol=1e-12)
    with pytest.raises(ConfigError, match="n_ref"):
        design.reference_trajectory(plant, profile, n_ref=7)


def test_feedback_policy_with_zero_gain_runs_as_the_open_loop_design(plant):
    cfg = tp.PolicyTrainConfig(
        policy="feedback_profile",
        n_bins=6,
        observe_evidence=True,
        observe_stimulus=True,
    )
    env, env_params = tp.make_env(plant, cfg)
    profile = np.array([0.1, 0.2, 0.5, 1.0, 0.3, 0.1])
    ref = design.reference_trajectory(plant, profile, n_ref=30)
    keys = jax.random.split(jax.random.key(3), 4)
    n = env.n_steps
    designed = design.profile_policy(profile, 2.0, n_steps=n)
    open_loop = run_trials(env, env_params, designed, keys)
    zero = design.feedback_policy(profile, ref, 2.0, feedback_gain=0.0, n_steps=n)
    closed = run_trials(env, env_params, zero, keys)
    np.testing.assert_array_equal(closed["current_power"], open_loop["current_power"])
    fb_policy = design.feedback_policy(profile, ref, 2.0, n_steps=n)
    fb = run_trials(env, env_params, fb_policy, keys)
    assert np.all(np.isfinite(fb["margin"])) and not np.any(fb["diverged"])


def _set_feedback(params: dict, x):
    """`params` of a feedback profile with k = x[0] and the reference shifted by x[1]
    (``EvidenceSwitch(CurrentShaping(ReadoutFeedback(OpenLoop)))``)."""
    layer = params["inner"]["inner"]
    layer = dict(layer, feedback_gain=x[:1], reference=layer["reference"] + x[1])
    return {"inner": {"inner": layer}}


# per kind: the designed policy and the two params checked, perturbed by x
_FD_CASES = {
    "feedback_profile": (
        design.feedback_policy,
        jnp.array([3.0, 0.05]),  # [1/mV], shift of the reference [mV]
        lambda params, x: _set_feedback(params, x),
    ),
    "tracking_profile": (
        design.tracking_policy,
        jnp.array([0.3, 0.5]),  # [1/period], [1]
        lambda params, x: dict(params, tracking_rate=x[:1], prediction=x[1:]),
    ),
}


@pytest.mark.parametrize("kind", sorted(_FD_CASES))
def test_feedback_gradient_matches_finite_differences(plant, kind):
    build, x, perturb = _FD_CASES[kind]
    cfg = tp.PolicyTrainConfig(
        policy=kind,
        n_bins=6,
        lambda_current=1e4,
        observe_evidence=True,
        observe_stimulus=True,
    )
    env, env_params = tp.make_env(plant, cfg)
    profile = np.array([0.1, 0.2, 0.5, 1.0, 0.3, 0.1])
    ref = design.reference_trajectory(plant, 0.7 * profile, n_ref=30)
    parts, params = tp.split(build(profile, ref, 2.0, n_steps=env.n_steps))
    key = jax.random.key(11)  # a label-0 trial: the profile and feedback act
    assert int(tp.episode(env, env_params, parts, params, key).label) == 0

    def loss(x):
        p = perturb(params, x)
        return tp.episode_loss(tp.episode(env, env_params, parts, p, key), cfg)

    grad = jax.jit(jax.grad(loss))(x)
    assert np.all(grad != 0)
    h, f = 1e-4, jax.jit(loss)  # smaller h: rounding dominates (loss ~0.7)
    for i in range(2):
        e = jnp.zeros(2).at[i].set(h)
        fd = (f(x + e) - f(x - e)) / (2 * h)
        np.testing.assert_allclose(float(grad[i]), float(fd), rtol=1e-5)


def test_training_starts_from_a_shipped_designed_policy(plant, tmp_path):
    from neuroctl.policies import plant_checksum
    from neuroctl.train.policy_commands import _lineage, ship_policy
    from neuroctl.train.policy_run import PolicyRunConfig, train_policy

    cfg = tp.PolicyTrainConfig(
        policy="feedback_profile",
        n_bins=6,
        lr=1e-12,
        batch=2,
        observe_evidence=True,
        observe_stimulus=True,
    )
    profile = np.array([0.1, 0.2, 0.5, 1.0, 0.3, 0.1])
    ref = np.linspace(0.0, 0.5, 521)  # [mV]; the shipped kind has 520 + 1 points
    designed = design.feedback_policy(
        profile, ref, 2.0, n_steps=tp.make_env(plant, cfg)[0].n_steps
    )
    card = {"designed_by": "a test", "evaluation": {"power_reduction": 9.0}}
    checksum = plant_checksum(plant)
    folder = ship_policy(tmp_path / "p", designed, cfg, "short", checksum, card)
    run = PolicyRunConfig(
        tmp_path / "r", iterations=1, progress=False, init_from=folder
    )
    parts, state = train_policy(run, cfg, plant, "short", checksum)
    start = tp.split(designed)[1]
    assert jax.tree.structure(state.params) == jax.tree.structure(start)
    for got, want in zip(  # lr 1e-12: unchanged
        jax.tree.leaves(state.params), jax.tree.leaves(start), strict=True
    ):
        np.testing.assert_allclose(got, want, atol=1e-9)
    stages = _lineage(tmp_path / "r")
    assert stages[0]["shipped_policy"] == str(folder)
    assert stages[0]["designed_by"] == "a test"
    assert stages[0]["card_power_reduction"] == 9.0
    assert stages[1]["run"] == str(tmp_path / "r")
    other = dataclasses.replace(cfg, n_bins=4)
    run2 = dataclasses.replace(run, out=tmp_path / "r2")
    with pytest.raises(ConfigError, match="architecture"):
        train_policy(run2, other, plant, "short", checksum)


def test_a_feedback_onset_the_spec_cannot_record_is_not_shipped(plant, tmp_path):
    from neuroctl.train.policy_commands import ship_policy

    cfg = tp.PolicyTrainConfig(
        policy="feedback_profile",
        n_bins=2,
        observe_evidence=True,
        observe_stimulus=True,
    )
    late = design.feedback_policy([0.4, 0.4], np.zeros(521), 2.0, feedback_onset=0.9)
    with pytest.raises(ConfigError, match="feedback_onset"):
        ship_policy(tmp_path / "p", late, cfg, "short", "abc", {})
    assert not (tmp_path / "p").exists()


def _steps(policy, observations):
    """Gains of `policy` over a sequence of observations (carry threaded) [1]."""
    carry, gains = policy.initial_carry(), []
    for obs in observations:
        carry, g = policy(carry, obs)
        gains.append(float(g[0]))
    return np.array(gains), carry


def test_fresh_tracking_profile_is_the_feedback_profile():
    fresh = make_policy("tracking_profile", n_bins=4, g_init=0.5, n_obs=5)
    feedback = make_policy("feedback_profile", n_bins=4, g_init=0.5, n_obs=5)
    rng = np.random.default_rng(0)
    seq = [
        FB_OBS.at[2].set(t).at[4].set(s)
        for t, s in zip(
            np.linspace(0, 1, 12), rng.normal(-0.005, 0.004, 12), strict=True
        )
    ]
    gains, carry = _steps(fresh, seq)
    np.testing.assert_array_equal(gains, _steps(feedback, seq)[0])
    assert carry[1].shape == (3,) and np.any(gains > 0) and np.any(gains == 0)
    with pytest.raises(ConfigError, match="n_obs"):
        make_policy("tracking_profile", n_obs=4)
    with pytest.raises(ConfigError, match="observe-stimulus"):
        tp.PolicyTrainConfig(policy="tracking_profile", observe_evidence=True)
    with pytest.raises(ConfigError, match="tracking_rate"):
        design.tracking_policy([0.4], np.zeros(3), 2.0, tracking_rate=1.5)


def test_tracking_makes_up_the_current_it_failed_to_deliver():
    policy = design.tracking_policy(
        [0.4, 0.4], np.zeros(3), 2.0, feedback_gain=0.0, tracking_rate=0.5
    )

    # owed 0.5 before the last period; it ran at g 1 on samples −0.002 → −0.004,
    # delivering 1 · 0.003 / 0.005 = 0.6: owed −0.1, so the request is
    # 0.4 − 0.5 · 0.1 = 0.35 on the predicted sample −0.004 + 0.5 · (−0.002)
    def books(*values):  # the carry: (the profile's step counter, the books)
        return jnp.zeros((), jnp.int32), jnp.array(values)

    carry = books(0.5, 1.0, -0.002)
    obs = FB_OBS.at[4].set(-0.004)
    (_, new), gain = at_time(policy, obs, carry)
    np.testing.assert_allclose(gain, [0.35], rtol=1e-12)
    np.testing.assert_allclose(new, [0.3, 0.35, -0.004], rtol=1e-12)
    # a positive sample delivers nothing and the books keep the debt
    (_, new), gain = at_time(policy, obs.at[4].set(0.002), books(0.0, 0.0, 0.001))
    assert float(gain[0]) == 0.0 and float(new[0]) == pytest.approx(0.4)
    # label-1 evidence: off, and nothing is owed
    (_, new), gain = at_time(policy, obs.at[3].set(0.004), carry)
    assert float(gain[0]) == 0.0 and float(new[0]) == 0.0


def test_tracking_delivers_the_profiles_charge_in_the_env(plant):
    cfg = tp.PolicyTrainConfig(
        policy="tracking_profile",
        n_bins=6,
        observe_evidence=True,
        observe_stimulus=True,
    )
    env, env_params = tp.make_env(plant, cfg)
    profile = np.array([0.0, 0.4, 0.4, 0.4, 0.4, 0.4])
    stim = design.profile_stimulus(profile, plant.task.n_steps // 6)
    currents = et.stimulus_currents(stim, plant.input_weights, plant.task)  # [nA]
    exact = float(jnp.sum(jnp.abs(currents)) * plant.task.dt)  # [pC]
    keys = jax.random.split(jax.random.key(5), 16)
    ref = np.zeros(31)
    runs = {
        name: run_trials(
            env,
            env_params,
            design.tracking_policy(
                profile, ref, 2.0, 0.0, rate, pred, n_steps=env.n_steps
            ),
            keys,
        )
        for name, rate, pred in (("plain", 0.0, 0.0), ("tracked", 1 / 3, 0.5))
    }
    # trials whose evidence switch is on from the profile's start (5 ms) to the end
    steps = np.arange(1, plant.task.n_steps + 1)

    def running_mean(k):
        return np.cumsum(trial_stimulus(env, episode_keys(k)[0], env_params)) / steps

    on = np.array([np.all(running_mean(k)[200:] < 0) for k in keys])
    assert 4 <= on.sum() < 16
    err = {k: np.abs(r["charge"][on] / exact - 1) for k, r in runs.items()}
    assert np.mean(err["tracked"]) < 0.5 * np.mean(err["plain"]), err
    assert np.max(err["tracked"]) < 0.1, err
