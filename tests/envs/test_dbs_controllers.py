"""Classical DBS controllers (`neuroctl.policies.dbs`) and scripts/dbs_controllers.py.

Each controller maps observations to actions inside the action space; on/off
switches on above its threshold and holds; PI integrates its error (and clamps);
phase-locked recovers the phase of a sinusoid; they run through `bptt.episode` on
`BetaSuppression-v0`; the script's report and figures come out of a small cache.
"""

import importlib.util
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neuroctl.errors import ConfigError
from neuroctl.policies import dbs
from neuroctl.policies.base import split
from neuroctl.policies.networks import PolicyIO

FIELDS = ("lfp", "beta_lag0", "beta_lag1", "beta_lag2", "beta_lag3")
FIELDS += ("beta_envelope", "t/T")
IO = PolicyIO((0.0,) * 7, (1.0,) * 7, (-50.0,), (50.0,), 10, FIELDS)
SCRIPT = Path(__file__).parents[2] / "scripts" / "dbs_controllers.py"


def observation(envelope=0.0, y0=0.0, y1=0.0) -> jnp.ndarray:
    """An observation with the envelope and two band-passed samples [nV]."""
    return jnp.asarray([0.0, y0, y1, 0.0, 0.0, envelope, 0.0], jnp.float32)


def run(policy, observations):
    """Actions of `policy` over a sequence of observations (jitted scan)."""

    def body(carry, obs):
        return policy(carry, obs)

    return jax.jit(lambda xs: jax.lax.scan(body, policy.initial_carry(), xs))(
        jnp.stack(observations)
    )


def test_actions_lie_in_the_action_space():
    rng = np.random.default_rng(0)
    observations = [jnp.asarray(rng.normal(0, 40, 7), jnp.float32) for _ in range(20)]
    policies = [
        dbs.HighFrequencyDBS(IO, 80.0),  # beyond i_max: clipped to 50 nA
        dbs.OnOffDBS(IO, 30.0, 10.0, hold=2),
        dbs.ProportionalIntegralDBS(IO, 5.0, 2.0, 100.0, 60.0, 7.7),
        dbs.PhaseLockedDBS(IO, 30.0, -math.pi / 2, math.pi, 6.6),
    ]
    for policy in policies:
        _, actions = run(policy, observations)
        assert actions.shape == (20, 1)
        assert np.all((actions >= -50.0) & (actions <= 50.0)), type(policy).__name__
    _, hf = run(policies[0], observations)
    np.testing.assert_array_equal(hf, 50.0)


def test_on_off_switches_on_above_threshold_and_holds():
    policy = dbs.OnOffDBS(IO, 20.0, threshold=10.0, hold=3)
    envelopes = [5.0, 12.0, 5.0, 5.0, 5.0, 5.0, 11.0, 9.0]
    _, actions = run(policy, [observation(e) for e in envelopes])
    expected = [0, 20, 20, 20, 0, 0, 20, 20]  # on at a crossing, held 3 periods
    np.testing.assert_array_equal(actions[:, 0], expected)


def test_a_negative_amplitude_leads_with_the_other_phase():
    """The sign of the open-loop / on/off amplitude picks the leading phase."""
    _, actions = run(dbs.OnOffDBS(IO, -20.0, threshold=10.0), [observation(12.0)])
    np.testing.assert_array_equal(actions[:, 0], [-20.0])
    _, actions = run(dbs.HighFrequencyDBS(IO, -80.0), [observation(0.0)])
    np.testing.assert_array_equal(actions[:, 0], [-50.0])  # clipped to −i_max
    with pytest.raises(ConfigError, match="amplitude"):
        dbs.OnOffDBS(IO, float("nan"), threshold=10.0)


def test_pi_integrates_the_error_and_clamps():
    ki, period_ms, e = 100.0, 7.7, 4.0  # [nA/(nV·s)], [ms], [nV]
    policy = dbs.ProportionalIntegralDBS(IO, 10.0, 0.0, ki, 5.0, period_ms)

    def body(carry, obs):
        carry, action = policy(carry, obs)
        return carry, (carry, action)

    xs = jnp.stack([observation(10.0 + e)] * 30)
    _, (carries, actions) = jax.lax.scan(body, policy.initial_carry(), xs)
    step = ki * e * period_ms / 1000.0  # [nA] per period
    n = np.arange(1, 31)
    np.testing.assert_allclose(carries, np.minimum(n * step, 5.0), rtol=1e-5)
    np.testing.assert_allclose(actions[:, 0], np.minimum(n * step, 5.0), rtol=1e-5)
    below = dbs.ProportionalIntegralDBS(IO, 10.0, 1.0, ki, 5.0, period_ms)
    _, off = run(below, [observation(3.0)] * 5)
    np.testing.assert_array_equal(off, 0.0)  # below target: no stimulation


@pytest.mark.parametrize("phi", [-2.5, -math.pi / 2, 0.0, 1.0, 3.0])
def test_phase_locked_recovers_a_sinusoids_phase(phi):
    lag_ms, hz, a = 6.6, 20.0, 30.0
    policy = dbs.PhaseLockedDBS(IO, 10.0, phi, math.pi / 4, lag_ms, hz)
    wd = 2 * math.pi * hz * lag_ms / 1000.0
    obs = observation(a, a * math.cos(phi), a * math.cos(phi - wd))
    got = float(policy.beta_phase(obs))
    assert abs(math.remainder(got - phi, 2 * math.pi)) < 1e-4
    assert float(policy(policy.initial_carry(), obs)[1][0]) == 10.0  # in window
    away = observation(a, a * math.cos(phi + 2.0), a * math.cos(phi + 2.0 - wd))
    assert float(policy(policy.initial_carry(), away)[1][0]) == 0.0


