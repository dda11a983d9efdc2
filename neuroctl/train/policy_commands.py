"""`neuroctl train-policy` and `neuroctl evaluate` (CLI edge).

``train-policy`` trains a gain policy by BPTT on a shipped plant (resumable), then
evaluates it and the ``g = 1`` baseline on the same held-out trials, prints the
comparison, writes ``<out>/metrics.json`` and an example-trial figure, and with
``--ship DIR`` freezes the policy into a verified folder. ``evaluate`` does the
evaluation for a shipped folder or a run directory.
"""

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from neuroctl.errors import ConfigError
from neuroctl.options import (
    MAX_BATCH,
    MAX_BINS,
    MAX_HIDDEN,
    MAX_ITERATIONS,
    MAX_SEED,
    MAX_TRIALS,
    MAX_WINDOW,
    blamed_on,
    check_artefact_destination,
    check_folder,
    check_ints,
    check_output_file,
    check_output_folder,
)

ENVS = ("neuroctl/EvidenceStim-v0",)


@dataclass(frozen=True)
class TrainPolicyArgs:
    """Train a stimulation-gain policy by BPTT through the frozen plant.

    The loss per trial is CE + lambda_gain·mean_t g² + lambda_current·mean I²
    + lambda_charge·charge (neuroctl.train.policy), which is −(the env's episode
    return): the gain recipe of `neuroctl train`'s one BPTT trainer. Resumable with
    --resume.
    """

    env: Literal["neuroctl/EvidenceStim-v0"] = "neuroctl/EvidenceStim-v0"
    """Environment: gain on the evidence input of the frozen EI RNN."""
    plant: str = "evidence_integration"
    """Shipped plant under envs/ to control."""
    policy: Literal[
        "mlp", "gru", "open_loop", "feedback_profile", "tracking_profile", "fixed"
    ] = "mlp"
    """Policy kind: closed-loop MLP / GRU, open-loop time profile, a current-shaped
    profile with feedback on the readouts (feedback_profile), the same keeping books
    on the current it delivered (tracking_profile; both need --observe-evidence
    --observe-stimulus), trained constant."""
    hidden: int = 16
    """Hidden units of mlp/gru [1] (at most 4096)."""
    n_bins: int = 52
    """Time bins of open_loop / feedback_profile / tracking_profile [1] (at most
    10**4)."""
    g_max: float = 2.0
    """Largest gain [1] (g = sigmoid(logit)·g_max)."""
    g_init: float = 1.0
    """Gain of the fresh policy [1] (1 = the plant's native input)."""
    seed: int = 0
    """Policy initialisation and training trials [1] (< 2**31-1, the held-out
    seed)."""
    iterations: int = 40
    """Total iterations to reach [1] (at most 10**7; the default is the README's
    short budget, ~5 min on 2 CPU cores; the shipped policy had 300 + 100)."""
    batch: int = 8
    """Trials per gradient step [1] (at most 2**16)."""
    lr: float = 0.02
    """Adam learning rate [1] (0.05 with lambda_gain 1 collapsed to chance)."""
    decay_steps: int = 0
    """Cosine decay of lr to 0.1·lr over this many iterations [1] (at most 10**7);
    0 = constant."""
    clip_norm: float = 1.0
    """Global gradient-norm clip [1]."""
    lambda_gain: float = 0.3
    """Weight of mean_t g_t² [1]."""
    lambda_current: float = 0.0
    """Weight of the mean current power mean_t mean_i I_i² [1/nA²]."""
    lambda_charge: float = 0.0
    """Weight of the injected charge per trial [1/pC]."""
    ce_scale: float = 1.0
    """Readout-margin scale inside the CE [1/mV]: 1 = the plant's CE of the readout
    means in mV; 10 stops paying stimulation for margins beyond ~0.3 mV."""
    control_ms: float = 1.0
    """Control period: one gain is held this long [ms]."""
    truncation: int = 0
    """Truncated BPTT window [control steps] (at most 10**6); 0 = through whole
    trials."""
    precision: Literal["float32", "float64"] = "float64"
    """Policy and solver dtype (float32 full-trial gradients measured unreliable)."""
    observe_evidence: bool = False
    """Also observe the mean filtered stimulus so far [1] (the seed's policy sees
    only the readouts and t/T). mlp/gru: a fourth input (from --init-from a
    seed-observation run it starts with zero weight); open_loop: the profile applies
    only while that mean is < 0 (label-0 evidence), else the gain is 0."""
    observe_stimulus: bool = False
    """With --observe-evidence: also observe the latest filtered stimulus sample [1].
    open_loop: the profile then sets the current, not the gain (g = p·0.005/(−s)
    while s < 0, else 0), the cheapest current for a given mean drive; mlp/gru: a
    fifth input."""
    out: Path = Path("runs/policy")
    """Run directory: config.json, checkpoints/, log.jsonl, metrics.json, figure."""
    resume: bool = False
    """Continue from the newest checkpoint in --out."""
    save_every: int = 10
    """Checkpoint period [iterations] (at most 10**7; and always at the end)."""
    eval_trials: int = 100
    """Held-out trials for the final evaluation [1] (at most 10**6; 0 = skip)."""
    figure: Path | None = None
    """Example-trial figure (stimulus, gain, readouts) written after the final
    evaluation; default ``<out>/example_trial.png`` (results/ holds only what
    scripts/ regenerate)."""
    init_from: Path | None = None
    """Start from the newest params of this run directory, or from a shipped
    policy folder (spec.toml; same architecture and plant; fresh Adam state),
    e.g. to continue a λ sweep from a cheaper point or fine-tune a designed
    policy."""
    ship: Path | None = None
    """If set, freeze the trained policy into this folder (spec, checkpoint, card)."""
    overwrite: bool = False
    """Let --ship replace an existing folder (atomically)."""
    progress: bool = True
    """Show progress bars."""


