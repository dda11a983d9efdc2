"""Where the stimulation power goes: open-loop late gates, accuracy per label.

Why do gain policies on the evidence plant stop near ~15-30x less power than
``g = 1``? This script measures the plant's side of the answer without training
anything. Each "late gate" applies no input (g ≈ 0) until an onset and a constant
gain ``c`` from the onset to the trial end (an open-loop profile, 10-ms bins). On
``--trials`` held-out trials it reports the accuracy separately for each label and
the power reduction against ``g = 1`` on the same trials.

Read-out (measured; see results/policy_late_gate.md): with no input at all the
frozen network answers "1" on every trial, so label-1 trials need (almost) no
stimulation, while a label-0 trial is only answered right if the negative evidence
keeps the network quiet for a long stretch before the response window. A policy
that cannot see the evidence has to pay for that stretch on every trial it has not
yet recognised as label 1. The "evidence-gated" rows apply a gate only while the
mean filtered stimulus so far is negative (the env's ``observe_evidence``
observation; by 50 ms it is ~6σ from 0), so label-1 trials get no input: what a
policy that reads the evidence stream can reach with a constant late gate. The
"current-shaped" rows do the same with a constant *current* instead of a constant
gain (the env's ``observe_stimulus``: ``g = c · 0.005 / (−s)`` while the latest
sample ``s`` < 0), ``c`` being the current relative to a mean-strength sample.

Writes ``results/policy_late_gate.md``, ``.json`` and ``.png`` (with provenance).
Usage: ``python scripts/policy_late_gate.py`` (~15 min on 2 CPU cores); ``--replot``
redraws the figure from the JSON (seconds).
"""

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import tyro

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from neuroctl.io import save_figure  # noqa: E402
from neuroctl.plants import load  # noqa: E402
from neuroctl.plotting.policy import late_gate_figure  # noqa: E402
from neuroctl.policies.gain import make_policy, profile_of  # noqa: E402
from neuroctl.train import policy as tp  # noqa: E402
from neuroctl.train.plant import EVAL_SEED, evaluation_keys  # noqa: E402
from neuroctl.train.policy_eval import run_trials  # noqa: E402
from neuroctl.train.ship import provenance  # noqa: E402

PLANT = "evidence_integration"
BIN_MS = 10.0  # gate resolution [ms]
G_OFF = 1e-6  # the "no input" gain before the onset [1]


@dataclass(frozen=True)
class Args:
    """Open-loop late gates on held-out trials: accuracy per label vs power."""

    trials: int = 100
    """Held-out trials per gate [1]."""
    onsets_ms: tuple[float, ...] = (0.0, 200.0, 300.0, 380.0, 420.0, 450.0)
    """Gate onsets [ms] (multiples of 10 ms)."""
    gains: tuple[float, ...] = (0.2, 0.3, 0.4, 0.6, 1.0)
    """Gains after the onset [1]."""
    evidence_gates: tuple[tuple[float, float], ...] = (
        (300.0, 0.4),
        (300.0, 0.35),
        (340.0, 0.4),
        (380.0, 0.6),
    )
    """(onset [ms], gain [1]) of the evidence-gated gates."""
    shaped_gates: tuple[tuple[float, float], ...] = tuple(
        (onset, c) for onset in (300.0, 340.0, 380.0) for c in (0.3, 0.4, 0.5)
    )
    """(onset [ms], current c [1], relative to a mean-strength sample) of the
    current-shaped, evidence-gated gates."""
    check_gate: tuple[float, float] = (340.0, 0.4)
    """An evidence-gated gate evaluated again on ``check_trials`` held-out trials
    (the policy table's trials): does the 100-trial pick hold up?"""
    check_shaped_gate: tuple[float, float] = (340.0, 0.4)
    """A current-shaped gate (onset [ms], current [1]) checked the same way."""
    check_trials: int = 1000
    """Held-out trials of those checks [1]; 0 = skip."""
    results: Path = Path("results")
    """Where the table, JSON and figure go."""
    replot: bool = False
    """Only redraw ``policy_late_gate.png`` from ``policy_late_gate.json`` in
    ``results`` (no simulation)."""


def gate_policy(
    onset_ms: float,
    gain: float,
    trial_ms: float,
    g_max: float,
    evidence_switched: bool = False,
    current_shaped: bool = False,
):
    """An open-loop gain profile applying ~0 before `onset_ms` [ms] and `gain` [1]
    after; `evidence_switched`: only while the observed mean stimulus is < 0, else
    0; `current_shaped` (implies it): `gain` sets the current (see
    `neuroctl.policies.gain`), at the default 1-ms control period."""
    n_bins = int(round(trial_ms / BIN_MS))
    starts = np.arange(n_bins) * BIN_MS
    g = np.where(starts >= onset_ms, gain, G_OFF) / g_max
    n_obs = 5 if current_shaped else 4 if evidence_switched else 3
    policy = make_policy(
        "open_loop",
        n_steps=int(round(trial_ms)),  # the default 1-ms control period
        n_bins=n_bins,
        g_max=g_max,
        param_dtype=jnp.float64,
        n_obs=n_obs,
    )
    profile_of(policy).profile[...] = jnp.asarray(np.log(g / (1.0 - g)))[:, None]
    return policy


