"""Compilation of a network description into the solver layout (private)."""

import itertools
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from neuroctl import units
from neuroctl.biophysics.bounds import check_bounded
from neuroctl.biophysics.calcium import CalciumDynamics
from neuroctl.biophysics.morphology import branch_points
from neuroctl.biophysics.network import (
    Block,
    Cell,
    Connection,
    Network,
    Params,
    Site,
    TreeGroup,
)
from neuroctl.biophysics.synapses import AbstractSynapse
from neuroctl.errors import ConfigError, bad_value


def compile_network(cls, cells, connections, stimuli, recordings) -> Network:
    cells = _check_cells(cells)
    tree = _local_trees(cells)
    members = {
        site: _mechanisms_at(cells[site.cell], site.branch)
        for site in tree.parent
        if isinstance(site, Site)
    }
    keys = _block_keys(list(members.values()))
    order = _node_order(tree, members, keys, cells)
    pos = {node: i for i, node in enumerate(order)}
    blocks, params = _blocks(keys, pos, members)
    n = len(order)
    parent = np.array([pos.get(tree.parent[x], -1) for x in order])
    axial_g = np.array([tree.axial_g[x] for x in order])
    area, cap = np.zeros(n), np.zeros(n)
    for x in order:
        if isinstance(x, Site):
            br = cells[x.cell].morphology.branches[x.branch]
            area[pos[x]] = units.cylinder_area(br.length / br.ncomp, br.radius)
            cap[pos[x]] = br.capacitance
    ch = [
        (b, p)
        for b, p in zip(blocks, params, strict=True)
        if b.kind is not CalciumDynamics
    ]
    ca = [
        (b, p) for b, p in zip(blocks, params, strict=True) if b.kind is CalciumDynamics
    ]
    syn_params, pre, post = _synapses(connections, pos)
    return cls(
        n_comp=len(members),
        n_nodes=n,
        area=area,
        capacitance=cap,
        parent=parent,
        axial_g=axial_g,
        levels=_levels(parent),
        channel_blocks=tuple(b for b, _ in ch),
        calcium_block=tuple(b for b, _ in ca),
        synapse_pre=pre,
        synapse_post=post,
        stimulus_nodes=_site_nodes("stimuli", stimuli, pos),
        recording_nodes=_site_nodes("recordings", recordings, pos),
        node_of={x: i for x, i in pos.items() if isinstance(x, Site)},
        default_params=Params(
            channels=tuple(p for _, p in ch),
            calcium=tuple(p for _, p in ca),
            synapses=syn_params,
        ),
        ca_defaults=CalciumDynamics(),
        xyz=_node_xyz(order, cells),
    )


def _node_xyz(order: list, cells: list[Cell]) -> np.ndarray:
    """Positions [µm] of nodes: compartment centres, branch points at branch ends."""
    geometry = [branch_points(c.morphology) for c in cells]
    first = [np.cumsum([0] + [b.ncomp for b in c.morphology.branches]) for c in cells]
    out = np.zeros((len(order), 3))
    for i, x in enumerate(order):
        if isinstance(x, Site):
            centres, _ = geometry[x.cell]
            out[i] = centres[first[x.cell][x.branch] + x.comp]
            out[i] += np.asarray(cells[x.cell].position, float)
        else:
            out[i] = geometry[x[1]][1][x[2]] + np.asarray(cells[x[1]].position, float)
    return out


@dataclass(frozen=True)
class _Tree:
    """All cells' nodes (Sites, branch points) with parents and axial conductances."""

    parent: dict  # node -> parent node or None
    axial_g: dict  # node -> conductance to parent [µS]
    children: dict  # node -> list of child nodes
    roots: list


def _local_trees(cells: list[Cell]) -> _Tree:
    parent, axial_g, children, roots = {}, {}, defaultdict(list), []
    for c, cell in enumerate(cells):
        brs = cell.morphology.branches
        half = [
            units.half_cylinder_resistance(
                b.length / b.ncomp, b.radius, b.axial_resistivity
            )
            for b in brs
        ]

        def link(node, up, g):
            parent[node], axial_g[node] = up, g
            if up is not None:
                children[up].append(node)

        for i, b in enumerate(brs):
            for k in range(b.ncomp):
                if k > 0:
                    link(Site(c, i, k), Site(c, i, k - 1), 1.0 / (2.0 * half[i]))
                elif b.parent >= 0:
                    link(Site(c, i, 0), ("bp", c, b.parent), 1.0 / half[i])
                else:
                    link(Site(c, i, 0), None, 0.0)
                    roots.append(Site(c, i, 0))
            if any(other.parent == i for other in brs):
                link(("bp", c, i), Site(c, i, b.ncomp - 1), 1.0 / half[i])
    return _Tree(parent, axial_g, children, roots)