@dataclass(frozen=True)
class EvaluateArgs:
    """Evaluate a policy on held-out episodes against a baseline.

    An evidence-gain policy against g = 1; a `neuroctl train` policy (shipped
    folder or run) against its best constant action.
    """

    policy: Path = Path("evidence_gain_mlp")
    """Shipped policy name (found wherever neuroctl is installed), a policy folder
    (spec.toml + checkpoint/), a train-policy --out dir or a `neuroctl train` run."""
    trials: int = 1000
    """Held-out trials [1] (at most 10**6)."""
    seed: int | None = None
    """Evaluation root seed in [0, 2**32-1] (default: the reserved held-out seed
    2**31-1)."""
    out: Path | None = None
    """Where to write metrics.json (default: print only)."""
    figure: Path | None = None
    """Optional example-trial figure."""
    progress: bool = True
    """Show progress bars."""


def _config(args: TrainPolicyArgs):
    from neuroctl.train.policy import PolicyTrainConfig

    names = {f.name for f in dataclasses.fields(PolicyTrainConfig)}
    return PolicyTrainConfig(
        **{k: v for k, v in dataclasses.asdict(args).items() if k in names}
    )


def _check_args(args: TrainPolicyArgs) -> None:
    """Refuse bad options before any work (the paths too, even where unused)."""
    from neuroctl.train.plant import EVAL_SEED

    check_ints(
        args,
        {
            "hidden": (1, MAX_HIDDEN),
            "n_bins": (1, MAX_BINS),
            "seed": (0, EVAL_SEED - 1),
            "iterations": (1, MAX_ITERATIONS),
            "batch": (1, MAX_BATCH),
            "decay_steps": (0, MAX_ITERATIONS),
            "truncation": (0, MAX_WINDOW),
            "save_every": (1, MAX_ITERATIONS),
            "eval_trials": (0, MAX_TRIALS),
        },
    )
    check_output_folder("--out", args.out)
    if args.figure is not None:
        check_output_file("--figure", args.figure)
    if args.init_from is not None:
        _check_init_from(args.init_from)
    if args.ship is not None:
        check_artefact_destination("--ship", args.ship, "policy", args.overwrite)


def _check_init_from(src: Path) -> None:
    what = "a train-policy run directory or a shipped policy folder"
    check_folder("--init-from", src, what)
    if not any((src / name).is_file() for name in ("spec.toml", "config.json")):
        raise ConfigError(
            f"--init-from: {src} holds neither spec.toml (a shipped policy) nor "
            f"config.json (a run); pass {what}."
        )


def check_evaluate_args(args: EvaluateArgs) -> None:
    """Refuse bad `neuroctl evaluate` options before any work."""
    from neuroctl.io.artefacts import resolve

    check_ints(args, {"trials": (1, MAX_TRIALS), "seed": (0, MAX_SEED)})
    for name in ("out", "figure"):
        if getattr(args, name) is not None:
            check_output_file(f"--{name}", getattr(args, name))
    with blamed_on("--policy"):
        resolve(args.policy, "policy")


