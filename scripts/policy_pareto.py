"""Accuracy vs stimulation power of gain policies on the shipped evidence plant.

The full reproduction of the policy results (issue #5), resumable: every training
stage is a `neuroctl.train.policy_run` run directory under ``--runs`` (rerunning the
script continues unfinished stages and skips finished ones), every evaluation is
cached next to its run. Stages of one policy kind form a λ continuation: the first
trains from scratch at the smallest ``lambda_gain``, each next one starts from the
previous one's parameters (``init_from``) with a larger λ — the cheap way to trace
a Pareto front.

Writes (with provenance):
* ``results/policy_pareto.png`` / ``.json``: accuracy and mean current power of
  every stage on ``--trials`` held-out trials, for MLP, GRU and open-loop policies,
  and the constant-gain curve (``g`` swept, no training) as the reference;
* ``results/policy_table.md``: the seed-style table (``g = 1`` vs policies:
  accuracy with 95 % CI, mean current power, reduction factor) on
  ``--table-trials`` held-out trials for the ``--table-policies`` cheapest stages
  with no error on the ``--trials`` evaluation; the cheapest of them reaching
  ``--accuracy-bar`` there is the recommended one (bold);
* ``results/policy_example_trial.png``: that policy on two held-out trials.

Usage: ``python scripts/policy_pareto.py`` (hours on a 2-core CPU; ``--kinds mlp``
and ``--max-stages 1`` for less; ``--replot`` redraws the figures from the JSON and
the shipped policy in seconds). A smoke run (tests/scripts): ``--kinds mlp
--max-stages 1 --max-iterations 1 --batch 1 --trials 2 --table-trials 2
--constant-gains 1 --runs <tmp> --results <tmp>``.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import tyro

jax.config.update("jax_enable_x64", True)

from neuroctl.io import save_figure  # noqa: E402
from neuroctl.io.runs import read_log  # noqa: E402
from neuroctl.plants import load  # noqa: E402
from neuroctl.policies import make_policy, plant_checksum  # noqa: E402
from neuroctl.train import policy as tp  # noqa: E402
from neuroctl.train.plant import EVAL_SEED, evaluation_keys  # noqa: E402
from neuroctl.train.policy_eval import example_trials, run_trials, summarise  # noqa: E402
from neuroctl.train.policy_run import PolicyRunConfig, restore, train_policy  # noqa: E402
from neuroctl.train.ship import provenance  # noqa: E402

PLANT = "evidence_integration"
FRESH = "fresh"  # Stage.start of a stage that trains a new policy


@dataclass(frozen=True)
class Stage:
    """One training stage of the λ continuation."""

    kind: str  # policy kind
    lambda_gain: float  # [1]
    iterations: int  # [1]
    lr: float  # Adam learning rate [1]
    start: str = ""  # stage it continues from (default: the previous one of its
    # kind); FRESH: a new policy from `seed` 0 and `g_init`
    ce_scale: float = 1.0  # readout-margin scale in the CE [1/mV] (1 = plant's CE)
    decay_steps: int = 0  # cosine decay of lr over this many iterations; 0: none
    batch: int = 0  # trials per gradient [1]; 0: the script's --batch
    observe_evidence: bool = False  # also observe the mean stimulus so far
    g_init: float = 1.0  # gain of a fresh policy [1] (no effect with a start)
    observe_stimulus: bool = False  # ... and the latest sample (current-shaped)
    lambda_current: float = 0.0  # weight of the mean current power [1/nA²]

    @property
    def name(self) -> str:
        sharp = f"_s{self.ce_scale:g}" if self.ce_scale != 1.0 else ""
        batch = f"_b{self.batch}" if self.batch else ""
        ev = "_cs" if self.observe_stimulus else "_ev" if self.observe_evidence else ""
        g0 = f"_g{self.g_init:g}" if self.g_init != 1.0 else ""
        cost = f"_l{self.lambda_gain:g}"
        if self.lambda_current:
            cost = f"{cost if self.lambda_gain else ''}_i{self.lambda_current:g}"
        return f"{self.kind}{ev}{cost}{sharp}{batch}{g0}"

    @property
    def series(self) -> str:
        """Curve of the Pareto figure this stage belongs to."""
        sharp = "" if self.ce_scale == 1.0 else "_sharp"
        ev = "_cs" if self.observe_stimulus else "_ev" if self.observe_evidence else ""
        return f"{self.kind}{sharp}{ev}"


def _shaped(
    lambda_current: float,
    start: str,
    iterations: int = 100,
    lr: float = 0.05,
    batch: int = 0,
) -> Stage:
    """A current-shaped open-loop stage (sharp CE, λ_g 0, cosine decay over the
    stage), costed by the current power λ_I [1/nA²]."""
    return Stage(
        "open_loop",
        0.0,
        iterations,
        lr,
        start,
        10.0,
        iterations,
        batch,
        observe_evidence=True,
        observe_stimulus=True,
        lambda_current=lambda_current,
    )


DEFAULT_STAGES = (
    Stage("mlp", 0.3, 300, 0.02),
    Stage("mlp", 1.0, 100, 0.01, start="mlp_l0.3"),
    Stage("mlp", 3.0, 100, 0.01, start="mlp_l1"),
    Stage("mlp", 2.0, 100, 0.01, start="mlp_l1"),
    # the sharp CE (ce_scale 10/mV), each continued from a plain-CE stage:
    Stage("mlp", 1.0, 100, 0.01, start="mlp_l1", ce_scale=10.0),
    Stage("mlp", 2.0, 100, 0.01, start="mlp_l2", ce_scale=10.0),
    Stage("mlp", 3.0, 100, 0.01, start="mlp_l2_s10", ce_scale=10.0, decay_steps=100),
    Stage("mlp", 4.0, 100, 0.01, start="mlp_l2_s10", ce_scale=10.0, decay_steps=100),
    Stage("mlp", 8.0, 100, 0.01, start="mlp_l2_s10", ce_scale=10.0, decay_steps=100),
    # a larger batch and a small decaying step, polishing the rare label-0 errors:
    Stage("mlp", 2.0, 50, 0.003, "mlp_l2_s10", 10.0, decay_steps=50, batch=16),
    Stage("open_loop", 0.3, 300, 0.05),
    Stage("open_loop", 2.0, 120, 0.05, ce_scale=10.0, decay_steps=120),
    Stage("gru", 0.3, 150, 0.02),
    Stage("gru", 1.0, 120, 0.02, ce_scale=10.0, decay_steps=120),
    # observing the mean stimulus so far (observe_evidence): the shipped MLP widened
    # (its new input starts at zero weight), and the evidence-switched profile,
    # continued from the open-loop one or grown from g = 0.05 everywhere
    Stage("mlp", 4.0, 150, 0.01, "mlp_l2_s10_b16", 10.0, 150, observe_evidence=True),
    Stage("open_loop", 2.0, 120, 0.05, "open_loop_l2_s10", 10.0, 120, 0, True),
    Stage("open_loop", 4.0, 100, 0.05, "open_loop_ev_l2_s10", 10.0, 100, 0, True),
    Stage("open_loop", 2.0, 150, 0.05, FRESH, 10.0, 150, 0, True, g_init=0.05),
    Stage(
        "open_loop",
        2.0,
        50,
        0.01,
        "open_loop_ev_l2_s10_g0.05",
        10.0,
        50,
        16,
        True,
        0.05,
    ),
    # the current-shaped profile (observe_stimulus): the λ4 evidence-switched
    # profile continued with the cost on the current power itself
    _shaped(1e6, "open_loop_ev_l4_s10"),
    _shaped(2e6, "open_loop_ev_l4_s10"),
    _shaped(4e6, "open_loop_cs_i2e+06_s10"),
    _shaped(8e6, "open_loop_cs_i2e+06_s10"),
    # polishes at batch 16 and a small decaying step
    _shaped(3e6, "open_loop_cs_i2e+06_s10", iterations=40, lr=0.01, batch=16),
    _shaped(4e6, "open_loop_cs_i4e+06_s10", iterations=40, lr=0.01, batch=16),
)  # what results/ shows; a new stage trains when the script reruns


@dataclass(frozen=True)
class Args:
    """Train the λ stages, evaluate them and the constant-gain curve, plot."""

    runs: Path = Path("runs/pareto")
    """Run directories (one per stage) and cached evaluations."""
    results: Path = Path("results")
    """Where figures and tables go."""
    kinds: tuple[str, ...] = ("mlp", "open_loop", "gru")
    """Policy kinds to include."""
    max_stages: int = 20
    """At most this many λ stages per kind [1]."""
    max_iterations: int | None = None
    """At most this many iterations per stage [1] (smoke runs; None: each stage's
    own, as results/ was made)."""
    trials: int = 200
    """Held-out trials per Pareto point [1]."""
    table_trials: int = 1000
    """Held-out trials for the table (baseline and candidates) [1]; 0 = no table."""
    table_policies: int = 5
    """Candidates in the table: the cheapest error-free ones on ``trials`` with the
    seed's observation [1]."""
    table_policies_evidence: int = 4
    """... and the cheapest error-free ones that also observe the mean stimulus [1]."""
    table_policies_shaped: int = 3
    """... and the cheapest error-free current-shaped ones (observe the sample) [1]."""
    accuracy_bar: float = 0.999
    """Accuracy on ``table_trials`` that the recommended (bold) row must reach [1]."""
    constant_gains: tuple[float, ...] = (1.0, 0.7, 0.5, 0.4, 0.3)
    """Constant gains of the reference curve [1]."""
    batch: int = 8
    """Trials per gradient [1]."""
    train: bool = True
    """Train unfinished stages (False: evaluate what exists)."""
    stages: tuple[Stage, ...] = field(default=DEFAULT_STAGES)
    """The λ continuation (kind, lambda_gain, iterations, lr)."""
    replot: bool = False
    """Only redraw the figures (no training, no evaluation): policy_pareto.png from
    ``results``/policy_pareto.json, policy_example_trial.png from
    ``example_policy`` on its two example trials (seconds)."""
    example_policy: Path = Path("policies/evidence_current_profile")
    """With ``replot``: the shipped copy of the table's recommended (bold) policy."""


