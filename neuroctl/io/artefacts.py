"""Where the shipped artefacts (plants in ``envs/``, policies in ``policies/``) are.

In a source checkout (and an editable install) they sit at the repository root; a
wheel carries them as package data in ``neuroctl/_shipped/`` (setup.py copies them
there at build time). `shipped_root` returns the first that exists.
"""

from pathlib import Path
from typing import Literal

_PACKAGE = Path(__file__).resolve().parents[1]  # .../neuroctl

Kind = Literal["envs", "policies"]


def shipped_root(kind: Kind) -> Path:
    """The folder holding the shipped `kind` ("envs" or "policies")."""
    installed = _PACKAGE / "_shipped" / kind
    return installed if installed.is_dir() else _PACKAGE.parent / kind