def _load_plant(name: str):
    from neuroctl.plants import load

    return load(name)


def train_policy(args: Annotated[TrainPolicyArgs, tyro.conf.arg(name="")]) -> dict:
    """Train an evidence-gain policy on the shipped plant (the README's main job)."""
    import jax

    _check_args(args)
    jax.config.update("jax_enable_x64", True)  # the shipped plants are float64
    cfg = _config(args)  # validates every field before anything runs
    from neuroctl.policies.shipped import plant_checksum
    from neuroctl.train import policy as tp
    from neuroctl.train.policy_run import PolicyRunConfig
    from neuroctl.train.policy_run import train_policy as run_training

    plant = _load_plant(args.plant)
    checksum = plant_checksum(plant)
    run = PolicyRunConfig(
        out=args.out,
        iterations=args.iterations,
        save_every=args.save_every,
        resume=args.resume,
        progress=args.progress,
        init_from=args.init_from,
    )
    t0 = time.perf_counter()
    parts, state = run_training(run, cfg, plant, args.plant, checksum)
    train_s = time.perf_counter() - t0
    policy = tp.merge(parts, state.params)
    print(f"trained {args.policy} to iteration {int(state.step)} in {train_s:.0f} s")
    report = {
        "train": dataclasses.asdict(cfg),
        "plant": {"name": args.plant, "checksum": checksum},
        "iterations": int(state.step),
        "train_wall_s": round(train_s, 1),
    }
    if args.eval_trials:
        env, env_params = tp.make_env(plant, cfg)
        report.update(
            _evaluate_and_report(
                env, env_params, policy, args.eval_trials, None, args.progress
            )
        )
        figure = args.figure or args.out / "example_trial.png"
        _example_figure(env, env_params, policy, figure, args.policy)
    from neuroctl.io.runs import write_json_atomic

    print(f"wrote {write_json_atomic(args.out / 'metrics.json', _provenance(report))}")
    if args.ship is not None:
        path = ship_policy(
            args.ship, policy, cfg, args.plant, checksum, report, args.overwrite
        )
        print(f"shipped the policy to {path}")
    return report


def _provenance(report: dict) -> dict:
    from neuroctl.train.ship import provenance

    return {**report, **provenance()}


def _evaluate_and_report(
    env, env_params, policy, trials, seed, progress, baseline=None
) -> dict:
    from neuroctl.train.plant import EVAL_SEED
    from neuroctl.train.policy_eval import evaluate

    t0 = time.perf_counter()
    result = evaluate(
        env,
        env_params,
        policy,
        trials,
        EVAL_SEED if seed is None else seed,
        progress=progress,
        baseline=baseline,
    )
    result["eval_wall_s"] = round(time.perf_counter() - t0, 1)
    print(format_comparison(result))
    return {"evaluation": result}


def table_evaluation(
    run: Path, env, env_params, policy, trials: int, progress: bool, baseline=None
) -> dict:
    """Policy vs ``g = 1`` on `trials` held-out trials, cached in a run directory.

    The card's (``ship-policy``) and results/policy_table.md's evaluation of the
    run in `run`: read from ``<run>/table<trials>.json`` if present, else computed
    (`neuroctl.train.policy_eval.evaluate`; pass `baseline`, a `Summary` of g = 1
    on the same trials, to skip recomputing it) and written there. Printed either way.
    """
    cache = run / f"table{trials}.json"
    if cache.is_file():
        result = json.loads(cache.read_text())
        print(format_comparison(result))
        return result
    result = _evaluate_and_report(
        env, env_params, policy, trials, None, progress, baseline
    )["evaluation"]
    cache.write_text(json.dumps(result, indent=1))
    return result


def format_comparison(result: dict) -> str:
    """The seed-style table: baseline vs policy, accuracy, power, reduction."""
    rows = [
        ("g = 1 baseline", result["baseline"]),
        ("policy", result["policy"]),
    ]
    lines = [
        f"held-out trials: {result['trials']} (seed {result['eval_seed']})",
        f"{'':16s} {'accuracy':>9s} {'95% CI':>15s} {'power [nA²]':>12s} "
        f"{'charge [pC]':>11s} {'mean gain':>9s}",
    ]
    for name, s in rows:
        lo, hi = s["accuracy_ci95"]
        lines.append(
            f"{name:16s} {s['accuracy']:9.4f} [{lo:.4f},{hi:.4f}] "
            f"{s['current_power']:12.3e} {s['charge']:11.3f} {s['mean_gain']:9.4f}"
        )
    lines.append(
        f"power reduction vs g = 1: {result['power_reduction']:.1f}x; "
        f"charge reduction: {result['charge_reduction']:.1f}x"
    )
    return "\n".join(lines)


