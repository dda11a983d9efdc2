"""The training run at the edge: Orbax checkpoints, a JSONL log and a progress bar.

Layout of a run directory ``out/``::

    config.json          TrainConfig + TaskConfig + EvidenceNetConfig of the run
    checkpoints/<step>/  Orbax `CheckpointManager` steps of the `TrainState`
    log.jsonl            one line per iteration: iteration, loss, accuracy,
                         grad_norm, step_s, wall_s (cumulative training time)

`--resume` restores the newest checkpoint and continues bit-identically: the trial
keys of iteration ``i`` depend only on the seed and ``i`` (`plant.step_key`), and
log lines after the restored step are dropped.
"""

import collections
import dataclasses
import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from neuroctl.errors import ConfigError
from neuroctl.io.runs import record_diff
from neuroctl.plants import evidence_task as et
from neuroctl.plants.evidence_net import EvidenceNetConfig, build_network
from neuroctl.train import plant as tr

_DEFAULT_NET = EvidenceNetConfig()


@dataclass(frozen=True)
class RunConfig:
    """Where and how often a run writes (effects only; no influence on the maths)."""

    out: Path  # run directory
    iterations: int  # total iterations to reach (a resumed run continues to it) [1]
    save_every: int = 10  # checkpoint period [iterations]
    keep: int = 3  # checkpoints kept [1]
    resume: bool = False  # continue from the newest checkpoint in `out`
    progress: bool = True  # show a tqdm bar


def run_config_dict(
    train: tr.TrainConfig, task: et.TaskConfig, net: EvidenceNetConfig
) -> dict:
    """JSON-able record of everything that fixes the run's maths."""
    return {
        "train": dataclasses.asdict(train),
        "task": dataclasses.asdict(task),
        "network": dataclasses.asdict(net),
    }


def _normalise(d):
    return json.loads(json.dumps(d))  # tuples → lists, as read back from disk


def _check_resumable(out: Path, config: dict, step: int) -> None:
    """Require the saved config, except `train.lr`: a new lr is recorded and used.

    ``config.json["lr_schedule"]`` lists ``[from_iteration, lr]`` pairs, so a run
    whose lr was changed on resume stays reproducible (Adam's state does not
    depend on lr, so the continuation is exact for the recorded schedule).
    """
    saved = json.loads((out / "config.json").read_text())
    want = _normalise(config)
    old_lr = saved["train"]["lr"]
    schedule = saved.pop("lr_schedule", [[0, old_lr]])
    saved["train"]["lr"] = want["train"]["lr"]
    diff = record_diff(saved, want)
    if diff:
        raise ConfigError(
            f"--resume: {out}/config.json differs from this run: {'; '.join(diff)}; "
            "only --lr may change on resume; use the saved settings or a new --out."
        )
    if want["train"]["lr"] != old_lr:
        schedule = [x for x in schedule if x[0] < step] + [[step, want["train"]["lr"]]]
        (out / "config.json").write_text(
            json.dumps(dict(want, lr_schedule=schedule), indent=1)
        )


def _manager(out: Path, run: RunConfig) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=run.keep, create=True)
    return ocp.CheckpointManager((out / "checkpoints").absolute(), options=options)


def _restore_or_init(mgr, run: RunConfig, config: dict, fresh: tr.TrainState):
    out = run.out
    latest = mgr.latest_step()
    if latest is not None and not run.resume:
        raise ConfigError(
            f"out: {out} already holds checkpoints (latest step "
            f"{latest}); pass --resume to continue or choose a new --out."
        )
    if latest is None:
        (out / "config.json").write_text(json.dumps(_normalise(config), indent=1))
        (out / "log.jsonl").unlink(missing_ok=True)
        return fresh, 0.0
    _check_resumable(out, config, latest)
    state = mgr.restore(latest, args=ocp.args.StandardRestore(fresh))
    return state, _truncate_log(out / "log.jsonl", latest)


def read_log(path: Path) -> list[dict]:
    """The JSONL metrics log of a run (one dict per iteration); [] if absent."""
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _truncate_log(path: Path, step: int) -> float:
    """Keep log lines with iteration <= step; return the wall time at `step` [s]."""
    if not path.exists():
        return 0.0
    kept = [x for x in read_log(path) if x["iteration"] <= step]
    path.write_text("".join(json.dumps(x) + "\n" for x in kept))
    return kept[-1]["wall_s"] if kept else 0.0


