"""Freeze a training run into a shipped plant folder, and evaluate shipped plants.

`freeze` writes ``<out>/spec.toml``, ``<out>/checkpoint/`` (verified Orbax, physical
parameters g [µS], w [1]) and ``<out>/metrics.json`` (held-out accuracy with the
fixed evaluation seed, training config, provenance).
"""

import datetime
import os
import platform
import subprocess
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import neuroctl
from neuroctl.io.runs import read_log, read_record
from neuroctl.plants import evidence_task as et
from neuroctl.plants.evidence import (
    EvidencePlant,
    ParamsSpec,
    PlantSpec,
    plant_from,
    spec_to_toml,
)
from neuroctl.plants.evidence_net import EvidenceNetConfig, build_network
from neuroctl.train import plant as tr
from neuroctl.train.evaluate import wilson_interval
from neuroctl.train.run import restore_params


@eqx.filter_jit
def _correct(plant: EvidencePlant, keys: jax.Array, evidence=None) -> jax.Array:
    def one(k):
        trial = plant.sample_trial(k, evidence)
        return et.accuracy(plant.logits(trial.stimulus), trial.label)

    return jax.vmap(one)(keys)


def evaluate_accuracy(
    plant: EvidencePlant,
    n_trials: int,
    seed: int = tr.EVAL_SEED,
    chunk: int = 50,
    progress: bool = False,
    evidence: float | None = None,
) -> tuple[int, int]:
    """(correct, n) on `n_trials` held-out trials ``split(key(seed), n)``, in chunks."""
    from tqdm.auto import tqdm

    keys = tr.evaluation_keys(n_trials, seed)
    if evidence is not None:
        evidence = jnp.asarray(evidence, plant.g.dtype)  # traced: one compile
    correct = 0
    for lo in tqdm(range(0, n_trials, chunk), disable=not progress, unit="chunk"):
        correct += int(jnp.sum(_correct(plant, keys[lo : lo + chunk], evidence)))
    return correct, n_trials


def _configs(run_dir: Path) -> tuple[tr.TrainConfig, et.TaskConfig, EvidenceNetConfig]:
    c = read_record(run_dir)
    task = dict(c["task"], response_window_ms=tuple(c["task"]["response_window_ms"]))
    train = dict(c["train"], checkpoint_lengths=tuple(c["train"]["checkpoint_lengths"]))
    return (
        tr.TrainConfig(**train),
        et.TaskConfig(**task),
        EvidenceNetConfig(**c["network"]),
    )


def _wall_at(run_dir: Path, step: int) -> float | None:
    rows = read_log(run_dir / "log.jsonl")
    at = [r["wall_s"] for r in rows if r["iteration"] == step]
    return at[-1] if at else None


PACKAGE_DIR = Path(__file__).resolve().parent  # where provenance() asks git


def _git(*args: str) -> str | None:
    """A git command's stdout in `PACKAGE_DIR`; None outside a checkout."""
    try:
        return subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=PACKAGE_DIR,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def provenance() -> dict:
    """Code version, git commit, date and hardware, for cards and result files."""
    commit = _git("rev-parse", "HEAD")
    # tracked files changed since that commit: the commit alone does not reproduce it
    changed = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "neuroctl_version": neuroctl.__version__,
        "jax_version": jax.__version__,
        "git_commit": commit,
        "git_dirty": None if changed is None else bool(changed),
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "hardware": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "jax_devices": [str(d) for d in jax.devices()],
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        },
    }


def code_version(prov: dict) -> str:
    """A `provenance()` record's short commit, "+ changes" when the tree differed."""
    short = (prov.get("git_commit") or "?")[:7]
    return short + (" + changes" if prov.get("git_dirty") else "")


def freeze(
    run_dir: Path,
    out: Path,
    step: int | None = None,
    trials: int = 1000,
    chunk: int = 50,
    overwrite: bool = False,
) -> dict:
    """Ship the run's checkpoint `step` (default newest) into `out`; return the card.

    `out` is written as a sealed folder, atomically (`write_artefact`); an existing
    one is replaced only with `overwrite`.
    """
    from neuroctl.io.artefacts import check_destination, write_artefact
    from neuroctl.io.checkpoints import tree_checksum
    from neuroctl.io.runs import read_record

    check_destination(out, "plant", overwrite)
    run_dir, out = Path(run_dir), Path(out)
    train, task, net_cfg = _configs(run_dir)
    n_syn = build_network(net_cfg).default_params.synapses[0].g.shape[0]
    params, step = restore_params(run_dir, train, n_syn, net_cfg.n_cells, step)
    g, w = (np.asarray(x) for x in params.to_physical(task))
    spec = PlantSpec(
        name=out.name,
        network=net_cfg,
        task=task,
        params=ParamsSpec(g.shape[0], w.shape[0], str(g.dtype)),
        description="Evidence-integration RNN (Jaxley paper fig. 5), "
        "trained by neuroctl.train.plant; g [uS], w [1].",
    )
    plant = plant_from(spec, g, w)
    correct, n = evaluate_accuracy(plant, trials, tr.EVAL_SEED, chunk, progress=True)
    tree = {"g": g, "w": w}
    meta = {
        "plant": spec.name,
        "units": {"g": "uS", "w": "1"},
        "step": step,
        "accuracy": correct / n,
        "eval_trials": n,
    }
    card = {
        "plant": spec.name,
        "accuracy": correct / n,
        "correct": correct,
        "checkpoint_checksum": tree_checksum(tree),
        "eval_trials": n,
        "eval_seed": tr.EVAL_SEED,
        "accuracy_ci95": [round(x, 4) for x in wilson_interval(correct, n)],
        "seed": train.seed,
        "iterations": step,
        "training_wall_s": _wall_at(run_dir, step),
        "training_config": read_record(run_dir),
        **provenance(),
    }
    write_artefact(
        out, "plant", spec_to_toml(spec), card, tree, meta, overwrite=overwrite
    )
    return card
