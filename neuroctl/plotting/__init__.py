"""Figures (the only matplotlib import in neuroctl): arrays in, `Figure` out."""

from neuroctl.plotting.traces import demo_figure as demo_figure
