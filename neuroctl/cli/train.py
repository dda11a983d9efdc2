"""``neuroctl train``: BPTT on any registered env, then a held-out comparison.

Thin: parses options, calls `neuroctl.train.runs.train_run`, evaluates its
best-validated parameters with `neuroctl.train.evaluate` (against the best constant
action of a sweep, on the same held-out episodes), prints the comparison and writes
``<out>/metrics.json``, ``<out>/example_episode.png`` and
``<out>/training_curve.png``.
"""

import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tyro

from neuroctl.errors import ConfigError, bad_value
from neuroctl.options import (
    MAX_BATCH,
    MAX_BINS,
    MAX_HIDDEN,
    MAX_ITERATIONS,
    MAX_SWEEP_POINTS,
    MAX_TRIALS,
    MAX_WINDOW,
    blamed_on,
    check_artefact_destination,
    check_ints,
    check_output_folder,
)
from neuroctl.train.policy_commands import EvaluateArgs, check_evaluate_args


@dataclass(frozen=True)
class TrainArgs:
    """Train a stimulation policy by BPTT on any registered env (resumable).

    The loss is −(the env's episode return): the env's own reward (task outcome
    and energy terms), the number RL maximises through its Gymnasium face.
    """

    env: str = "SpikeRate-v0"
    """Registered env (neuroctl.envs.names(): SpikeRate-v0, SpikeRateBallStick-v0,
    EvidenceStim-v0, EvidenceStimElectrodes-v0, BetaSuppression-v0; 'neuroctl/'
    prefix optional)."""
    env_option: tuple[str, ...] = ()
    """Options of the env's factory as key=value (e.g. episode_ms=100
    pulse_width_ms=0.1 n_electrodes=4); values parse as TOML, else as text."""
    param: tuple[str, ...] = ()
    """Env params to set as name=value, by dotted name or the env's alias (e.g.
    task.input_gain=0.3 objective.current_power=10), in the param's unit; an array
    param is filled with the value."""
    policy: Literal["mlp", "gru", "open_loop", "constant"] = "mlp"
    """Policy: closed-loop MLP / GRU, open-loop time profile, one constant action."""
    hidden: int = 32
    """Hidden units of mlp/gru [1] (at most 4096)."""
    n_bins: int = 20
    """Time bins of open_loop [1] (at most 10**4)."""
    wrap: tuple[
        Literal[
            "evidence_switch", "current_shaping", "readout_feedback", "current_tracking"
        ],
        ...,
    ] = ()
    """Policy wrappers, innermost first (neuroctl.policies.wrappers), e.g. --wrap
    readout_feedback current_shaping evidence_switch; each reads its observation
    fields by name (an error names a field the env does not observe)."""
    init_from: Path | None = None
    """Start from the best-validated policy of this finished run directory (same
    --policy, --hidden, --wrap; env with the same observation and action sizes):
    fine-tune it, e.g. at a lower --lr. Only its trainable weights are taken."""
    init_fraction: float | None = None
    """Fresh policy's action: low + f·(high − low) of the action space [1];
    default: the best constant of the sweep (f clipped to [0.02, 0.98])."""
    precision: Literal["float32", "float64"] = "float32"
    """Env and policy dtype (the evidence plant was trained in float64)."""
    seed: int = 0
    """Policy initialisation and training episodes [1] (< 2**31-2: the larger
    seeds are reserved for validation and held-out episodes)."""
    iterations: int = 100
    """Total iterations to reach [1] (at most 10**7)."""
    batch: int = 8
    """Episodes per gradient step [1] (at most 2**16)."""
    lr: float = 0.01
    """Adam learning rate [1]."""
    decay_steps: int = 0
    """Cosine decay of lr to 0.1·lr over this many iterations [1] (at most 10**7);
    0 = constant."""
    clip_norm: float = 1.0
    """Global gradient-norm clip [1]."""
    truncation: int = 0
    """Truncated BPTT window [control steps] (at most 10**6); 0 = through whole
    episodes."""
    out: Path | None = None
    """Run directory (default: runs/<env>-<policy>)."""
    resume: bool = False
    """Continue the run in --out (or re-evaluate it once finished)."""
    save_every: int = 10
    """Checkpoint period [iterations] (at most 10**7)."""
    validate_every: int = 10
    """Validation period [iterations] (at most 10**7): the best-validated
    parameters are kept."""
    validate_episodes: int = 16
    """Fixed validation episodes (neither training nor held-out ones) [1] (at most
    10**6)."""
    eval_episodes: int = 100
    """Held-out episodes for the final comparison [1] (at most 10**6)."""
    sweep_points: int = 9
    """Constant actions low + f·(high − low), f = 0 … 1, tried for the baseline
    (2 to 10**4)."""
    sweep_episodes: int = 32
    """Validation episodes per sweep point (the pick; not the held-out ones) [1]
    (at most 10**6)."""
    progress: bool = True
    """Show progress bars."""
    devices: int = 1
    """Devices each batch of episodes is split over (data parallel) [1]; 1 = no
    mesh. --batch and --validate-episodes must be multiples of it; results equal
    one device's up to float rounding. On CPU, set
    XLA_FLAGS=--xla_force_host_platform_device_count=N first."""


