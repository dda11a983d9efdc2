"""Shipped policies: a folder with ``spec.toml``, a verified Orbax checkpoint, a card.

A sealed artefact folder (`neuroctl.io.artefacts`), ``policies/<name>/``::

    spec.toml        kind = "evidence_gain"; the policy and architecture, the env
                     (control period, g_max), and the plant it was trained on
                     (name + checksum)
    checkpoint/      `neuroctl.io.save_verified` of the trainable parameters
                     (SHA-256 manifest; shapes and dtypes checked on load)
    metrics.json     held-out evaluation, training config, provenance
    seal.json        every file's size and SHA-256 (checked on every load)

`load_policy` rebuilds the module from the spec, restores the parameters through
`load_verified` and refuses a plant whose checksum differs from the recorded one:
a policy is only meaningful on the exact network it was trained against.
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.errors import ConfigError
from neuroctl.io.artefacts import SPEC, open_artefact, shipped_root
from neuroctl.io.checkpoints import (
    CheckpointError,
    leaf_names,
    load_verified,
    tree_checksum,
    tree_like,
)

CHECKPOINT_DIR = "checkpoint"
KIND = "evidence_gain"  # spec.toml's `kind` for these policies
POLICIES_ROOT = shipped_root("policies")


def plant_checksum(plant) -> str:
    """SHA-256 of a plant: every numeric network parameter and the task config.

    Covers the trained conductances g [µS] and input weights w [1], all channel,
    calcium and synapse parameters of the compiled network, and the task (dt,
    trial length, input scale, ...). Two plants with equal checksums simulate
    identically.
    """
    import equinox as eqx

    arrays = tree_checksum(
        {
            "g": np.asarray(plant.g),
            "w": np.asarray(plant.input_weights),
            "network": jax.tree.map(np.asarray, eqx.filter(plant.params, eqx.is_array)),
        }
    )
    task = dataclasses.asdict(plant.task)
    body = json.dumps({"arrays": arrays, "task": task}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class PolicySpec:
    """What rebuilds a shipped policy (from ``spec.toml``).

    Attributes:
        name: folder name.
        policy: kind, one of `neuroctl.policies.POLICIES`.
        hidden: hidden units (mlp, gru) [1].
        n_bins: time bins (open_loop) [1].
        g_max: largest gain [1].
        g_init: initial gain (only for rebuilding the module) [1].
        control_ms: control period the policy was trained with [ms].
        precision: parameter dtype.
        plant: name of the plant it was trained on.
        plant_checksum: `plant_checksum` of that plant.
        observe_evidence: the policy also reads the mean stimulus so far (its env
            needs ``observe_evidence=True``); absent in older specs = False.
        observe_stimulus: ... and the latest stimulus sample (``observe_stimulus``);
            absent in older specs = False.
        kind: the artefact family, "evidence_gain" (a gain policy of EvidenceStim).
    """

    name: str
    policy: str
    hidden: int
    n_bins: int
    g_max: float
    g_init: float
    control_ms: float
    precision: str
    plant: str
    plant_checksum: str
    observe_evidence: bool = False
    observe_stimulus: bool = False
    kind: str = KIND

    @property
    def n_obs(self) -> int:
        """Entries of the observation the policy reads [1]: 3, 4 or 5."""
        return 3 + int(self.observe_evidence) + int(self.observe_stimulus)


def spec_to_toml(spec: PolicySpec) -> str:
    lines = [f"# neuroctl shipped policy {spec.name!r}", f"kind = {json.dumps(KIND)}"]
    for key, value in spec.__dict__.items():
        if key != "kind":
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def _type_ok(value: Any, want: type) -> bool:
    if want is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, want)


def parse_spec(raw: dict, path: Path | str = "spec.toml") -> PolicySpec:
    """A `PolicySpec` from parsed spec.toml; errors name the file and the field."""
    fields = {f.name: f.type for f in dataclasses.fields(PolicySpec)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"{path}: unknown fields {unknown}; valid fields are {sorted(fields)}."
        )
    for name, value in raw.items():
        if not _type_ok(value, fields[name]):
            raise ConfigError(
                f"{path}: field {name!r}: got {value!r}, expected a "
                f"{fields[name].__name__}; fix spec.toml."
            )
    if raw.get("kind", KIND) != KIND:
        raise ConfigError(
            f"{path}: field 'kind': got {raw['kind']!r}, expected {KIND!r}; this "
            "loader reads gain policies of EvidenceStim."
        )
    try:
        return PolicySpec(**raw)
    except TypeError as err:  # a missing field
        raise ConfigError(f"{path}: {err}; add the field.") from None


def read_spec(folder: str | Path) -> PolicySpec:
    """The `PolicySpec` of a policy folder (name or path), verified and validated."""
    art = open_artefact(folder, "policy")
    return parse_spec(art.spec, art.folder / SPEC)


def load_policy(folder: str | Path, plant=None):
    """``(policy module, spec, metrics)`` of a shipped policy folder, verified.

    Args:
        folder: the policy folder, or the name of one under ``policies/``.
        plant: the plant to run it on; default: the plant named in the spec,
            loaded with `neuroctl.plants.load`. Its `plant_checksum` must equal
            the recorded one.

    Raises:
        ConfigError: missing/invalid spec or a plant mismatch.
        CheckpointError: a damaged or tampered checkpoint (names the file).
    """
    from neuroctl.plants import load
    from neuroctl.policies.base import merge, split
    from neuroctl.policies.gain import (
        LEGACY_LEAVES,
        control_steps,
        legacy_params,
        make_policy,
    )

    art = open_artefact(folder, "policy")
    folder, spec = art.folder, parse_spec(art.spec, art.folder / SPEC)
    if plant is None:
        plant = load(spec.plant)
    got = plant_checksum(plant)
    if got != spec.plant_checksum:
        raise ConfigError(
            f"policy {folder}: trained on plant {spec.plant!r} with checksum "
            f"{spec.plant_checksum[:16]}…, but the plant given has {got[:16]}…; "
            "load the plant it was trained on (or retrain the policy on this one)."
        )
    if spec.precision == "float64" and not jax.config.jax_enable_x64:
        raise ConfigError(
            f"policy {folder}: float64 parameters need jax_enable_x64; call "
            "jax.config.update('jax_enable_x64', True) first."
        )
    module = make_policy(  # the architecture; its parameters are loaded below
        spec.policy,
        n_steps=control_steps(plant, spec.control_ms),
        hidden=spec.hidden,
        n_bins=spec.n_bins,
        g_max=spec.g_max,
        g_init=spec.g_init,
        param_dtype=jnp.dtype(spec.precision),
        n_obs=spec.n_obs,
    )
    parts, like = split(module)
    checkpoint = folder / CHECKPOINT_DIR
    expected = {"plant_checksum": spec.plant_checksum}
    flat, _ = load_verified(checkpoint, expected_metadata=expected)
    if LEGACY_LEAVES & set(flat):  # saved before the policies were composed
        flat = legacy_params(flat, leaf_names(like))
    params = jax.tree.map(jnp.asarray, tree_like(checkpoint, flat, like))
    return merge(parts, params), spec, art.card


def policy_params(policy) -> dict[str, Any]:
    """The trainable parameters of a policy module as a pure dict."""
    from neuroctl.policies.base import split

    return split(policy)[1]


__all__ = [
    "CheckpointError",
    "PolicySpec",
    "load_policy",
    "plant_checksum",
    "policy_params",
    "read_spec",
    "spec_to_toml",
]
