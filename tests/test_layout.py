"""The package layout holds: no import cycles, effects at the edges, a pure core.

The import graph is read from the source (every ``import``, including those inside
functions), so a lazy import cannot hide a cycle.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1] / "neuroctl"


def _imports(path: Path) -> set[str]:
    """Every absolute module name `path` imports (``from a import b`` gives a, a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _package(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def _graph() -> dict[str, set[str]]:
    """First-level package → the first-level packages it imports."""
    packages = {p.name.removesuffix(".py") for p in ROOT.iterdir()}
    edges: dict[str, set[str]] = {}
    for f in ROOT.rglob("*.py"):
        src = _package(f)
        for name in _imports(f):
            parts = name.split(".")
            if parts[0] == "neuroctl" and len(parts) > 1 and parts[1] in packages:
                if parts[1] != src:
                    edges.setdefault(src, set()).add(parts[1])
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle of the graph, as a path (depth-first search)."""
    found, seen = [], set()

    def visit(node, path):
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                cycle = path[path.index(nxt) :] + [nxt]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle)
            elif len(path) < 12:
                visit(nxt, path + [nxt])

    for start in sorted(edges):
        visit(start, [start])
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_package_imports_one_that_imports_it_back():
    cycles = _cycles(_graph())
    assert not cycles, "package cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        # the solver knows nothing above it
        (
            "biophysics",
            {"envs", "plants", "policies", "train", "io", "plotting", "cli"},
        ),
        # plotting takes arrays and returns figures: it runs no simulation
        ("plotting", {"biophysics", "envs", "plants", "train", "cli"}),
        # the command line is the top: nothing imports it
        *[(p, {"cli"}) for p in ("envs", "plants", "policies", "train", "io")],
    ],
)
def test_layers(package, forbidden):
    got = _graph().get(package, set()) & forbidden
    assert not got, f"neuroctl.{package} imports neuroctl.{sorted(got)}"


def test_orbax_only_in_io():
    users = sorted(
        str(f.relative_to(ROOT))
        for f in ROOT.rglob("*.py")
        if _package(f) != "io" and any(n.startswith("orbax") for n in _imports(f))
    )
    assert not users, f"Orbax is imported outside neuroctl/io: {users}"


def test_the_solver_imports_no_gymnasium():
    code = (
        "import sys, neuroctl.biophysics; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('gymnasium', 'orbax', 'matplotlib', 'optax')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize(
    "imports", ["import neuroctl, gymnasium", "import gymnasium, neuroctl"]
)
def test_the_gymnasium_ids_register_in_either_import_order(imports):
    code = (
        f"{imports}; import neuroctl.envs.registry as r; "
        "assert tuple(sorted(neuroctl.GYMNASIUM_IDS)) == tuple(r.names()), r.names(); "
        "print(gymnasium.make('neuroctl/SpikeRate-v0').spec.id)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "neuroctl/SpikeRate-v0"
