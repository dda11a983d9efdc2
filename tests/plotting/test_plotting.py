"""Figures read right: integer cell axes, labelled colour bars, distinct legend
colours, no overlapping labels, legends beside (not over) the data, titles inside.

Each test draws a figure from small synthetic arrays (Agg) and checks, after
``fig.canvas.draw()``, the property a reader relies on.
"""

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from neuroctl.plotting import demo_figure, plant_trial_figure  # noqa: E402
from neuroctl.plotting.analysis import conductance_figure  # noqa: E402
from neuroctl.plotting.policy import (  # noqa: E402
    example_trial_figure,
    late_gate_figure,
    pareto_figure,
)

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------ checks


def _drawn(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _shown_tick_labels(axis) -> list[Text]:
    """The tick labels an axis draws: visible, non-empty, tick within the view."""
    lo, hi = sorted(axis.get_view_interval())
    tol = 1e-9 * max(1.0, abs(hi - lo))
    return [
        label
        for tick in axis.get_major_ticks() + axis.get_minor_ticks()
        if lo - tol <= tick.get_loc() <= hi + tol
        for label in (tick.label1, tick.label2)
        if label.get_visible() and label.get_text().strip()
    ]


def _texts(fig) -> list[Text]:
    """Every text the figure shows: titles, labels, notes, legends, tick labels."""
    axes = [(ax.xaxis, ax.yaxis) for ax in fig.axes]
    ticks = {
        id(label)
        for axis in itertools.chain(*axes)
        for tick in axis.get_major_ticks() + axis.get_minor_ticks()
        for label in (tick.label1, tick.label2)
    }
    others = [
        t
        for t in fig.findobj(Text)
        if id(t) not in ticks and t.get_visible() and t.get_text().strip()
    ]
    return others + [
        t for axis in itertools.chain(*axes) for t in _shown_tick_labels(axis)
    ]


def _overlapping_texts(fig) -> list[tuple[str, str]]:
    renderer = _drawn(fig)
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in _texts(fig)]
    return [
        (a, b)
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2)
        if box_a.shrunk(0.9, 0.9).overlaps(box_b.shrunk(0.9, 0.9))
    ]


def _legends(fig) -> list[Legend]:
    found = [lg for lg in fig.findobj(Legend) if lg.get_visible()]
    assert found, "the figure has no legend"
    return found


def _display_points(ax, line: Line2D) -> np.ndarray:
    """The line's vertices in pixels, with 8 points along every segment."""
    xy = np.column_stack(line.get_data()).astype(float)
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    if len(xy) > 1:
        s = np.linspace(0.0, 1.0, 8, endpoint=False)[None, :, None]
        xy = (xy[:-1, None] + s * (xy[1:, None] - xy[:-1, None])).reshape(-1, 2)
    return line.get_transform().transform(xy) if len(xy) else xy


def _covered_data(fig) -> list[str]:
    """Legends that cover a trace or a bar, or stick out of the figure."""
    renderer = _drawn(fig)
    bad = []
    for legend in _legends(fig):
        box = legend.get_window_extent(renderer)
        if not fig.bbox.contains(box.x0 + 1, box.y0 + 1) or not fig.bbox.contains(
            box.x1 - 1, box.y1 - 1
        ):
            bad.append(f"legend {box} outside the figure {fig.bbox}")
        for ax in fig.axes:
            for line in ax.get_lines():
                pts = _display_points(ax, line)
                inside = (
                    (pts[:, 0] > box.x0)
                    & (pts[:, 0] < box.x1)
                    & (pts[:, 1] > box.y0)
                    & (pts[:, 1] < box.y1)
                )
                if np.any(inside):
                    bad.append(f"legend over the line {line.get_label()!r}")
            for bar in (p for p in ax.patches if isinstance(p, Rectangle)):
                shown = Bbox.intersection(bar.get_window_extent(renderer), ax.bbox)
                if shown is not None and shown.overlaps(box):
                    bad.append("legend over a bar")
    return bad