def _cfg(stage: Stage, batch: int) -> tp.PolicyTrainConfig:
    return tp.PolicyTrainConfig(
        policy=stage.kind,
        batch=stage.batch or batch,
        lambda_gain=stage.lambda_gain,
        lr=stage.lr,
        ce_scale=stage.ce_scale,
        decay_steps=stage.decay_steps,
        observe_evidence=stage.observe_evidence or stage.observe_stimulus,
        observe_stimulus=stage.observe_stimulus,
        g_init=stage.g_init,
        lambda_current=stage.lambda_current,
    )


def _start(runs: Path, stage: Stage, previous: Path | None) -> Path | None:
    if stage.start == FRESH:
        return None
    return runs / stage.start if stage.start else previous


def _finished(out: Path, iterations: int) -> bool:
    log = read_log(out / "log.jsonl")
    return bool(log) and log[-1]["iteration"] >= iterations


def _evaluate(env, env_params, policy, n: int, cache: Path) -> dict:
    if cache.exists():
        return json.loads(cache.read_text())
    t0 = time.perf_counter()
    summary = summarise(run_trials(env, env_params, policy, evaluation_keys(n)))
    out = {**summary.as_dict(), "eval_s": round(time.perf_counter() - t0, 1)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out, indent=1))
    return out


