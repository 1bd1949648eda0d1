"""Push `not` inward where three-valued logic allows, and flatten nested and/or."""

from __future__ import annotations

import dataclasses

from crmrules import ast

_INVERSE = {ast.CompareOp.EQ: ast.CompareOp.NE, ast.CompareOp.NE: ast.CompareOp.EQ,
            ast.CompareOp.LT: ast.CompareOp.GE, ast.CompareOp.GE: ast.CompareOp.LT,
            ast.CompareOp.GT: ast.CompareOp.LE, ast.CompareOp.LE: ast.CompareOp.GT}


def simplify(expr: ast.Expr) -> ast.Expr:
    """The expression with double negations, negated comparisons and nested junctions simplified."""
    return ast.transform(expr, _simplify)


def _simplify(node: ast.Node) -> ast.Node:
    match node:
        # each rewrite below gives unknown exactly where the original gives unknown
        case ast.Not(operand=ast.Not(operand=inner)):
            return inner
        case ast.Not(operand=ast.Compare(op=op) as compare):
            return dataclasses.replace(compare, op=_INVERSE[op], span=node.span)
        case ast.Not(operand=ast.IsNull(negated=negated) as test):
            return dataclasses.replace(test, negated=not negated, span=node.span)
        case ast.Not(operand=ast.In(negated=negated) as test):
            return dataclasses.replace(test, negated=not negated, span=node.span)
        case ast.And(operands=ops) if any(isinstance(op, ast.And) for op in ops):
            return dataclasses.replace(node, operands=_flatten(ops, ast.And))
        case ast.Or(operands=ops) if any(isinstance(op, ast.Or) for op in ops):
            return dataclasses.replace(node, operands=_flatten(ops, ast.Or))
    return node


def _flatten(ops, kind) -> tuple[ast.Expr, ...]:
    return tuple(inner for op in ops for inner in (op.operands if isinstance(op, kind) else (op,)))
