"""The package layout stays layered: no import cycle between coderl's packages (a fix in one then never needs
the other's), and no private name (``_x``) imported from another module (the module that owns it may change
it freely). Both read the source with ``ast``, lazy imports inside functions included."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted((SRC / "coderl").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return out


def _imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every absolute import of coderl in the tree."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("coderl"):
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("coderl.")]
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, tree in _modules().items():
        for target, _ in _imports(tree):
            if _package(target) and _package(target) != _package(name):
                graph[_package(name)].add(_package(target))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, as the path that closes it (depth-first search, each cycle reported once)."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cyc = path[path.index(nxt):] + [nxt]
                if frozenset(cyc) not in seen:
                    seen.add(frozenset(cyc))
                    found.append(cyc)
            elif len(path) < len(graph) + 1:
                visit(nxt, path + [nxt])

    for start in sorted(graph):
        visit(start, [start])
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_packages():
    assert cycles(package_graph()) == []


def test_no_private_name_is_imported_from_another_module():
    private = []
    for name, tree in _modules().items():
        for target, names in _imports(tree):
            hidden = [n for n in [*names, target.rsplit(".", 1)[-1]] if n.startswith("_") and not n.startswith("__")]
            if hidden and target != name:
                private.append(f"{name} imports {', '.join(hidden)} from {target}")
    assert private == []
