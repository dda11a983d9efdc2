"""A training run directory: config record, Orbax checkpoints, JSONL log.

Layout of ``out/``::

    config.json          what fixes the run's maths (written once; checked on resume)
    checkpoints/<step>/  Orbax `CheckpointManager` steps of the train state
    best/<step>/         the best parameters so far (by validation), one step
    log.jsonl            one line per iteration (metrics, step_s, wall_s [s])

Resuming restores the newest checkpoint that restores cleanly (a damaged one is
reported and the previous kept one is used), drops log lines after it, and
refuses a record that differs from the saved one, naming each differing field.
"""

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp

from neuroctl.errors import ConfigError


def _normalise(d: Any) -> Any:
    return json.loads(json.dumps(d))  # tuples → lists, as read back from disk


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def record_diff(saved: dict, wanted: dict) -> list[str]:
    """``"field: saved X, requested Y"`` for every dotted field that differs."""
    a, b = _flatten(_normalise(saved)), _flatten(_normalise(wanted))
    return [
        f"{k}: saved {a.get(k, '<absent>')!r}, requested {b.get(k, '<absent>')!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k, "<absent>") != b.get(k, "<absent>")
    ]


def check_fresh(out: Path, resume: bool) -> None:
    """Before any work: refuse an `out` holding checkpoints unless `resume`.

    The same rule `RunDir` applies, from the folder names alone (Orbax keeps one
    numbered folder per saved step), so a command can check it before a sweep.
    """
    folder = Path(out) / "checkpoints"
    steps = sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit())
    if steps and not resume:
        raise ConfigError(
            f"out: {out} already holds checkpoints (latest step {steps[-1]}); pass "
            "--resume to continue or choose a new --out."
        )


