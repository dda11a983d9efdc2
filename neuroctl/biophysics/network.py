"""Networks of multi-compartment cells: the builder and its compiled, static layout.

`Network.build` turns cells, synapses, stimulus and recording sites into a layout the
solver can step quickly:

* nodes (compartments and the zero-area branch points where children meet their
  parent) are numbered breadth-first: roots grouped by channel set, then the k-th
  children of each level's nodes in parent order. Repeated cells thus give
  contiguous slices for the Hines solve and for each channel type ``[lo, hi)``,
  so rate functions fuse into one loop; nodes in a slice that lack the channel
  are masked out;
* every float field of every mechanism becomes an array parameter leaf in `Params`
  (one entry per compartment of its slice, or per synapse) that you can `grad`,
  `vmap` and freeze, while indices and shapes stay static in `Network`.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from neuroctl.biophysics.calcium import CalciumDynamics
from neuroctl.biophysics.channels import AbstractChannel
from neuroctl.biophysics.morphology import Morphology
from neuroctl.biophysics.synapses import AbstractSynapse
from neuroctl.errors import ConfigError, bad_value

Mechanism = AbstractChannel | CalciumDynamics


@dataclass(frozen=True)
class Cell:
    """A morphology with mechanisms inserted on some of its branches.

    Attributes:
        morphology: branches and their geometry.
        mechanisms: (mechanism, branch indices) pairs, added by `insert`.
        position: offset of the cell's coordinates in the network [µm] (where its
            root branch starts unless `Branch.start` says otherwise).
    """

    morphology: Morphology
    mechanisms: tuple[tuple[Mechanism, tuple[int, ...]], ...] = ()
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)  # [µm]

    def insert(
        self, mechanism: Mechanism, branches: int | Sequence[int] | None = None
    ) -> "Cell":
        """Return a new cell with `mechanism` on `branches` (all branches if None)."""
        if not isinstance(mechanism, (AbstractChannel, CalciumDynamics)):
            raise bad_value(
                "mechanism",
                mechanism,
                "an AbstractChannel or CalciumDynamics instance",
                "instantiate the channel, e.g. `cell.insert(HH())`.",
            )
        nb = len(self.morphology.branches)
        if branches is None:
            chosen = tuple(range(nb))
        else:
            chosen = (branches,) if isinstance(branches, int) else tuple(branches)
        for b in chosen:
            if not (isinstance(b, (int, np.integer)) and 0 <= b < nb):
                raise bad_value(
                    "branches", branches, f"indices in [0, {nb - 1}]", "fix the list."
                )
        for other, where in self.mechanisms:
            if type(other) is type(mechanism) and set(where) & set(chosen):
                raise ConfigError(
                    f"branches {sorted(set(where) & set(chosen))} already have a "
                    f"{type(mechanism).__name__}; insert each mechanism once per "
                    "branch (edit its parameters instead)."
                )
        return dataclasses.replace(
            self, mechanisms=self.mechanisms + ((mechanism, chosen),)
        )


@dataclass(frozen=True)
class Site:
    """A compartment: cell index, branch index, compartment index within the branch."""

    cell: int
    branch: int = 0
    comp: int = 0


@dataclass(frozen=True)
class Connection:
    """A synapse from the compartment `pre` to the compartment `post`."""

    synapse: AbstractSynapse
    pre: Site
    post: Site


@dataclass(frozen=True)
class Block:
    """Static description of one mechanism type's slice of compartments."""

    lo: int  # first compartment (in solver order)
    hi: int  # one past the last
    mask: np.ndarray  # bool, shape (hi - lo,): which compartments have it
    kind: type

    @property
    def full(self) -> bool:
        return bool(self.mask.all())


@dataclass(frozen=True)
class TreeGroup:
    """Children and their parents in one depth level: slices, or index arrays."""

    children: slice | np.ndarray
    parents: slice | np.ndarray


