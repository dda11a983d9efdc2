"""Figures of stimulation policies on the evidence plant."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def example_trial_figure(trials: list[dict], label: str) -> Figure:
    """Evidence stimulus, the part the policy passes, gain and readouts of trials.

    The stimulus ``s`` and ``g·s``, the policy's gain and the readout voltages on
    held-out trials, one column per trial, the ``g = 1`` baseline's readouts dashed
    for comparison; the response window is shaded.

    Args:
        trials: per column, the dict of `neuroctl.train.policy_eval.example_trials`:
            ``t_sim`` [ms], ``stimulus`` [1] per solver step; ``t_ctrl`` [ms],
            ``gains`` / ``base_gains`` [1] and ``readouts`` / ``base_readouts``
            ``(T, 2)`` [mV] per control step; ``substeps``, ``label``,
            ``correct``, ``mean_gain_sq``, ``window`` (start, end) [ms].
        label: the policy's name for the title.
    """
    fig, axes = plt.subplots(
        3,
        len(trials),
        figsize=(5.5 * len(trials), 7),
        sharex=True,
        constrained_layout=True,
        squeeze=False,
    )
    for col, tr in enumerate(trials):
        stim, t_sim, t_ctrl, lab = (
            tr["stimulus"],
            tr["t_sim"],
            tr["t_ctrl"],
            tr["label"],
        )
        ax = axes[0, col]
        ax.plot(t_sim, stim, lw=0.6, color="0.3", label="s (g = 1 passes it all)")
        gated = np.repeat(tr["gains"], tr["substeps"]) * stim
        ax.plot(t_sim, gated, lw=0.8, color="C3", label="g·s (the policy passes)")
        ax.axhline(0, color="k", lw=0.5)
        ax.set(ylabel="evidence s(t) [1]", title=f"held-out trial, label {lab}")
        ax.legend(loc="upper left", fontsize=8)
        ax = axes[1, col]
        ax.plot(t_ctrl, tr["base_gains"], "--", color="0.5", lw=1, label="g = 1")
        ax.plot(t_ctrl, tr["gains"], color="C3", lw=1.2, label="policy")
        ax.set(ylabel="gain g [1]")
        ax.legend(loc="upper left", fontsize=8)
        ax = axes[2, col]
        for r in range(2):
            ax.plot(
                t_ctrl,
                tr["readouts"][:, r],
                color=f"C{r}",
                lw=1.1,
                label=f"readout {r} (policy)",
            )
            ax.plot(
                t_ctrl,
                tr["base_readouts"][:, r],
                "--",
                color=f"C{r}",
                lw=0.8,
                alpha=0.7,
                label=f"readout {r} (g = 1)",
            )
        ax.set(xlabel="time [ms]", ylabel="readout voltage [mV]")
        ax.text(
            0.01,
            0.02,
            f"policy: {'correct' if tr['correct'] else 'WRONG'}, "
            f"mean g² = {tr['mean_gain_sq']:.4f}",
            transform=ax.transAxes,
            fontsize=8,
        )
        ax.legend(loc="upper left", fontsize=7, ncol=2)
        for row in axes[:, col]:
            row.axvspan(*tr["window"], color="gold", alpha=0.3, lw=0)
    fig.suptitle(f"policy: {label} (shaded: response window)", fontsize=10)
    return fig


def pareto_figure(points: list[dict], trials: int) -> Figure:
    """Accuracy vs mean current power: constant gains and trained policies.

    Args:
        points: dicts with ``kind``, ``accuracy``, ``accuracy_ci95``,
            ``current_power`` [nA²] and ``gain`` (constant) or ``lambda_gain``
            (and ``lambda_current`` [1/nA²], which labels the point if > 0).
        trials: held-out trials behind each point [1].
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    styles = {
        "constant": ("k", "s", "constant gain g (no control)"),
        "mlp": ("C3", "o", "MLP (closed loop)"),
        "mlp_sharp": ("C1", "o", "MLP, sharp CE (closed loop)"),
        "gru": ("C2", "^", "GRU (closed loop, memory)"),
        "gru_sharp": ("C2", "v", "GRU, sharp CE"),
        "open_loop": ("C0", "D", "open-loop time profile"),
        "open_loop_sharp": ("C9", "D", "open-loop profile, sharp CE"),
        "mlp_sharp_ev": ("C4", "*", "MLP + mean-stimulus input, sharp CE"),
        "gru_sharp_ev": ("C5", "P", "GRU + mean-stimulus input, sharp CE"),
        "open_loop_sharp_ev": ("C6", "X", "evidence-switched profile, sharp CE"),
        "open_loop_sharp_cs": ("C8", "p", "current-shaped switched profile"),
    }
    base = next(
        (
            p["current_power"]
            for p in points
            if p["kind"] == "constant" and p.get("gain") == 1.0
        ),
        None,
    )
    for kind, (color, marker, label) in styles.items():
        pts = sorted(
            (p for p in points if p.get("series", p["kind"]) == kind),
            key=lambda p: p["current_power"],
        )
        if not pts:
            continue
        x = np.array([p["current_power"] for p in pts])
        y = np.array([p["accuracy"] for p in pts])
        lo = np.array([p["accuracy_ci95"][0] for p in pts])
        hi = np.array([p["accuracy_ci95"][1] for p in pts])
        ax.errorbar(
            x,
            y,
            yerr=np.clip([y - lo, hi - y], 0.0, None),  # rounding at acc 1
            color=color,
            marker=marker,
            lw=1,
            capsize=2,
            label=label,
        )
        for p in pts:
            if kind == "constant":
                tag, offset = f"g={p['gain']:g}", (3, -9)
            else:
                tag = f"λ={p['lambda_gain']:g}"
                if p.get("lambda_current"):  # [1/nA²]
                    tag = f"λ_I={p['lambda_current'] / 1e6:g}e6"
                if p.get("batch", 8) != 8:
                    tag += f" b{p['batch']}"
                # the sharp-CE curve is labelled below, the others above
                offset = (-8, -12) if "_sharp" in kind else (-8, 6)
            ax.annotate(
                tag,
                (p["current_power"], p["accuracy"]),
                fontsize=7,
                xytext=offset,
                textcoords="offset points",
                color=color,
            )
    if base is not None:
        for factor in (10, 30, 50, 100):
            ax.axvline(base / factor, color="0.7", lw=0.8, ls=":")
            ax.text(
                base / factor,
                0.02,
                f"{factor}x less",
                rotation=90,
                fontsize=7,
                color="0.4",
                va="bottom",
                ha="right",
                transform=ax.get_xaxis_transform(),  # x in data, y in axes units
            )
    floor = min((p["accuracy_ci95"][0] for p in points), default=0.5)
    ax.set(
        xscale="log",
        xlabel="mean current power [nA²]",
        ylabel=f"accuracy ({trials} held-out trials, 95 % CI)",
        ylim=(max(0.0, floor - 0.05), 1.03),
        title="Evidence plant: accuracy vs stimulation power",
    )
    ax.legend(fontsize=8, loc="lower right")
    return fig
