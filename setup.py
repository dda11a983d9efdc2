"""Build hook: the shipped artefacts (envs/, policies/) go into the wheel.

They live at the repository root (where scripts write them); a wheel carries them
as package data under ``neuroctl/_shipped/``, which `neuroctl.io.artefacts`
finds first. Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ARTEFACTS = ("envs", "policies")


class BuildWithArtefacts(build_py):
    """`build_py` that also copies the shipped artefact folders into the build."""

    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        for kind in ARTEFACTS:
            dest = Path(self.build_lib) / "neuroctl" / "_shipped" / kind
            shutil.rmtree(dest, ignore_errors=True)  # nothing stale from a past build
            shutil.copytree(
                root / kind,
                dest,
                ignore=shutil.ignore_patterns("training*", ".gitignore"),
            )


setup(cmdclass={"build_py": BuildWithArtefacts})
