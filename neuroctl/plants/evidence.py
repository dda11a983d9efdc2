"""The frozen evidence-integration plant: spec (TOML) + verified trained parameters.

A shipped plant is a sealed artefact folder (`neuroctl.io.artefacts`) in
``envs/<name>/``::

    spec.toml     kind = "evidence", [network] EvidenceNetConfig, [task] TaskConfig,
                  [params] shapes/dtype
    checkpoint/   verified Orbax checkpoint (neuroctl.io.checkpoints) of
                  {"g": (n_synapses,) [µS], "w": (n_inputs,) [1]}
    metrics.json  card: held-out accuracy, training config, provenance
    seal.json     every file's size and SHA-256 (checked on every load)

`load` rebuilds the exact network and task from the spec, restores the trained
conductances and input weights, and checks their shapes and dtypes against the spec.
With JAX's default config (x64 off) a float64 plant loads as float32 (its
parameters rounded; simulate it in float32).
The plant is an immutable `eqx.Module`; simulate single trials and `jax.vmap` them.
"""

import dataclasses
import typing
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.biophysics import Network, Params, init_state, simulate
from neuroctl.errors import ConfigError, bad_value
from neuroctl.io.artefacts import SPEC, open_artefact, shipped_root
from neuroctl.plants import evidence_task as et
from neuroctl.plants.evidence_net import EvidenceNetConfig, build_network
from neuroctl.typing import Array, ArrayLike

#: Shipped plants live here (checkout or wheel); `load(root=...)` overrides it.
ENVS_ROOT = shipped_root("envs")
CHECKPOINT_DIR = "checkpoint"  # inside a plant folder


@dataclasses.dataclass(frozen=True)
class ParamsSpec:
    """Shapes and dtype of the shipped trained parameters."""

    n_synapses: int = 109  # trained conductances g [µS] (recurrent + readout)
    n_inputs: int = 20  # trained input weights w [1] (one per recurrent cell)
    dtype: str = "float64"  # float dtype of g and w (and of the training solver)


@dataclasses.dataclass(frozen=True)
class PlantSpec:
    """Everything `spec.toml` holds: name, network, task and parameter layout."""

    name: str
    network: EvidenceNetConfig
    task: et.TaskConfig
    params: ParamsSpec
    description: str = ""


KIND = "evidence"  # spec.toml's `kind` for this plant family
_SECTIONS = {"network": EvidenceNetConfig, "task": et.TaskConfig, "params": ParamsSpec}
_TOP = {"kind", "name", "description", *_SECTIONS}


def _section(name: str, cls: type, table: Any) -> Any:
    if not isinstance(table, dict):
        raise bad_value(
            name, table, "a TOML table", f"write [{name}] with key = value lines."
        )
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise ConfigError(f"[{name}]: unknown keys {unknown}; valid keys are {valid}.")
    hints = typing.get_type_hints(cls)
    values = {
        k: tuple(v) if isinstance(v, list) and "tuple" in str(hints[k]) else v
        for k, v in table.items()
    }
    return cls(**values)


def spec_from_dict(d: dict) -> PlantSpec:
    """Validate a parsed ``spec.toml``; unknown keys are an error listing valid ones."""
    if d.get("kind", KIND) != KIND:
        raise bad_value("kind", d.get("kind"), repr(KIND), "load it with its family.")
    unknown = sorted(set(d) - _TOP)
    if unknown:
        raise ConfigError(
            f"spec: unknown top-level keys {unknown}; valid keys are {sorted(_TOP)}."
        )
    if not isinstance(d.get("name"), str):
        raise bad_value(
            "name", d.get("name"), "a string", 'e.g. name = "evidence_integration".'
        )
    parts = {k: _section(k, cls, d.get(k, {})) for k, cls in _SECTIONS.items()}
    return PlantSpec(name=d["name"], description=str(d.get("description", "")), **parts)


def spec_to_toml(spec: PlantSpec) -> str:
    """TOML text that `spec_from_dict(tomllib.loads(...))` turns back into `spec`."""
    lines = [
        f"kind = {_toml(KIND)}",
        f"name = {_toml(spec.name)}",
        f"description = {_toml(spec.description)}",
    ]
    for section in _SECTIONS:
        lines += ["", f"[{section}]"]
        obj = getattr(spec, section)
        lines += [
            f"{f.name} = {_toml(getattr(obj, f.name))}" for f in dataclasses.fields(obj)
        ]
    return "\n".join(lines) + "\n"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


