"""Generalisation of the shipped evidence plant to trials longer than training.

The plant was trained on 520-ms trials (response window (500, 520] ms). Here the same
frozen network (float64) gets trials 2x (1040 ms) and 5x (2600 ms) as long: same
evidence process (white noise N(±0.005 + jitter, 0.05²) per 0.025-ms step, Butterworth
order 6 / 80 Hz low-pass, label = sign of the summed filtered stimulus over the whole
trial), response window = the last 20 ms of the trial. Held-out keys follow
`evaluate-plant`: ``split(key(EVAL_SEED = 2**31 - 1), n)`` — a root never used in
training. Trials are simulated in jit-compiled, vmapped chunks; accuracies carry 95 %
Wilson intervals (`neuroctl.train.evaluate.wilson_interval`).

Writes ``results/plant_generalisation.json`` and ``results/plant_generalisation.md``.

Run: ``python scripts/plant_generalisation.py [--trials-2x 200] [--trials-5x 100]
[--chunk 25] [--plant evidence_integration]``.
"""

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from neuroctl.plants import EvidencePlant, load  # noqa: E402
from neuroctl.plants import evidence_task as et  # noqa: E402
from neuroctl.train.evaluate import wilson_interval  # noqa: E402
from neuroctl.train.plant import EVAL_SEED, evaluation_keys  # noqa: E402
from neuroctl.train.ship import provenance  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
WINDOW_MS = 20.0  # response window = the last 20 ms of the trial [ms]


def stretched(plant: EvidencePlant, factor: int) -> EvidencePlant:
    """The same frozen plant with trials `factor` × as long (window: the last 20 ms)."""
    trial_ms = plant.task.trial_ms * factor  # [ms]
    task = dataclasses.replace(
        plant.task,
        trial_ms=trial_ms,
        response_window_ms=(trial_ms - WINDOW_MS, trial_ms),
    )
    return EvidencePlant(
        plant.network, plant.params, plant.g, plant.input_weights, task, plant.name
    )


@eqx.filter_jit
def _trial_outcomes(plant: EvidencePlant, keys: jax.Array) -> tuple[jax.Array, ...]:
    """Per trial: correct (0/1), label, readout logits [mV] ``(2,)``."""

    def one(k):
        trial = plant.sample_trial(k)
        logits = plant.logits(trial.stimulus)
        return et.accuracy(logits, trial.label), trial.label, logits

    return jax.vmap(one)(keys)


def evaluate(plant: EvidencePlant, n: int, chunk: int, desc: str) -> dict:
    keys = evaluation_keys(n, EVAL_SEED)
    correct, labels, chunk_s = [], [], []
    t0 = time.perf_counter()
    for lo in tqdm(range(0, n, chunk), desc=desc, unit="chunk"):
        tc = time.perf_counter()
        c, lab, _ = _trial_outcomes(plant, keys[lo : lo + chunk])
        c.block_until_ready()
        chunk_s.append(time.perf_counter() - tc)
        correct += [int(x) for x in c]
        labels += [int(x) for x in lab]
    wall = time.perf_counter() - t0
    k = sum(correct)
    lo_ci, hi_ci = wilson_interval(k, n)
    # the first chunk includes compilation; later chunks are steady state
    steady = chunk_s[1:] if len(chunk_s) > 1 else chunk_s
    steady_n = n - chunk if len(chunk_s) > 1 else n
    return {
        "trial_ms": plant.task.trial_ms,
        "n_steps": plant.task.n_steps,
        "response_window_ms": list(plant.task.response_window_ms),
        "trials": n,
        "correct": k,
        "accuracy": k / n,
        "accuracy_ci95": [round(lo_ci, 4), round(hi_ci, 4)],
        "label1_fraction": sum(labels) / n,
        "wall_s": round(wall, 1),
        "first_chunk_s_incl_compile": round(chunk_s[0], 1),
        "steady_s_per_trial": round(sum(steady) / max(steady_n, 1), 3),
        "chunk": chunk,
    }