def _example_figure(env, env_params, policy, path: Path, label: str) -> None:
    if path is None:
        return
    from neuroctl.io import save_figure
    from neuroctl.plotting.policy import example_trial_figure
    from neuroctl.train.policy_eval import example_trials

    trials = example_trials(env, env_params, policy)
    saved = save_figure(example_trial_figure(trials, label), path)
    print(f"wrote {saved}")


def ship_policy(
    folder: Path,
    policy,
    cfg,
    plant_name: str,
    checksum: str,
    report: dict,
    overwrite: bool = False,
):
    """Freeze `policy` into a sealed `folder` (spec.toml, checkpoint, metrics.json).

    Written atomically (`neuroctl.io.artefacts.write_artefact`); an existing
    folder is replaced only with `overwrite`.
    """
    from neuroctl.io.artefacts import write_artefact
    from neuroctl.policies.shipped import PolicySpec, spec_to_toml
    from neuroctl.train.policy import split

    _check_shippable(policy)
    spec = PolicySpec(
        name=Path(folder).name,
        policy=cfg.policy,
        hidden=cfg.hidden,
        n_bins=cfg.n_bins,
        g_max=cfg.g_max,
        g_init=cfg.g_init,
        control_ms=cfg.control_ms,
        precision=cfg.precision,
        observe_evidence=cfg.observe_evidence,
        observe_stimulus=cfg.observe_stimulus,
        plant=plant_name,
        plant_checksum=checksum,
    )
    return write_artefact(
        folder,
        "policy",
        spec_to_toml(spec),
        _provenance(report),
        split(policy)[1],
        {"plant_checksum": checksum, "policy": cfg.policy},
        overwrite=overwrite,
    )


def _check_shippable(policy) -> None:
    """Refuse what spec.toml + checkpoint cannot rebuild.

    A `ReadoutFeedback`'s onset is a constant, not a param: it must be the default.
    """
    from neuroctl.policies.gain import FEEDBACK_ONSET, feedback_of

    try:
        onset = feedback_of(policy).onset
    except ConfigError:
        return  # no feedback layer
    if onset != FEEDBACK_ONSET:
        raise ConfigError(
            f"feedback_onset: got {onset}; only the default "
            f"{FEEDBACK_ONSET} can be shipped (spec.toml does not record it); "
            "rebuild the policy with the default onset."
        )


def evaluate_policy(args: Annotated[EvaluateArgs, tyro.conf.arg(name="")]) -> dict:
    """Evaluate a shipped policy or a train-policy run against g = 1 (held-out)."""
    import jax

    check_evaluate_args(args)
    jax.config.update("jax_enable_x64", True)
    from neuroctl.policies.shipped import load_policy
    from neuroctl.train import policy as tp

    folder = args.policy
    if (folder / "spec.toml").is_file() or not folder.exists():
        policy, spec, _ = load_policy(folder)
        plant = _load_plant(spec.plant)
        cfg = tp.PolicyTrainConfig.from_spec(spec)
        label = spec.policy
    else:
        policy, plant, cfg = _from_run_dir(folder)
        label = cfg.policy
    env, env_params = tp.make_env(plant, cfg)
    report = _evaluate_and_report(
        env, env_params, policy, args.trials, args.seed, args.progress
    )
    if args.figure is not None:
        _example_figure(env, env_params, policy, args.figure, label)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(_provenance(report), indent=1))
        print(f"wrote {args.out}")
    return report


