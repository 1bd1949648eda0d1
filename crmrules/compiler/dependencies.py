"""Order attributes and segments so each comes after what it uses; report cycles."""

from __future__ import annotations

from collections.abc import Callable

from crmrules import ast
from crmrules.errors import CrmRulesError, UnknownNameError


def dependencies(bodies: dict[str, tuple[ast.Node, ast.Expr]], errors: list[CrmRulesError],
                 used: Callable[[ast.Node, ast.Expr], set[str]] | None = None) -> tuple[list[str], set[str]]:
    """Declared names, uses after definitions, and the names on a cycle (each reported); `used(decl, body)`
    gives `used_names(body)`, perhaps kept from before (the catalogue's)."""
    uses = {name: (used(decl, body) if used is not None else used_names(body)) & bodies.keys()
            for name, (decl, body) in bodies.items()}
    order: list[str] = []
    cyclic: set[str] = set()
    state: dict[str, str] = {}  # "active" while on the DFS path, "done" after

    for root in bodies:
        if root in state:
            continue
        path = [root]
        state[root] = "active"
        stack = [iter(sorted(uses[root]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                done = path.pop()
                state[done] = "done"
                order.append(done)
            elif state.get(nxt) == "active":
                cycle = path[path.index(nxt):] + [nxt]
                cyclic.update(cycle)
                decl = bodies[cycle[0]][0]
                errors.append(UnknownNameError(
                    f"`{cycle[0]}` is defined in terms of itself: {' → '.join(cycle)}",
                    decl.span, "break the cycle by defining one of them without the others",
                    code="E0204"))
                uses[path[-1]].discard(nxt)
            elif nxt not in state:
                state[nxt] = "active"
                path.append(nxt)
                stack.append(iter(sorted(uses[nxt])))
    return order, cyclic


def used_names(body: ast.Expr) -> set[str]:
    """Every bare name and called function an expression mentions."""
    return {node.name for node in ast.walk(body) if isinstance(node, (ast.Name, ast.Call))}
