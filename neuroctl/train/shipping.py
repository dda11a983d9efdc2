"""Ship a `neuroctl train` run as a sealed policy folder, and load one back.

A network policy folder (`neuroctl.io.artefacts`, ``kind = "network"``)::

    spec.toml      kind, [spec] the run's `RunSpec` (env id, env options and
                   params, policy kind and size, precision, training config),
                   [io] its `PolicyIO` (observation centring/scaling, action box)
    checkpoint/    the run's best-validated parameters (verified)
    metrics.json   the run's held-out comparison with the best constant, and
                   provenance
    seal.json      every file's size and SHA-256

`load_network_policy` rebuilds the env and the policy from the spec alone, so a
folder runs wherever neuroctl is installed; the env is rebuilt by its registered
id, and its checksum (of the default params) must equal the recorded one.
"""

import hashlib
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.errors import ConfigError
from neuroctl.io.artefacts import SPEC, open_artefact, write_artefact
from neuroctl.io.checkpoints import load_verified, tree_checksum
from neuroctl.io.runs import read_json, read_record
from neuroctl.io.toml import dumps
from neuroctl.policies.base import Parts

KIND = "network"  # spec.toml's `kind` of these policy folders


class NetworkPolicy(NamedTuple):
    """A loaded network policy: its spec, env, params and split policy."""

    spec: Any  # `neuroctl.train.runs.RunSpec`
    env: Any
    env_params: Any
    parts: Parts
    params: dict
    card: dict


def env_checksum(env_params) -> str:
    """SHA-256 of an env's params (every leaf: plant, actuator, task, costs)."""
    import equinox as eqx

    leaves = jax.tree.map(np.asarray, eqx.filter(env_params, eqx.is_array))
    return hashlib.sha256(tree_checksum(leaves).encode()).hexdigest()


def ship_run(run: Path, out: Path, overwrite: bool = False) -> Path:
    """Write the best-validated params of `neuroctl train` run `run` to `out`.

    The card is the run's metrics.json (its held-out comparison); ship after the
    run finished (`neuroctl train` writes metrics.json last).
    """
    from neuroctl.train.runs import load_run

    record = read_record(run)
    card = read_json(Path(run) / "metrics.json")
    if card is None:
        raise ConfigError(
            f"--run: {run}/metrics.json is missing or damaged; finish the run "
            "(neuroctl train --resume ...) before shipping it."
        )
    spec, env, env_params, parts, params = load_run(run)
    body = {
        "kind": KIND,
        "name": Path(out).name,
        "env_checksum": env_checksum(env.prepare_params(env_params)),
        "spec": record["spec"],
        "io": record["io"],
    }
    meta = {"env": spec.env, "env_checksum": body["env_checksum"]}
    card = dict(card, shipped_from=str(Path(run).absolute()))
    return write_artefact(
        out, "policy", dumps(body), card, params, meta, overwrite=overwrite
    )


def is_network_policy(folder: Path) -> bool:
    """Whether `folder` holds a network policy (spec kind "network")."""
    import tomllib

    try:
        return tomllib.loads((Path(folder) / SPEC).read_text()).get("kind") == KIND
    except (OSError, ValueError):
        return False


def load_network_policy(folder: str | Path) -> NetworkPolicy:
    """The verified network policy in `folder`, its env rebuilt from the spec.

    Raises:
        ConfigError: another kind, an invalid spec (naming spec.toml), or an env
            whose params differ from those the policy was trained on.
        CheckpointError: a damaged, changed or unsealed folder.
    """
    from neuroctl.policies.base import split
    from neuroctl.train.runs import RunSpec, build_env, io_from_record, new_policy

    art = open_artefact(folder, "policy")
    path = art.folder / SPEC
    if art.spec.get("kind") != KIND:
        raise ConfigError(
            f"{path}: field 'kind': got {art.spec.get('kind')!r}, expected {KIND!r}; "
            "load an evidence-gain policy with neuroctl.policies.load_policy."
        )
    try:
        spec = RunSpec.from_record(art.spec["spec"])
        io = io_from_record(art.spec["io"])
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{path}: {err}; the spec is incomplete.") from None
    env, env_params = build_env(spec)  # (sets the precision: x64 for float64)
    got = env_checksum(env.prepare_params(env_params))
    if got != art.spec.get("env_checksum"):
        raise ConfigError(
            f"{path}: the env {spec.env!r} built here differs from the one the "
            f"policy was trained on (params checksum {got[:12]}… vs "
            f"{str(art.spec.get('env_checksum'))[:12]}…); use the neuroctl "
            "version and plant it was trained with."
        )
    parts, like = split(new_policy(spec, io, env))
    params, _ = load_verified(
        art.checkpoint, like=like, expected_metadata={"env_checksum": got}
    )
    params = jax.tree.map(jnp.asarray, params)
    return NetworkPolicy(spec, env, env_params, parts, params, art.card)


__all__ = [
    "KIND",
    "NetworkPolicy",
    "env_checksum",
    "is_network_policy",
    "load_network_policy",
    "ship_run",
]
