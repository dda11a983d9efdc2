"""Checks of command-line options, run at the top of every command, before any work.

Each check raises `ConfigError` naming the option as typed (``--batch``), the value
and what is accepted; `neuroctl.cli.main` prints it as one line, without a trace.
The commands (`neuroctl.cli`, `neuroctl.train.commands`,
`neuroctl.train.policy_commands`) list their integer options with bounds from the
constants below and call `check_ints`, then check every path they read or write.

Integer options have physical upper bounds: a larger value is a typo, and beyond
2**63 it would overflow inside NumPy or XLA after minutes of work instead of
failing here.
"""

import math
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from neuroctl.errors import ConfigError, bad_value, check_int

MAX_ITERATIONS = 10**7  # iterations, checkpoint/validation periods, decay steps
MAX_WINDOW = 10**6  # a truncated-BPTT window [control steps]
MAX_BATCH = 2**16  # trials or episodes per gradient step or per vmapped call
MAX_HIDDEN = 4096  # hidden units of an MLP/GRU policy
MAX_BINS = 10**4  # time bins of a profile policy
MAX_TRIALS = 10**6  # held-out, validation or sweep trials/episodes
MAX_SWEEP_POINTS = 10**4  # constant actions tried by `neuroctl train`'s sweep
MAX_KEEP = 1000  # checkpoints kept
MAX_SEED = 2**32 - 1  # a JAX PRNG seed (32 bits)


def option(name: str) -> str:
    """The option of a field as typed: ``save_every`` → ``--save-every``."""
    return f"--{name.replace('_', '-')}"


def check_ints(args: object, bounds: Mapping[str, tuple[int, int]]) -> None:
    """Check each integer field ``name`` of `args` is in ``bounds[name]`` (inclusive).

    A field that is None (an unset optional option) is not checked.
    """
    for name, (low, high) in bounds.items():
        value = getattr(args, name)
        if value is not None:
            check_int(option(name), value, low, high)


def check_float(
    field: str, value: object, low: float, high: float, example: float
) -> None:
    """Raise `ConfigError` unless `value` is a finite number in ``(low, high]``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and low < value <= high):
        span = f"a finite number in ({low:g}, {high:g}]"
        raise bad_value(field, value, span, f"e.g. {field} {example:g}.")


def check_folder(field: str, path: Path, what: str) -> Path:
    """Raise `ConfigError` unless `path` is an existing folder (`what`: the kind)."""
    path = Path(path)
    if not path.is_dir():
        problem = "is not a folder" if path.exists() else "does not exist"
        raise ConfigError(f"{field}: {path} {problem}; pass {what}.")
    return path


def check_output_folder(field: str, path: Path) -> None:
    """Raise `ConfigError` unless `path` is a folder the command can write into.

    It may exist (e.g. a run to resume); else it must be creatable: a real write
    probe, since permissions alone do not tell (root, /proc, read-only mounts).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{field}: {path} exists and is not a folder; choose another {field}."
        )
    _probe(field, path, path)


def check_output_file(field: str, path: Path) -> None:
    """Raise `ConfigError` unless `path` is a file the command can write.

    Not a folder; its folder exists and is writable or can be created (a probe).
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{field}: {path} is a folder; pass the path of a file.")
    _probe(field, path.parent, path)


def check_artefact_destination(
    field: str, folder: Path, artefact: str, overwrite: bool
) -> None:
    """`neuroctl.io.artefacts.check_destination`, its messages naming `field`."""
    from neuroctl.io.artefacts import check_destination

    try:
        check_destination(folder, artefact, overwrite)
    except ConfigError as err:
        if field == "--out":
            raise
        raise ConfigError(str(err).replace("--out", field)) from None


@contextmanager
def blamed_on(field: str) -> Iterator[None]:
    """Make a `ConfigError` raised inside start with `field` (``--init-from: ...``).

    A message starting with the bare field name (``init_from: ...``) gets the
    option instead; any other gets the option as a prefix.
    """
    try:
        yield
    except ConfigError as err:
        text = str(err)
        if text.startswith(f"{field}:"):
            raise
        bare = f"{field.removeprefix('--').replace('-', '_')}:"
        text = text.removeprefix(bare).lstrip() if text.startswith(bare) else text
        raise ConfigError(f"{field}: {text}") from None


def _probe(field: str, folder: Path, target: Path) -> None:
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        tempfile.TemporaryDirectory(dir=existing).cleanup()
    except OSError as err:
        raise ConfigError(
            f"{field}: cannot write {target} ({err.strerror} in {existing}); "
            f"choose another {field}."
        ) from None
