"""The only place in neuroctl that touches files."""

from neuroctl.io.checkpoints import CheckpointError as CheckpointError
from neuroctl.io.checkpoints import load_verified as load_verified
from neuroctl.io.checkpoints import save_verified as save_verified
from neuroctl.io.checkpoints import tree_checksum as tree_checksum
from neuroctl.io.files import save_figure as save_figure