class Params(eqx.Module):
    """Trainable/freezable parameter leaves (arrays per compartment/synapse).

    Attributes:
        channels: one channel module per channel block, fields of shape ``(hi - lo,)``.
        calcium: zero or one `CalciumDynamics` with fields of shape ``(hi - lo,)``.
        synapses: one synapse module per synapse type, fields of shape ``(n_syn,)``.
    """

    channels: tuple[AbstractChannel, ...]
    calcium: tuple[CalciumDynamics, ...]
    synapses: tuple[AbstractSynapse, ...]


@dataclass(frozen=True, eq=False)
class Network:
    """Compiled static layout of a network (hashable by identity: a valid static arg).

    Nodes are compartments and zero-area branch points in breadth-first order (see
    module docstring); branch points have zero area and capacitance. Arrays here are
    NumPy constants. `xyz` holds each compartment's centre and each branch point's
    location (its branch's distal end), cell offsets included (`Cell.position`).
    """

    n_comp: int  # compartments (nodes with membrane)
    n_nodes: int  # compartments + branch points
    area: np.ndarray  # (n_nodes,) lateral area [µm²], 0 at branch points
    capacitance: np.ndarray  # (n_nodes,) [µF/cm²], 0 at branch points
    parent: np.ndarray  # (n_nodes,) parent node, -1 for roots
    axial_g: np.ndarray  # (n_nodes,) conductance to the parent [µS], 0 for roots
    levels: tuple[tuple[TreeGroup, ...], ...]  # non-root nodes by depth 1, 2, ...
    channel_blocks: tuple[Block, ...]
    calcium_block: tuple[Block, ...]  # zero or one
    synapse_pre: tuple[np.ndarray, ...]  # per synapse type: presynaptic nodes
    synapse_post: tuple[np.ndarray, ...]  # per synapse type: postsynaptic nodes
    stimulus_nodes: np.ndarray  # (n_stim,)
    recording_nodes: np.ndarray  # (n_rec,)
    node_of: dict = field(repr=False)  # Site -> node index
    default_params: Params = field(repr=False)
    ca_defaults: CalciumDynamics = field(repr=False)
    xyz: np.ndarray = field(repr=False)  # (n_nodes, 3) node positions [µm]

    @property
    def n_stimuli(self) -> int:
        return len(self.stimulus_nodes)

    @property
    def n_recordings(self) -> int:
        return len(self.recording_nodes)

    def node(self, site: Site) -> int:
        """Solver node index of a compartment `site`."""
        if site not in self.node_of:
            raise bad_value("site", site, "a compartment of this network", _SITE_FIX)
        return self.node_of[site]

    @classmethod
    def build(
        cls,
        cells: Sequence[Cell],
        connections: Sequence[Connection] = (),
        stimuli: Sequence[Site] = (),
        recordings: Sequence[Site] = (),
    ) -> "Network":
        """Compile cells, synapses and sites into a `Network` (see module docstring)."""
        from neuroctl.biophysics._layout import compile_network

        return compile_network(cls, cells, connections, stimuli, recordings)

    def with_param(
        self,
        params: Params,
        kind: type,
        name: str,
        value,
        sites: Sequence[Site] | None = None,
    ) -> Params:
        """Return `params` with field `name` of mechanism type `kind` set to `value`.

        Args:
            params: parameters to update (not modified).
            kind: the channel, calcium or synapse class, e.g. ``HH``.
            name: a float field of that class, e.g. ``"gnabar"``.
            value: scalar or array broadcastable to the selected entries.
            sites: compartments to change (channels/calcium only); all if None.
        """
        from neuroctl.biophysics._layout import set_param

        return set_param(self, params, kind, name, value, sites)

    def cast_params(self, params: Params, dtype) -> Params:
        """`params` with every float leaf cast to `dtype`."""
        return _cast(params, dtype)


_SITE_FIX = "check cell, branch and compartment indices against the cells you built."


def _cast(tree, dtype):
    import jax

    def cast(x):
        x = jnp.asarray(x)
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.inexact) else x

    return jax.tree.map(cast, tree)


__all__ = ["Block", "Cell", "Connection", "Network", "Params", "Site", "TreeGroup"]
