"""The engine reads as it is drawn in docs/architecture.md: no module imports one that imports it
back (not even for type checking), and no module of the engine grows past a few hundred lines."""

from __future__ import annotations

import ast
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
PACKAGES = ("engine", "check", "protocol")
MOST_ENGINE_LINES = 360


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (RUNTIME / package).rglob("*.py"):
            parts = path.relative_to(RUNTIME).with_suffix("").parts
            name = ".".join(("stepline", *parts))
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every stepline module ``path`` imports, at run time or under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & known


def test_no_module_imports_one_that_imports_it_back():
    modules = _modules()
    graph = {name: _imports(path, set(modules)) - {name} for name, path in modules.items()}
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycles.append(trail[trail.index(name) :] + [name])
            return
        if name in done:
            return
        for other in sorted(graph[name]):
            # A package's __init__ re-exporting its modules is not a cycle of theirs.
            if not name.startswith(other + "."):
                visit(other, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []


def test_no_engine_module_is_longer_than_a_few_hundred_lines():
    long = {
        str(path.relative_to(RUNTIME)): n
        for path in (RUNTIME / "engine").rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MOST_ENGINE_LINES
    }
    assert long == {}, "split these by concern (docs/architecture.md, 'Inside the engine')"
