"""Layout helpers shared by the figures: cell axes, legends beside the data, titles."""

import textwrap

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

CHAR_WIDTH_EM = 0.62  # mean glyph width of DejaVu Sans, generous [em]


def cell_names(n_cells: int, n_inhibitory: int) -> list[str]:
    """``I0 … I{n_inhibitory-1}, E{n_inhibitory} …``: cell index and type."""
    return [("I" if i < n_inhibitory else "E") + str(i) for i in range(n_cells)]


def cell_axis(ax: Axes, n_cells: int, n_inhibitory: int, fontsize: float = 6) -> None:
    """One integer tick per cell on the y axis, named by `cell_names`.

    For an image drawn with ``extent=(…, n_cells - 0.5, -0.5)``: row i is cell i.
    """
    ax.set_yticks(range(n_cells), cell_names(n_cells, n_inhibitory), fontsize=fontsize)
    ax.set_ylabel("cell (I: inhibitory, E: excitatory)")


def legend_beside(ax: Axes, **kwargs):
    """A legend to the right of `ax`, outside the axes: it never covers data.

    Constrained layout makes room for it (for the axes' own legend, not for extra
    legends added with `add_artist`). Keyword arguments go to `Axes.legend`.
    """
    kwargs.setdefault("fontsize", 7)
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), **kwargs)


def fit_suptitle(fig: Figure, text: str, fontsize: float = 10) -> Text:
    """`Figure.suptitle`, each line of `text` wrapped to the figure's width."""
    width_pt = fig.get_figwidth() * 72.0  # [pt] = [in] · 72
    chars = max(20, int(width_pt / (CHAR_WIDTH_EM * fontsize)) - 4)
    lines = [textwrap.fill(line, chars) for line in text.split("\n")]
    return fig.suptitle("\n".join(lines), fontsize=fontsize)