def main(args: Args) -> None:
    if args.replot:
        _replot(args)
        return
    plant = load(PLANT)
    checksum = plant_checksum(plant)
    env, env_params = tp.make_env(plant, tp.PolicyTrainConfig())
    dtype = env.config.jnp_dtype
    points = []
    for g in args.constant_gains:
        policy = make_policy("fixed", g_init=g, g_max=2.0, param_dtype=dtype)
        cache = args.runs / "constant" / f"g{g:g}_eval{args.trials}.json"
        s = _evaluate(env, env_params, policy, args.trials, cache)
        points.append({"kind": "constant", "gain": g, **s})
        print(
            f"constant g={g:g}: acc {s['accuracy']:.3f} power {s['current_power']:.3e}"
        )
    baseline = next(p for p in points if p["gain"] == 1.0)
    for kind in args.kinds:
        previous = None
        for stage in [s for s in args.stages if s.kind == kind][: args.max_stages]:
            out = args.runs / stage.name
            cfg = _cfg(stage, args.batch)
            iterations = min(stage.iterations, args.max_iterations or stage.iterations)
            if not _finished(out, iterations):
                if not args.train:
                    break
                run = PolicyRunConfig(
                    out=out,
                    iterations=iterations,
                    resume=(out / "checkpoints").exists(),
                    init_from=_start(args.runs, stage, previous),
                )
                train_policy(run, cfg, plant, PLANT, checksum)
            parts, state = restore(out, cfg)
            policy = tp.merge(parts, state.params)
            cache = out / f"eval{args.trials}.json"
            stage_env, _ = tp.make_env(plant, cfg)  # same trials, its observation
            s = _evaluate(stage_env, env_params, policy, args.trials, cache)
            s["power_reduction"] = baseline["current_power"] / s["current_power"]
            points.append(
                {
                    "kind": kind,
                    "series": stage.series,
                    "stage": stage.name,
                    "lambda_gain": stage.lambda_gain,
                    "ce_scale": stage.ce_scale,
                    "batch": cfg.batch,
                    "observe_evidence": cfg.observe_evidence,
                    "observe_stimulus": cfg.observe_stimulus,
                    "lambda_current": stage.lambda_current,
                    "run": str(out),
                    **s,
                }
            )
            print(
                f"{stage.name}: acc {s['accuracy']:.3f} power "
                f"{s['current_power']:.3e} ({s['power_reduction']:.1f}x)"
            )
            previous = out
    _write(args, plant, env_params, points, checksum)