def train_plant(
    run: RunConfig,
    train: tr.TrainConfig,
    task: et.TaskConfig,
    net_cfg: EvidenceNetConfig = _DEFAULT_NET,
) -> tr.TrainState:
    """Train (or resume) the evidence plant; checkpoint every `save_every` + at end."""
    net, step_fn = _network_and_step(net_cfg, task, train)
    n_syn = net.default_params.synapses[0].g.shape[0]
    run.out.mkdir(parents=True, exist_ok=True)
    mgr = _manager(run.out, run)
    config = run_config_dict(train, task, net_cfg)
    state, wall = _restore_or_init(
        mgr, run, config, tr.init_state(train, n_syn, net_cfg.n_cells)
    )
    logger = RunLogger(
        run.out, run.iterations, run.save_every, run.progress, int(state.step), wall
    )
    try:
        state = tr.fit(
            step_fn, state, train, run.iterations, lambda s, m: logger(s, m, mgr)
        )
        if mgr.latest_step() != int(state.step):
            mgr.save(int(state.step), args=ocp.args.StandardSave(state), force=True)
        mgr.wait_until_finished()
    finally:
        logger.close()
        mgr.close()
    return state


@functools.lru_cache(maxsize=4)
def _network_and_step(
    net_cfg: EvidenceNetConfig, task: et.TaskConfig, train: tr.TrainConfig
):
    """The network and its jitted step, cached per config (no recompile on resume)."""
    net = build_network(net_cfg)
    return net, tr.make_train_step(net, net.default_params, task, train)


class RunLogger:
    """Per-iteration side effects of a training run (plant or policy).

    One JSONL line per iteration (``iteration``, every metric, ``step_s``,
    ``wall_s`` [s]), a tqdm bar showing the running means of `postfix` over the
    last `window` iterations, and an Orbax checkpoint every ``save_every``.
    """

    def __init__(
        self,
        out: Path,
        iterations: int,
        save_every: int,
        progress: bool,
        start: int,
        wall: float,
        desc: str | None = None,
        postfix: dict[str, str] | None = None,
        window: int = 20,
    ):
        from tqdm.auto import tqdm

        self.save_every, self.wall, self.t = save_every, wall, time.perf_counter()
        self.postfix = postfix or {"loss": "loss", "acc": "accuracy"}
        self.recent = collections.deque(maxlen=window)
        self.bar = tqdm(
            total=iterations,
            initial=start,
            disable=not progress,
            unit="it",
            dynamic_ncols=True,
            desc=desc,
        )
        self.log = (out / "log.jsonl").open("a")

    def __call__(self, state, metrics, mgr) -> None:
        """Log `metrics` (a NamedTuple of scalars) of the step that made `state`."""
        values = {k: float(v) for k, v in jax.device_get(metrics._asdict()).items()}
        now = time.perf_counter()
        dt, self.t = now - self.t, now
        self.wall += dt
        i = int(state.step)
        line = {"iteration": i, **values}
        line.update(step_s=round(dt, 3), wall_s=round(self.wall, 3))
        self.log.write(json.dumps(line) + "\n")
        self.log.flush()
        self.recent.append(values)
        self.bar.set_postfix(
            {
                short: f"{sum(r[key] for r in self.recent) / len(self.recent):.4f}"
                for short, key in self.postfix.items()
            }
        )
        self.bar.update(1)
        if i % self.save_every == 0:
            mgr.save(i, args=ocp.args.StandardSave(state))

    def close(self) -> None:
        self.bar.close()
        self.log.close()


def restore_params(
    out: Path, train: tr.TrainConfig, n_syn: int, n_inputs: int, step: int | None = None
) -> tuple[et.TrainableParams, int]:
    """Trainable logits of a run's checkpoint (newest unless `step`) and its step."""
    mgr = ocp.CheckpointManager((Path(out) / "checkpoints").absolute())
    step = mgr.latest_step() if step is None else step
    if step is None:
        raise ConfigError(f"out: {out} holds no checkpoints; train first.")
    like = tr.init_state(train, n_syn, n_inputs)
    state = mgr.restore(step, args=ocp.args.StandardRestore(like))
    mgr.close()
    return state.params, step
