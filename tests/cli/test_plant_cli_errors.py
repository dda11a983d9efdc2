"""Plant commands refuse bad numbers with one message naming the option."""

import sys

import pytest

from neuroctl.cli import main

CASES = [
    (["evaluate-plant", "--trials", "0"], "--trials"),
    (["evaluate-plant", "--trials", "-1"], "--trials"),
    (["evaluate-plant", "--chunk", "-1"], "--chunk"),
    (["evaluate-plant", "--chunk", "0"], "--chunk"),
    (["evaluate-plant", "--seed", "99999999999999999999"], "--seed"),
    (["train-plant", "--keep", "0"], "--keep"),
    (["train-plant", "--iterations", "0"], "--iterations"),
    (["train-plant", "--save-every", "0"], "--save-every"),
    (["freeze-plant", "--run", "/nonexistent/run"], "--run"),
    (["freeze-plant", "--trials", "0"], "--trials"),
]


@pytest.mark.parametrize(("argv", "option"), CASES)
def test_bad_plant_options_are_one_clear_error(argv, option, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["neuroctl", *argv])
    with pytest.raises(SystemExit) as err:
        main()
    message = str(err.value.code)
    assert message.startswith("neuroctl: error:") and option in message, message
