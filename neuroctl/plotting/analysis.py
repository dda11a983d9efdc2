"""Figures of the forward- and reverse-mode analyses of the evidence plant."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

SIGNS = {"E": "excitatory", "I": "inhibitory"}


def conductance_figure(table: list[dict]) -> Figure:
    """Synapses ranked by the decision's sensitivity to their conductance.

    One bar a synapse, coloured by its group (readout/recurrent × excitatory/
    inhibitory); left ranked by mean |∂d/∂g| [mV/µS], right by mean |g·∂d/∂g| [mV].

    Args:
        table: one dict a synapse with ``kind`` (``"readout"``/``"recurrent"``),
            ``type`` (``"E"``/``"I"``), ``mean_abs_dd_dg`` [mV/µS] and
            ``mean_abs_elasticity`` [mV].
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0), layout="constrained")
    groups = sorted({(r["kind"], r["type"]) for r in table})
    colors = {k: f"C{i}" for i, k in enumerate(groups)}
    for ax, key, unit in (
        (axes[0], "mean_abs_dd_dg", "mean |∂d/∂g| [mV/µS]"),
        (axes[1], "mean_abs_elasticity", "mean |g·∂d/∂g| [mV]"),
    ):
        rows = sorted(table, key=lambda r: -r[key])
        c = [colors[(r["kind"], r["type"])] for r in rows]
        ax.bar(range(len(rows)), [r[key] for r in rows], color=c, width=1.0)
        ax.set(yscale="log", xlabel="synapse rank (most sensitive first)", ylabel=unit)
    handles = [  # one patch of each group's own colour (not an empty bar's default)
        Patch(color=col, label=f"{kind} synapse, {SIGNS.get(sign, sign)}")
        for (kind, sign), col in colors.items()
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle(
        f"Sensitivity of the decision d to each of the {len(table)} synaptic "
        "conductances g",
        fontsize=9,
    )
    return fig
