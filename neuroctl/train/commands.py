"""`neuroctl train-plant`, `evaluate-plant` and `freeze-plant` (CLI edge)."""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from neuroctl.options import (
    MAX_BATCH,
    MAX_ITERATIONS,
    MAX_KEEP,
    MAX_SEED,
    MAX_TRIALS,
    check_artefact_destination,
    check_folder,
    check_ints,
    check_output_folder,
)

EVIDENCE_OUT = Path("runs/plant/evidence_integration")  # gitignored


@dataclass(frozen=True)
class TrainPlantArgs:
    """Train the evidence-integration RNN by BPTT (resumable; neuroctl.train.plant)."""

    plant: tyro.conf.Positional[Literal["evidence"]] = "evidence"
    """Which plant to train (only the evidence-integration RNN for now)."""
    seed: int = 0
    """Root seed of initialisation and training trials [1] (2**31-1 is reserved)."""
    iterations: int = 300
    """Total iterations to reach [1] (at most 10**7); a resumed run continues up to
    this number."""
    batch: int = 8
    """Trials per gradient step [1] (at most 2**16)."""
    lr: float = 0.01
    """Adam learning rate on the logits [1]; may change on --resume (recorded)."""
    precision: Literal["float32", "float64"] = "float64"
    """Solver/parameter dtype: float32 gradients were measured wrong on full trials."""
    out: Path = EVIDENCE_OUT
    """Run directory: config.json, checkpoints/, log.jsonl."""
    resume: bool = False
    """Continue from the newest checkpoint in --out (bit-identical continuation)."""
    save_every: int = 10
    """Checkpoint period [iterations] (at most 10**7; and always at the end)."""
    keep: int = 3
    """Number of checkpoints kept [1] (at most 1000)."""
    trial_ms: float = 520.0
    """Trial duration [ms] (shorter only for smoke tests)."""
    response_window_ms: tuple[float, float] = (500.0, 520.0)
    """Response window (start, end] [ms]."""
    checkpoint_lengths: tuple[int, ...] = (28, 28, 27)
    """Nested scan lengths for gradient checkpointing [steps]; product >= n_steps."""
    init_syn_fraction: float = 0.02
    """Initial conductance as a fraction of g_max [1]."""


def train_plant(args: Annotated[TrainPlantArgs, tyro.conf.arg(name="")]) -> Path:
    """Train the evidence-integration plant by BPTT (resumable)."""
    import jax

    check_ints(
        args,
        {
            "iterations": (1, MAX_ITERATIONS),
            "batch": (1, MAX_BATCH),
            "save_every": (1, MAX_ITERATIONS),
            "keep": (1, MAX_KEEP),
            "seed": (0, 2**31 - 2),
        },
    )
    check_output_folder("--out", args.out)
    jax.config.update("jax_enable_x64", args.precision == "float64")
    from neuroctl.plants import evidence_task as et
    from neuroctl.train import plant as tr
    from neuroctl.train.run import RunConfig
    from neuroctl.train.run import train_plant as run_training

    task = et.TaskConfig(
        trial_ms=args.trial_ms, response_window_ms=tuple(args.response_window_ms)
    )
    train = tr.TrainConfig(
        seed=args.seed,
        batch=args.batch,
        lr=args.lr,
        checkpoint_lengths=tuple(args.checkpoint_lengths),
        precision=args.precision,
        init_syn_fraction=args.init_syn_fraction,
    )
    run = RunConfig(
        out=args.out,
        iterations=args.iterations,
        save_every=args.save_every,
        keep=args.keep,
        resume=args.resume,
    )
    state = run_training(run, train, task)
    print(
        f"trained to iteration {int(state.step)}; checkpoints in {args.out}/checkpoints"
    )
    return args.out


@dataclass(frozen=True)
class EvaluatePlantArgs:
    """Accuracy of a shipped plant on held-out trials, with a 95 % Wilson interval."""

    name: tyro.conf.Positional[str] = "evidence_integration"
    """Shipped plant (folder under envs/)."""
    trials: int = 1000
    """Held-out trials [1] (at most 10**6)."""
    seed: int = 2**31 - 1
    """Evaluation seed in [0, 2**32-1] (default: the fixed held-out seed, disjoint
    from training)."""
    chunk: int = 50
    """Trials simulated per vmapped call [1] (at most 2**16; memory vs speed)."""
    root: Path | None = None
    """Folder holding shipped plants (default: the checkout's envs/)."""


def evaluate_plant(args: Annotated[EvaluatePlantArgs, tyro.conf.arg(name="")]) -> float:
    """Accuracy of a shipped plant on held-out trials (reproduces its card)."""
    import jax

    check_ints(
        args,
        {"trials": (1, MAX_TRIALS), "chunk": (1, MAX_BATCH), "seed": (0, MAX_SEED)},
    )
    if args.root is not None:
        check_folder("--root", args.root, "a folder holding plant folders")
    jax.config.update("jax_enable_x64", True)
    from neuroctl.plants import load
    from neuroctl.train.ship import evaluate_accuracy

    plant = load(args.name, root=args.root)
    t0 = time.perf_counter()
    correct, n = evaluate_accuracy(
        plant, args.trials, args.seed, args.chunk, progress=True
    )
    from neuroctl.train.evaluate import wilson_interval

    lo, hi = wilson_interval(correct, n)
    print(
        f"{args.name}: accuracy {correct / n:.4f} ({correct}/{n}), 95 % CI "
        f"[{lo:.4f}, {hi:.4f}] (Wilson), seed {args.seed}, "
        f"{time.perf_counter() - t0:.0f} s"
    )
    return correct / n


@dataclass(frozen=True)
class FreezePlantArgs:
    """Freeze a training run into a shipped plant folder (checkpoint, spec, card)."""

    run: Path = EVIDENCE_OUT
    """Training run directory."""
    out: Path = Path("envs/evidence_integration")
    """Plant folder to write: checkpoint/, spec.toml, metrics.json, seal.json."""
    overwrite: bool = False
    """Replace an existing --out folder (atomically: old kept until new is whole)."""
    step: int | None = None
    """Checkpoint step to ship (default: newest; at most 10**7)."""
    trials: int = 1000
    """Held-out trials for the card [1] (at most 10**6)."""
    chunk: int = 50
    """Trials per vmapped evaluation call [1] (at most 2**16)."""


def freeze_plant(args: Annotated[FreezePlantArgs, tyro.conf.arg(name="")]) -> Path:
    """Freeze a train-plant checkpoint into a verified plant folder."""
    import jax

    check_ints(
        args,
        {
            "step": (0, MAX_ITERATIONS),
            "trials": (1, MAX_TRIALS),
            "chunk": (1, MAX_BATCH),
        },
    )
    what = "a train-plant run directory (with checkpoints/)"
    check_folder("--run", args.run / "checkpoints", what)
    check_artefact_destination("--out", args.out, "plant", args.overwrite)
    jax.config.update("jax_enable_x64", True)
    from neuroctl.train.ship import freeze

    card = freeze(
        args.run, args.out, args.step, args.trials, args.chunk, args.overwrite
    )
    print(
        f"shipped {args.out}: accuracy {card['accuracy']:.4f} on {card['eval_trials']} "
        f"held-out trials, 95 % CI {card['accuracy_ci95']}"
    )
    return args.out


COMMANDS = {
    "train-plant": train_plant,
    "evaluate-plant": evaluate_plant,
    "freeze-plant": freeze_plant,
}
