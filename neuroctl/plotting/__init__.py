"""Figures (the only matplotlib import in neuroctl): arrays in, `Figure` out."""

from neuroctl.plotting.traces import demo_figure as demo_figure
from neuroctl.plotting.traces import plant_trial_figure as plant_trial_figure
