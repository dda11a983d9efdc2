"""The only place in neuroctl that touches files."""

from neuroctl.io.files import save_figure as save_figure
