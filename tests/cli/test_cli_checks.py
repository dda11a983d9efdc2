"""Every command checks its options before any work (neuroctl/options.py).

Integer options are bounded (a value beyond 2**64 is refused, not passed to XLA),
output paths are probed before the simulation or training, and each message
names the option that is wrong.
"""

import sys
import time
from pathlib import Path

import pytest

from neuroctl.cli import main
from neuroctl.errors import ConfigError
from neuroctl.options import (
    blamed_on,
    check_artefact_destination,
    check_ints,
    check_output_file,
    check_output_folder,
)

HUGE = "99999999999999999999"  # > 2**64
PROC = "/proc/neuroctl/x"  # cannot be created, even by root


class _Worked(Exception):
    """Raised by the stubbed work: a check came too late."""


def _no_work(*_, **__):
    raise _Worked


@pytest.fixture
def no_work(monkeypatch):
    """Every command's first piece of work raises `_Worked`."""
    import neuroctl.cli.train as cli_train
    import neuroctl.demo
    import neuroctl.train.policy_commands as pc
    import neuroctl.train.run
    import neuroctl.train.ship

    for module, name in [
        (cli_train, "constant_sweep"),
        (cli_train, "evaluate_network"),
        (pc, "_load_plant"),
        (pc, "_evaluate_and_report"),
        (neuroctl.demo, "run_demo"),
        (neuroctl.train.run, "train_plant"),
        (neuroctl.train.ship, "freeze"),
        (neuroctl.train.ship, "evaluate_accuracy"),
    ]:
        monkeypatch.setattr(module, name, _no_work)


def _error(argv: list[str], cwd: Path, monkeypatch) -> str:
    """The one-line error of ``neuroctl <argv>`` run in `cwd` (must be refused)."""
    import jax

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["neuroctl", *argv])
    x64 = jax.config.jax_enable_x64
    t0 = time.perf_counter()
    try:
        with pytest.raises(SystemExit) as err:
            main()
    finally:
        jax.config.update("jax_enable_x64", x64)
    assert time.perf_counter() - t0 < 60, argv  # refused, not run
    message = str(err.value.code)
    assert message.startswith("neuroctl: error: "), message
    assert "\n" not in message.strip(), message
    return message


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["train", "--batch", HUGE], "--batch"),
        (["train", "--iterations", HUGE], "--iterations"),
        (["train", "--sweep-points", HUGE], "--sweep-points"),
        (["train-policy", "--hidden", HUGE], "--hidden"),
        (["train-policy", "--truncation", HUGE], "--truncation"),
        (["train-policy", "--eval-trials", HUGE], "--eval-trials"),
        (["evaluate", "--trials", HUGE], "--trials"),
        (["evaluate", "--seed", HUGE], "--seed"),
        (["evaluate", "--seed", "-1"], "--seed"),
        (["demo", "--seed", HUGE], "--seed"),
        (["demo", "--seed", "-1"], "--seed"),
        (["demo", "--duration-ms", "inf"], "--duration-ms"),
        (["train-plant", "--batch", HUGE], "--batch"),
        (["evaluate-plant", "--chunk", HUGE], "--chunk"),
        # the options are checked before the (bad) --run
        (["ship-policy", "--run", "norun", "--trials", HUGE], "--trials"),
        (["ship", "--run", "norun", "--out", "p", "--trials", HUGE], "--trials"),
        (["freeze-plant", "--run", "norun", "--step", HUGE], "--step"),
        (["freeze-plant", "--run", "norun", "--trials", HUGE], "--trials"),
    ],
)
def test_a_number_out_of_range_is_refused_naming_the_option(
    argv, option, tmp_path, monkeypatch, no_work
):
    message = _error(argv, tmp_path, monkeypatch)
    assert message.startswith(f"neuroctl: error: {option}:"), message
    assert "]" in message, message  # the accepted range


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["train", "--out", "<file>"], "--out"),
        (["train", "--out", PROC], "--out"),
        (["train-policy", "--out", PROC], "--out"),
        (["train-policy", "--eval-trials", "0", "--figure", "<dir>"], "--figure"),
        (["train-policy", "--eval-trials", "0", "--figure", PROC + ".png"], "--figure"),
        (["train-policy", "--ship", "<file>"], "--ship"),
        (["train-policy", "--ship", PROC], "--ship"),
        (["evaluate", "--out", "<dir>"], "--out"),
        (["evaluate", "--out", PROC + ".json"], "--out"),
        (["evaluate", "--figure", PROC + ".png"], "--figure"),
        (["demo", "--out", "<dir>"], "--out"),
        (["demo", "--out", PROC + ".png"], "--out"),
        (["train-plant", "--out", PROC], "--out"),
        (["freeze-plant", "--run", "<run>", "--out", PROC], "--out"),
    ],
)
def test_an_output_path_is_checked_before_the_work(
    argv, option, tmp_path, monkeypatch, no_work
):
    (tmp_path / "file").write_text("not a folder\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    places = {"<file>": "file", "<dir>": "dir", "<run>": "run"}
    argv = [places.get(a, a) for a in argv]
    message = _error(argv, tmp_path, monkeypatch)  # no _Worked: nothing ran
    assert message.startswith(f"neuroctl: error: {option}:"), message
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "runs" / "policy").exists()


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["train-policy", "--init-from", "file"], "--init-from"),
        (["train-policy", "--init-from", "/nonexistent/x"], "--init-from"),
        (["train-policy", "--init-from", "dir"], "--init-from"),  # no config.json
        (["evaluate", "--policy", "/nonexistent/x"], "--policy"),
        (["evaluate-plant", "--root", "file"], "--root"),
        (["evaluate-plant", "--root", "/nonexistent/x"], "--root"),
        (["freeze-plant", "--run", "dir"], "--run"),
    ],
)
def test_a_bad_input_path_names_its_option(
    argv, option, tmp_path, monkeypatch, no_work
):
    (tmp_path / "file").write_text("not a folder\n")
    (tmp_path / "dir").mkdir()
    message = _error(argv, tmp_path, monkeypatch)
    assert message.startswith(f"neuroctl: error: {option}:"), message


