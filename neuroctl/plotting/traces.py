"""Voltage-trace figures."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


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
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6), constrained_layout=True)
    ax = axes[0]
    for a, v in zip(amps, v_cell, strict=True):
        line = ax.plot(t_cell, v[:, 0], lw=1, label=f"soma, {a:.2f} nA")[0]
        ax.plot(t_cell, v[:, 1], lw=0.8, ls="--", color=line.get_color())
    ax.set(
        xlabel="time [ms]", ylabel="V [mV]", title="ball-and-stick (dashed: dendrite)"
    )
    ax.legend(fontsize=7, loc="upper right")
    im = axes[1].imshow(
        v_somata.T,
        aspect="auto",
        cmap="magma",
        vmin=-80,
        vmax=30,
        extent=(t_net[0], t_net[-1], v_somata.shape[1] - 0.5, -0.5),
    )
    axes[1].set(
        xlabel="time [ms]",
        ylabel="cell (0–9 I, 10–19 E)",
        title=f"trained plant, label {labels[-1]}: somatic V",
    )
    fig.colorbar(im, ax=axes[1], label="V [mV]")
    for ax, v, lab, dec in zip(axes[2:], v_readouts, labels, decisions, strict=True):
        ax.plot(t_net, v[:, 0], lw=1, label="readout 0")
        ax.plot(t_net, v[:, 1], lw=1, label="readout 1")
        ax.axvspan(*window_ms, color="0.85", label="response window")
        ax.set(
            xlabel="time [ms]", ylabel="V [mV]", title=f"label {lab} → decision {dec}"
        )
        ax.legend(fontsize=7)
    return fig
