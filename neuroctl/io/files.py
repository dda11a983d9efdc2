"""Writing results: figures and small text files, atomically."""

import os
import tempfile
from pathlib import Path

from matplotlib.figure import Figure


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 130) -> Path:
    """Write `fig` to `path` (format from the suffix) via a temporary file + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, suffix=path.suffix, delete=False
    ) as f:
        tmp = Path(f.name)
    try:
        fig.savefig(tmp, dpi=dpi)
        tmp.chmod(0o666 & ~_umask())  # as a plain open() would (mkstemp gives 0600)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
