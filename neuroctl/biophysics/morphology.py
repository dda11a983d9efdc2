"""Cell morphologies: trees of cylindrical branches split into compartments.

A branch's proximal (0) end attaches to its parent's distal (1) end, as
``child.connect(parent(1), 0)`` in NEURON. Geometry follows NEURON: compartment k of
a branch with n compartments is centred at ``(k + 0.5) / n``, has length ``L / n`` and
the lateral area of a cylinder; neighbours are coupled through the two half-cylinder
resistances between their centres, and children meet their parent at a zero-area
branch-point node.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from neuroctl.errors import bad_value


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
    """

    parent: int
    ncomp: int = 1
    length: float = 10.0  # [µm]
    radius: float = 1.0  # [µm]
    axial_resistivity: float = 100.0  # [Ω·cm]
    capacitance: float = 1.0  # [µF/cm²]


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
    ) -> "Morphology":
        """Build from a parents list (-1 for the root); scalars go to every branch."""
        n = len(parents)
        cols = {
            "ncomp": ncomp,
            "length": length,
            "radius": radius,
            "axial_resistivity": axial_resistivity,
            "capacitance": capacitance,
        }
        per = {k: _per_branch(k, v, n) for k, v in cols.items()}
        branches = tuple(
            Branch(parent=int(p), **{k: per[k][i] for k in cols})
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
    if isinstance(value, (int, float)):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise bad_value(
            name,
            value,
            f"a scalar or a sequence of {n} values (one per branch)",
            "pass one value per entry of `parents`.",
        )
    return values


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


def _check_branch(i: int, b: Branch) -> None:
    if not (isinstance(b.ncomp, int) and b.ncomp >= 1):
        raise bad_value(
            f"branches[{i}].ncomp", b.ncomp, "an integer >= 1", "fix ncomp."
        )
    for name in ("length", "radius", "axial_resistivity", "capacitance"):
        value = getattr(b, name)
        if not (isinstance(value, (int, float)) and value > 0 and value < float("inf")):
            raise bad_value(
                f"branches[{i}].{name}",
                value,
                "a finite number > 0 (units: µm, µm, Ω·cm, µF/cm²)",
                f"give branch {i} a positive {name}.",
            )
    if not isinstance(b.parent, int) or b.parent < -1 or (i > 0 and b.parent >= i):
        raise bad_value(
            f"branches[{i}].parent",
            b.parent,
            f"-1 (root, only for branch 0) or an index in [0, {i - 1}]",
            "parents must come before children; a parent >= own index is a cycle "
            "or a forward reference.",
        )
