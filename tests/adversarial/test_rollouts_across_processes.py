"""Seeded rollouts of every registered env are bit-identical in fresh processes."""

import pytest
from adversarial_checks import rollouts_across_processes, summarise


def test_seeded_rollouts_are_identical_across_two_processes(tmp_path):
    from neuroctl.envs import names

    outcomes = rollouts_across_processes(tmp_path, processes=2)  # slow: 5 below
    assert sorted(o.case for o in outcomes) == names()
    assert all(o.handled for o in outcomes), summarise(outcomes)


@pytest.mark.slow
def test_seeded_rollouts_are_identical_across_five_processes(tmp_path):
    outcomes = rollouts_across_processes(tmp_path, processes=5)
    assert all(o.handled for o in outcomes), summarise(outcomes)
