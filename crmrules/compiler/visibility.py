"""Visibility as of now, written once: which rows and which customers exist at the evaluation instant.

- A row of a table with a time column (the schema's `TableSpec.time_column`:
  `orders.created_at`, `events.at` by default) exists from that instant on:
  rows dated after `now` are invisible; undated rows are always there.
  Order items have no time of their own: they are visible through their order.
- A customer who registers after `now` does not exist yet; one who is undated,
  or known only from visible orders or events, does.

The rules are AST conditions, typed like checked rules, so each engine compiles
them with the same expression compiler it uses for rules and none re-states them.
"""

from __future__ import annotations

from crmrules import ast
from crmrules import types as t
from crmrules.schema import Schema

REGISTERED_AT = "registered_at"


def time_column(table: str, schema: Schema) -> str | None:
    """The column dating a table's rows, or None for a table whose rows are undated."""
    spec = schema.tables.get(table)
    return spec.time_column if spec is not None else None


def _not_after_now(table: str, column: str, schema: Schema) -> ast.Expr:
    spec = schema.column(table, column)
    moment = ast.Column(table=table, name=column, type=spec.type)
    return ast.Or(operands=(ast.IsNull(operand=moment, type=t.BOOL),
                            ast.Compare(op=ast.CompareOp.LE, left=moment, right=ast.Now(type=t.TIMESTAMP),
                                        type=t.BOOL)), type=t.BOOL)


def visible(table: str, schema: Schema) -> ast.Expr | None:
    """The condition a row of `table` meets when it exists at `now` (in that table's row scope);
    None when every row of the table is visible on its own."""
    column = time_column(table, schema)
    if column is None or schema.column(table, column) is None:
        return None
    return _not_after_now(table, column, schema)


def registered(schema: Schema) -> ast.Expr | None:
    """The condition a customer row meets when it is registered by `now` (or undated);
    None when the schema has no registration time."""
    if schema.column("customers", REGISTERED_AT) is None:
        return None
    return _not_after_now("customers", REGISTERED_AT, schema)
