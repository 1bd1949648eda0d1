"""What a ranking (`ntile`, `score`) may sort customers by instead of the ranked value itself.

Ranking only needs the order of the values, so any key that is a strictly monotone function of the value
ranks customers exactly alike: equal keys for equal values (ties stay ties), null keys for null values, and
the same order, or the reverse one. Sorting a cheaper key saves work on every engine that sorts: RFM's
`score(5, -days_since(last_order_at))` sorts the dates of the latest orders, oldest first reversed, instead
of a negated day count computed for every customer.
"""

from __future__ import annotations

from collections.abc import Mapping

from crmrules import ast
from crmrules import types as t


def ranking_key(value: ast.Expr, attributes: Mapping[str, ast.AttributeDecl]) -> tuple[ast.Expr, bool]:
    """(key, reversed): a key ordering customers as `value` does (`reversed`: highest key first); the value
    itself when nothing cheaper is known. Follows attributes, unwraps negation and `days_since`."""
    key, reverse = _stripped(value, attributes)
    return (key, reverse) if key is not None else (value, False)


def _stripped(node: ast.Expr, attributes: Mapping[str, ast.AttributeDecl]) -> tuple[ast.Expr | None, bool]:
    """The key below `node` and whether it runs the other way; None when there is nothing to strip."""
    match node:
        case ast.Negate(operand=operand) if operand.type in (t.INT, t.DECIMAL):
            # -a < -b exactly when a > b; -a is null exactly when a is
            key, reverse = _stripped(operand, attributes)
            return (key, not reverse) if key is not None else (operand, True)
        case ast.Call(name="days_since", args=(moment,)) if moment.type in (t.DATE, t.TIMESTAMP):
            # whole days from the date of `moment` to today: fewer days for a later date, null for null
            if moment.type == t.DATE:
                return moment, True
            return ast.Call(name="date", args=(moment,), span=node.span, type=t.DATE), True
        case ast.AttributeRef(name=name) if name in attributes:
            return _stripped(attributes[name].body, attributes)
    return None, False
