"""Every CLI subcommand × every numeric/path option × bad values: a non-zero exit,
no traceback, a message naming the option."""

import pytest
from adversarial_checks import (
    CLI,
    cli_bad_values,
    cli_cases,
    cli_subprocess,
    summarise,
)


def test_every_subcommand_is_covered():
    from helpers import cli_help

    listed = cli_help().split("{", 1)[1].split("}", 1)[0].split(",")
    assert sorted(listed) == sorted(CLI)


@pytest.mark.parametrize("command", sorted(CLI))
def test_bad_values_are_one_clear_error(command, tmp_path):
    cases = [c for c in cli_cases() if c[0] == command]
    outcomes = cli_bad_values(tmp_path, cases, timeout=120)
    assert all(o.handled for o in outcomes), summarise(outcomes)


@pytest.mark.parametrize("command", ["train", "train-policy", "freeze-plant"])
def test_the_real_process_prints_no_traceback(command, tmp_path):
    """The in-process harness agrees with a real process (one case per module of
    commands: cli/train.py, train/policy_commands.py, train/commands.py)."""
    case = next(c for c in cli_cases() if c[0] == command)
    outcome = cli_subprocess(tmp_path, *case)
    assert outcome.handled, outcome.reason
