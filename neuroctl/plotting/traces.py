"""Voltage-trace figures."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from neuroctl.plotting.layout import cell_axis, legend_beside  # noqa: E402


def demo_figure(
    t_cell: np.ndarray,
    v_cell: np.ndarray,
    amps: np.ndarray,
    t_net: np.ndarray,
    v_somata: np.ndarray,
    v_readouts: np.ndarray,
    labels: list[int],
    decisions: list[int],
    window_ms: tuple[float, float] = (500.0, 520.0),
) -> Figure:
    """Ball-and-stick responses and the shipped evidence plant on two trials.

    Args:
        t_cell: time [ms], shape (T,).
        v_cell: soma and dendrite-tip voltage [mV], shape (n_amps, T, 2).
        amps: step amplitudes [nA], shape (n_amps,).
        t_net: time [ms], shape (T2,).
        v_somata: somatic voltages [mV] of the last trial, shape (T2, n_cells).
        v_readouts: readout voltages [mV], shape (n_trials, T2, 2).
        labels: the trials' labels (0/1).
        decisions: the plant's decisions (0/1).
        window_ms: response window [ms].
    """
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8), constrained_layout=True)
    ax = axes[0]
    for a, v in zip(amps, v_cell, strict=True):
        line = ax.plot(t_cell, v[:, 0], lw=1, label=f"soma, {a:.2f} nA")[0]
        ax.plot(t_cell, v[:, 1], lw=0.8, ls="--", color=line.get_color())
    ax.set(
        xlabel="time [ms]", ylabel="V [mV]", title="ball-and-stick (dashed: dendrite)"
    )
    legend_beside(ax, title="step")
    _somata_panel(fig, axes[1], t_net, v_somata, "magma", (-80.0, 30.0))
    axes[1].set(xlabel="time [ms]")
    axes[1].set_title(f"trained plant, label {labels[-1]}: somatic V")
    for ax, v, lab, dec in zip(axes[2:], v_readouts, labels, decisions, strict=True):
        ax.plot(t_net, v[:, 0], lw=1, label="readout 0")
        ax.plot(t_net, v[:, 1], lw=1, label="readout 1")
        ax.axvspan(*window_ms, color="0.85", label="response window")
        ax.set(
            xlabel="time [ms]", ylabel="V [mV]", title=f"label {lab} → decision {dec}"
        )
    legend_beside(axes[-1])
    return fig


def _somata_panel(fig, ax, t_ms, v_somata, cmap: str, v_range, n_inhibitory=10):
    """Somatic voltages [mV] ``(T, n_cells)`` as an image, one row per cell."""
    im = ax.imshow(
        v_somata.T,
        aspect="auto",
        cmap=cmap,
        vmin=v_range[0],
        vmax=v_range[1],
        extent=(t_ms[0], t_ms[-1], v_somata.shape[1] - 0.5, -0.5),
        interpolation="nearest",
    )
    cell_axis(ax, v_somata.shape[1], n_inhibitory)
    fig.colorbar(im, ax=ax, label="somatic V [mV]")


def plant_trial_figure(
    t_ms: np.ndarray,
    stimulus: np.ndarray,
    v_somata: np.ndarray,
    v_readouts: np.ndarray,
    label: int,
    evidence_mean: float,
    window_ms: tuple[float, float],
    window_means: np.ndarray,
) -> Figure:
    """One trial of the evidence plant: stimulus, somatic voltages, readouts.

    Args:
        t_ms: time [ms], shape (T,).
        stimulus: the filtered evidence stimulus [1], shape (T,).
        v_somata: somatic voltages [mV], shape (T, n_cells) (inhibitory cells first).
        v_readouts: readout voltages [mV], shape (T, 2).
        label: the trial's label (0/1).
        evidence_mean: the trial's evidence strength μ (signed) [1].
        window_ms: response window [ms].
        window_means: mean readout voltages in the window [mV] (the logits), (2,).
    """
    fig, axes = plt.subplots(
        3,
        1,
        figsize=(7.5, 6.8),
        sharex=True,
        layout="constrained",
        gridspec_kw={"height_ratios": [1, 2, 1.3]},
    )
    axes[0].plot(t_ms, stimulus, lw=0.6)
    axes[0].axhline(0, color="0.6", lw=0.6)
    axes[0].set(
        ylabel="stimulus [1]",
        title=f"held-out trial, label {label} (μ = {evidence_mean:+.4f})",
    )
    _somata_panel(fig, axes[1], t_ms, v_somata, "viridis", (-80.0, 40.0))
    for r, c in ((0, "C0"), (1, "C3")):
        axes[2].plot(t_ms, v_readouts[:, r], color=c, lw=0.8, label=f"readout {r}")
    axes[2].axvspan(*window_ms, color="0.85", label="response window")
    axes[2].set(
        xlabel="time [ms]",
        ylabel="readout V [mV]",
        title=f"decision {int(np.argmax(window_means))} (window means "
        f"{window_means[0]:.2f}, {window_means[1]:.2f} mV)",
    )
    # below the figure: beside the axes it would push the colour bar away
    fig.legend(loc="outside lower center", ncol=3, fontsize=8)
    return fig
