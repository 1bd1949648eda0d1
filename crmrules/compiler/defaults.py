"""What an aggregate is over no rows: the one table every engine reads.

`count` and `sum` are 0, `any` is false, `none` is true, `distinct` is the empty
list; `min`, `max`, `avg`, `top`, `first` and `last` are null (there is no value to give). SQL
engines return null for an empty group, so the SQL backend wraps a total
aggregate in `COALESCE(..., empty_value(...))`; the in-memory engines start from it.
"""

from __future__ import annotations

from decimal import Decimal

from crmrules import ast
from crmrules import types as t

# aggregates that have a value over no rows, so never null
TOTAL = frozenset({ast.AggFunc.COUNT, ast.AggFunc.SUM, ast.AggFunc.ANY, ast.AggFunc.NONE, ast.AggFunc.DISTINCT})


def empty_value(func: ast.AggFunc, value_type: t.Type | None = None):
    """The value of an aggregate `func` of result type `value_type` over no rows."""
    match func:
        case ast.AggFunc.COUNT:
            return 0
        case ast.AggFunc.SUM:
            return Decimal(0) if value_type == t.DECIMAL else 0
        case ast.AggFunc.ANY:
            return False
        case ast.AggFunc.NONE:
            return True
        case ast.AggFunc.DISTINCT:
            return []
    return None
