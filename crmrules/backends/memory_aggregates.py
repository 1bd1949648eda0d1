"""The generated code of an aggregate over a customer's (or an order's) visible rows.

Part of the generated-code engine (`backends/memory.py`): `aggregate_code` writes a
Python expression computing one aggregate with the helpers of `backends/runtime.py`,
which the interpreter calls too; `AGGREGATE_RUNTIME` are the names that code reads.
"""

from __future__ import annotations

from crmrules import ast
from crmrules.backends import runtime
from crmrules.compiler.defaults import empty_value

AGGREGATE_RUNTIME = {"_sum": runtime.agg_sum, "_top": runtime.agg_top, "_min": runtime.agg_min,
                     "_max": runtime.agg_max, "_distinct": runtime.agg_distinct, "_first": runtime.agg_first}


def aggregate_code(generator, node: ast.Aggregate, row: str) -> str:
    """Code for `node` over the visible rows of its table in scope of the row variable `row`, written by
    `generator` (the memory engine's `_Generator`: its row sources, column reads and conditions)."""
    rows = generator.rows(node.table, row)
    var = f"_r{next(generator.counter)}"
    generator.row_tables[var] = node.table
    condition = generator.true(node.where, var) if node.where is not None else None
    if node.value is not None:
        value = generator.value(node.value, var)
    elif node.column is not None:
        value = generator.column(ast.Column(table=node.table, name=node.column), var)
    else:
        value = None
    if node.func in (ast.AggFunc.ANY, ast.AggFunc.NONE):
        found = f"any({condition} for {var} in {rows})" if condition else f"bool({rows})"
        return found if node.func == ast.AggFunc.ANY else f"(not {found})"
    if node.func == ast.AggFunc.COUNT:
        tests = [f"{value} is not None"] if value else []
        tests += [condition] if condition else []
        if not tests:
            return f"len({rows})"
        return f"len([1 for {var} in {rows} if {' and '.join(tests)}])"  # a list is quicker than a generator
    only = f" if {condition}" if condition else ""
    if node.func == ast.AggFunc.TOP:
        weight = generator.value(node.by, var) if node.by is not None else "1"
        return f"_top([({value}, {weight}) for {var} in {rows}{only}])"
    if node.func in (ast.AggFunc.FIRST, ast.AggFunc.LAST):
        # each row with what orders it: (time, id, value)
        order = [generator.column(ast.Column(table=node.table, name=name), var) if name else "None"
                 for name in runtime.first_last_columns(generator.schema, node.table)]
        latest = node.func == ast.AggFunc.LAST
        return f"_first([({', '.join(order)}, {value}) for {var} in {rows}{only}], {latest})"
    values_expr = f"[{value} for {var} in {rows}{only}]"
    match node.func:
        case ast.AggFunc.SUM:
            return f"_sum({values_expr}, {generator.constant(empty_value(node.func, node.type))})"
        case ast.AggFunc.MIN:
            return f"_min({values_expr})"
        case ast.AggFunc.MAX:
            return f"_max({values_expr})"
    return f"_distinct({values_expr})"
