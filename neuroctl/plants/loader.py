"""One loader for every plant folder: found by name or path, verified, built by kind.

A plant folder is a sealed artefact (`neuroctl.io.artefacts`); its spec.toml's
``kind`` names the family module that builds the plant from it (the module's
``from_artefact(ArtefactFolder) -> plant``). Families are imported on first use.
"""

import importlib
from pathlib import Path

from neuroctl.errors import ConfigError
from neuroctl.io.artefacts import open_artefact

#: spec.toml ``kind`` → the module that builds that family's plants
FAMILIES = {"evidence": "neuroctl.plants.evidence", "beta": "neuroctl.plants.beta"}


def load(name: str | Path = "evidence_integration", root: str | Path | None = None):
    """The plant in folder `name` (a shipped name under `root`, or a path).

    The folder is verified whole (seal, no symlinks) before anything is parsed;
    then its family (spec.toml ``kind``) builds the plant.

    Raises:
        ConfigError: unknown name or kind, or an invalid spec (naming spec.toml).
        CheckpointError: a damaged, changed or unsealed folder (naming the file).
    """
    art = open_artefact(name, "plant", root)
    kind = art.spec["kind"]
    if kind not in FAMILIES:
        raise ConfigError(
            f"{art.folder / 'spec.toml'}: field 'kind': got {kind!r}, expected one "
            f"of {sorted(FAMILIES)}; fix spec.toml or update neuroctl."
        )
    return importlib.import_module(FAMILIES[kind]).from_artefact(art)


__all__ = ["FAMILIES", "load"]
