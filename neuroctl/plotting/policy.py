"""Figures of stimulation policies on the evidence plant."""

import math
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from neuroctl.plotting.layout import fit_suptitle, legend_beside  # noqa: E402


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
        figsize=(5.5 * len(trials) + 1.8, 7.4),
        sharex=True,
        constrained_layout=True,
        squeeze=False,
    )
    for col, tr in enumerate(trials):
        _trial_column(axes[:, col], tr)
    # the same entries in every column: one legend a row, beside the last column
    legend_beside(axes[0, -1])
    legend_beside(axes[1, -1])
    legend_beside(axes[2, -1], handles=_readout_handles())
    fit_suptitle(fig, f"policy: {label}\nshaded: the response window", fontsize=10)
    return fig


def _trial_column(axes, tr: dict) -> None:
    """Stimulus, gain and readouts of one example trial (see `example_trial_figure`)."""
    stim, t_sim, t_ctrl = tr["stimulus"], tr["t_sim"], tr["t_ctrl"]
    verdict = "correct" if tr["correct"] else "WRONG"
    ax = axes[0]
    ax.plot(t_sim, stim, lw=0.6, color="0.3", label="s (g = 1 passes it all)")
    gated = np.repeat(tr["gains"], tr["substeps"]) * stim
    ax.plot(t_sim, gated, lw=0.8, color="C3", label="g·s (the policy passes)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(ylabel="evidence s(t) [1]")
    ax.set_title(
        f"held-out trial, label {tr['label']}: policy {verdict}, "
        f"mean g² = {tr['mean_gain_sq']:.4f}",
        fontsize=10,
    )
    ax = axes[1]
    ax.plot(t_ctrl, tr["base_gains"], "--", color="0.5", lw=1, label="g = 1")
    ax.plot(t_ctrl, tr["gains"], color="C3", lw=1.2, label="policy")
    ax.set(ylabel="gain g [1]")
    ax = axes[2]
    for r in range(2):
        ax.plot(t_ctrl, tr["readouts"][:, r], color=f"C{r}", lw=1.1)
        ax.plot(t_ctrl, tr["base_readouts"][:, r], "--", color=f"C{r}", lw=0.8)
    ax.set(xlabel="time [ms]", ylabel="readout voltage [mV]")
    for row in axes:
        row.axvspan(*tr["window"], color="gold", alpha=0.3, lw=0)


def _readout_handles() -> list[Line2D]:
    """Legend entries of the readout panel: colour = readout, style = run."""
    return [
        Line2D([], [], color="C0", lw=1.1, label="readout 0"),
        Line2D([], [], color="C1", lw=1.1, label="readout 1"),
        Line2D([], [], color="0.3", lw=1.1, label="policy"),
        Line2D([], [], color="0.3", lw=0.8, ls="--", label="g = 1"),
    ]


SERIES = {  # Pareto series → (colour, marker, legend label)
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


def pareto_figure(points: list[dict], trials: int) -> Figure:
    """Accuracy vs mean current power: constant gains and trained policies.

    Left: accuracy vs power, one curve per series (constant gains labelled by g).
    Right: every trained point on its own row, named by its series and cost
    weight (λ_g, or λ_I [1/nA²]; ``b16``: batch 16), at the same power axis, with
    its accuracy on the right: the labels never overlap however close the points.

    Args:
        points: dicts with ``kind``, ``accuracy``, ``accuracy_ci95``,
            ``current_power`` [nA²] and ``gain`` (constant) or ``lambda_gain``
            (and ``lambda_current`` [1/nA²], which labels the point if > 0).
        trials: held-out trials behind each point [1].
    """
    trained = _trained_rows(points)
    fig, (ax, rows_ax) = plt.subplots(
        1,
        2,
        figsize=(13, max(5.0, 1.6 + 0.19 * len(trained))),
        sharex=True,
        constrained_layout=True,
        gridspec_kw={"width_ratios": [1.2, 1]},
    )
    for kind in SERIES:
        _pareto_series(ax, [p for p in points if _series(p) == kind], kind)
    _reduction_lines(ax, rows_ax, points)
    floor = min((p["accuracy_ci95"][0] for p in points), default=0.5)
    ax.set(
        xscale="log",
        xlabel="mean current power [nA²]",
        ylabel=f"accuracy ({trials} held-out trials, 95 % CI)",
        ylim=(max(0.0, floor - 0.05), 1.03),
        title="Accuracy vs stimulation power",
    )
    _trained_panel(rows_ax, trained, trials)
    fig.legend(loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle("Evidence plant: gain policies vs constant gains", fontsize=11)
    return fig


def _series(p: dict) -> str:
    return p.get("series", p["kind"])


def _tag(p: dict) -> str:
    """A trained point's name: its cost weight and how it differs from its series.

    ``λ=2`` or ``λ_I=3e6/nA²``; `` b16``: batch 16; `` from g=0.05``: a fresh
    policy started from that constant gain (the stage name's ``_g`` suffix).
    """
    tag = f"λ={p['lambda_gain']:g}"
    if p.get("lambda_current"):  # [1/nA²]
        tag = f"λ_I={p['lambda_current'] / 1e6:g}e6/nA²"
    if p.get("batch", 8) != 8:
        tag += f" b{p['batch']}"
    g_init = re.search(r"_g([0-9.e+-]+)$", p.get("stage", ""))
    if g_init:  # a stage started from this constant gain (the name's _g suffix)
        tag += f" from g={g_init[1]}"
    return tag


def _trained_rows(points: list[dict]) -> list[dict]:
    """Trained points grouped by series (legend order), then by cost weight."""
    order = {kind: i for i, kind in enumerate(SERIES)}
    trained = [p for p in points if p["kind"] != "constant" and _series(p) in order]
    return sorted(
        trained,
        key=lambda p: (
            order[_series(p)],
            p.get("lambda_gain", 0.0),
            p.get("lambda_current", 0.0),
            p.get("batch", 8),
        ),
    )


def _pareto_series(ax, pts: list[dict], kind: str) -> None:
    """One curve of the left panel, cheapest first; constant gains labelled g."""
    if not pts:
        return
    color, marker, label = SERIES[kind]
    pts = sorted(pts, key=lambda p: p["current_power"])
    x = np.array([p["current_power"] for p in pts])
    y = np.array([p["accuracy"] for p in pts])
    lo, hi = np.array([p["accuracy_ci95"] for p in pts]).T
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
    if kind == "constant":
        for p in pts:
            ax.annotate(
                f"g={p['gain']:g}",
                (p["current_power"], p["accuracy"]),
                fontsize=7,
                xytext=(4, -10),
                textcoords="offset points",
            )


def _reduction_lines(ax, rows_ax, points: list[dict]) -> None:
    """Dotted lines at 10, 30, 50, 100x less power than g = 1, on both panels."""
    base = next(
        (
            p["current_power"]
            for p in points
            if p["kind"] == "constant" and p.get("gain") == 1.0
        ),
        None,
    )
    if base is None:
        return
    for factor in (10, 30, 50, 100):
        for a in (ax, rows_ax):
            a.axvline(base / factor, color="0.7", lw=0.8, ls=":")
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


def _trained_panel(ax, trained: list[dict], trials: int) -> None:
    """One row per trained point: its power, named on the left, accuracy right."""
    rows = np.arange(len(trained))
    for i, p in zip(rows, trained, strict=True):
        color, marker, _ = SERIES[_series(p)]
        ax.plot(p["current_power"], i, marker=marker, color=color, ms=6)
        ax.axhline(i, color="0.92", lw=0.6, zorder=0)
    names = [f"{SERIES[_series(p)][2]}, {_tag(p)}" for p in trained]
    ax.set_yticks(rows, names, fontsize=7)
    ax.set_ylim(len(trained) - 0.5, -0.5)
    ax.tick_params(axis="x", labelbottom=True)
    ax.set(xlabel="mean current power [nA²]", title="Each trained policy")
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(rows, [f"{p['accuracy']:.3f}" for p in trained], fontsize=7)
    right.set_ylabel(f"accuracy ({trials} trials)")


def late_gate_figure(gates: list[dict], label1_accuracy: float) -> Figure:
    """Accuracy on label-0 trials vs power reduction of open-loop late gates.

    Colour: the gate's onset; marker: its gain (both keyed beside the axes).

    Args:
        gates: dicts with ``onset_ms`` [ms], ``gain`` [1], ``power_reduction``
            (vs g = 1, all trials) [1] and ``accuracy_label0`` [1].
        label1_accuracy: accuracy on label-1 trials with no input at all [1].

    Raises:
        ValueError: if a gate had zero power (infinite reduction).
    """
    if not all(math.isfinite(r["power_reduction"]) for r in gates):
        raise ValueError("a gate had zero power")
    fig, ax = plt.subplots(figsize=(7.2, 4.2), constrained_layout=True)
    onsets = sorted({r["onset_ms"] for r in gates})
    gains = sorted({r["gain"] for r in gates}, reverse=True)
    markers = dict(zip(gains, "osD^vP*Xph", strict=False))
    for i, onset in enumerate(onsets):
        rows = sorted(
            (r for r in gates if r["onset_ms"] == onset),
            key=lambda r: r["power_reduction"],
        )
        color = plt.cm.viridis(i / max(len(onsets) - 1, 1))
        ax.plot(
            [r["power_reduction"] for r in rows],
            [r["accuracy_label0"] for r in rows],
            color=color,
        )
        for r in rows:
            ax.plot(
                r["power_reduction"],
                r["accuracy_label0"],
                markers[r["gain"]],
                color=color,
                ms=6,
                mec="k",
                mew=0.4,
            )
    ax.set_xscale("log")
    ax.set_xlabel("power reduction vs g = 1 (all trials) [x]")
    ax.set_ylabel("accuracy on label-0 trials [1]")
    ax.set_title(
        "Late gates: g ≈ 0 until the onset, then constant; label-1 trials are "
        f"right without input ({label1_accuracy:.2f})",
        fontsize=9,
    )
    ax.axhline(1.0, color="0.7", lw=0.8, ls=":")
    _late_gate_keys(ax, onsets, markers)
    return fig


def _late_gate_keys(ax, onsets: list[float], markers: dict) -> None:
    """One legend beside the axes: onsets (colour), then gains (marker)."""
    colours = [plt.cm.viridis(i / max(len(onsets) - 1, 1)) for i in range(len(onsets))]
    handles = [
        Line2D([], [], color=c, marker="o", label=f"onset {t:.0f} ms")
        for t, c in zip(onsets, colours, strict=True)
    ]
    handles += [
        Line2D(
            [], [], ls="", marker=m, color="0.6", mec="k", mew=0.4, label=f"gain {g:g}"
        )
        for g, m in markers.items()
    ]
    legend_beside(ax, handles=handles)
