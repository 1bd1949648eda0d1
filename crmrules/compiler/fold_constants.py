"""Evaluate operators whose operands are all literals, under three-valued logic."""

from __future__ import annotations

import operator
from decimal import Decimal

from crmrules import ast
from crmrules import types as t
from crmrules import values

_COMPARE = {ast.CompareOp.EQ: operator.eq, ast.CompareOp.NE: operator.ne, ast.CompareOp.LT: operator.lt,
            ast.CompareOp.LE: operator.le, ast.CompareOp.GT: operator.gt, ast.CompareOp.GE: operator.ge}
_ARITH = {ast.ArithOp.ADD: operator.add, ast.ArithOp.SUB: operator.sub, ast.ArithOp.MUL: operator.mul,
          ast.ArithOp.DIV: values.divide, ast.ArithOp.MOD: values.modulo}


def fold_constants(expr: ast.Expr, deep: bool = True) -> ast.Expr:
    """The expression with constant sub-expressions replaced by their value; with `deep=False` only the node
    itself is folded, for a caller whose bottom-up walk has folded its children already."""
    return ast.transform(expr, _fold) if deep else _fold(expr)


def _literal(node: ast.Expr, value) -> ast.Literal:
    return ast.Literal(value=value, span=node.span, type=node.type)


def _is_number(node: ast.Expr) -> bool:
    return isinstance(node, ast.Literal) and type(node.value) in (int, Decimal)


def _fold(node: ast.Node) -> ast.Node:
    match node:
        case ast.Not(operand=ast.Literal(value=value)):
            return _literal(node, None if value is None else not value)
        case ast.And(operands=ops) | ast.Or(operands=ops):
            return _fold_junction(node, ops, isinstance(node, ast.And))
        case ast.IsNull(operand=ast.Literal(value=value), negated=negated):
            return _literal(node, (value is None) != negated)
        case ast.Compare(op=op, left=ast.Literal(value=a), right=ast.Literal(value=b)) \
                if type(a) is type(b) or (_is_number(node.left) and _is_number(node.right)):
            return _literal(node, None if a is None or b is None else _COMPARE[op](a, b))
        case ast.Arith(op=op, left=left, right=right) if _is_number(left) and _is_number(right):
            value = _ARITH[op](left.value, right.value)
            if node.type == t.DECIMAL and isinstance(value, int):
                value = Decimal(value)
            return _literal(node, value)
        case ast.Negate(operand=operand) if _is_number(operand):
            return _literal(node, -operand.value)
    return node


def _fold_junction(node: ast.Expr, ops: tuple[ast.Expr, ...], is_and: bool) -> ast.Expr:
    # `false` decides an `and` (and `true` an `or`) whatever the other operands are
    decisive, neutral = (False, True) if is_and else (True, False)
    kept = []
    for op in ops:
        if isinstance(op, ast.Literal) and op.value is decisive:
            return _literal(node, decisive)
        if not (isinstance(op, ast.Literal) and op.value is neutral):
            kept.append(op)
    if not kept:
        return _literal(node, neutral)
    if len(kept) == 1:
        return kept[0]
    if len(kept) == len(ops):
        return node
    return ast.replace(node, operands=tuple(kept))
