"""A plant-training run on the shared run edge (`neuroctl.io.runs.RunDir`, `loop.fit`).

Layout of a run directory ``out/``::

    config.json          TrainConfig + TaskConfig + EvidenceNetConfig of the run
    checkpoints/<step>/  Orbax `CheckpointManager` steps of the `TrainState`
    log.jsonl            one line per iteration: iteration, loss, accuracy,
                         grad_norm, step_s, wall_s (cumulative training time)

`--resume` restores the newest checkpoint and continues bit-identically: the trial
keys of iteration ``i`` depend only on the seed and ``i`` (`plant.step_key`), and
log lines after the restored step are dropped.
"""

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

from neuroctl.io.runs import RunDir
from neuroctl.plants import evidence_task as et
from neuroctl.plants.evidence_net import EvidenceNetConfig, build_network
from neuroctl.train import loop
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


def _record_lr(run: RunDir, config: dict, step: int) -> None:
    """Record a new `train.lr` given on resume in ``config.json["lr_schedule"]``.

    The schedule lists ``[from_iteration, lr]`` pairs, so a run whose lr was
    changed on resume stays reproducible (Adam's state does not depend on lr, so
    the continuation is exact for the recorded schedule).
    """
    saved = run.record
    old_lr = saved["train"]["lr"]
    new_lr = config["train"]["lr"]
    if new_lr == old_lr:
        return
    schedule = saved.get("lr_schedule", [[0, old_lr]])
    schedule = [x for x in schedule if x[0] < step] + [[step, new_lr]]
    run.record = dict(saved, train=config["train"], lr_schedule=schedule)
    run.write_json("config.json", run.record)


def train_plant(
    run: RunConfig,
    train: tr.TrainConfig,
    task: et.TaskConfig,
    net_cfg: EvidenceNetConfig = _DEFAULT_NET,
) -> tr.TrainState:
    """Train (or resume) the evidence plant; checkpoint every `save_every` + at end."""
    net, step_fn = _network_and_step(net_cfg, task, train)
    n_syn = net.default_params.synapses[0].g.shape[0]
    config = run_config_dict(train, task, net_cfg)
    with RunDir(run.out, config, run.resume, run.keep, mutable=("train.lr",)) as rd:
        state, notes = rd.restore(tr.init_state(train, n_syn, net_cfg.n_cells))
        for note in notes:
            print(f"neuroctl: {note}; using an older checkpoint")
        if rd.resumed:
            _record_lr(rd, config, int(state.step))
        return loop.fit(
            rd,
            lambda s: step_fn(s, tr.step_key(train, int(s.step))),
            state,
            run.iterations,
            save_every=run.save_every,
            progress=run.progress,
            desc="train-plant",
            postfix={"loss": "loss", "acc": "accuracy"},
            window=20,
        )


@functools.lru_cache(maxsize=4)
def _network_and_step(
    net_cfg: EvidenceNetConfig, task: et.TaskConfig, train: tr.TrainConfig
):
    """The network and its jitted step, cached per config (no recompile on resume)."""
    net = build_network(net_cfg)
    return net, tr.make_train_step(net, net.default_params, task, train)


def restore_params(
    out: Path, train: tr.TrainConfig, n_syn: int, n_inputs: int, step: int | None = None
) -> tuple[et.TrainableParams, int]:
    """Trainable logits of a run's checkpoint (newest unless `step`) and its step."""
    like = tr.init_state(train, n_syn, n_inputs)
    with RunDir.open(out) as rd:
        state, _ = rd.restore(like, step)
    return state.params, int(state.step)