class RunDir:
    """One run directory (see the module docstring); use as a context manager.

    Args:
        out: the directory (created).
        record: JSON-able dict of everything that fixes the maths.
        resume: continue a run in `out` (else `out` must hold no checkpoints).
        keep: checkpoints kept [1].
        compare: the part of `record` that must match on resume (default: all).
        write: False opens an existing run read-only (no checkpoints: an error).
        mutable: dotted fields of `record` that may change on resume (e.g.
            ``"train.lr"``); the caller records what it does with a change.
        upgrade: maps a saved record to today's form before comparing (e.g.
            fields added since the run started, at their neutral defaults).
    """

    def __init__(
        self,
        out: Path,
        record: dict,
        resume: bool,
        keep: int = 2,
        compare: dict | None = None,
        write: bool = True,
        mutable: tuple[str, ...] = (),
        upgrade: Callable[[dict], dict] | None = None,
    ):
        self.out, self.write = Path(out), write
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"out: {self.out} is a file; pass a directory.")
        if not (write or self.out.is_dir()):
            raise ConfigError(
                f"run: {self.out} does not exist, so it holds no checkpoints; "
                "train first."
            )
        self.out.mkdir(parents=True, exist_ok=True)
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        self.mgr = ocp.CheckpointManager(
            (self.out / "checkpoints").absolute(), options=options
        )
        self.best_mgr = ocp.CheckpointManager(
            (self.out / "best").absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True),
        )
        self.resumed = self.mgr.latest_step() is not None
        if not (self.resumed or write):
            self.close()
            raise ConfigError(f"run: {self.out} holds no checkpoints; train first.")
        if self.resumed and not resume:
            self.close()
            raise ConfigError(
                f"out: {self.out} already holds checkpoints (latest step "
                f"{self.mgr.latest_step()}); pass --resume to continue or choose a "
                "new --out."
            )
        self.upgrade = upgrade or (lambda saved: saved)
        self.record = self._check_or_write(record, compare, mutable)
        self._log = None
        self.wall = 0.0

    @classmethod
    def open(cls, out: Path) -> "RunDir":
        """An existing run, read-only (its checkpoints and record as saved)."""
        return cls(out, {}, resume=True, compare={}, write=False)

    def _check_or_write(
        self, record: dict, compare: dict | None, mutable: tuple[str, ...]
    ) -> dict:
        path = self.out / "config.json"
        if not self.resumed:
            path.write_text(json.dumps(_normalise(record), indent=1))
            (self.out / "log.jsonl").unlink(missing_ok=True)
            return _normalise(record)
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(
                f"--resume: {path} is missing or not JSON ({err}); use a new --out."
            ) from None
        wanted = record if compare is None else compare
        upgraded = self.upgrade(saved)
        saved_part = {k: upgraded.get(k) for k in wanted}
        diff = [
            d for d in record_diff(saved_part, wanted) if d.split(":")[0] not in mutable
        ]
        if diff:
            may = f"only {', '.join(mutable)} may change on resume; " if mutable else ""
            raise ConfigError(
                f"--resume: {path} differs from this run: {'; '.join(diff)}; {may}"
                "use the saved settings or a new --out."
            )
        return saved

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, list[str]]:
        """The newest checkpoint that restores into `like` (else `like`), and notes.

        A checkpoint that fails to restore is skipped with a note naming it. With
        `step`, that checkpoint only (an error if it is not kept).
        """
        notes = []
        steps = sorted(self.mgr.all_steps(), reverse=True)
        if step is not None:
            if step not in steps:
                raise ConfigError(
                    f"step: {self.out} keeps no checkpoint {step} (kept: {steps}); "
                    "pick a kept one."
                )
            steps = [step]
        for step in steps:
            try:
                state = self.mgr.restore(step, args=ocp.args.StandardRestore(like))
            except Exception as err:  # noqa: BLE001 — any damage: try an older one
                notes.append(
                    f"checkpoint {step} did not restore ({type(err).__name__})"
                )
                continue
            if self.write:  # training continues from here: later lines go
                self.wall = self._truncate_log(step)
            return state, notes
        if self.resumed:
            raise ConfigError(
                f"--resume: no checkpoint in {self.out}/checkpoints restores "
                f"({'; '.join(notes)}); start a new --out."
            )
        return like, notes

    def _truncate_log(self, step: int) -> float:
        """Keep log lines with iteration <= step; the wall time at `step` [s]."""
        kept = [x for x in read_log(self.out / "log.jsonl") if x["iteration"] <= step]
        (self.out / "log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in kept))
        return kept[-1]["wall_s"] if kept else 0.0

    def save(self, step: int, state: Any, force: bool = False) -> None:
        self.mgr.save(step, args=ocp.args.StandardSave(state), force=force)

    def save_best(self, step: int, tree: Any) -> None:
        """Keep `tree` (e.g. the params) as the run's best so far, from `step`."""
        self.best_mgr.save(step, args=ocp.args.StandardSave(tree), force=True)

    def restore_best(self, like: Any) -> tuple[Any, int | None]:
        """The best tree saved (and its step), or ``(like, None)`` if none was."""
        step = self.best_mgr.latest_step()
        if step is None:
            return like, None
        return self.best_mgr.restore(step, args=ocp.args.StandardRestore(like)), step

    def latest_step(self) -> int | None:
        return self.mgr.latest_step()

    def log(self, iteration: int, metrics: dict[str, float], step_s: float) -> None:
        """Append one JSONL line (metrics, step time and cumulative wall time)."""
        if self._log is None:
            self._log = (self.out / "log.jsonl").open("a")
        self.wall += step_s
        line = {"iteration": iteration, **metrics}
        line.update(step_s=round(step_s, 3), wall_s=round(self.wall, 3))
        self._log.write(json.dumps(line) + "\n")
        self._log.flush()

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``out/name`` atomically (`write_json_atomic`)."""
        return write_json_atomic(self.out / name, data)

    def close(self) -> None:
        for mgr in (self.mgr, getattr(self, "best_mgr", None)):
            if mgr is not None:
                mgr.wait_until_finished()
                mgr.close()
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write JSON to `path` via a temporary sibling and a rename (never half-done)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{time.monotonic_ns()}")
    try:
        tmp.write_text(json.dumps(_normalise(data), indent=1))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_log(path: Path) -> list[dict]:
    """The JSONL metrics log of a run (one dict per iteration); [] if absent."""
    if not Path(path).exists():
        return []
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def read_json(path: Path) -> Any:
    """The JSON in `path`, or None if it is absent or damaged (a cache miss)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_record(out: Path) -> dict:
    """``out/config.json`` of a run, with a clear error if absent or damaged."""
    path = Path(out) / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"run: {path} is missing or not JSON ({err}); pass a run directory "
            "written by `neuroctl train`."
        ) from None
