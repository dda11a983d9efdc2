"""Task-trained networks and cell models built from `neuroctl.biophysics`.

`Plant` (any network with named inputs and readouts) loads at once. `load` opens
any plant folder (shipped name or path) through the one loader
(`neuroctl.plants.loader`), which picks the family by spec.toml's ``kind``; the
evidence plant (`EvidencePlant`) imports its task (scipy.signal, ~2 s) on first use.
"""

from neuroctl.plants.base import Plant as Plant

_LAZY = {"EvidencePlant": "evidence", "load": "loader"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"neuroctl.plants.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'neuroctl.plants' has no attribute {name!r}")


__all__ = ["EvidencePlant", "Plant", "load"]