def parse_pairs(option: str, pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("a=1", "b=x")`` → ``{"a": 1, "b": "x"}``: TOML values, else text.

    TOML arrays become tuples, as config dataclasses want them.
    """
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise bad_value(option, pair, "key=value", f"e.g. {option} episode_ms=100.")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        out[key.strip()] = tuple(value) if isinstance(value, list) else value
    return out


def _check(args: TrainArgs) -> Path:
    """Refuse bad options before any work; the run directory."""
    from neuroctl.train.bptt import PROBE_SEED

    check_ints(
        args,
        {
            "hidden": (1, MAX_HIDDEN),
            "n_bins": (1, MAX_BINS),
            "seed": (0, PROBE_SEED - 1),
            "iterations": (0, MAX_ITERATIONS),
            "batch": (1, MAX_BATCH),
            "decay_steps": (0, MAX_ITERATIONS),
            "truncation": (0, MAX_WINDOW),
            "save_every": (1, MAX_ITERATIONS),
            "validate_every": (1, MAX_ITERATIONS),
            "validate_episodes": (1, MAX_TRIALS),
            "eval_episodes": (1, MAX_TRIALS),
            "sweep_points": (2, MAX_SWEEP_POINTS),
            "sweep_episodes": (1, MAX_TRIALS),
            "devices": (1, MAX_BATCH),
        },
    )
    _check_devices(args)
    name = args.env.removeprefix("neuroctl/")
    out = args.out or Path("runs") / f"{name}-{args.policy}"
    check_output_folder("--out", out)
    return out


def _check_devices(args: TrainArgs) -> None:
    """--batch and --validate-episodes split over --devices, which JAX has."""
    if args.devices == 1:
        return
    from neuroctl.train.sharding import check_divisible, data_mesh

    check_divisible("--batch", args.batch, args.devices)
    check_divisible("--validate-episodes", args.validate_episodes, args.devices)
    with blamed_on("--devices"):
        data_mesh(args.devices)


def spec_and_options(args: TrainArgs, init_fraction: float = 0.5):
    """`RunSpec` and `RunOptions` of the command line.

    `init_fraction` is used where ``args.init_fraction`` is None.
    """
    from neuroctl.train import bptt
    from neuroctl.train.runs import RunOptions, RunSpec

    out = _check(args)
    spec = RunSpec(
        env=args.env.removeprefix("neuroctl/"),
        env_options=parse_pairs("--env-option", args.env_option),
        env_params=parse_pairs("--param", args.param),
        policy=args.policy,
        hidden=args.hidden,
        n_bins=args.n_bins,
        wrap=tuple(args.wrap),
        init_from=None if args.init_from is None else str(args.init_from),
        init_fraction=(
            init_fraction if args.init_fraction is None else args.init_fraction
        ),
        precision=args.precision,
        train=bptt.BPTTConfig(
            seed=args.seed,
            batch=args.batch,
            lr=args.lr,
            decay_steps=args.decay_steps,
            clip_norm=args.clip_norm,
            truncation=args.truncation,
        ),
    )
    opts = RunOptions(
        out,
        args.iterations,
        args.save_every,
        resume=args.resume,
        progress=args.progress,
        validate_every=args.validate_every,
        validate_episodes=args.validate_episodes,
        devices=args.devices,
    )
    return spec, opts


def train(args: Annotated[TrainArgs, tyro.conf.arg(name="")]) -> dict:
    """Train a policy by BPTT on any registered env and compare it with constants."""
    from neuroctl.io.runs import check_fresh
    from neuroctl.train.runs import build_env, train_run

    spec, opts = spec_and_options(args)
    check_fresh(opts.out, opts.resume)  # before the sweep, not after it
    sweep = constant_sweep(*build_env(spec), args, opts.out)
    best = max(sweep, key=lambda s: s["return"])
    spec, opts = spec_and_options(args, min(max(best["fraction"], 0.02), 0.98))
    t0 = time.perf_counter()
    run = train_run(spec, opts)
    train_s = time.perf_counter() - t0
    env, env_params, parts, params = run.env, run.env_params, run.parts, run.best_params
    report = compare(env, env_params, parts, params, np.asarray(best["action"]), args)
    report.update(
        sweep=sweep,
        spec=spec.as_record(),
        iterations=int(run.state.step),
        best_iteration=run.best_iteration,
        best_validation_return=run.best_return,
        train_s=round(train_s, 1),
    )
    _write_report(opts.out, report)
    figures(env, env_params, parts, params, report, opts.out, spec.env)
    print(format_report(report))
    return report


def constant_sweep(env, env_params, args: TrainArgs, out: Path) -> list[dict]:
    """The constant-action sweep on validation episodes (cached in out/sweep.json)."""
    from neuroctl.io.runs import read_json, write_json_atomic
    from neuroctl.train import evaluate as ev

    settings = {
        "env": args.env.removeprefix("neuroctl/"),
        "env_option": list(args.env_option),
        "param": list(args.param),
        "precision": args.precision,
        "sweep_points": args.sweep_points,
        "sweep_episodes": args.sweep_episodes,
    }
    cached = read_json(out / "sweep.json")
    if cached is not None and cached.get("settings") == settings:
        return cached["sweep"]
    fractions = [float(f) for f in np.linspace(0.0, 1.0, args.sweep_points)]
    _, sweep = ev.best_constant(
        env, env_params, fractions, args.sweep_episodes, args.progress
    )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "sweep.json", {"settings": settings, "sweep": sweep})
    return sweep


def compare(env, env_params, parts, params, best, args: TrainArgs) -> dict:
    """Trained policy and the best constant `best` on the same held-out episodes."""
    from neuroctl.train import evaluate as ev

    keys = ev.evaluation_keys(args.eval_episodes)
    mesh = _mesh(args.devices)
    pol = ev.run_policy(
        env, env_params, parts, params, keys, progress=args.progress, mesh=mesh
    )
    const = ev.run_constant(
        env,
        env_params,
        best,
        keys,
        progress=args.progress,
        desc="best constant",
        mesh=mesh,
    )
    return {"eval_episodes": args.eval_episodes, **ev.comparison(pol, const, best)}


def _mesh(devices: int):
    """The data mesh of --devices (None for one device)."""
    from neuroctl.train.sharding import data_mesh

    return data_mesh(devices) if devices > 1 else None


def _write_report(out: Path, report: dict) -> None:
    from neuroctl.io.runs import write_json_atomic
    from neuroctl.train.ship import provenance

    report["provenance"] = provenance()
    write_json_atomic(out / "metrics.json", report)


def figures(env, env_params, parts, params, report, out: Path, name: str) -> None:
    """Write example_episode.png (vs the best constant) and training_curve.png."""
    from neuroctl.io import save_figure
    from neuroctl.plotting.episode import episode_figure
    from neuroctl.train.evaluate import episode_traces, evaluation_keys

    key = evaluation_keys(1)[0]
    best = np.asarray(report["best_constant"]["action"])
    runs = {
        "trained policy": episode_traces(env, env_params, key, parts, params),
        "best constant": episode_traces(env, env_params, key, action=best),
    }
    t_ms = np.arange(env.n_steps) * env.config.control_ms  # start of each period
    fields = env.observation_fields()
    keep = [j for j, (field, _) in enumerate(fields) if field != "t/T"]
    runs = {k: (a, o[:, keep]) for k, (a, o) in runs.items()}
    fig = episode_figure(
        t_ms,
        runs,
        tuple(fields[j] for j in keep),
        env.action_unit(),
        f"{name}: one held-out episode (actions from each period's start)",
    )
    save_figure(fig, out / "example_episode.png")
    _curve(out, report, name)


def _curve(out: Path, report: dict, name: str) -> None:
    from neuroctl.io import save_figure
    from neuroctl.io.runs import read_log
    from neuroctl.plotting.episode import training_curve_figure

    rows = read_log(out / "log.jsonl")
    if not rows:
        return
    fig = training_curve_figure(
        np.array([r["iteration"] for r in rows]),
        np.array([r["episode_return"] for r in rows]),
        report["best_constant"]["return"],
        "best constant (held-out)",
        f"{name}: training",
        validation=(
            np.array([r["iteration"] for r in rows if "val_return" in r]),
            np.array([r["val_return"] for r in rows if "val_return" in r]),
        ),
    )
    save_figure(fig, out / "training_curve.png")


def format_report(report: dict) -> str:
    """The comparison as a few aligned lines."""
    lines = [f"held-out episodes: {report['eval_episodes']}"]
    if report.get("best_iteration") is not None:
        lines[0] += (
            f"; policy parameters of iteration {report['best_iteration']} (best "
            f"validation return {report['best_validation_return']:+.5g})"
        )
    for label, key in (
        ("trained policy", "policy"),
        ("best constant", "best_constant"),
    ):
        s = report[key]
        extra = ""
        if "accuracy" in s:
            lo, hi = s["accuracy_ci95"]
            extra = f"  accuracy {s['correct']}/{s['episodes']} [{lo:.3f}, {hi:.3f}]"
        lines.append(
            f"{label:>15}: return {s['return']:+.5g} ± {s['return_sem']:.2g}  "
            f"power {s['current_power']:.4g} nA²  charge {s['charge']:.4g} pC{extra}"
        )
    d = report.get("difference")  # absent from reports written before it existed
    if d is not None:
        lines.append(
            f"{'trained − best':>15}: return {d['return']:+.5g} ± "
            f"{d['return_sem']:.2g} (paired over the same {d['episodes']} episodes)"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class ShipArgs:
    """Freeze a training run into a sealed policy folder (spec, checkpoint, card)."""

    run: Path
    """A `neuroctl train` run directory (finished: with metrics.json), or a
    train-policy run directory (then as ship-policy)."""
    out: Path
    """The policy folder to write (spec.toml, checkpoint/, metrics.json, seal)."""
    overwrite: bool = False
    """Replace an existing --out folder (atomically: old kept until new is whole)."""
    trials: int = 1000
    """Held-out trials of the card's evaluation (train-policy runs only) [1] (at
    most 10**6)."""


def ship(args: Annotated[ShipArgs, tyro.conf.arg(name="")]) -> Path:
    """Freeze a training run (neuroctl train or train-policy) into a policy folder."""
    from neuroctl.io.runs import read_record

    check_ints(args, {"trials": (1, MAX_TRIALS)})  # the options, then the run
    check_artefact_destination("--out", args.out, "policy", args.overwrite)
    with blamed_on("--run"):
        record = read_record(args.run)
    if "spec" not in record:  # a train-policy run: the evidence-gain shipper
        from neuroctl.train.policy_commands import ShipPolicyArgs, ship_run

        return ship_run(ShipPolicyArgs(args.run, args.out, args.overwrite, args.trials))
    from neuroctl.train.runs import set_precision
    from neuroctl.train.shipping import ship_run as ship_network

    set_precision(record["spec"].get("precision", "float32"))
    path = ship_network(args.run, args.out, args.overwrite)
    print(f"shipped {args.run} to {path}")
    return path


def evaluate_network(folder: Path, trials: int, seed, out, progress: bool) -> dict:
    """A network policy folder or `neuroctl train` run vs its best constant."""
    from neuroctl.io.runs import read_json, write_json_atomic
    from neuroctl.train import evaluate as ev
    from neuroctl.train.shipping import is_network_policy, load_network_policy

    if is_network_policy(folder):
        pol = load_network_policy(folder)
        env, env_params, parts, params, card = pol[1:]
    else:
        from neuroctl.train.runs import load_run

        _, env, env_params, parts, params = load_run(folder)
        card = read_json(folder / "metrics.json") or {}
    if "best_constant" not in card:
        raise ConfigError(
            f"--policy: {folder} has no best constant in its metrics.json; finish "
            "the run (neuroctl train --resume ...) first."
        )
    keys = ev.evaluation_keys(trials, ev.EVAL_SEED if seed is None else seed)
    best = np.asarray(card["best_constant"]["action"])
    pol = ev.run_policy(env, env_params, parts, params, keys, progress=progress)
    const = ev.run_constant(env, env_params, best, keys, progress=progress)
    report = {
        "eval_episodes": trials,
        "best_iteration": card.get("best_iteration"),
        "best_validation_return": card.get("best_validation_return"),
        **ev.comparison(pol, const, best),
    }
    print(format_report(report))
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        print(f"wrote {write_json_atomic(out, report)}")
    return report


def _network_policy(policy: Path) -> Path | None:
    """The folder of `policy` if it is a network policy or a `neuroctl train` run."""
    from neuroctl.io.artefacts import resolve
    from neuroctl.io.runs import read_json
    from neuroctl.train.shipping import is_network_policy

    try:
        folder = resolve(policy, "policy")
    except ConfigError:
        return None  # the evidence-gain loader reports it
    record = read_json(folder / "config.json")
    is_run = isinstance(record, dict) and "spec" in record
    return folder if is_run or is_network_policy(folder) else None


def evaluate(args: Annotated[EvaluateArgs, tyro.conf.arg(name="")]) -> dict:
    """Evaluate a policy (shipped or a run) on held-out episodes against a baseline."""
    check_evaluate_args(args)
    network = _network_policy(args.policy)
    if network is None:  # an evidence-gain policy: against g = 1
        from neuroctl.train.policy_commands import evaluate_policy

        return evaluate_policy(args)
    return evaluate_network(network, args.trials, args.seed, args.out, args.progress)


COMMANDS = {"train": train, "evaluate": evaluate, "ship": ship}