def _inside_figure(fig, text: Text) -> bool:
    box = text.get_window_extent(_drawn(fig))
    return bool(
        box.x0 >= fig.bbox.x0
        and box.y0 >= fig.bbox.y0
        and box.x1 <= fig.bbox.x1
        and box.y1 <= fig.bbox.y1
    )


def _image_axes(fig):
    (ax,) = [a for a in fig.axes if a.get_images()]
    return ax


def _colorbar_label(fig) -> Text:
    (cax,) = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    return cax.yaxis.label


def _assert_cell_axis(fig, n_cells: int) -> None:
    ax = _image_axes(fig)
    ticks = ax.get_yticks()
    assert np.all(ticks == np.round(ticks)), f"fractional cell ticks {ticks}"
    assert ticks.min() >= 0 and ticks.max() <= n_cells - 1
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert all(labels), labels
    assert labels[0] == "I0" and labels[-1] == f"E{n_cells - 1}"
    label = _colorbar_label(fig)
    assert "[mV]" in label.get_text()
    assert _inside_figure(fig, label)


# ------------------------------------------------------------------ figures


def _demo_fig():
    t = np.linspace(0.025, 200.0, 800)
    v_cell = -65 + 30 * np.sin(
        t[None, :, None] / np.array([3.0, 5.0, 7.0])[:, None, None]
    )
    v_cell = np.repeat(v_cell, 2, axis=2)
    t_net = np.linspace(0.025, 520.0, 1000)
    v_somata = -70 + 10 * RNG.standard_normal((t_net.size, 20))
    v_readouts = -72 + 10 * np.sin(t_net[None, :, None] / np.array([20.0, 30.0]))
    v_readouts = np.stack([v_readouts[0], v_readouts[0][:, ::-1]])
    amps = np.array([0.1, 0.25, 0.5])
    return demo_figure(t, v_cell, amps, t_net, v_somata, v_readouts, [0, 1], [0, 1])


def test_demo_figure_cell_axis_colorbar_and_legends():
    fig = _demo_fig()
    _assert_cell_axis(fig, 20)
    assert _covered_data(fig) == []
    assert _overlapping_texts(fig) == []


def test_plant_trial_figure_cell_axis_colorbar_and_legend():
    t = np.linspace(0.025, 520.0, 1000)
    stim = 0.005 + 0.004 * np.sin(t / 7.0)
    v_somata = -70 + 10 * RNG.standard_normal((t.size, 20))
    v_readouts = np.column_stack([-72 + 5 * np.sin(t / 20), -62 + 3 * np.cos(t / 9)])
    fig = plant_trial_figure(
        t, stim, v_somata, v_readouts, 1, 0.005, (500.0, 520.0), np.array([-72.0, -62])
    )
    _assert_cell_axis(fig, 20)
    assert _covered_data(fig) == []
    assert _overlapping_texts(fig) == []


def test_conductance_legend_has_each_groups_own_colour():
    groups = [
        ("readout", "E"),
        ("readout", "I"),
        ("recurrent", "E"),
        ("recurrent", "I"),
    ]
    table = [
        {
            "kind": kind,
            "type": sign,
            "mean_abs_dd_dg": float(10 ** RNG.uniform(0, 4)),
            "mean_abs_elasticity": float(10 ** RNG.uniform(-3, 1)),
        }
        for kind, sign in groups * 5
    ]
    fig = conductance_figure(table)
    (legend,) = _legends(fig)
    handle_colours = [tuple(to_rgba(h.get_facecolor())) for h in legend.legend_handles]
    assert len(set(handle_colours)) == len(groups)
    bar_colours = {
        tuple(to_rgba(p.get_facecolor())) for ax in fig.axes for p in ax.patches
    }
    assert set(handle_colours) == bar_colours
    assert _covered_data(fig) == []


