"""One episode of any env: actions and observation fields over time, side by side."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def episode_figure(
    t_ms: np.ndarray,
    runs: dict[str, tuple[np.ndarray, np.ndarray]],
    obs_fields: tuple[tuple[str, str], ...],
    action_unit: str,
    title: str,
) -> Figure:
    """Actions and each observation field over one episode, one line per run.

    Args:
        t_ms: time at each control step [ms], ``(T,)``.
        runs: label → ``(actions (T, n_act) [action units], obs (T, n_obs))``, all
            on the same episode (e.g. the trained policy and the best constant).
        obs_fields: ``(name, unit)`` of each observation entry.
        action_unit: unit of the actions (axis label).
        title: figure title.
    """
    n_act = next(iter(runs.values()))[0].shape[1]
    n_rows = 1 + len(obs_fields)
    fig, axes = plt.subplots(
        n_rows, 1, figsize=(8, 1.6 * n_rows + 0.6), sharex=True, constrained_layout=True
    )
    axes = np.atleast_1d(axes)
    styles = ["-", "--", ":", "-."]
    for (label, (actions, obs)), ls in zip(runs.items(), styles, strict=False):
        for k in range(n_act):  # one colour per action entry (electrode)
            name = label if n_act == 1 else f"{label}, entry {k}"
            colour = f"C{k}" if n_act > 1 else None
            axes[0].plot(t_ms, actions[:, k], ls, color=colour, lw=1.1, label=name)
        for j in range(len(obs_fields)):
            axes[1 + j].plot(t_ms, obs[:, j], ls, lw=1.0, label=label)
    axes[0].set_ylabel(f"action\n[{action_unit}]")
    for ax, (name, unit) in zip(axes[1:], obs_fields, strict=True):
        ax.set_ylabel(f"{name}\n[{unit}]" if unit else name)
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[-1].set_xlabel("time [ms]")
    fig.suptitle(title, fontsize=10)
    return fig


def training_curve_figure(
    iterations: np.ndarray,
    returns: np.ndarray,
    baseline: float,
    baseline_label: str,
    title: str,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> Figure:
    """Mean training return per iteration beside a constant baseline's return.

    Args:
        iterations: iteration numbers [1].
        returns: mean episode return of each iteration's batch [1].
        baseline: the baseline's mean return (a horizontal line) [1].
        baseline_label: its legend label.
        title: figure title.
        validation: iterations and mean returns of the validation checks [1].
    """
    fig, ax = plt.subplots(figsize=(6, 3.2), constrained_layout=True)
    ax.plot(iterations, returns, lw=1, label="policy (training batch)")
    if validation is not None and len(validation[0]):
        ax.plot(*validation, "o", ms=4, color="C3", label="policy (validation)")
    ax.axhline(baseline, color="0.4", ls="--", lw=1, label=baseline_label)
    ax.set(xlabel="iteration", ylabel="episode return [1]", title=title)
    ax.legend(fontsize=8)
    return fig
