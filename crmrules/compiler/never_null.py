"""Which customer-level values can never be null, so a backend may skip their null checks."""

from __future__ import annotations

from collections.abc import Mapping

from crmrules import ast
from crmrules.compiler.defaults import TOTAL


def never_null(node: ast.Expr, attributes: Mapping[str, ast.AttributeDecl] | None = None) -> bool:
    """Whether `node` is never null: `now`, a total aggregate, or an attribute (when given) defined as one."""
    match node:
        case ast.Now() | ast.WindowStart():
            return True
        case ast.Aggregate(func=func):
            return func in TOTAL
        case ast.AttributeRef(name=name) if attributes is not None:
            return never_null(attributes[name].body, attributes)
    return False
