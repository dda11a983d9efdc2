"""Figures of the shipped evidence-integration plant, written into results/.

* ``results/plant_psychometric.png`` (+ ``.json``): accuracy vs evidence strength |μ|
  on held-out trials (evaluation seed 2**31-1 folded with the strength index), with
  95 % Wilson intervals.
* ``results/plant_example_trial.png``: one held-out trial: the filtered stimulus, the
  20 somatic voltages as a raster, and the two readout voltages with the response
  window shaded.

Run: ``python scripts/plant_figures.py [--trials 100] [--plant evidence_integration]``.
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
    trial = plant.sample_trial(key)
    rec = np.asarray(jax.jit(lambda s: plant.simulate(s))(trial.stimulus))
    task = plant.task
    t = (np.arange(task.n_steps) + 1) * task.dt  # [ms]
    fig, axes = plt.subplots(
        3,
        1,
        figsize=(7, 6.5),
        sharex=True,
        layout="constrained",
        gridspec_kw={"height_ratios": [1, 2, 1.3]},
    )
    axes[0].plot(t, np.asarray(trial.stimulus), lw=0.6)
    axes[0].axhline(0, color="0.6", lw=0.6)
    axes[0].set(
        ylabel="stimulus [1]",
        title=f"held-out trial, label {int(trial.label)} "
        f"(μ = {float(trial.mean):+.4f})",
    )
    im = axes[1].imshow(
        rec[:, 2:].T,
        aspect="auto",
        cmap="viridis",
        vmin=-80,
        vmax=40,
        extent=(t[0], t[-1], 19.5, -0.5),
        interpolation="nearest",
    )
    axes[1].set(ylabel="soma (0–9 inh, 10–19 exc)")
    fig.colorbar(im, ax=axes[1], label="V [mV]")
    for r, c in ((0, "C0"), (1, "C3")):
        axes[2].plot(t, rec[:, r], color=c, lw=0.8, label=f"readout {r}")
    axes[2].axvspan(*task.response_window_ms, color="0.85", label="response window")
    logits = rec[task.window, :2].mean(axis=0)  # readout means [mV] = plant.logits
    axes[2].set(
        xlabel="time [ms]",
        ylabel="readout V [mV]",
        title=f"decision {int(np.argmax(logits))} (window means "
        f"{logits[0]:.2f}, {logits[1]:.2f} mV)",
    )
    axes[2].legend(loc="upper left", frameon=False, fontsize=8)
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plant", default="evidence_integration")
    ap.add_argument("--trials", type=int, default=100, help="trials per strength")
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path("results"))
    args = ap.parse_args()
    plant = load(args.plant)
    fig = example_figure(plant, jax.random.fold_in(jax.random.key(EVAL_SEED), 7))
    print("wrote", save_figure(fig, args.out / "plant_example_trial.png"))
    rows = psychometric(plant, args.trials, args.chunk)
    (args.out / "plant_psychometric.json").write_text(json.dumps(rows, indent=1) + "\n")
    fig = psychometric_figure(rows, plant.task.evidence_mean)
    print("wrote", save_figure(fig, args.out / "plant_psychometric.png"))


if __name__ == "__main__":
    main()