def main(args: Args) -> None:
    if args.replot:
        record = json.loads((args.results / "policy_late_gate.json").read_text())
        print(
            "wrote", save_figure(_figure(record), args.results / "policy_late_gate.png")
        )
        return
    plant = load(PLANT)
    env, env_params = tp.make_env(plant, tp.PolicyTrainConfig())
    trial_ms, g_max = plant.task.trial_ms, float(env_params.g_max)
    keys = evaluation_keys(args.trials)
    t0 = time.perf_counter()

    @functools.cache  # the (0 ms, g 1) gate of the grid is the baseline
    def run(onset, gain):
        trials = run_trials(
            env, env_params, gate_policy(onset, gain, trial_ms, g_max), keys
        )
        return _summary(trials, onset, gain)

    ev_cfg = tp.PolicyTrainConfig(policy="open_loop", observe_evidence=True)
    ev_env, _ = tp.make_env(plant, ev_cfg)  # the same trials, 4-entry observation

    def run_gated(onset, gain, keys=keys):
        policy = gate_policy(onset, gain, trial_ms, g_max, evidence_switched=True)
        return _summary(run_trials(ev_env, env_params, policy, keys), onset, gain)

    cs_cfg = tp.PolicyTrainConfig(
        policy="open_loop", observe_evidence=True, observe_stimulus=True
    )
    cs_env, _ = tp.make_env(plant, cs_cfg)  # the same trials, 5-entry observation

    def run_shaped(onset, current, keys=keys):
        policy = gate_policy(onset, current, trial_ms, g_max, current_shaped=True)
        return _summary(run_trials(cs_env, env_params, policy, keys), onset, current)

    base = run(0.0, 1.0)
    off = run(trial_ms, 1.0)  # never on: no input at all
    rows = []
    for onset in args.onsets_ms:
        for gain in args.gains:
            r = dict(run(onset, gain))
            r["power_reduction"] = base["current_power"] / r["current_power"]
            rows.append(r)
            print(
                f"onset {onset:5.0f} ms g {gain:.1f}: label-0 acc "
                f"{r['accuracy_label0']:.3f}, label-1 acc {r['accuracy_label1']:.3f}, "
                f"{r['power_reduction']:.1f}x",
                flush=True,
            )

    def measured(gates, runner, name: str) -> list[dict]:
        out = []
        for onset, level in gates:
            r = runner(onset, level)
            r["power_reduction"] = base["current_power"] / r["current_power"]
            out.append(r)
            print(
                f"{name} onset {onset:5.0f} ms {level:.2f}: accuracy "
                f"{r['accuracy']:.3f}, {r['power_reduction']:.1f}x",
                flush=True,
            )
        return out

    gated = measured(args.evidence_gates, run_gated, "evidence-gated, gain")
    shaped = measured(args.shaped_gates, run_shaped, "current-shaped, current")
    check = shaped_check = None
    if args.check_trials:
        check_keys = evaluation_keys(args.check_trials)
        check_base = _summary(
            run_trials(
                env, env_params, gate_policy(0.0, 1.0, trial_ms, g_max), check_keys
            ),
            0.0,
            1.0,
        )
        checks = []
        for runner, gate in (
            (run_gated, args.check_gate),
            (run_shaped, args.check_shaped_gate),
        ):
            r = runner(*gate, keys=check_keys)
            r["trials"] = args.check_trials
            r["power_reduction"] = check_base["current_power"] / r["current_power"]
            print(f"check on {args.check_trials} trials: {r}", flush=True)
            checks.append(r)
        check, shaped_check = checks
    record = {
        "plant": PLANT,
        "eval_seed": EVAL_SEED,
        "trials": args.trials,
        "baseline": base,
        "no_input": off,
        "gates": rows,
        "evidence_gated": gated,
        "evidence_gated_check": check,
        "current_shaped": shaped,
        "current_shaped_check": shaped_check,
        "wall_s": round(time.perf_counter() - t0, 1),
        **provenance(),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "policy_late_gate.json").write_text(json.dumps(record, indent=1))
    (args.results / "policy_late_gate.md").write_text(_table(record))
    save_figure(_figure(record), args.results / "policy_late_gate.png")