def test_the_policy_message_says_policies(tmp_path, monkeypatch, no_work):
    message = _error(["evaluate", "--policy", "/nonexistent/x"], tmp_path, monkeypatch)
    assert "shipped policies" in message and "policys" not in message


# ------------------------------------------------------------------ the helpers


class _Args:
    batch = 8
    step = None


def test_check_ints_names_the_option_the_value_and_the_range():
    check_ints(_Args(), {"batch": (1, 8), "step": (0, 10)})  # None: not checked
    with pytest.raises(ConfigError, match=r"--batch: got 8 .*\[1, 4\]"):
        check_ints(_Args(), {"batch": (1, 4)})


def test_the_output_checks_probe_for_real(tmp_path):
    check_output_folder("--out", tmp_path / "new" / "run")  # creatable
    check_output_file("--figure", tmp_path / "new" / "x.png")
    assert not (tmp_path / "new").exists()  # the probe leaves nothing
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="^--out: .* not a folder"):
        check_output_folder("--out", tmp_path / "f")
    with pytest.raises(ConfigError, match="^--out: cannot write"):
        check_output_folder("--out", tmp_path / "f" / "run")
    with pytest.raises(ConfigError, match="^--figure: .* is a folder"):
        check_output_file("--figure", tmp_path)
    with pytest.raises(ConfigError, match="^--figure: cannot write"):
        check_output_file("--figure", Path(PROC) / "x.png")


def test_an_artefact_destination_is_blamed_on_the_option(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="^--ship: ") as err:
        check_artefact_destination("--ship", tmp_path / "f", "policy", False)
    assert "--out" not in str(err.value)


def test_blamed_on_renames_a_bare_field_or_prefixes_the_option():
    with pytest.raises(ConfigError, match="^--init-from: x is odd$"):
        with blamed_on("--init-from"):
            raise ConfigError("init_from: x is odd")
    with pytest.raises(ConfigError, match="^--policy: policy 'x': no folder$"):
        with blamed_on("--policy"):
            raise ConfigError("policy 'x': no folder")


def test_train_refuses_a_run_folder_with_checkpoints_before_the_sweep(
    tmp_path, monkeypatch, no_work
):
    """Without --resume, a folder that holds checkpoints is refused before the
    constant sweep runs (it was refused only after it, by the run directory)."""
    (tmp_path / "run" / "checkpoints" / "4").mkdir(parents=True)
    argv = ["train", "--env", "SpikeRate-v0", "--env-option", "episode_ms=10"]
    message = _error([*argv, "--out", "run"], tmp_path, monkeypatch)
    assert "already holds checkpoints (latest step 4)" in message, message
    assert "--resume" in message
