"""Figures of the shipped evidence-integration plant, written into results/.

* ``results/plant_psychometric.png`` (+ ``.json``): accuracy vs evidence strength |μ|
  on held-out trials (evaluation seed 2**31-1 folded with the strength index), with
  95 % Wilson intervals.
* ``results/plant_example_trial.png``: one held-out trial: the filtered stimulus, the
  20 somatic voltages as a raster, and the two readout voltages with the response
  window shaded.

Run: ``python scripts/plant_figures.py [--trials 100] [--plant evidence_integration]``;
``--replot`` redraws both figures from the JSON and one simulated trial (seconds).
"""

import argparse
import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuroctl.io import save_figure  # noqa: E402
from neuroctl.plants import load  # noqa: E402
from neuroctl.plotting import plant_trial_figure  # noqa: E402
from neuroctl.train.evaluate import wilson_interval  # noqa: E402
from neuroctl.train.plant import EVAL_SEED  # noqa: E402
from neuroctl.train.ship import evaluate_accuracy  # noqa: E402

STRENGTHS = (0.0, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.008)  # |μ| [1]


def psychometric(plant, trials: int, chunk: int) -> list[dict]:
    rows = []
    for i, mu in enumerate(STRENGTHS):
        correct, n = evaluate_accuracy(
            plant, trials, EVAL_SEED - 1 - i, chunk, evidence=mu
        )
        lo, hi = wilson_interval(correct, n)
        rows.append({"evidence": mu, "accuracy": correct / n, "n": n, "ci95": [lo, hi]})
        print(
            f"|mu| {mu:.4f}: {correct}/{n} = {correct / n:.3f} [{lo:.3f}, {hi:.3f}]",
            flush=True,
        )
    return rows


def psychometric_figure(rows: list[dict], trained_mu: float):
    fig, ax = plt.subplots(figsize=(4.5, 3.4), layout="constrained")
    x = np.array([r["evidence"] for r in rows])
    y = np.array([r["accuracy"] for r in rows])
    lo, hi = np.array([r["ci95"] for r in rows]).T
    ax.errorbar(x * 1e3, y, yerr=[y - lo, hi - y], marker="o", capsize=3)
    ax.axvline(trained_mu * 1e3, color="0.6", ls="--", label="training |μ|")
    ax.axhline(0.5, color="0.8", lw=0.8)
    ax.set(
        xlabel="evidence strength |μ| [×10⁻³]",
        ylabel="accuracy",
        ylim=(0.4, 1.02),
        title=f"psychometric curve (n = {rows[0]['n']} / point)",
    )
    ax.legend(loc="lower right", frameon=False)
    return fig


def example_figure(plant, key):
    """The plant on the held-out trial of `key` (`plotting.plant_trial_figure`)."""
    trial = plant.sample_trial(key)
    rec = np.asarray(jax.jit(lambda s: plant.simulate(s))(trial.stimulus))
    task = plant.task
    t = (np.arange(task.n_steps) + 1) * task.dt  # [ms]
    return plant_trial_figure(
        t,
        np.asarray(trial.stimulus),
        rec[:, 2:],
        rec[:, :2],
        int(trial.label),
        float(trial.mean),
        task.response_window_ms,
        rec[task.window, :2].mean(axis=0),  # readout means [mV] = plant.logits
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plant", default="evidence_integration")
    ap.add_argument("--trials", type=int, default=100, help="trials per strength")
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument(
        "--replot",
        action="store_true",
        help="redraw the psychometric figure from <out>/plant_psychometric.json "
        "(no evaluation) and the example trial (one simulation)",
    )
    args = ap.parse_args()
    plant = load(args.plant)
    fig = example_figure(plant, jax.random.fold_in(jax.random.key(EVAL_SEED), 7))
    print("wrote", save_figure(fig, args.out / "plant_example_trial.png"))
    json_path = args.out / "plant_psychometric.json"
    if args.replot:
        rows = json.loads(json_path.read_text())
    else:
        rows = psychometric(plant, args.trials, args.chunk)
        json_path.write_text(json.dumps(rows, indent=1) + "\n")
    fig = psychometric_figure(rows, plant.task.evidence_mean)
    print("wrote", save_figure(fig, args.out / "plant_psychometric.png"))


if __name__ == "__main__":
    main()