class EvidencePlant(eqx.Module):
    """The trained evidence-integration RNN, frozen (Jaxley paper, fig. 5).

    Attributes:
        network: compiled structure (static).
        params: network parameters with the trained synaptic conductances.
        g: trained conductances, ``(n_synapses,)`` [µS].
        input_weights: trained input weights, ``(n_cells,)`` [1].
        task: task configuration (static).
        name: plant name (static).
    """

    network: Network = eqx.field(static=True)
    params: Params
    g: Array
    input_weights: Array
    task: et.TaskConfig = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def sample_trial(self, key: Array, evidence: ArrayLike | None = None) -> et.Trial:
        """One trial of the plant's task (see `evidence_task.sample_trial`)."""
        return et.sample_trial(key, self.task, evidence)

    def currents(self, stimulus: ArrayLike) -> Array:
        """Basal currents [nA] ``(n_steps, n_cells)`` for a stimulus ``(n_steps,)``."""
        return et.stimulus_currents(stimulus, self.input_weights, self.task)

    def simulate(self, stimulus: ArrayLike) -> Array:
        """Recordings [mV] ``(n_steps, 22)``: readout0, readout1, 20 somata."""
        state = init_state(self.network, self.params, self.task.v_init, self.g.dtype)
        _, rec = simulate(
            self.network, self.params, state, self.currents(stimulus), self.task.dt
        )
        return rec

    def logits(self, stimulus: ArrayLike) -> Array:
        """Readout means [mV] over the response window, ``(2,)``; decision = argmax."""
        return et.readout_logits(self.simulate(stimulus), self.task)


def load(
    name: str | Path = "evidence_integration", root: str | Path | None = None
) -> EvidencePlant:
    """Load an evidence plant folder by name (under `root`) or by path.

    The folder is verified whole first; `neuroctl.plants.load` does the same for
    a plant of any family.
    """
    art = open_artefact(name, "plant", root)
    return from_artefact(art)


def from_artefact(art) -> EvidencePlant:
    """The plant of a verified artefact folder (`neuroctl.io.artefacts`)."""
    spec = parse_spec(art.spec, art.folder / SPEC)
    return plant_from(spec, *_load_arrays(art.checkpoint, spec))


def parse_spec(raw: dict, path: Path | str = SPEC) -> PlantSpec:
    """`spec_from_dict` with every error naming the spec file."""
    try:
        return spec_from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except (TypeError, ValueError) as err:  # a field of the wrong type
        raise ConfigError(f"{path}: {err}; fix the field named.") from None


def _load_arrays(directory: Path, spec: PlantSpec) -> tuple[Array, Array]:
    from neuroctl.io.checkpoints import load_verified

    dtype = _dtype(spec.params.dtype)
    like = {
        "g": np.zeros(spec.params.n_synapses, dtype),
        "w": np.zeros(spec.params.n_inputs, dtype),
    }
    tree, _ = load_verified(directory, like=like)
    check_arrays(tree, spec)
    return _as_jax(tree["g"]), _as_jax(tree["w"])


def _as_jax(x: np.ndarray) -> Array:
    """A float64 array as float32 when JAX's x64 is off (a float32 plant)."""
    if x.dtype == np.float64 and not jax.config.jax_enable_x64:
        x = x.astype(np.float32)
    return jnp.asarray(x)


def _dtype(name: str) -> Any:
    """The stored dtype; a float64 plant loads as float32 while x64 is off."""
    if name not in ("float32", "float64"):
        raise bad_value(
            "params.dtype", name, "'float32' or 'float64'", "fix spec.toml."
        )
    return np.dtype(name)


def check_arrays(tree: dict, spec: PlantSpec) -> None:
    """Raise `ConfigError` unless ``tree`` = {"g", "w"} with the spec's shapes/dtype."""
    want = {"g": (spec.params.n_synapses,), "w": (spec.params.n_inputs,)}
    if set(tree) != set(want):
        raise ConfigError(
            f"checkpoint: got keys {sorted(tree)}, expected {sorted(want)}."
        )
    for k, shape in want.items():
        a = tree[k]
        if tuple(np.shape(a)) != shape or str(np.asarray(a).dtype) != spec.params.dtype:
            raise ConfigError(
                f"checkpoint[{k!r}]: got {np.asarray(a).dtype}{tuple(np.shape(a))}, "
                f"expected {spec.params.dtype}{shape} per spec.toml."
            )


def plant_from(spec: PlantSpec, g: ArrayLike, w: ArrayLike) -> EvidencePlant:
    """Build the plant from a spec and physical parameters g [µS], w [1]."""
    net = build_network(spec.network)
    n_syn = net.default_params.synapses[0].g.shape[0]
    if n_syn != spec.params.n_synapses or spec.network.n_cells != spec.params.n_inputs:
        raise ConfigError(
            f"spec: [network] builds {n_syn} synapses and {spec.network.n_cells} "
            f"inputs, but [params] says {spec.params.n_synapses} and "
            f"{spec.params.n_inputs}; fix spec.toml."
        )
    g, w = jnp.asarray(g), jnp.asarray(w)
    params = et.apply_to_params(net.default_params, g)
    return EvidencePlant(net, params, g, w, spec.task, spec.name)
