"""Shipped artefacts (plants, policies): found by name, verified whole, written whole.

An artefact folder::

    <name>/
      spec.toml       what it is: ``kind`` (the family, e.g. "evidence"), its
                      config; parsed with errors naming spec.toml and the field
      metrics.json    the card: measured metrics, training config, provenance
      checkpoint/     a verified checkpoint (`neuroctl.io.checkpoints`)
      seal.json       written last: every other file's size and SHA-256

`open_artefact` refuses the folder unless it is sealed and whole: no symlink
anywhere (the folder, spec, card or a checkpoint file), no file missing,
changed or added. `write_artefact` stages the folder in a hidden sibling, seals
and verifies it there, and renames it into place, so a kill at any moment leaves
either the old artefact or the new one, never a mix; an existing folder is only
replaced with ``overwrite=True``.

Shipped artefacts sit at the repository root in a checkout (``envs/``,
``policies/``); a wheel carries them as package data in ``neuroctl/_shipped/``
(setup.py copies them at build time). `shipped_root` returns the first that
exists.
"""

import hashlib
import json
import os
import tempfile
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from neuroctl.errors import ConfigError
from neuroctl.io.checkpoints import (
    CheckpointError,
    _canonical,
    _discard,
    _fsync_dir,
    _move_into_place,
    _open_no_follow,
    _scan_folder,
    _sha256_file,
    recover_if_interrupted,
    recover_interrupted,
    save_verified,
    staging_folder,
)

_PACKAGE = Path(__file__).resolve().parents[1]  # .../neuroctl

Kind = Literal["envs", "policies"]
Artefact = Literal["plant", "policy"]

SPEC, CARD, CHECKPOINT, SEAL = "spec.toml", "metrics.json", "checkpoint", "seal.json"
SEAL_FORMAT = "neuroctl-sealed-artefact"
SEAL_VERSION = 1
_ROOTS: dict[str, Kind] = {"plant": "envs", "policy": "policies"}
_PLURAL = {"plant": "plants", "policy": "policies"}


def shipped_root(kind: Kind) -> Path:
    """The folder holding the shipped `kind` ("envs" or "policies")."""
    installed = _PACKAGE / "_shipped" / kind
    return installed if installed.is_dir() else _PACKAGE.parent / kind


@dataclass(frozen=True)
class ArtefactFolder:
    """A verified artefact folder, its parsed spec and card.

    Attributes:
        folder: the folder (absolute).
        artefact: "plant" or "policy".
        spec: spec.toml, parsed (``spec["kind"]`` names the family).
        card: metrics.json, parsed.
    """

    folder: Path
    artefact: Artefact
    spec: dict
    card: dict

    @property
    def checkpoint(self) -> Path:
        """The verified checkpoint folder inside (load it with `load_verified`)."""
        return self.folder / CHECKPOINT


def resolve(name_or_path: str | os.PathLike, artefact: Artefact, root=None) -> Path:
    """The folder of a shipped artefact name (under `root`) or a path."""
    path = Path(name_or_path)
    base = shipped_root(_ROOTS[artefact]) if root is None else Path(root)
    as_path = root is None and (
        path.exists() or path.is_symlink() or len(path.parts) > 1
    )
    folder = path if as_path else base / path
    if not (folder.exists() or folder.is_symlink()):
        recover_if_interrupted(folder.absolute())
    if not (folder.exists() or folder.is_symlink()):
        have = sorted(p.parent.name for p in base.glob(f"*/{SPEC}"))
        raise ConfigError(
            f"{artefact} {str(name_or_path)!r}: no folder {folder} (a {artefact} "
            f"folder holds {SPEC}, {CHECKPOINT}/, {CARD} and {SEAL}); shipped "
            f"{_PLURAL[artefact]} in {base}: {have or 'none'}; pass a name from "
            "that list or a path to a folder."
        )
    return folder.absolute()


def open_artefact(
    name_or_path: str | os.PathLike, artefact: Artefact, root=None
) -> ArtefactFolder:
    """Find and verify an artefact folder; its spec and card, parsed.

    Raises:
        ConfigError: unknown name, or a spec/card that is not valid TOML/JSON
            (naming the file).
        CheckpointError: a symlink, or a file missing, changed or added since
            the folder was sealed (naming the file).
    """
    folder = resolve(name_or_path, artefact, root)
    sizes = _verified_files(folder, artefact)
    for needed in (SPEC, CARD):
        if needed not in sizes:
            raise CheckpointError(
                f"{artefact} folder {folder}: no {needed}; "
                "ship the artefact again with neuroctl."
            )
    spec = _parse_toml(folder / SPEC)
    if not isinstance(spec.get("kind"), str):
        raise ConfigError(
            f"{folder / SPEC}: field 'kind': got {spec.get('kind')!r}, expected the "
            'family name as a string (e.g. kind = "evidence"); fix spec.toml.'
        )
    return ArtefactFolder(folder, artefact, spec, _parse_json(folder / CARD))


def _read(path: Path) -> bytes:
    with os.fdopen(_open_no_follow(path), "rb") as f:
        return f.read()


