"""The lowering pass: sugar becomes core nodes once, so no engine re-implements it.

- `v between lo and hi` is `v >= lo and v <= hi` (SQL's definition, unknowns included);
- `x within d` is `window_start(d) < x and x <= now`: the half-open window, its
  open lower edge a constant of the evaluation context (`WindowStart`);
- `avg(...)` is `sum(...) / count(...)` over the same rows, so the one division
  rule (scale, rounding, null on zero rows) applies to averages too.

Runs after the optimiser on checked, typed trees; the result is typed too.
"""

from __future__ import annotations

import dataclasses

from crmrules import ast
from crmrules import types as t
from crmrules.schema import Schema


def lower(expr: ast.Expr, schema: Schema) -> ast.Expr:
    """The expression with `between`, `within` and `avg` written in core nodes."""
    return ast.transform(expr, lambda node: _lower(node, schema))


def _lower(node: ast.Node, schema: Schema) -> ast.Node:
    match node:
        case ast.Between(value=value, low=low, high=high):
            return ast.And(operands=(
                ast.Compare(op=ast.CompareOp.GE, left=value, right=low, span=node.span, type=t.BOOL),
                ast.Compare(op=ast.CompareOp.LE, left=value, right=high, span=node.span, type=t.BOOL)),
                span=node.span, type=node.type)
        case ast.Within(value=value, duration=ast.Literal(value=ast.Duration() as duration)):
            start = ast.WindowStart(duration=duration, span=node.duration.span, type=t.TIMESTAMP)
            return ast.And(operands=(
                ast.Compare(op=ast.CompareOp.GT, left=value, right=start, span=node.span, type=t.BOOL),
                ast.Compare(op=ast.CompareOp.LE, left=value, right=ast.Now(span=node.span, type=t.TIMESTAMP),
                            span=node.span, type=t.BOOL)),
                span=node.span, type=node.type)
        case ast.Aggregate(func=ast.AggFunc.AVG):
            # the sum keeps the summed values' type: whole numbers stay whole until the division
            summed = node.value.type if node.value is not None else schema.column(node.table, node.column).type
            total = dataclasses.replace(node, func=ast.AggFunc.SUM, type=summed)
            count = dataclasses.replace(node, func=ast.AggFunc.COUNT, type=t.INT)
            return ast.Arith(op=ast.ArithOp.DIV, left=total, right=count, span=node.span, type=node.type)
    return node