def _node_order(tree: _Tree, members: dict, keys: list, cells: list[Cell]) -> list:
    """Nodes grouped by role, roles ordered so each mechanism spans a short slice.

    A role is one node position (branch and compartment, or branch point) of one
    distinct cell design; its nodes, one per cell of that design, are consecutive and
    in cell order. Children of one role then form one slice whose parents form
    another, which makes the Hines solve slice-based for repeated cells. Roles are
    ordered by mechanism signature, choosing the signature order that minimises the
    summed slice widths of all mechanism blocks (weighted by their gate counts).
    """
    design = [
        next(i for i in range(c + 1) if _same_design(cells[i], cells[c]))
        for c in range(len(cells))
    ]
    roles = defaultdict(list)
    for node in tree.parent:
        cell, local = (
            (node.cell, (node.branch, node.comp))
            if isinstance(node, Site)
            else (node[1], ("bp", node[2]))
        )
        roles[(design[cell], local)].append(node)
    groups = sorted(roles.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
    sigs = [frozenset(members.get(nodes[0], {})) for _, nodes in groups]
    best = _best_signature_order(sigs, [len(n) for _, n in groups], keys)
    order = []
    for i in sorted(range(len(groups)), key=lambda i: (best.index(sigs[i]), i)):
        order += sorted(groups[i][1], key=_cell_of)
    return order


def _same_design(a: Cell, b: Cell) -> bool:
    """Same morphology and mechanisms (positions may differ)."""
    return a.morphology == b.morphology and a.mechanisms == b.mechanisms


def _cell_of(node) -> int:
    return node.cell if isinstance(node, Site) else node[1]


def _best_signature_order(sigs: list, sizes: list[int], keys: list) -> list:
    distinct = sorted(set(sigs), key=lambda s: tuple(-int(k in s) for k in keys))
    if len(distinct) > 7:
        return distinct  # heuristic order: most common mechanisms first
    weight = {k: 1 + _kind(k).__dict__.get("gate_names", ()).__len__() for k in keys}

    def cost(perm):
        pos, spans = 0, {}
        for sig in perm:
            n = sum(sz for s, sz in zip(sigs, sizes, strict=True) if s == sig)
            for k in sig:
                lo, _ = spans.get(k, (pos, pos))
                spans[k] = (lo, pos + n)
            pos += n
        return sum(weight[k] * (hi - lo) for k, (lo, hi) in spans.items())

    return list(min(itertools.permutations(distinct), key=cost))


def _check_cells(cells) -> list[Cell]:
    cells = list(cells)
    if not cells:
        raise bad_value("cells", cells, "at least one Cell", "pass a list of cells.")
    for i, c in enumerate(cells):
        if not isinstance(c, Cell):
            raise bad_value(
                f"cells[{i}]", c, "a Cell", "wrap morphologies as `Cell(morphology)`."
            )
        _check_position(i, c.position)
    return cells


def _check_position(i: int, p) -> None:
    try:
        ok = np.shape(p) == (3,) and bool(np.all(np.isfinite(np.asarray(p, float))))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise bad_value(
            f"cells[{i}].position", p, "3 finite numbers [µm]", "pass (x, y, z)."
        )


def _mechanisms_at(cell: Cell, branch: int) -> dict:
    """Mechanisms on a branch, keyed by their block key (class + static fields)."""
    return {_key(m): m for m, where in cell.mechanisms if branch in where}


def _key(mechanism):
    return jax.tree_util.tree_structure(mechanism)


def _block_keys(members: list[dict]) -> list:
    counts = Counter(k for m in members for k in m)
    keys = sorted(counts, key=lambda k: (-counts[k], str(k)))
    ca = [k for k in keys if _kind(k) is CalciumDynamics]
    if len(ca) > 1:
        raise ConfigError(
            "all CalciumDynamics in a network must share static fields (temperature); "
            f"found {len(ca)} variants. Use one temperature."
        )
    return keys


def _kind(key) -> type:
    return type(jax.tree_util.tree_unflatten(key, [0.0] * key.num_leaves))


def _blocks(keys, pos, site_members) -> tuple[list[Block], list]:
    blocks, params = [], []
    for key in keys:
        sites = [s for s, m in site_members.items() if key in m]  # Sites only
        p = np.array(sorted(pos[s] for s in sites))
        lo, hi = int(p[0]), int(p[-1]) + 1
        mask = np.zeros(hi - lo, bool)
        mask[p - lo] = True
        first = site_members[sites[0]][key]
        leaves = [np.full(hi - lo, float(x)) for x in jax.tree.leaves(first)]
        for s in sites:
            for j, x in enumerate(jax.tree.leaves(site_members[s][key])):
                leaves[j][pos[s] - lo] = float(x)
        blocks.append(Block(lo, hi, mask, _kind(key)))
        params.append(
            jax.tree_util.tree_unflatten(key, [jnp.asarray(x) for x in leaves])
        )
    return blocks, params


def _levels(parent: np.ndarray) -> tuple[tuple[TreeGroup, ...], ...]:
    """Non-root nodes grouped by depth (1, 2, ...), each level cut into slice groups.

    Nodes are in breadth-first order, so every level is contiguous; a run of
    consecutive children whose parents are also consecutive becomes one slice pair.
    A level that would need more than `_MAX_RUNS` runs falls back to index arrays.
    """
    depth = np.full(len(parent), -1)
    for i in range(len(parent)):
        chain = [i]
        while depth[chain[-1]] < 0 and parent[chain[-1]] >= 0:
            chain.append(parent[chain[-1]])
        base = depth[chain[-1]] if depth[chain[-1]] >= 0 else 0
        for k, node in enumerate(reversed(chain)):
            depth[node] = base + k if depth[node] < 0 else depth[node]
    out = []
    for d in range(1, depth.max() + 1 if len(depth) else 1):
        c = np.flatnonzero(depth == d)  # sorted by node index
        p = parent[c]
        cuts = np.flatnonzero((np.diff(c) != 1) | (np.diff(p) != 1)) + 1
        runs = np.split(np.arange(len(c)), cuts)
        if len(runs) > _MAX_RUNS:
            out.append((TreeGroup(c, p),))
        else:
            out.append(
                tuple(
                    TreeGroup(
                        slice(int(c[r[0]]), int(c[r[-1]]) + 1),
                        slice(int(p[r[0]]), int(p[r[-1]]) + 1),
                    )
                    for r in runs
                )
            )
    return tuple(out)


_MAX_RUNS = 8


def _site_nodes(name: str, sites: Sequence[Site], pos: dict) -> np.ndarray:
    nodes = []
    for i, s in enumerate(sites):
        if s not in pos:
            raise bad_value(
                f"{name}[{i}]",
                s,
                "a Site(cell, branch, comp) of a compartment in the network",
                "check the indices (comp counts compartments within the branch).",
            )
        nodes.append(pos[s])
    return np.array(nodes, dtype=np.int32)


def _synapses(connections: Sequence[Connection], pos: dict):
    groups = defaultdict(list)
    for i, con in enumerate(connections):
        if not isinstance(con, Connection) or not isinstance(
            con.synapse, AbstractSynapse
        ):
            raise bad_value(
                f"connections[{i}]",
                con,
                "a Connection(synapse: AbstractSynapse, pre: Site, post: Site)",
                "build connections with `Connection(GradedSynapse(...), pre, post)`.",
            )
        groups[_key(con.synapse)].append(con)
    params, pre, post = [], [], []
    for key, cons in groups.items():
        leaves = [
            np.array([float(x) for x in col])
            for col in zip(*(jax.tree.leaves(c.synapse) for c in cons), strict=True)
        ]
        params.append(
            jax.tree_util.tree_unflatten(key, [jnp.asarray(x) for x in leaves])
        )
        pre.append(_site_nodes("connections.pre", [c.pre for c in cons], pos))
        post.append(_site_nodes("connections.post", [c.post for c in cons], pos))
    return tuple(params), tuple(pre), tuple(post)


def set_param(net: Network, params: Params, kind: type, name: str, value, sites):
    group, idx = _find_group(net, params, kind)
    module = getattr(params, group)[idx]
    valid = [f for f in _float_fields(module)]
    if name not in valid:
        raise ConfigError(
            f"name: {kind.__name__} has no parameter {name!r}; valid names: {valid}."
        )
    bound_of = getattr(kind, "param_bound", None)
    if bound_of is not None:  # the constructor's check, for concrete values
        check_bounded(
            f"{kind.__name__}.{name}",
            value,
            bound_of(name),
            f"pass a value in that range as {kind.__name__}.{name}.",
        )
    arr = getattr(module, name)
    if sites is None:
        new = jnp.broadcast_to(jnp.asarray(value, arr.dtype), arr.shape)
    else:
        new = arr.at[_positions(net, group, idx, sites)].set(value)
    module = _replace(module, name, new)
    modules = list(getattr(params, group))
    modules[idx] = module
    return _replace(params, group, tuple(modules))


def _find_group(net: Network, params: Params, kind: type):
    for group in ("channels", "calcium", "synapses"):
        for i, m in enumerate(getattr(params, group)):
            if type(m) is kind:
                return group, i
    present = sorted(
        {
            type(m).__name__
            for g in (params.channels, params.calcium, params.synapses)
            for m in g
        }
    )
    raise ConfigError(
        f"kind: no {getattr(kind, '__name__', kind)!r} in this network; "
        f"mechanisms present: {present}."
    )


def _float_fields(module) -> list[str]:
    import dataclasses

    return [f.name for f in dataclasses.fields(module) if not f.metadata.get("static")]


def _positions(net: Network, group: str, idx: int, sites) -> np.ndarray:
    if group == "synapses":
        raise ConfigError(
            "sites: synapse parameters are per connection; pass sites=None "
            "or edit the array directly."
        )
    block = (net.channel_blocks if group == "channels" else net.calcium_block)[idx]
    out = []
    for s in sites:
        p = net.node(s) - block.lo
        if not (0 <= p < len(block.mask) and block.mask[p]):
            raise bad_value(
                "sites",
                s,
                f"a compartment with {block.kind.__name__}",
                "insert the mechanism there first.",
            )
        out.append(p)
    return np.array(out)


def _replace(module, name, value):
    import equinox as eqx

    return eqx.tree_at(lambda m: getattr(m, name), module, value)
