"""Noise-free optimal label-0 current profiles: a bound, and designed policies.

The question behind issue #5's ≥ 100x target: how little power can a gain policy
on the evidence plant spend and stay right? Label-1 trials cost nothing once a
policy reads the evidence stream; a label-0 trial receives no input until the
policy's current starts, so every label-0 trial starts from one deterministic
network trajectory. `neuroctl.policies.design.design_profile` finds, by gradient
ascent through the whole noise-free simulation, the current profile with the
largest label-0 margin at a given power (see that module). This script

1. designs a profile for each target power reduction (``--reductions``, against
   ``g = 1`` on the evaluation trials, counting only the label-0 trials as
   stimulated): the *noise-free bound* (margin > 0 = answered right with a
   perfect current source); at ``--check-reduction`` it also restarts from a
   flat profile (is the optimum found again?) and lets the current take either
   sign (a bidirectional source along the input weights);
2. evaluates each designed profile on the noisy env (``--trials`` held-out
   trials, the Pareto evaluation's) as three policies:

   * *open loop*: a current-shaped profile (``make_policy("open_loop",
     n_obs=5)``) requesting ``profile / delivery`` to make up for the mean
     shortfall of gating the noisy stream (`delivery_ratio`);
   * *feedback*: a feedback profile (`ReadoutFeedback` inside) that also
     corrects the request by the observed readout difference against the
     design's noise-free trajectory (``--feedback-gain`` per mV, from 0.8 of the
     trial on);
   * *tracking*: a tracking profile (`CurrentTracking`) that keeps books on the
     current it delivered and makes up each shortfall within ``--tracking-ms``,
     with a predicted sample
     in the gain, at a ``--tracking-control-ms`` control period and gains up to
     ``--tracking-g-max`` (plus readout feedback, ``--tracking-feedback-gain``);

3. picks, per policy kind, the cheapest design right on every one of those trials
   that keeps ≥ 99.9 % on ``--validation-trials`` *validation* trials (seed
   ``--validation-seed``; cheapest first, at most ``--max-checks``), evaluates each
   pick once on the policy table's ``--check-trials`` held-out trials, and ships
   the cheapest pick with ``--ship`` if it keeps ≥ 99.9 % there.

Nothing here is trained on trials: the designs see one noise-free trajectory; the
picks use the evaluation and validation trials, never the table's.
Writes ``results/policy_designed_profile.md``, ``.json`` and ``.png``, and
``results/policy_designed_example_trial.png`` (the policy that passed step 3 on two
held-out trials).
Usage: ``python scripts/policy_designed_profile.py --ship
policies/evidence_tracking_profile`` (~60 min on 2 CPU cores); ``--replot`` redraws
the figures from the JSON and the shipped policy (seconds).
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import tyro

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuroctl.io import save_figure  # noqa: E402
from neuroctl.plants import load  # noqa: E402
from neuroctl.plotting.policy import example_trial_figure  # noqa: E402
from neuroctl.policies import design, plant_checksum  # noqa: E402
from neuroctl.train import policy as tp  # noqa: E402
from neuroctl.train.plant import EVAL_SEED, evaluation_keys  # noqa: E402
from neuroctl.train.policy_commands import ship_policy  # noqa: E402
from neuroctl.train.policy_eval import (  # noqa: E402
    baseline_policy,
    comparison,
    example_trials,
    run_trials,
    summarise,
)
from neuroctl.train.ship import provenance  # noqa: E402

PLANT = "evidence_integration"
N_BINS = 52  # 10-ms bins, as the learned profiles [1]
N_REF = 520  # reference points of the feedback: one per control step [1]
TRIAL_MS = 520.0  # the evidence plant's trial (plant.task.trial_ms) [ms]
VARIANTS = ("open_loop", "feedback_profile", "tracking_profile")
_NAMES = {
    "open_loop": "open loop",
    "feedback_profile": "feedback",
    "tracking_profile": "tracking",
}
OFF = 1e-4  # "no current" in a starting profile (softplus needs > 0) [1]


@dataclass(frozen=True)
class Args:
    """Designed label-0 current profiles: noise-free bound and noisy evaluation."""

    reductions: tuple[float, ...] = (
        50.0,
        60.0,
        70.0,
        80.0,
        90.0,
        100.0,
        104.0,
        107.0,
        110.0,
        125.0,
    )
    """Target power reductions vs g = 1 [x] (label-0 trials stimulated only)."""
    iterations: int = 100
    """Adam steps of the first design; later ones start from the previous [1]."""
    warm_iterations: int = 60
    """Adam steps of each warm-started design [1]."""
    check_reduction: float = 100.0
    """Reduction [x] of the flat-start and signed-current checks (0 = skip)."""
    trials: int = 200
    """Held-out trials of the noisy evaluation (the Pareto curve's) [1]."""
    feedback_gain: float = 3.0
    """Feedback gain of the feedback variant [1/mV] (from 0.8 of the trial)."""
    tracking_ms: float = 6.0
    """Time over which the tracking variant makes up a shortfall [ms]."""
    prediction: float = 0.5
    """Tracking variant: linear extrapolation of the sample into the period [1]."""
    tracking_feedback_gain: float = 1.0
    """Tracking variant's readout feedback gain [1/mV] (from 0.8 of the trial)."""
    tracking_control_ms: float = 0.25
    """Tracking variant's control period [ms] (the others: 1 ms)."""
    tracking_g_max: float = 4.0
    """Tracking variant's largest gain [1] (the others: 2)."""
    validation_seed: int = 777
    """Root seed of the validation trials that pick the policies [1]."""
    validation_trials: int = 1000
    """Validation trials [1]; 0 = skip the picks and the final check."""
    check_trials: int = 1000
    """Held-out trials of the final check (the policy table's) [1]."""
    max_checks: int = 4
    """Most designs of one policy kind checked on the validation trials [1]."""
    ship: Path | None = None
    """Ship the cheapest pick to this folder (e.g. policies/evidence_tracking_profile)
    if it keeps ≥ 99.9 % on the check trials."""
    results: Path = Path("results")
    """Where the table, JSON and figure go."""
    replot: bool = False
    """Only redraw the figures (no design, no evaluation): policy_designed_profile.png
    from ``results``/policy_designed_profile.json, the example trial from the
    policy shipped by the final check (``shipped_to``) on its two trials."""


def _start(n_bins: int, onset_ms: float, level: float, trial_ms: float) -> np.ndarray:
    starts = np.arange(n_bins) * trial_ms / n_bins  # [ms]
    return np.where(starts >= onset_ms, level, OFF)


def _designs(plant, args: Args, label0_power) -> list[dict]:
    """Step 1: one design per reduction, the largest power first (warm starts)."""
    trial_ms, out = plant.task.trial_ms, []
    init = _start(N_BINS, 340.0, 0.4, trial_ms)  # the late-gate study's hand gate
    for i, r in enumerate(sorted(args.reductions)):
        iters = args.iterations if i == 0 else args.warm_iterations
        d = design.design_profile(plant, label0_power(r), init=init, iterations=iters)
        init = np.maximum(d.profile, OFF)
        out.append(_design_row(r, d, "hand gate" if i == 0 else "previous"))
        print(f"design {r:g}x: noise-free margin {d.margin:+.4f} mV", flush=True)
    return out


def _checks(plant, args: Args, label0_power) -> list[dict]:
    """Step 1b: the flat restart and the signed source at `check_reduction`."""
    if not args.check_reduction:
        return []
    r, rows = args.check_reduction, []
    flat = np.full(N_BINS, 0.2)
    hand = _start(N_BINS, 340.0, 0.4, plant.task.trial_ms)
    for start, signed in (("flat profile", False), ("hand gate", True)):
        init = hand if signed else flat
        d = design.design_profile(
            plant, label0_power(r), init=init, iterations=args.iterations, signed=signed
        )
        rows.append(_design_row(r, d, start, signed))
        print(f"check {r:g}x from {start}: margin {d.margin:+.4f} mV", flush=True)
    return rows


def _design_row(r: float, d: design.Design, start: str, signed=False) -> dict:
    return {
        "reduction": r,
        "power_label0": d.power,
        "margin_mV": d.margin,
        "start": start,
        "signed": signed,
        "profile": [float(x) for x in d.profile],
        "margins_mV": [float(x) for x in d.margins],
    }


def _label_stats(trials: dict, base_power: float) -> dict:
    """Accuracy per label, power and label-0 margins of `run_trials` output."""
    lab = trials["label"].astype(bool)
    if lab.all() or not lab.any():  # per-label numbers need both labels
        raise SystemExit(
            f"--trials {len(lab)}: the held-out trials are all label "
            f"{int(lab[0])}; per-label accuracy needs both labels (use --trials ≥ 20)."
        )
    margin0 = trials["margin"][~lab]
    power = float(np.mean(trials["current_power"]))
    return {
        "trials": len(lab),
        "correct": int(np.sum(trials["correct"])),
        "accuracy": float(np.mean(trials["correct"])),
        "accuracy_label0": float(np.mean(trials["correct"][~lab])),
        "accuracy_label1": float(np.mean(trials["correct"][lab])),
        "current_power": power,
        "power_reduction": base_power / power,
        "margin_label0_mean_mV": float(np.mean(margin0)),
        "margin_label0_sd_mV": float(np.std(margin0)),
        "diverged": int(np.sum(trials["diverged"])),
    }


def _level(profile) -> float:
    """The current that carries the profile's power: Σp³/Σp² [1]."""
    p = np.asarray(profile)
    return float(np.sum(p**3) / np.sum(p**2))


def _configs(args: Args) -> dict[str, tp.PolicyTrainConfig]:
    """The training config (env and policy) of each variant."""
    common = dict(n_bins=N_BINS, observe_evidence=True, observe_stimulus=True)
    return {
        "open_loop": tp.PolicyTrainConfig(policy="open_loop", **common),
        "feedback_profile": tp.PolicyTrainConfig(policy="feedback_profile", **common),
        "tracking_profile": tp.PolicyTrainConfig(
            policy="tracking_profile",
            control_ms=args.tracking_control_ms,
            g_max=args.tracking_g_max,
            **common,
        ),
    }


class _Envs:
    """Each variant's env, and g = 1 on it per set of trials (cached)."""

    def __init__(self, plant, args: Args):
        self.cfg = _configs(args)
        self.env = {v: tp.make_env(plant, c) for v, c in self.cfg.items()}
        self._base: dict = {}

    def baseline(self, variant: str, keys, name: str) -> dict:
        """`run_trials` of g = 1 on `keys` (named `name`) in `variant`'s env."""
        at = (self.cfg[variant].control_ms, name)  # g = 1 ignores g_max
        if at not in self._base:
            env, env_params = self.env[variant]
            policy = baseline_policy(env_params, jnp.float64)
            self._base[at] = run_trials(env, env_params, policy, keys, progress=True)
        return self._base[at]

    def run(self, variant: str, policy, keys) -> dict:
        env, env_params = self.env[variant]
        return run_trials(env, env_params, policy, keys, progress=len(keys) > 200)


def main(args: Args) -> None:
    if args.replot:
        _replot(args.results)
        return
    t0 = time.perf_counter()
    plant = load(PLANT)
    envs, keys = _Envs(plant, args), evaluation_keys(args.trials)
    bases = {}
    for v in VARIANTS:
        trials = envs.baseline(v, keys, "evaluation")
        bases[v] = {
            "current_power": float(np.mean(trials["current_power"])),
            "accuracy": float(np.mean(trials["correct"])),
            "label0_fraction": float(np.mean(trials["label"] == 0)),
        }
    base = bases["open_loop"]
    if base["label0_fraction"] in (0.0, 1.0):  # label-0 power needs label-0 trials
        raise SystemExit(
            f"--trials {args.trials}: the held-out trials hold no label-"
            f"{int(base['label0_fraction'] == 1.0)} trial; use --trials ≥ 20."
        )
    print(f"g = 1 on {args.trials} trials: {base}", flush=True)

    def label0_power(r):  # [nA²] per label-0 trial for a reduction r over all trials
        return base["current_power"] / (r * base["label0_fraction"])

    designs = _designs(plant, args, label0_power)
    checks = _checks(plant, args, label0_power)
    for row in designs:
        row["delivery"] = design.delivery_ratio(plant.task, _level(row["profile"]))
        row["reference_mV"] = [
            float(x) for x in design.reference_trajectory(plant, row["profile"], N_REF)
        ]
        row["noisy"] = {}
        for variant, policy in _policies(row, args).items():
            n = _label_stats(
                envs.run(variant, policy, keys), bases[variant]["current_power"]
            )
            row["noisy"][variant] = n
            print(
                f"noisy {row['reduction']:g}x design, {variant}: accuracy "
                f"{n['accuracy']:.3f} at {n['power_reduction']:.1f}x",
                flush=True,
            )
    final, passed = _final_checks(plant, envs, designs, args)
    record = {
        "plant": PLANT,
        "eval_seed": EVAL_SEED,
        "n_bins": N_BINS,
        "feedback_gain": args.feedback_gain,
        "tracking": {
            "tracking_ms": args.tracking_ms,
            "prediction": args.prediction,
            "feedback_gain": args.tracking_feedback_gain,
            "control_ms": args.tracking_control_ms,
            "g_max": args.tracking_g_max,
        },
        "trials": args.trials,
        "validation_seed": args.validation_seed,
        "baseline": base,
        "baselines": bases,
        "designs": designs,
        "checks": checks,
        "final_checks": final,
        "learned": _learned(args.results),
        "wall_s": round(time.perf_counter() - t0, 1),
        **provenance(),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "policy_designed_profile.json").write_text(
        json.dumps(record, indent=1)
    )
    (args.results / "policy_designed_profile.md").write_text(_table(record))
    save_figure(_figure(record), args.results / "policy_designed_profile.png")
    if passed is not None:  # what the shipped policy does on two held-out trials
        policy, variant, pick = passed
        env, env_params = envs.env[variant]
        label = f"{_NAMES[variant]}, designed for {pick['reduction']:g}x"
        save_figure(
            example_trial_figure(example_trials(env, env_params, policy), label),
            args.results / "policy_designed_example_trial.png",
        )


def _replot(results: Path) -> None:
    """The figures again from the committed JSON and the shipped policy."""
    from neuroctl.policies.shipped import load_policy

    record = json.loads((results / "policy_designed_profile.json").read_text())
    fig = _figure(record)
    print("wrote", save_figure(fig, results / "policy_designed_profile.png"))
    shipped = [c for c in record["final_checks"] if c.get("shipped_to")]
    if not shipped:
        return
    pick = shipped[-1]
    policy, spec, _ = load_policy(Path(pick["shipped_to"]))
    env, env_params = tp.make_env(
        load(spec.plant), tp.PolicyTrainConfig.from_spec(spec)
    )
    label = f"{_NAMES[pick['variant']]}, designed for {pick['design_reduction']:g}x"
    fig = example_trial_figure(example_trials(env, env_params, policy), label)
    print("wrote", save_figure(fig, results / "policy_designed_example_trial.png"))


def _policies(row: dict, args: Args) -> dict:
    """The design as each variant's policy."""
    profile, ref, delivery = row["profile"], row["reference_mV"], row["delivery"]
    configs = _configs(args)
    g_max = configs["open_loop"].g_max
    steps = {  # control steps per trial of each variant's env
        k: round(TRIAL_MS / cfg.control_ms) for k, cfg in configs.items()
    }
    return {
        "open_loop": design.profile_policy(
            profile, g_max, delivery, n_steps=steps["open_loop"]
        ),
        "feedback_profile": design.feedback_policy(
            profile,
            ref,
            g_max,
            delivery,
            args.feedback_gain,
            n_steps=steps["feedback_profile"],
        ),
        "tracking_profile": design.tracking_policy(
            profile,
            ref,
            args.tracking_g_max,
            args.tracking_feedback_gain,
            args.tracking_control_ms / args.tracking_ms,
            args.prediction,
            n_steps=steps["tracking_profile"],
        ),
    }


def _final_checks(plant, envs: _Envs, designs, args: Args):
    """Step 3: per variant, the cheapest design right on every evaluation trial
    that keeps ≥ 99.9 % on the validation trials (at most `max_checks` tried);
    then each pick once on the table's check trials, and the cheapest pick
    shipped if it keeps ≥ 99.9 % there.

    Returns the check records and ``(policy, variant, design)`` of the shipped
    (or, without `ship`, passing) cheapest pick, or None.
    """
    if not args.validation_trials:
        return [], None
    val = evaluation_keys(args.validation_trials, args.validation_seed)
    records, picks = [], []
    for variant in VARIANTS:
        ok = sorted(
            (d for d in designs if d["noisy"][variant]["accuracy"] == 1.0),
            key=lambda d: -d["noisy"][variant]["power_reduction"],
        )
        base = envs.baseline(variant, val, "validation")
        for d in ok[: args.max_checks]:
            trials = envs.run(variant, _policies(d, args)[variant], val)
            out = _label_stats(trials, float(np.mean(base["current_power"])))
            out.update(design_reduction=d["reduction"], variant=variant)
            out["stage"] = "validation"
            print(f"validation: {out}", flush=True)
            records.append(out)
            if out["accuracy"] >= 0.999:
                picks.append((out["power_reduction"], d, variant))
                break
    table, passed = evaluation_keys(args.check_trials), None
    for i, (_, d, variant) in enumerate(sorted(picks, key=lambda x: -x[0])):
        policy = _policies(d, args)[variant]
        trials = envs.run(variant, policy, table)
        base = envs.baseline(variant, table, "table")
        evaluation = comparison(summarise(trials), summarise(base), EVAL_SEED)
        out = _label_stats(trials, float(np.mean(base["current_power"])))
        out.update(design_reduction=d["reduction"], variant=variant, stage="table")
        out["baseline_power"] = evaluation["baseline"]["current_power"]
        out["accuracy_ci95"] = list(evaluation["policy"]["accuracy_ci95"])
        print(f"check on {args.check_trials} trials: {out}", flush=True)
        records.append(out)
        if i == 0 and out["accuracy"] >= 0.999:  # the cheapest pick
            passed = (policy, variant, d)
            if args.ship is not None:
                cfg = envs.cfg[variant]
                _ship(args.ship, plant, policy, cfg, d, evaluation, args)
                out["shipped_to"] = str(args.ship)
    return records, passed


def _ship(folder: Path, plant, policy, cfg, pick, evaluation, args: Args) -> None:
    variant = cfg.policy
    settings = {
        "open_loop": {"delivery": pick["delivery"]},
        "feedback_profile": {
            "delivery": pick["delivery"],
            "feedback_gain_per_mV": args.feedback_gain,
        },
        "tracking_profile": {
            "feedback_gain_per_mV": args.tracking_feedback_gain,
            "tracking_ms": args.tracking_ms,
            "prediction": args.prediction,
            "control_ms": args.tracking_control_ms,
            "g_max": args.tracking_g_max,
        },
    }[variant]
    report = {
        "designed_by": "scripts/policy_designed_profile.py (not trained)",
        "design": {
            "target_reduction": pick["reduction"],
            "noise_free_margin_mV": pick["margin_mV"],
            **settings,
            "iterations": args.iterations,
            "warm_iterations": args.warm_iterations,
            "reductions": list(args.reductions),
            "picked_on": {
                "validation_seed": args.validation_seed,
                "validation_trials": args.validation_trials,
            },
        },
        "plant": {"name": PLANT, "checksum": plant_checksum(plant)},
        "evaluation": evaluation,
    }
    ship_policy(folder, policy, cfg, PLANT, plant_checksum(plant), report)
    print(f"shipped the {variant} design to {folder}", flush=True)


def _learned(results: Path) -> list[dict]:
    """Learned Pareto points (results/policy_pareto.json) for the figure."""
    path = results / "policy_pareto.json"
    if not path.exists():
        return []
    points = json.loads(path.read_text())["points"]
    return [
        {k: p[k] for k in ("stage", "accuracy", "power_reduction", "observe_stimulus")}
        for p in points
        if "power_reduction" in p and p.get("observe_evidence")
    ]


def _table(rec: dict) -> str:
    base = rec["baseline"]
    lines = [
        "# Designed label-0 current profiles: the noise-free bound and the noisy env",
        "",
        f"`python scripts/policy_designed_profile.py` — {rec['trials']} held-out "
        f"trials (root seed {rec['eval_seed']}; the Pareto evaluation's; "
        f"{base['label0_fraction']:.3f} of them label 0); g = 1 on them: "
        f"{base['current_power']:.3e} nA². A profile has {rec['n_bins']} bins of "
        "10 ms; it is designed on the one noise-free label-0 trajectory (no input "
        "before the current starts), for the power that gives the target reduction "
        "if only label-0 trials are stimulated. Margin = readout 0 − readout 1 over "
        "the response window (> 0: right).",
        "",
        "| target reduction | noise-free margin [mV] | delivery (open loop, "
        "feedback) | policy | "
        "accuracy | label-0 acc | label-0 margin mean ± sd [mV] | measured "
        "reduction |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in rec["designs"]:
        for variant in VARIANTS:
            n = d["noisy"][variant]
            lines.append(
                f"| {d['reduction']:g}x | {d['margin_mV']:+.4f} | "
                f"{d['delivery']:.3f} | {_NAMES[variant]} | {n['accuracy']:.3f} | "
                f"{n['accuracy_label0']:.3f} | {n['margin_label0_mean_mV']:+.3f} ± "
                f"{n['margin_label0_sd_mV']:.3f} | {n['power_reduction']:.1f}x |"
            )
    tr = rec["tracking"]
    lines += [
        "",
        "Policies: *open loop* = the profile as a current-shaped open-loop profile "
        "requesting profile/delivery; *feedback* = the same plus "
        f"{rec['feedback_gain']:g}/mV × (noise-free readout difference − observed "
        "one) from 0.8 of the trial on (`ReadoutFeedback`; the reference is the "
        "design's noise-free trajectory); *tracking* = `CurrentTracking`: it "
        "requests the profile itself (no delivery mark-up), keeps books on the "
        "current it delivered (read from the next sample) and makes up a shortfall "
        f"over ~{tr['tracking_ms']:g} ms, divides by a predicted sample "
        f"(extrapolation {tr['prediction']:g}), with readout feedback "
        f"{tr['feedback_gain']:g}/mV, at a {tr['control_ms']:g}-ms control period "
        f"and gains up to {tr['g_max']:g} (open loop and feedback: 1 ms, up to 2). "
        "Its g = 1 baseline runs in its own env (same trials, "
        f"{rec['baselines']['tracking_profile']['current_power']:.3e} nA²).",
    ]
    lines += _checks_md(rec["checks"], rec["designs"])
    lines += _final_md(rec["final_checks"])
    lines += [
        "",
        f"git {rec['git_commit']}, neuroctl {rec['neuroctl_version']}, "
        f"{rec['date_utc']}",
        "",
    ]
    return "\n".join(lines)


def _checks_md(checks: list[dict], designs: list[dict]) -> list[str]:
    if not checks:
        return []
    same = {d["reduction"]: d["margin_mV"] for d in designs}
    lines = ["", "Checks of the optimiser at one target:", ""]
    for c in checks:
        ref = same.get(c["reduction"])
        vs = f" (warm-started chain: {ref:+.4f} mV)" if ref is not None else ""
        kind = "either sign (bidirectional source)" if c["signed"] else "≥ 0"
        lines.append(
            f"- {c['reduction']:g}x, current {kind}, started from a {c['start']}: "
            f"noise-free margin {c['margin_mV']:+.4f} mV{vs}."
        )
    return lines


def _final_md(checks: list[dict]) -> list[str]:
    val = [c for c in checks if c["stage"] == "validation"]
    table = [c for c in checks if c["stage"] == "table"]
    if not val:
        return ["", "No policy was right on every evaluation trial: no final check."]
    lines = [
        "",
        f"Picked on {val[0]['trials']} validation trials (another seed): per policy "
        "kind, the designs right on every evaluation trial, cheapest first, until "
        "one keeps ≥ 99.9 %:",
        "",
    ]
    lines += [f"- {_check_line(c)}" for c in val]
    lines += [
        "",
        f"Each pick once on the {table[0]['trials'] if table else '—'} held-out "
        "trials of results/policy_table.md (designed, not trained; the cheapest "
        "pick is shipped if it keeps ≥ 99.9 %):",
        "",
    ]
    for c in table:
        lo, hi = c["accuracy_ci95"]
        shipped = f"; shipped as `{c['shipped_to']}`" if c.get("shipped_to") else ""
        lines.append(
            f"- {_check_line(c, bold=True)} (95 % CI [{lo:.4f}, {hi:.4f}]; "
            f"{c['current_power']:.3e} vs {c['baseline_power']:.3e} nA²){shipped}."
        )
    return lines


def _check_line(c: dict, bold: bool = False) -> str:
    red = f"{c['power_reduction']:.1f}x"
    return (
        f"{_NAMES[c['variant']]}, target {c['design_reduction']:g}x: "
        f"{c['correct']}/{c['trials']} (label 0: {c['accuracy_label0']:.4f}; "
        f"label-0 margin {c['margin_label0_mean_mV']:+.3f} ± "
        f"{c['margin_label0_sd_mV']:.3f} mV) at {f'**{red}**' if bold else red} "
        "less power than g = 1 on the same trials"
    )


def _figure(rec: dict):
    fig, (ax0, ax1, ax2) = plt.subplots(
        1, 3, figsize=(14, 4.2), constrained_layout=True
    )
    d = rec["designs"]
    ax0.plot(
        [x["reduction"] for x in d], [x["margin_mV"] for x in d], "o-", label="≥ 0"
    )
    for c in rec["checks"]:
        marker = "s" if c["signed"] else "^"
        ax0.plot(c["reduction"], c["margin_mV"], marker, label=_check_label(c))
    ax0.axhline(0.0, color="0.5", lw=0.8)
    ax0.set_xlabel("target power reduction vs g = 1 [x]")
    ax0.set_ylabel("noise-free label-0 margin [mV]")
    ax0.set_title("Bound: best noise-free margin at each power", fontsize=9)
    ax0.legend(fontsize=7)
    t = (np.arange(rec["n_bins"]) + 0.5) * 520.0 / rec["n_bins"]
    for i, x in enumerate(d):
        ax1.plot(
            t,
            x["profile"],
            color=plt.cm.viridis(i / max(len(d) - 1, 1)),
            label=f"{x['reduction']:g}x",
        )
    ax1.set_xlabel("time [ms]")
    ax1.set_ylabel("current / mean-strength sample's [1]")
    ax1.set_title("Designed profiles (response window 500–520 ms)", fontsize=9)
    ax1.legend(fontsize=7)
    _noisy_panel(ax2, rec)
    return fig


def _check_label(c: dict) -> str:
    return "either sign" if c["signed"] else f"≥ 0, from {c['start']}"


def _noisy_panel(ax, rec: dict) -> None:
    d = rec["designs"]
    for variant, marker in zip(VARIANTS, ("o-", "s-", "^-"), strict=True):
        ax.plot(
            [x["noisy"][variant]["power_reduction"] for x in d],
            [x["noisy"][variant]["accuracy"] for x in d],
            marker,
            label=f"designed, {_NAMES[variant]}",
        )
    learned = [p for p in rec["learned"] if p["observe_stimulus"]]
    ax.plot(
        [p["power_reduction"] for p in learned],
        [p["accuracy"] for p in learned],
        "x",
        label="learned, current-shaped",
    )
    ax.axvline(100.0, color="0.6", ls="--", lw=0.8)
    ax.axhline(0.999, color="0.6", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("measured power reduction vs g = 1 [x]")
    ax.set_ylabel(f"accuracy on {rec['trials']} trials [1]")
    ax.set_title("Noisy env, evaluation trials", fontsize=9)
    ax.legend(fontsize=7)


if __name__ == "__main__":
    main(tyro.cli(Args))
