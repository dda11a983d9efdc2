"""Cell morphologies: trees of cylindrical branches split into compartments.

A branch's proximal (0) end attaches to its parent's distal (1) end, as
``child.connect(parent(1), 0)`` in NEURON. Geometry follows NEURON: compartment k of
a branch with n compartments is centred at ``(k + 0.5) / n``, has length ``L / n`` and
the lateral area of a cylinder; neighbours are coupled through the two half-cylinder
resistances between their centres, and children meet their parent at a zero-area
branch-point node.

Each branch is a straight segment in space (for extracellular fields and potentials):
it starts at `Branch.start` [µm] (default: its parent's distal end; the root's
default is the origin) and runs `length` along `Branch.direction`, so compartment k's
centre is ``start + direction · length · (k + 0.5) / ncomp``. The defaults lay every
branch along +x from its parent's end. `branch_points` computes these points.
"""

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neuroctl.errors import bad_value

Point = tuple[float, float, float]  # [µm]


@dataclass(frozen=True)
class Branch:
    """One unbranched cylinder.

    Attributes:
        parent: index of the parent branch, -1 for the root.
        ncomp: number of compartments (NEURON's ``nseg``).
        length: branch length [µm].
        radius: radius [µm].
        axial_resistivity: [Ω·cm] (NEURON's ``Ra``).
        capacitance: specific membrane capacitance [µF/cm²].
        direction: direction from the proximal (0) to the distal (1) end [1];
            normalised, need not be a unit vector.
        start: position of the proximal end [µm] in cell coordinates; None puts it
            at the parent's distal end (the origin for the root).
    """

    parent: int
    ncomp: int = 1
    length: float = 10.0  # [µm]
    radius: float = 1.0  # [µm]
    axial_resistivity: float = 100.0  # [Ω·cm]
    capacitance: float = 1.0  # [µF/cm²]
    direction: Point = (1.0, 0.0, 0.0)  # [1]
    start: Point | None = None  # [µm]


@dataclass(frozen=True)
class Morphology:
    """A tree of branches; branch 0 is the root and parents precede their children."""

    branches: tuple[Branch, ...]

    def __post_init__(self) -> None:
        _validate(self.branches)

    @property
    def num_compartments(self) -> int:
        return sum(b.ncomp for b in self.branches)

    @classmethod
    def from_parents(
        cls,
        parents: Sequence[int],
        ncomp: int | Sequence[int] = 1,
        length: float | Sequence[float] = 10.0,  # [µm]
        radius: float | Sequence[float] = 1.0,  # [µm]
        axial_resistivity: float | Sequence[float] = 100.0,  # [Ω·cm]
        capacitance: float | Sequence[float] = 1.0,  # [µF/cm²]
        directions: Sequence[Point] | None = None,  # [1], one per branch
        starts: Sequence[Point | None] | None = None,  # [µm], one per branch
    ) -> "Morphology":
        """Build from a parents list (-1 for the root); scalars go to every branch.

        `directions` and `starts` (see `Branch`) take one entry per branch; None
        keeps the defaults (along +x, starting at the parent's distal end).
        """
        n = len(parents)
        cols = {
            "ncomp": ncomp,
            "length": length,
            "radius": radius,
            "axial_resistivity": axial_resistivity,
            "capacitance": capacitance,
        }
        per = {k: _per_branch(k, v, n) for k, v in cols.items()}
        per["direction"] = _per_branch_points(
            "directions", directions, n, (1.0, 0.0, 0.0)
        )
        per["start"] = _per_branch_points("starts", starts, n, None)
        branches = tuple(
            Branch(parent=int(p), **{k: per[k][i] for k in per})
            for i, p in enumerate(parents)
        )
        return cls(branches)

    @classmethod
    def single_compartment(
        cls,
        length: float = 10.0,  # [µm]
        radius: float = 1.0,  # [µm]
        capacitance: float = 1.0,  # [µF/cm²]
    ) -> "Morphology":
        """One cylinder, one compartment (a point neuron with NEURON's geometry)."""
        return cls((Branch(-1, 1, length, radius, 100.0, capacitance),))

    @classmethod
    def ball_and_stick(
        cls,
        soma_length: float = 20.0,  # [µm]
        soma_radius: float = 10.0,  # [µm]
        dend_length: float = 200.0,  # [µm]
        dend_radius: float = 1.0,  # [µm]
        dend_ncomp: int = 10,
        axial_resistivity: float = 150.0,  # [Ω·cm]
        capacitance: float = 1.0,  # [µF/cm²]
    ) -> "Morphology":
        """A one-compartment soma (branch 0) with one dendrite (branch 1)."""
        return cls.from_parents(
            [-1, 0],
            ncomp=[1, dend_ncomp],
            length=[soma_length, dend_length],
            radius=[soma_radius, dend_radius],
            axial_resistivity=axial_resistivity,
            capacitance=capacitance,
        )


