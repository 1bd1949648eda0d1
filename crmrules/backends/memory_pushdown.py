"""What the batch engine need not fetch: customers' existence and the rows no rule can count, decided in DuckDB.

Turning DuckDB's rows into Python values costs more than evaluating them (`memory_batches`), so
the data set's DuckDB answers three questions before any row reaches Python:

- who exists at `now` (`runtime.existence`): whether each id has a customer row, and whether it
  has a visible order or event. The visibility rule is `compiler/visibility.py`'s, compiled by
  the SQL backend's expression compiler, as every SQL engine compiles it; the generated code
  then reads no rows just to see a customer;
- which rows exist at `now` (`seen`, the same rule): only those are fetched, and the generated
  code is compiled not to test them again (`memory.compile_values(rows_visible=True)`);
- which rows of a table some rule can count: when every aggregate over the table the code
  evaluates has a `where` made only of the row's columns, constants and `now` (windows
  included), a row meeting none of them is invisible to all of them, so the table's query keeps
  only rows meeting one (`did("add_to_cart", within: 30d)` reads a month of events, not years).
  The conditions are the rules' own, compiled by the same expression compiler; the generated
  code still applies each one itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from crmrules import ast
from crmrules.backends import runtime
from crmrules.backends.sql.dialects import DIALECTS
from crmrules.backends.sql.expressions import ExpressionCompiler
from crmrules.compiler.pipeline import Program
from crmrules.compiler.visibility import visible
from crmrules.context import EvaluationContext
from crmrules.errors import CrmRulesError

# what a pushed-down condition may hold: the row's own values, constants and the instant
_ROW_ONLY = (ast.Literal, ast.ListLiteral, ast.Column, ast.Now, ast.WindowStart, ast.And, ast.Or, ast.Not,
             ast.IsNull, ast.Compare, ast.In, ast.Arith, ast.Negate, ast.Call, ast.TextOp)
PUSHED = ("orders", "events")  # the tables rows are filtered of (items are read through their orders)


def compiler(program: Program, ctx: EvaluationContext) -> ExpressionCompiler:
    """The SQL expression compiler for the data set's DuckDB."""
    return ExpressionCompiler(program, DIALECTS["duckdb"](), ctx)


def seen(program: Program, ctx: EvaluationContext, table: str) -> exp.Expression:
    """A row of `table` exists at `now` (a definite boolean)."""
    condition = visible(table, program.schema)
    if condition is None:
        return exp.true()
    return exp.Coalesce(this=compiler(program, ctx).expr(condition, table), expressions=[exp.false()])


def row_filters(program: Program, roots: Iterable[ast.Expr], ctx: EvaluationContext) -> dict[str, exp.Expression]:
    """Per table of `PUSHED`, the condition a row must meet for some aggregate of `roots` (followed through
    attributes and segments) to count it; a table read without such a condition has none."""
    wheres: dict[str, list[ast.Expr | None]] = {}
    for node in _customer_aggregates(program, roots):
        wheres.setdefault(node.table, []).append(node.where)
        # an aggregate over items reads those of every visible order: the orders are all needed
        for _, table in runtime.row_path(node.table)[:-1]:
            wheres.setdefault(table, []).append(None)
    filters = {}
    for table, conditions in wheres.items():
        if table not in PUSHED or any(c is None or not _row_only(c, table) for c in conditions):
            continue
        try:
            sql = compiler(program, ctx)
            filters[table] = exp.or_(*(sql.expr(c, table) for c in dict.fromkeys(conditions)))
        except CrmRulesError:
            continue  # a condition DuckDB's SQL cannot say: the rows are fetched and the code decides alone
    return filters


def _customer_aggregates(program: Program, roots: Iterable[ast.Expr]) -> list[ast.Aggregate]:
    """Every customer-level aggregate evaluated for `roots`: in them, and in the attributes and segments
    they use (an aggregate inside another's rows is part of that one's condition)."""
    found, done = [], set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Aggregate):
            found.append(node)
            continue
        if isinstance(node, (ast.AttributeRef, ast.SegmentRef)):
            decls = program.attributes if isinstance(node, ast.AttributeRef) else program.segments
            if (type(node), node.name) not in done:
                done.add((type(node), node.name))
                stack.append(decls[node.name].body)
            continue
        stack.extend(ast.children(node))
    return found


def _row_only(condition: ast.Expr, table: str) -> bool:
    """Whether `condition` reads nothing but a row of `table` (no customer field, attribute or other rows)."""
    return all(isinstance(node, _ROW_ONLY) and (not isinstance(node, ast.Column) or node.table == table)
               for node in ast.walk(condition) if isinstance(node, ast.Expr))
