"""Hypothesis over solver constructors and env actions/params: every non-finite
output is either refused at construction (ConfigError) or flagged as diverged."""

import pytest
from adversarial_checks import (
    classify_build,
    env_action_outcome,
    env_param_names,
    env_param_outcome,
    geometry,
    hostile_actions,
    hostile_floats,
    mechanism_case,
    mechanism_fields,
    mechanism_net,
    morphology_net,
    synapse_net,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(geometry())
def test_morphologies_are_refused_or_simulate_finitely(case):
    parents, kwargs = case
    outcome = classify_build(
        "solver", f"{parents} {kwargs}", lambda: morphology_net(parents, **kwargs)
    )
    assert outcome.handled, outcome.reason


@FAST
@given(mechanism_case())
def test_channel_parameters_are_refused_or_simulate_finitely(case):
    name, field, value = case
    outcome = classify_build(
        "solver", f"{name}({field}={value!r})", lambda: mechanism_net(*case)
    )
    assert outcome.handled, outcome.reason


@FAST
@given(st.sampled_from(mechanism_fields("GradedSynapse")), hostile_floats())
def test_synapse_parameters_are_refused_or_simulate_finitely(field, value):
    outcome = classify_build(
        "solver", f"GradedSynapse({field}={value!r})", lambda: synapse_net(field, value)
    )
    assert outcome.handled, outcome.reason


@FAST
@given(hostile_actions())
def test_env_actions_never_reach_the_outputs_as_non_finite(action):
    outcome = env_action_outcome(action)
    assert outcome.handled, outcome.reason


@FAST
@given(st.sampled_from(env_param_names()), hostile_floats(), st.booleans())
def test_env_params_are_refused_or_flagged(name, value, traced):
    outcome = env_param_outcome(name, float(value), traced)
    assert outcome.handled, outcome.reason


@pytest.mark.parametrize("traced", [True, False])
def test_every_env_param_with_nan(traced):
    bad = [env_param_outcome(n, float("nan"), traced) for n in env_param_names()]
    assert all(o.handled for o in bad), [o.reason for o in bad if not o.handled]


@pytest.mark.slow
def test_every_mechanism_parameter_at_every_extreme():
    from adversarial_checks import EXTREMES, MECHANISMS

    outcomes = [
        classify_build(
            "solver",
            f"{name}({field}={value!r})",
            lambda n=name, f=field, v=value: mechanism_net(n, f, v),
        )
        for name in MECHANISMS
        for field in mechanism_fields(name)
        for value in EXTREMES
    ]
    assert all(o.handled for o in outcomes), [o.case for o in outcomes if not o.handled]


@pytest.mark.slow
@pytest.mark.parametrize("traced", [True, False])
def test_every_env_param_at_every_extreme(traced):
    from adversarial_checks import EXTREMES

    outcomes = [
        env_param_outcome(name, value, traced)
        for name in env_param_names()
        for value in EXTREMES
    ]
    assert all(o.handled for o in outcomes), [o.case for o in outcomes if not o.handled]
