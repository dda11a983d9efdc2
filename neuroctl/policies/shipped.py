"""Shipped policies: a folder with ``spec.toml``, a verified Orbax checkpoint, a card.

Layout of ``policies/<name>/``::

    spec.toml        the policy kind and architecture, the env (control period,
                     g_max), and the plant it was trained on (name + checksum)
    checkpoint/      `neuroctl.io.save_verified` of the trainable parameters
                     (SHA-256 manifest; shapes and dtypes checked on load)
    metrics.json     held-out evaluation, training config, provenance

`load_policy` rebuilds the module from the spec, restores the parameters through
`load_verified` and refuses a plant whose checksum differs from the recorded one:
a policy is only meaningful on the exact network it was trained against.
"""

import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.errors import ConfigError
from neuroctl.io.artefacts import shipped_root
from neuroctl.io.checkpoints import CheckpointError, load_verified, tree_checksum

CHECKPOINT_DIR = "checkpoint"
POLICIES_ROOT = shipped_root("policies")


def plant_checksum(plant) -> str:
    """SHA-256 of a plant: every numeric network parameter and the task config.

    Covers the trained conductances g [µS] and input weights w [1], all channel,
    calcium and synapse parameters of the compiled network, and the task (dt,
    trial length, input scale, ...). Two plants with equal checksums simulate
    identically.
    """
    import dataclasses

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

    def train_config(self):
        """The `PolicyTrainConfig` whose env (`make_env`) this policy runs in."""
        from neuroctl.train.policy import PolicyTrainConfig

        return PolicyTrainConfig(
            policy=self.policy,
            hidden=self.hidden,
            n_bins=self.n_bins,
            g_max=self.g_max,
            g_init=self.g_init,
            control_ms=self.control_ms,
            precision=self.precision,
            observe_evidence=self.observe_evidence,
            observe_stimulus=self.observe_stimulus,
        )


def spec_to_toml(spec: PolicySpec) -> str:
    lines = [f"# neuroctl shipped policy {spec.name!r}"]
    for key, value in spec.__dict__.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def read_spec(folder: Path) -> PolicySpec:
    """The `PolicySpec` of a shipped policy folder (its spec.toml), validated."""
    path = folder / "spec.toml"
    if not path.is_file() or path.is_symlink():
        raise ConfigError(
            f"policy folder {folder}: no spec.toml (a regular file); is this a "
            "shipped policy folder (neuroctl train-policy --ship ... writes one)?"
        )
    try:
        raw = tomllib.loads(path.read_text())
        return PolicySpec(**raw)
    except (tomllib.TOMLDecodeError, TypeError) as err:
        raise ConfigError(f"{path}: not a valid policy spec ({err}).") from None


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
    from neuroctl.train.policy import new_policy

    folder = Path(folder)
    if not folder.exists() and not folder.is_absolute() and len(folder.parts) == 1:
        folder = POLICIES_ROOT / folder
    spec = read_spec(folder)
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
    module = new_policy(spec.train_config())  # the architecture; params below
    parts, like = split(module)
    params, meta = load_verified(
        folder / CHECKPOINT_DIR,
        like=like,
        expected_metadata={"plant_checksum": spec.plant_checksum},
    )
    params = jax.tree.map(jnp.asarray, params)
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return merge(parts, params), spec, metrics


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