def _markdown(out: dict) -> str:
    hw = out["hardware"]
    rows = [
        f"| {r['factor']}x | {r['trial_ms']:.0f} | "
        f"({r['response_window_ms'][0]:.0f}, {r['response_window_ms'][1]:.0f}] | "
        f"{r['correct']}/{r['trials']} | {r['label1_fraction']:.3f} | "
        f"{r['accuracy']:.4f} | "
        f"[{r['accuracy_ci95'][0]:.4f}, {r['accuracy_ci95'][1]:.4f}] | "
        f"{r['wall_s']:.0f} | {r['steady_s_per_trial']:.2f} |"
        for r in out["conditions"]
    ]
    base = out["training_length"]
    return "\n".join(
        [
            "# Shipped evidence plant: generalisation to longer trials",
            "",
            f"Plant `{out['plant']}` (checkpoint tree sha256 "
            f"`{out['checkpoint_checksum'][:12]}…`), float64, frozen. Trained on "
            f"{base['trial_ms']:.0f}-ms trials (window (500, 520] ms); on "
            f"{base['eval_trials']} held-out trials of that length it scores "
            f"{base['accuracy']:.4f}, 95 % CI [{base['accuracy_ci95'][0]}, "
            f"{base['accuracy_ci95'][1]}] (envs/evidence_integration/metrics.json).",
            "",
            "Longer trials: same evidence process (per-step white noise "
            "N(±0.005 + N(0, 0.0002²), 0.05²), Butterworth order-6 80-Hz low-pass, "
            "label = sign of the summed filtered stimulus over the whole trial), "
            "response window = the last 20 ms. Held-out keys "
            f"`split(key({EVAL_SEED}), n)` (the `evaluate-plant` convention; that "
            "root is never used in training). jit-compiled, vmapped chunks of "
            f"{out['conditions'][0]['chunk']} trials. CI: 95 % Wilson.",
            "",
            "| length | trial [ms] | window [ms] | correct | label-1 fraction | "
            "accuracy | 95 % CI | wall [s] | s/trial (steady) |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Total wall time {out['total_wall_s']:.0f} s on {hw['cpu_count']}-core "
            f"CPU ({hw['processor']}, {', '.join(hw['jax_devices'])}; shared machine, "
            f"load average {hw['load_average_1_5_15']}), JAX {out['jax_version']}, "
            f"commit {str(out['git_commit'])[:7]}, {out['date_utc']}. Wall time "
            "includes compilation (first chunk of each length).",
            "",
            "Reproduce: `python scripts/plant_generalisation.py "
            + " ".join(
                f"--trials-{r['factor']}x {r['trials']}" for r in out["conditions"]
            )
            + "`.",
            "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plant", default="evidence_integration")
    ap.add_argument("--trials-2x", type=int, default=200)
    ap.add_argument("--trials-5x", type=int, default=100)
    ap.add_argument("--chunk", type=int, default=25, help="trials per vmapped call")
    ap.add_argument("--out", type=Path, default=RESULTS / "plant_generalisation")
    args = ap.parse_args()

    plant = load(args.plant)
    metrics_path = Path(__file__).resolve().parents[1] / "envs" / args.plant
    card = json.loads((metrics_path / "metrics.json").read_text())
    t0 = time.perf_counter()
    conditions = []
    for factor, n in ((2, args.trials_2x), (5, args.trials_5x)):
        if n <= 0:
            continue
        r = evaluate(stretched(plant, factor), n, min(args.chunk, n), f"{factor}x")
        conditions.append({"factor": factor, **r})
        print(
            f"{factor}x ({r['trial_ms']:.0f} ms): {r['correct']}/{n} = "
            f"{r['accuracy']:.4f}, 95 % CI {r['accuracy_ci95']}, {r['wall_s']:.0f} s"
        )
    out = {
        "plant": args.plant,
        "checkpoint_checksum": card.get("checkpoint_checksum"),
        "precision": str(plant.g.dtype),
        "eval_seed": EVAL_SEED,
        "training_length": {
            "trial_ms": plant.task.trial_ms,
            "accuracy": card.get("accuracy"),
            "eval_trials": card.get("eval_trials"),
            "accuracy_ci95": card.get("accuracy_ci95"),
        },
        "conditions": conditions,
        "total_wall_s": round(time.perf_counter() - t0, 1),
        **provenance(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(_markdown(out))
    print(f"wrote {args.out}.json and {args.out}.md")


if __name__ == "__main__":
    main()