def _summary(trials: dict, onset: float, gain: float) -> dict:
    lab = trials["label"].astype(bool)
    if lab.all() or not lab.any():  # per-label numbers need both labels
        raise SystemExit(
            f"--trials {len(lab)}: the held-out trials are all label "
            f"{int(lab[0])}; per-label accuracy needs both labels (use --trials ≥ 20)."
        )
    return {
        "onset_ms": onset,
        "gain": gain,
        "accuracy": float(np.mean(trials["correct"])),
        "accuracy_label0": float(np.mean(trials["correct"][~lab])),
        "accuracy_label1": float(np.mean(trials["correct"][lab])),
        "trials_label0": int(np.sum(~lab)),
        "current_power": float(np.mean(trials["current_power"])),
        "power_label0": float(np.mean(trials["current_power"][~lab])),
    }


def _table(rec: dict) -> str:
    base, off = rec["baseline"], rec["no_input"]
    lines = [
        "# Open-loop late gates: accuracy per label vs stimulation power",
        "",
        f"`python scripts/policy_late_gate.py` — {rec['trials']} held-out trials "
        f"(root seed {rec['eval_seed']}; {off['trials_label0']} of label 0), the "
        "same trials for every row; g ≈ 0 before the onset, g constant after it. "
        "Reduction = mean current power of g = 1 / of the gate.",
        "",
        f"- g = 1 throughout: accuracy {base['accuracy']:.3f}.",
        f"- no input at all: label-0 accuracy {off['accuracy_label0']:.3f}, label-1 "
        f"accuracy {off['accuracy_label1']:.3f} (the frozen network answers 1 on its "
        "own).",
        "",
        "| onset [ms] | gain | label-0 acc | label-1 acc | power reduction | "
        "if only label-0 trials were stimulated |",
        "|---|---|---|---|---|---|",
    ]
    for r in rec["gates"]:
        only0 = base["current_power"] / (
            r["power_label0"] * r["trials_label0"] / rec["trials"]
        )
        lines.append(
            f"| {r['onset_ms']:.0f} | {r['gain']:g} | {r['accuracy_label0']:.3f} | "
            f"{r['accuracy_label1']:.3f} | {r['power_reduction']:.1f}x | {only0:.1f}x |"
        )
    lines += [
        "",
        "The last column is what a policy that knew the label from the start would "
        "pay with that gate (no input on label-1 trials): a bound on what feedback "
        "can buy with a constant late gate, not on every profile.",
        "",
        "Evidence-gated gates, measured (the gate applies only while the mean "
        "filtered stimulus so far is < 0, which a policy observing the stimulus "
        "can do; no oracle):",
        "",
        "| onset [ms] | gain | accuracy | label-0 acc | label-1 acc | "
        "power reduction |",
        "|---|---|---|---|---|---|",
    ]
    lines += _gated_rows(rec.get("evidence_gated", []))
    lines += _check_md(rec.get("evidence_gated_check"), "evidence-gated", "g")
    if rec.get("current_shaped"):
        lines += [
            "",
            "Current-shaped, evidence-gated gates, measured (as above, but the gate "
            "holds the injected current at c times that of a mean-strength sample, "
            "g = c·0.005/(−s) while the latest sample s < 0; the env's "
            "`observe_stimulus`):",
            "",
            "| onset [ms] | current c | accuracy | label-0 acc | label-1 acc | "
            "power reduction |",
            "|---|---|---|---|---|---|",
        ]
        lines += _gated_rows(rec["current_shaped"])
    lines += _check_md(rec.get("current_shaped_check"), "current-shaped", "c")
    lines += [
        "",
        f"git {rec['git_commit']}, neuroctl {rec['neuroctl_version']}, "
        f"{rec['date_utc']}",
        "",
    ]
    return "\n".join(lines)


def _check_md(check: dict | None, kind: str, level: str) -> list[str]:
    """The paragraph on a gate re-checked on the table's trials (none if None)."""
    if not check:
        return []
    wrong = round((1.0 - check["accuracy"]) * check["trials"])
    return [
        "",
        f"Checked on {check['trials']} held-out trials (those of "
        f"results/policy_table.md): the {kind} gate at onset "
        f"{check['onset_ms']:.0f} ms, {level} = {check['gain']:g} is right on "
        f"{check['trials'] - wrong}/{check['trials']} (label 0: "
        f"{check['accuracy_label0']:.4f}, label 1: "
        f"{check['accuracy_label1']:.4f}) at {check['power_reduction']:.1f}x "
        "less power than g = 1 on the same trials. It is hand-set: picked on "
        "the 100-trial grid above, nothing trained.",
    ]


def _gated_rows(rows: list[dict]) -> list[str]:
    """Markdown rows: onset, gain or current, accuracies, power reduction."""
    return [
        f"| {r['onset_ms']:.0f} | {r['gain']:g} | {r['accuracy']:.3f} | "
        f"{r['accuracy_label0']:.3f} | {r['accuracy_label1']:.3f} | "
        f"{r['power_reduction']:.1f}x |"
        for r in rows
    ]


def _figure(rec: dict):
    return late_gate_figure(rec["gates"], rec["no_input"]["accuracy_label1"])


if __name__ == "__main__":
    main(tyro.cli(Args))