def _candidates(
    points: list[dict], n: int, n_evidence: int, n_shaped: int
) -> list[dict]:
    """The cheapest policies with no error on the Pareto trials, cheapest first:
    ``n`` with the seed's observation, ``n_evidence`` observing the mean stimulus,
    ``n_shaped`` also observing the latest sample (current-shaped)."""
    ok = [p for p in points if p["kind"] != "constant" and p["correct"] == p["trials"]]
    ok = sorted(ok, key=lambda p: p["current_power"])
    seed = [p for p in ok if not p.get("observe_evidence")][:n]
    shaped = [p for p in ok if p.get("observe_stimulus")]
    evidence = [p for p in ok if p.get("observe_evidence") and p not in shaped]
    chosen = seed + evidence[:n_evidence] + shaped[:n_shaped]
    return sorted(chosen, key=lambda p: p["current_power"])


def _write(args: Args, plant, env_params, points, checksum) -> None:
    from neuroctl.plotting.policy import example_trial_figure, pareto_figure
    from neuroctl.train.policy_commands import table_evaluation
    from neuroctl.train.policy_eval import Summary

    args.results.mkdir(parents=True, exist_ok=True)
    record = {
        "plant": PLANT,
        "plant_checksum": checksum,
        "eval_seed": EVAL_SEED,
        "trials": args.trials,
        "points": points,
        **provenance(),
    }
    (args.results / "policy_pareto.json").write_text(json.dumps(record, indent=1))
    save_figure(pareto_figure(points, args.trials), args.results / "policy_pareto.png")
    if args.table_trials == 0:
        return
    candidates = _candidates(
        points,
        args.table_policies,
        args.table_policies_evidence,
        args.table_policies_shaped,
    )
    if not candidates:
        print("no policy was error-free on the Pareto trials; no table written")
        return
    rows = []  # (point, stage, policy, table) per candidate
    baseline = None  # g = 1 on the table trials: the same for every candidate
    for point in candidates:
        stage = next(s for s in args.stages if s.name == point["stage"])
        cfg = _cfg(stage, args.batch)
        parts, state = restore(Path(point["run"]), cfg)
        policy = tp.merge(parts, state.params)
        env, _ = tp.make_env(plant, cfg)
        print(f"{stage.name}:")
        table = table_evaluation(
            Path(point["run"]),
            env,
            env_params,
            policy,
            args.table_trials,
            True,
            baseline,
        )
        if baseline is None:
            try:
                baseline = Summary(**table["baseline"])
            except TypeError:  # a cache from before a Summary field was added
                pass
        rows.append((point, stage, policy, table, env))
    # the recommended policy: the cheapest candidate that meets the accuracy bar
    passing = [r for r in rows if r[3]["policy"]["accuracy"] >= args.accuracy_bar]
    pick = min(passing or rows, key=lambda r: r[3]["policy"]["current_power"])
    (args.results / "policy_table.md").write_text(_table_md(args, rows, pick))
    point, stage, policy, _, env = pick
    save_figure(
        example_trial_figure(
            example_trials(env, env_params, policy),
            f"{point['kind']} ({_describe(stage)})",
        ),
        args.results / "policy_example_trial.png",
    )


def _replot(args: Args) -> None:
    """The figures again from the committed JSON and the shipped policy."""
    from neuroctl.plotting.policy import example_trial_figure, pareto_figure
    from neuroctl.policies.shipped import load_policy

    record = json.loads((args.results / "policy_pareto.json").read_text())
    fig = pareto_figure(record["points"], record["trials"])
    print("wrote", save_figure(fig, args.results / "policy_pareto.png"))
    policy, spec, _ = load_policy(args.example_policy)
    card = json.loads((args.example_policy / "metrics.json").read_text())
    run = Path(card["lineage"][-1]["run"]).name  # the stage it was shipped from
    stage = next(s for s in args.stages if s.name == run)
    env, env_params = tp.make_env(
        load(spec.plant), tp.PolicyTrainConfig.from_spec(spec)
    )
    fig = example_trial_figure(
        example_trials(env, env_params, policy), f"{stage.kind} ({_describe(stage)})"
    )
    print("wrote", save_figure(fig, args.results / "policy_example_trial.png"))