def _per_branch(name: str, value, n: int) -> list:
    if isinstance(value, numbers.Number) or np.ndim(value) == 0:
        return [_plain(value)] * n
    values = [_plain(v) for v in value]
    if len(values) != n:
        raise bad_value(
            name,
            value,
            f"a scalar or a sequence of {n} values (one per branch)",
            "pass one value per entry of `parents`.",
        )
    return values


def _per_branch_points(name: str, value, n: int, default) -> list:
    if value is None:
        return [default] * n
    values = list(value)
    if len(values) != n:
        raise bad_value(
            name, value, f"a sequence of {n} points (one per branch)", "pass one each."
        )
    return [None if v is None else tuple(float(x) for x in v) for v in values]


def branch_points(morphology: Morphology) -> tuple[np.ndarray, np.ndarray]:
    """Compartment centres and distal branch ends in cell coordinates.

    Args:
        morphology: the cell's morphology.

    Returns:
        ``(centres, ends)``: per branch, an array ``(ncomp, 3)`` of compartment
        centres [µm], stacked over branches in branch order, and an array
        ``(n_branches, 3)`` of distal end points [µm] (where children attach).
    """
    centres, ends = [], []
    for b in morphology.branches:
        if b.start is not None:
            start = np.asarray(b.start, float)
        elif b.parent >= 0:
            start = ends[b.parent]
        else:
            start = np.zeros(3)
        d = np.asarray(b.direction, float)
        d = d / np.linalg.norm(d)  # [1] unit direction
        frac = (np.arange(b.ncomp) + 0.5) / b.ncomp  # NEURON's segment centres
        centres.append(start + np.outer(frac * b.length, d))
        ends.append(start + b.length * d)
    return np.concatenate(centres), np.stack(ends)


def _validate(branches: tuple[Branch, ...]) -> None:
    if not branches:
        raise bad_value("branches", branches, "at least one branch", "add a root.")
    for i, b in enumerate(branches):
        _check_branch(i, b)
    roots = [i for i, b in enumerate(branches) if b.parent == -1]
    if roots != [0]:
        raise bad_value(
            "parents",
            [b.parent for b in branches],
            "exactly one root (-1), at index 0, and every parent index lower than "
            "its child's (which also rules out cycles)",
            "reorder branches so each parent comes before its children.",
        )


def _plain(x):
    """NumPy scalars as Python numbers (ints stay ints); anything else unchanged."""
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x


# plausible ranges: a compartment from 1 nm to 10 cm, Ra and cm within 1e±3 of usual
_RANGES = {
    "length": (1e-3, 1e5, "µm"),
    "radius": (1e-3, 1e5, "µm"),
    "axial_resistivity": (1e-3, 1e7, "Ω·cm"),
    "capacitance": (1e-3, 1e3, "µF/cm²"),
}


def _check_branch(i: int, b: Branch) -> None:
    if not (isinstance(b.ncomp, numbers.Integral) and b.ncomp >= 1):
        raise bad_value(
            f"branches[{i}].ncomp", b.ncomp, "an integer >= 1", "fix ncomp."
        )
    for name, (low, high, unit) in _RANGES.items():
        value = getattr(b, name)
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (ok and low <= value <= high):
            raise bad_value(
                f"branches[{i}].{name}",
                value,
                f"a number in [{low:g}, {high:g}] {unit}",
                f"give branch {i} a plausible {name} [{unit}].",
            )
    _check_point(f"branches[{i}].direction", b.direction, nonzero=True)
    if b.start is not None:
        _check_point(f"branches[{i}].start", b.start, nonzero=False)
    parent_ok = isinstance(b.parent, numbers.Integral) and b.parent >= -1
    if not parent_ok or (i > 0 and b.parent >= i):
        raise bad_value(
            f"branches[{i}].parent",
            b.parent,
            f"-1 (root, only for branch 0) or an index in [0, {i - 1}]",
            "parents must come before children; a parent >= own index is a cycle "
            "or a forward reference.",
        )


def _check_point(name: str, p, nonzero: bool) -> None:
    ok = (
        isinstance(p, (tuple, list))
        and len(p) == 3
        and all(isinstance(x, (int, float)) and math.isfinite(x) for x in p)
    )
    if not ok or (nonzero and not any(p)):
        raise bad_value(
            name,
            p,
            "a point (x, y, z) of 3 finite numbers [µm]"
            + (", not all zero" if nonzero else ""),
            "pass a 3-tuple, e.g. (1.0, 0.0, 0.0).",
        )
