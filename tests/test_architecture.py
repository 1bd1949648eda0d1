"""The structure the architecture document promises: imports run one way, files stay small."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "crmrules"
# the deliberate lazy cycle: a mapping file is validated with pydantic only when one is loaded
ALLOWED_CYCLES = [{"crmrules.schema", "crmrules.schema_file"}]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every crmrules module and the crmrules modules it imports, at the top or inside a function."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + [base])
                found.add(base)
                found |= {f"{base}.{alias.name}" for alias in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_but_the_deliberate_one():
    # a package's __init__ re-exporting its modules is not a cycle of the code
    graph = imports()
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    assert [c for c in cycles(graph) if c not in ALLOWED_CYCLES] == []


def test_the_sql_backend_does_not_run_the_in_memory_engines():
    graph = imports()
    in_memory = {"crmrules.backends.memory", "crmrules.backends.interpreter", "crmrules.backends.population"}
    for name, imported in graph.items():
        if name.startswith("crmrules.backends.sql"):
            assert not imported & in_memory, (name, imported & in_memory)


def test_dependencies_run_one_way():
    # grammar → ast ← compiler ← backends ← campaigns ← api/cli
    graph = imports()
    layers = {"crmrules.grammar": 0, "crmrules.compiler": 1, "crmrules.backends": 2, "crmrules.campaigns": 3,
              "crmrules.cli": 4, "crmrules.api": 4}

    def layer(name: str) -> int | None:
        return next((v for k, v in layers.items() if name == k or name.startswith(k + ".")), None)

    wrong = [(name, other) for name, imported in graph.items() for other in imported
             if layer(name) is not None and layer(other) is not None and layer(other) > layer(name)]
    assert wrong == []


def test_no_source_file_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}