def test_missing_field_is_named():
    io = PolicyIO((0.0,), (1.0,), (-1.0,), (1.0,), 3, ("lfp",))
    with pytest.raises(ValueError, match="beta_envelope"):
        dbs.OnOffDBS(io, 1.0, 1.0)


def test_settings_share_one_compilation():
    """Tunables are traced leaves: a second setting does not recompile."""
    traces = []

    @jax.jit
    def act(parts_params, obs):
        traces.append(1)
        from neuroctl.policies.base import merge

        policy = merge(*parts_params)
        return policy(policy.initial_carry(), obs)[1]

    for threshold in (1.0, 2.0):
        parts, params = split(dbs.OnOffDBS(IO, 3.0, threshold, hold=2))
        act((parts, params), observation(1.5))
    assert len(traces) == 1


def _script():
    spec = importlib.util.spec_from_file_location("dbs_controllers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["dbs_controllers"] = module
    spec.loader.exec_module(module)
    return module


def test_controllers_run_through_the_episode_machinery():
    from neuroctl.envs import make

    script = _script()
    env = make("BetaSuppression-v0", episode_ms=23.1, warm_start_ms=0.0)
    params = env.prepare_params(None)
    s = SimpleNamespace(env=env, params=params)
    io = dbs.dbs_io(env, params)
    keys = jax.random.split(jax.random.key(0), 2)
    out = script.run_policy(s, dbs.OnOffDBS(io, 20.0, 0.0, hold=1), keys)
    assert out["actions"].shape == (2, env.n_steps, 1)
    # a cold start observes envelope 0 (not above 0) first, then it is on
    np.testing.assert_array_equal(out["actions"][:, 0], 0.0)
    np.testing.assert_array_equal(out["actions"][:, 1:], 20.0)
    assert np.all(out["charge"] > 0) and np.all(np.isfinite(out["beta_power"]))


def _fake_held(rng, n, t, scale):
    obs = rng.normal(0, 10, (n, t, 7)).astype(np.float32)
    obs[..., 5] = np.abs(obs[..., 5])
    return {
        "return": -rng.uniform(1, 2, n) * scale,
        "beta_power": rng.uniform(500, 900, n) * scale,
        "current_power": np.full(n, 10.0 * (1 - scale) + 0.1),
        "charge": np.full(n, 100.0),
        "diverged": np.zeros(n),
        "obs": obs,
        "actions": np.abs(rng.normal(0, 10, (n, t, 1))),
    }


def test_report_and_figures_from_a_cache(tmp_path):
    script = _script()
    rng = np.random.default_rng(0)
    n, t = 4, 40
    held = lambda scale: _fake_held(rng, n, t, scale)  # noqa: E731
    grid = [
        {
            "params": "x",
            "return": -1.0,
            "beta_power": 300.0,
            "current_power": 2.0,
            "charge": 50.0,
            "diverged": 0.0,
        }
    ]

    def row(name, scale):
        return {"name": name, "params": "p", "held": held(scale), "grid": grid}

    sweep = [
        {**row(f"HF-DBS {a}", 1 / (1 + a)), "amp": 10 * a, "val": {"return": -a}}
        for a in (1, 2)
    ]
    curve = [
        {"steps": k * 100, "wall_s": k, "val_return": -2 + k / 4} for k in range(5)
    ]
    cache = {
        "classical": {
            "rows": {
                "none": row("no stimulation", 1.0),
                "hf_best": sweep[0],
                "onoff": row("on/off", 0.5),
                "pi": row("PI", 0.4),
                "phase": row("phase", 0.6),
            },
            "sweep": sweep,
            "levels": {25.0: 10.0, 50.0: 20.0, 75.0: 30.0},
        },
        "bptt_mlp": {
            **row("BPTT MLP", 0.3),
            "curve": curve,
            "budget_steps": 400,
            "budget_wall_s": 4.0,
            "start_val": -2.0,
        },
        "ppo": {
            **row("SB3 PPO", 0.7),
            "curve": [dict(c, steps=c["steps"] * 300) for c in curve],
            "budget_steps": 120000,
            "budget_wall_s": 40.0,
            "start_val": -2.0,
        },
    }
    io = PolicyIO((0.0,) * 7, (1.0,) * 7, (-50.0,), (50.0,), t, FIELDS)
    s = SimpleNamespace(
        env=SimpleNamespace(n_steps=t),
        io=io,
        period_ms=7.7,
        val=[0, 1],
        held=list(range(n)),
        lag_ms=6.6,
    )
    script.write_report(s, cache, None, tmp_path, {"classical": 1.0})
    text = (tmp_path / "dbs.md").read_text()
    assert "| BPTT MLP |" in text and "300.0x fewer steps" in text
    assert "Stages not run: bptt_gru, sac, rejax" in text
    for name in ("traces", "spectrograms", "pareto"):
        assert (tmp_path / f"dbs_{name}.png").stat().st_size > 10_000