def _shipped(root: Path = Path("policies")) -> dict[str, str]:
    """Run directory → shipped folder, from the cards' lineage (last stage)."""
    out = {}
    for card in sorted(root.glob("*/metrics.json")):
        lineage = json.loads(card.read_text()).get("lineage") or []
        if lineage:
            out[lineage[-1]["run"]] = str(card.parent)
    return out


def _describe(stage: Stage) -> str:
    sharp = f", CE scale {stage.ce_scale:g}/mV" if stage.ce_scale != 1.0 else ""
    batch = f", batch {stage.batch}" if stage.batch else ""
    ev = ", observes the mean stimulus" if stage.observe_evidence else ""
    if stage.observe_stimulus:
        ev = ", current-shaped (observes the mean stimulus and the latest sample)"
    cost = [f"λ_g = {stage.lambda_gain:g}"] if stage.lambda_gain else []
    if stage.lambda_current:
        cost.append(f"λ_I = {stage.lambda_current:g}/nA²")
    return f"{', '.join(cost)}{sharp}{batch}{ev}"


def _table_md(args: Args, rows: list, pick: tuple) -> str:
    def row(name, s, red):
        lo, hi = s["accuracy_ci95"]
        return (
            f"| {name} | {s['correct']}/{s['trials']} = {s['accuracy']:.4f} "
            f"[{lo:.4f}, {hi:.4f}] | {s['current_power']:.3e} | "
            f"{s['charge']:.2f} | {s['mean_gain']:.3f} | {red} |"
        )

    first = rows[0][3]
    lines = [
        "# Gain policies on the evidence plant: the seed-style table",
        "",
        f"`python scripts/policy_pareto.py` — {first['trials']} held-out trials "
        f"(root seed {first['eval_seed']}, disjoint from training), the same "
        "trials for every row; float64; control period 1 ms. Power = mean over "
        "trials of the per-trial mean over time and cells of I² [nA²]; reduction = "
        "baseline / policy. Rows: the cheapest policies with no error on the "
        f"{args.trials}-trial Pareto evaluation (results/policy_pareto.json): up to "
        f"{args.table_policies} with the seed's observation [v_readout0, v_readout1, "
        f"t/T], up to {args.table_policies_evidence} that also observe the mean "
        "filtered stimulus so far (`observe_evidence`) and up to "
        f"{args.table_policies_shaped} that observe the latest sample as well "
        "(`observe_stimulus`: the current-shaped profiles), cheapest first; **bold**: "
        f"the cheapest of them with accuracy ≥ {args.accuracy_bar:g} here (the one "
        "in results/policy_example_trial.png).",
        "",
        "| stimulation | accuracy [95 % CI] | mean current power [nA²] | "
        "charge/trial [pC] | mean gain | power reduction |",
        "|---|---|---|---|---|---|",
        row("g = 1 (plant's native input)", first["baseline"], "1x"),
    ]
    shipped = _shipped()
    for point, stage, _, table, _ in rows:
        assert table["baseline"]["current_power"] == first["baseline"]["current_power"]
        red = f"{table['power_reduction']:.1f}x"
        name = f"{point['kind']} `{stage.name}`, {_describe(stage)}"
        if point["run"] in shipped:
            name += f" (shipped: `{shipped[point['run']]}`)"
        if point is pick[0]:
            name, red = f"**{name}**", f"**{red}**"
        lines.append(row(name, table["policy"], red))
    prov = provenance()
    lines += [
        "",
        "Iterations, learning rate and starting point of every stage: "
        "`DEFAULT_STAGES` in `scripts/policy_pareto.py`; run directories are under "
        "`runs/pareto/`. The rows were picked on the 200-trial evaluation, the bold "
        "one among them on these 1,000 trials (a mild selection on the test set). "
        "Seed's result to compare: g = 1 → 99.9 %, learned MLP → 100 % on 200 "
        "trials at ~30x less power. Target of issue #5: ≥ 99.9 % on 1,000 trials "
        "at ≥ 100x.",
        "",
        f"git {prov['git_commit']}, neuroctl {prov['neuroctl_version']}, "
        f"{prov['date_utc']}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(tyro.cli(Args))