def _parse_toml(path: Path) -> dict:
    try:
        return tomllib.loads(_read(path).decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: not valid UTF-8 TOML ({err}); fix it.") from None


def _parse_json(path: Path) -> dict:
    try:
        data = json.loads(_read(path).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"{path}: not valid UTF-8 JSON ({err}); fix it.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}.")
    return data


# ------------------------------------------------------------------------ seal


def _seal_body(folder: Path, artefact: Artefact) -> dict:
    files = [
        {"path": rel, "size": size, "sha256": _sha256_file(folder / rel)}
        for rel, size in sorted(_scan(folder, artefact).items())
        if rel != SEAL
    ]
    return {
        "format": SEAL_FORMAT,
        "format_version": SEAL_VERSION,
        "artefact": artefact,
        "files": files,
    }


def _scan(folder: Path, artefact: Artefact) -> dict[str, int]:
    """Sizes of the folder's files; a symlink or special file anywhere is refused."""
    try:
        return _scan_folder(folder)
    except CheckpointError as err:
        raise CheckpointError(
            f"{artefact} folder: {str(err).removeprefix('checkpoint ')}"
        ) from None


def seal(folder: str | os.PathLike, artefact: Artefact) -> Path:
    """Write ``seal.json`` over every file now in `folder` (atomically, last)."""
    folder = Path(folder)
    body = _seal_body(folder, artefact)
    text = {**body, "seal_sha256": hashlib.sha256(_canonical(body)).hexdigest()}
    tmp = folder / f".{SEAL}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(text, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / SEAL)
    _fsync_dir(folder)
    return folder / SEAL


def _verified_files(folder: Path, artefact: Artefact) -> dict[str, int]:
    """Check the seal against the folder; the sizes of its files."""
    sizes = _scan(folder, artefact)
    where = f"{artefact} folder {folder}"
    if SEAL not in sizes:
        raise CheckpointError(
            f"{where}: no {SEAL}, so it was never sealed or its shipping did not "
            "finish; ship it again with neuroctl (or re-download it)."
        )
    try:
        stored = json.loads(_read(folder / SEAL).decode("utf-8"))
        body = {k: v for k, v in stored.items() if k != "seal_sha256"}
        intact = stored["seal_sha256"] == hashlib.sha256(_canonical(body)).hexdigest()
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{where}: {SEAL} is unreadable ({err!r}).") from None
    if not intact or body.get("format") != SEAL_FORMAT:
        raise CheckpointError(f"{where}: {SEAL} is corrupted; re-download the folder.")
    if body.get("artefact") != artefact:
        raise CheckpointError(
            f"{where}: sealed as a {body.get('artefact')!r}, expected a {artefact}; "
            f"pass a {artefact} folder."
        )
    _check_listed(folder, where, body["files"], sizes)
    return sizes


def _check_listed(folder: Path, where: str, listed: list, sizes: dict) -> None:
    expected = {entry["path"]: entry for entry in listed}
    unlisted = sorted(set(sizes) - set(expected) - {SEAL})
    if unlisted:
        raise CheckpointError(
            f"{where}: {unlisted[0]!r} was added after sealing; remove it."
        )
    for rel, entry in expected.items():
        if rel not in sizes:
            problem = "is missing"
        elif (
            sizes[rel] != entry["size"] or _sha256_file(folder / rel) != entry["sha256"]
        ):
            problem = "was changed after sealing (size or SHA-256 differs)"
        else:
            continue
        raise CheckpointError(
            f"{where}: {rel!r} {problem}; restore the original (re-download or "
            "ship it again)."
        )


# ---------------------------------------------------------------------- write


def write_artefact(
    folder: str | os.PathLike,
    artefact: Artefact,
    spec_toml: str,
    card: dict,
    tree: Any,
    metadata: dict,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a sealed artefact folder atomically (see the module docstring).

    Args:
        folder: the folder to create (or replace, with `overwrite`).
        artefact: "plant" or "policy".
        spec_toml: the spec's TOML text (with a ``kind``).
        card: the card (metrics.json), JSON-able.
        tree: the parameters (a pytree of arrays) for the checkpoint.
        metadata: stored with the checkpoint (e.g. the plant checksum).
        overwrite: replace an existing folder (else it is an error).
    """
    final = Path(folder).absolute()
    recover_interrupted(final)
    check_destination(final, artefact, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(final, "shipping")
    staging.mkdir()
    try:
        (staging / SPEC).write_text(spec_toml, encoding="utf-8")
        (staging / CARD).write_text(json.dumps(card, indent=1) + "\n", "utf-8")
        save_verified(staging / CHECKPOINT, tree, metadata)
        seal(staging, artefact)
        open_artefact(staging, artefact)  # verify before it becomes visible
        _move_into_place(staging, final)
    except BaseException:
        _discard(staging)
        raise
    return final


def check_destination(
    folder: str | os.PathLike, artefact: Artefact, overwrite: bool
) -> None:
    """Refuse a destination `write_artefact` would refuse (call it before the work).

    Raises:
        ConfigError: `folder` is a file or symlink, exists without `overwrite`,
            is not an artefact folder, or cannot be created (no permission).
    """
    final = Path(folder).absolute()
    existing = final
    while not existing.exists():
        existing = existing.parent
    if existing != final:
        try:  # a real probe: permissions alone do not tell (root, /proc, read-only)
            tempfile.TemporaryDirectory(dir=existing).cleanup()
        except OSError as err:
            raise ConfigError(
                f"--out: cannot create {final} ({err.strerror} in {existing}); "
                "choose another --out."
            ) from None
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise ConfigError(
            f"--out: {final} exists and is not a folder; choose another path."
        )
    if not final.exists() or not any(final.iterdir()):
        return
    if not overwrite:
        raise ConfigError(
            f"--out: {final} already exists; pass --overwrite to replace it (the "
            "old folder is kept until the new one is complete) or choose another "
            "--out."
        )
    if not (final / SEAL).is_file() and not (final / SPEC).is_file():
        raise ConfigError(
            f"--out: {final} is not a {artefact} folder (no {SEAL} or {SPEC}); "
            "refusing to replace it: remove it yourself or choose another --out."
        )


__all__ = [
    "ArtefactFolder",
    "check_destination",
    "open_artefact",
    "resolve",
    "seal",
    "shipped_root",
    "write_artefact",
]