def _pareto_points() -> list[dict]:
    """Constant gains and a dense cluster of trained points (as in results/)."""
    points = [
        {"kind": "constant", "gain": g, "current_power": 3.7e-6 * g**2}
        for g in (1.0, 0.7, 0.5, 0.4, 0.3)
    ]
    series = ["mlp", "mlp_sharp", "open_loop_sharp_ev", "open_loop_sharp_cs"]
    for i, (kind, lam) in enumerate(itertools.product(series, (0.3, 1.0, 2.0, 3.0))):
        points.append(
            {
                "kind": kind.split("_sharp")[0],
                "series": kind,
                "lambda_gain": lam,
                "lambda_current": 1e6 * lam if kind.endswith("_cs") else 0.0,
                "batch": 16 if i % 5 == 0 else 8,
                "current_power": 1.3e-7 * (1 + 0.02 * i),  # all within 40 %
            }
        )
    for p in points:
        p["accuracy"] = 1.0 if p.get("gain", 0.5) > 0.35 else 0.95
        p["accuracy_ci95"] = [p["accuracy"] - 0.02, 1.0]
    return points


def test_pareto_labels_do_not_overlap():
    fig = pareto_figure(_pareto_points(), 200)
    assert _overlapping_texts(fig) == []
    names = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert len(set(names)) == 16, "every trained point named once"
    assert _covered_data(fig) == []


def _gates() -> list[dict]:
    """Late gates whose points crowd at accuracy 1 (as in results/)."""
    return [
        {
            "onset_ms": onset,
            "gain": gain,
            "power_reduction": (1.0 + onset / 100.0) / gain**1.5,
            "accuracy_label0": 1.0 if gain > 0.3 else 0.5 - onset / 1000.0,
        }
        for onset in (0.0, 200.0, 300.0, 380.0, 420.0, 450.0)
        for gain in (0.2, 0.3, 0.4, 0.6, 1.0)
    ]


def test_late_gate_gains_keyed_by_marker_without_overlapping_text():
    fig = late_gate_figure(_gates(), 1.0)
    assert _overlapping_texts(fig) == []
    (legend,) = _legends(fig)
    by_gain = [h for h in legend.legend_handles if h.get_label().startswith("gain")]
    assert [h.get_label() for h in by_gain] == [
        f"gain {g:g}" for g in (1, 0.6, 0.4, 0.3, 0.2)
    ]
    assert len({h.get_marker() for h in by_gain}) == 5
    assert _covered_data(fig) == []


def test_late_gate_refuses_a_zero_power_gate():
    gates = _gates()
    gates[0]["power_reduction"] = float("inf")
    with pytest.raises(ValueError, match="zero power"):
        late_gate_figure(gates, 1.0)


def _trial(label: int) -> dict:
    t_ctrl = np.arange(1, 521, dtype=float)  # [ms]
    sign = 1 if label else -1
    stim = sign * (0.005 + 0.005 * np.sin(np.arange(4 * 520) / 11.0))
    readouts = np.column_stack(
        [-72 + 3 * np.sin(t_ctrl / 30), -65 + 5 * np.cos(t_ctrl / 17)]
    )
    return {
        "t_sim": np.arange(1, 4 * 520 + 1) * 0.25,
        "stimulus": stim,
        "t_ctrl": t_ctrl,
        "gains": 0.5 + 0.5 * np.sin(t_ctrl / 40.0),
        "base_gains": np.ones_like(t_ctrl),
        "readouts": readouts,
        "base_readouts": readouts + 2.0,
        "substeps": 4,
        "label": label,
        "correct": True,
        "mean_gain_sq": 0.19,
        "window": (500.0, 520.0),
    }


def test_example_trial_title_inside_figure_and_legends_beside_traces():
    label = (
        "open_loop (λ_I = 3e+06/nA², CE scale 10/mV, batch 16, current-shaped "
        "(observes the mean stimulus and the latest sample))"
    )
    fig = example_trial_figure([_trial(1), _trial(0)], label)
    assert _inside_figure(fig, fig._suptitle)
    assert "current-shaped" in fig._suptitle.get_text()
    assert _covered_data(fig) == []
    assert _overlapping_texts(fig) == []