def _from_run_dir(folder: Path, option: str = "--policy"):
    from neuroctl.policies.shipped import plant_checksum
    from neuroctl.train import policy as tp
    from neuroctl.train.policy_run import restore

    config = folder / "config.json"
    if not config.is_file():
        raise ConfigError(
            f"{option}: {folder} is neither a shipped policy folder (spec.toml) nor "
            "a train-policy run directory (config.json); pass one of those."
        )
    record = json.loads(config.read_text())
    cfg = tp.PolicyTrainConfig(
        **{
            k: tuple(v) if isinstance(v, list) else v
            for k, v in record["train"].items()
        }
    )
    plant = _load_plant(record["plant"]["name"])
    if plant_checksum(plant) != record["plant"]["checksum"]:
        raise ConfigError(
            f"{option}: {folder} was trained on a plant with a different checksum "
            "than the shipped one; evaluate it on the plant it was trained on."
        )
    from neuroctl.policies.gain import control_steps

    parts, state = restore(folder, cfg, n_steps=control_steps(plant, cfg.control_ms))
    return tp.merge(parts, state.params), plant, cfg


@dataclass(frozen=True)
class ShipPolicyArgs:
    """Freeze a train-policy run into a shipped policy folder, with its evaluation."""

    run: Path
    """The train-policy run directory (config.json + checkpoints/)."""
    out: Path = Path("policies/evidence_gain_mlp")
    """The shipped folder to write (spec.toml, checkpoint/, metrics.json, seal)."""
    overwrite: bool = False
    """Replace an existing --out folder (atomically: old kept until new is whole)."""
    trials: int = 1000
    """Held-out trials of the card's evaluation [1] (at most 10**6; cached in the
    run directory)."""
    progress: bool = True
    """Show progress bars."""


def ship_run(args: Annotated[ShipPolicyArgs, tyro.conf.arg(name="")]) -> Path:
    """Freeze a train-policy run into a verified, shippable policy folder."""
    import jax

    check_ints(args, {"trials": (1, MAX_TRIALS)})  # the options, then the run
    check_artefact_destination("--out", args.out, "policy", args.overwrite)
    jax.config.update("jax_enable_x64", True)
    from neuroctl.train import policy as tp

    policy, plant, cfg = _from_run_dir(args.run, "--run")
    env, env_params = tp.make_env(plant, cfg)
    evaluation = table_evaluation(
        args.run, env, env_params, policy, args.trials, args.progress
    )
    record = json.loads((args.run / "config.json").read_text())
    lineage = _lineage(args.run)
    report = {
        "train": record["train"],
        "plant": record["plant"],
        "init_from": record.get("init_from"),
        "iterations": lineage[-1]["iterations"],
        "train_wall_s_this_stage": lineage[-1]["train_wall_s"],
        "lineage": lineage,
        "evaluation": evaluation,
    }
    path = ship_policy(
        args.out,
        policy,
        cfg,
        record["plant"]["name"],
        record["plant"]["checksum"],
        report,
        args.overwrite,
    )
    print(f"shipped {args.run} to {path}")
    return path


def _lineage(run: Path) -> list[dict]:
    """Every stage that produced ``run``'s parameters, first first.

    Follows ``init_from`` through the run directories' config.json and records each
    stage's run, training config, iterations and wall time, so that a shipped card
    names the whole continuation (e.g. a λ sweep), not only its last stage. A stage
    whose directory is gone is recorded by name with ``"missing": true``.
    """
    from neuroctl.io.runs import read_log

    stages: list[dict] = []
    seen: set[Path] = set()
    current: Path | None = Path(run)
    while current is not None and current.resolve() not in seen:
        seen.add(current.resolve())
        config = current / "config.json"
        if (current / "spec.toml").is_file():  # started from a shipped policy
            stages.append(_shipped_stage(current))
            break
        if not config.is_file():
            stages.append({"run": str(current), "missing": True})
            break
        record = json.loads(config.read_text())
        log = read_log(current / "log.jsonl")
        last = log[-1] if log else {}
        stages.append(
            {
                "run": str(current),
                "train": record["train"],
                "iterations": last.get("iteration"),
                "train_wall_s": last.get("wall_s"),
            }
        )
        parent = record.get("init_from")
        current = Path(parent) if parent else None
    return stages[::-1]


def _shipped_stage(folder: Path) -> dict:
    """A lineage stage for a shipped policy folder.

    Holds its card's own lineage (if trained) or how it was made
    (``designed_by``), and the card's power reduction.
    """
    card_path = folder / "metrics.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    keep = ("designed_by", "design", "lineage", "train", "git_commit")
    stage = {"shipped_policy": str(folder), **{k: card[k] for k in keep if k in card}}
    if "evaluation" in card:
        stage["card_power_reduction"] = card["evaluation"].get("power_reduction")
    return stage


COMMANDS = {
    "train-policy": train_policy,
    "ship-policy": ship_run,
}
