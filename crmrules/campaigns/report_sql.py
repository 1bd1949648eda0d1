"""The campaign report's query: the outbox's messages joined with the data's paid orders, in the data's engine.

The messages (never the orders) are copied into a temporary table of the data's own connection
(`MESSAGES`: one row per message with its group, day and conversion window, times as text in the
fixed-width form `YYYY-MM-DD HH:MM:SS.ffffff`), and one query counts, per campaign, group and day, the
messages, those that converted and the revenue of their converting orders:

    WITH vo AS (the orders visible as of the report's instant, `compiler.visibility`),
         per_message AS (SELECT m.campaign, m.grp, m.day, m.id, COUNT(o.id), SUM(o.total)
                         FROM messages m LEFT JOIN vo o
                           ON o.customer_id = m.customer_id AND <paid> AND <o.created_at within the window>
                         GROUP BY ...)
    SELECT campaign, grp, day, COUNT(*), SUM(CASE WHEN orders > 0 THEN 1 ELSE 0 END), SUM(revenue)
    FROM per_message GROUP BY campaign, grp, day

Nothing is restated here: "paid" and the revenue are the catalogue's `total_spent` (its row condition and
its summed column), the window is the language's `within` as lowered by `compiler.lower` with `now` and the
open start being the message's own edges, visibility is `compiler.visibility`, and every expression is
compiled by the SQL backend's expression compiler for the data's dialect.
"""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.backends.sql import dialect_named, render
from crmrules.backends.sql.dialect import (
    SqlDialect,
    and_,
    case_when,
    col,
    ident,
    number,
    table,
)
from crmrules.backends.sql.expressions import ExpressionCompiler
from crmrules.backends.sql.planner import QueryPlanner
from crmrules.backends.sql.runners import SqlHandle, fetch
from crmrules.compiler import visibility
from crmrules.compiler.lower import lower
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext
from crmrules.errors import DataError, UnsupportedFeatureError

MESSAGES = "crmrules_report_messages"  # the temporary table of the messages
COLUMNS = ("id", "campaign", "customer_id", "grp", "day", "window_start", "window_end")
_STAMP = datetime(2000, 1, 1)


def stamp_text(instant: datetime) -> str:
    """An instant as the messages table holds it."""
    return instant.isoformat(sep=" ", timespec="microseconds")


def _as_timestamp(dialect: SqlDialect, text: exp.Expression) -> exp.Expression:
    """A text column holding `stamp_text` read as the dialect reads a timestamp literal of that text: the
    dialect's own timestamp literal with the column in place of its text."""
    template = dialect.timestamp(_STAMP)
    literal = next(node for node in template.walk() if isinstance(node, exp.Literal) and node.is_string)
    if literal is template:
        return text
    literal.replace(text)
    return template


class _WindowCompiler(ExpressionCompiler):
    """The expression compiler with `now` and a window's open start taken from the message's row: `within`
    lowered once, evaluated per message."""

    def __init__(self, program: Program, dialect: SqlDialect, ctx: EvaluationContext, start, end):
        super().__init__(program, dialect, ctx)
        self._start, self._end = start, end

    def _expr(self, node: ast.Expr, scope: str) -> exp.Expression:
        match node:
            case ast.Now():
                return self._end.copy()
            case ast.WindowStart():
                return self._start.copy()
        return super()._expr(node, scope)


def paid_orders(program: Program) -> tuple[ast.Expr | None, ast.Expr]:
    """(the row condition, the summed value) of the catalogue's `total_spent`: what a paid order and its
    revenue are."""
    body = program.attributes["total_spent"].body
    if not isinstance(body, ast.Aggregate) or body.table != "orders" or body.func != ast.AggFunc.SUM:
        raise UnsupportedFeatureError("the report reads paid orders as `total_spent` sums them, and this "
                                      "`total_spent` is not a sum over orders", None,
                                      "keep the catalogue's `total_spent`", code="E0401")
    value = body.value if body.value is not None else ast.Column(
        table="orders", name=body.column, type=program.schema.column("orders", body.column).type)
    return body.where, value


def report_query(program: Program, dialect: SqlDialect, ctx: EvaluationContext, window: ast.Duration) -> exp.Select:
    """Per campaign, group and day: messages, converted messages and their revenue (rows of 6 columns)."""
    m = "m"
    start = _as_timestamp(dialect, col("window_start", m))
    end = _as_timestamp(dialect, col("window_end", m))
    compiler = _WindowCompiler(program, dialect, ctx, start, end)
    schema = program.schema
    moment = visibility.time_column("orders", schema) or "created_at"
    within = ast.Within(value=ast.Column(table="orders", name=moment, type=schema.column("orders", moment).type),
                        duration=ast.Literal(value=window, type=t.DURATION), type=t.BOOL)
    paid, value = paid_orders(program)
    owner = compiler.row_column("orders", "customer_id")
    conditions = [exp.EQ(this=owner, expression=col("customer_id", m))]
    if paid is not None:
        conditions.append(compiler.expr(paid, "orders"))
    conditions.append(compiler.expr(lower(within, schema), "orders"))
    revenue = compiler.expr(value, "orders")
    needs = compiler.needs
    if any(a.expressions for a in needs.customer_aggs.values()) or needs.order_item_aggs.expressions \
            or needs.tops or needs.populations:
        raise UnsupportedFeatureError("the report cannot read paid orders whose definition aggregates other rows",
                                      None, "keep the catalogue's `total_spent`", code="E0401")
    order_id = compiler.row_column("orders", "id")
    keys = [col(name, m) for name in ("campaign", "grp", "day", "id")]
    per_message = exp.select(
        *keys, exp.alias_(exp.Count(this=order_id), ident("orders"), copy=False),
        exp.alias_(dialect.exact(exp.Sum(this=revenue), t.DECIMAL), ident("revenue"), copy=False), copy=False,
    ).from_(table(MESSAGES, m), copy=False).join(
        table("vo", "o"), on=and_(*conditions), join_type="left", copy=False,
    ).group_by(*(k.copy() for k in keys), copy=False)
    groups = [col(name) for name in ("campaign", "grp", "day")]
    converted = exp.Sum(this=case_when(exp.GT(this=col("orders"), expression=number(0)), number(1), number(0)))
    query = exp.select(
        *groups, exp.alias_(exp.Count(this=exp.Star()), ident("messages"), copy=False),
        exp.alias_(converted, ident("converted"), copy=False),
        exp.alias_(dialect.exact(exp.Sum(this=col("revenue")), t.DECIMAL), ident("revenue"), copy=False),
        copy=False,
    ).from_(table("per_message"), copy=False).group_by(*(g.copy() for g in groups), copy=False)
    visible = QueryPlanner(program, dialect, ctx).visible("orders")
    return query.with_(ident("vo"), as_=visible, copy=False).with_(ident("per_message"), as_=per_message, copy=False)


def _create(dialect: SqlDialect) -> exp.Create:
    columns = [exp.ColumnDef(this=ident(name), kind=exp.DataType.build("TEXT")) for name in COLUMNS]
    return exp.Create(this=exp.Schema(this=exp.Table(this=ident(MESSAGES)), expressions=columns), kind="TABLE",
                      properties=exp.Properties(expressions=[exp.TemporaryProperty()]))


def _insert(columnar: bool) -> exp.Insert:
    """One row per statement, or (`columnar`) every row at once: a list parameter per column, unnested side by
    side (DuckDB binds one statement per row a hundred times slower than SQLite)."""
    if columnar:
        texts = exp.DataType.build("TEXT[]")
        rows = exp.select(*(exp.Unnest(expressions=[exp.Cast(this=exp.Placeholder(), to=texts.copy())])
                            for _ in COLUMNS), copy=False)
    else:
        rows = exp.values([tuple(exp.Placeholder() for _ in COLUMNS)])
    return exp.insert(rows, exp.Table(this=ident(MESSAGES)))


def _engine_errors(kind: str) -> tuple[type[Exception], ...]:
    """The errors an engine's driver raises (the driver is loaded already: its connection is open)."""
    import sqlite3

    found: list[type[Exception]] = [sqlite3.Error]
    if kind == "duckdb":
        import duckdb

        found.append(duckdb.Error)
    elif kind == "postgres":
        import psycopg

        found.append(psycopg.Error)
    return tuple(found)


def load_messages(handle: SqlHandle, rows: list[tuple[str, ...]]) -> None:
    """Create the temporary messages table on the data's connection and fill it (`COLUMNS`, all text).
    A temporary table lives in the connection only: the user's database is never written. An engine that
    refuses it (a PostgreSQL role without the TEMP privilege) is one clear error."""
    try:
        _load(handle, rows)
    except _engine_errors(handle.kind) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"cannot create the report's temporary table of messages: {first}",
                        hint="the report needs a temporary table on the data's connection (PostgreSQL: the "
                             "TEMP privilege)") from None


def _load(handle: SqlHandle, rows: list[tuple[str, ...]]) -> None:
    dialect = dialect_named(handle.kind)
    drop = render(exp.Drop(tables=[exp.Table(this=ident(MESSAGES))], kind="TABLE", exists=True), dialect,
                  pretty=False)
    columnar = handle.kind in ("duckdb", "postgres")
    create, insert = render(_create(dialect), dialect, pretty=False), render(_insert(columnar), dialect, pretty=False)
    columns = [list(values) for values in zip(*rows)] if columnar else None
    connection = handle.connection
    if handle.kind == "spark":
        frame = connection.createDataFrame(rows or [tuple("" for _ in COLUMNS)],
                                           ", ".join(f"{name} string" for name in COLUMNS))
        (frame if rows else frame.limit(0)).createOrReplaceTempView(MESSAGES)
    elif handle.kind == "postgres":
        with connection.transaction():
            connection.execute(drop)
            connection.execute(create)
            if rows:
                connection.execute(insert, columns)
    else:
        if handle.kind == "duckdb":
            from crmrules.backends.sql.runners import prepare_duckdb

            prepare_duckdb(connection)
        connection.execute(drop)
        connection.execute(create)
        if rows and columnar:
            connection.execute(insert, columns)
        elif rows:
            connection.executemany(insert, rows)


def run_report_query(handle: SqlHandle, program: Program, ctx: EvaluationContext, window: ast.Duration,
                     rows: list[tuple[str, ...]]) -> list[tuple]:
    """(campaign, group, day, messages, converted, revenue as Decimal) for the messages `rows`."""
    dialect = dialect_named(handle.kind)
    program = handle.fitted(program)  # the source's own schema (dispatch.fit_schema)
    load_messages(handle, rows)
    query = render(report_query(program, dialect, ctx, window), dialect, pretty=False)
    found = fetch(handle.kind, handle.connection, query)
    return [(str(a), str(b), str(c), int(n), int(k or 0), dialect.read(r, t.DECIMAL)) for a, b, c, n, k, r in found]


__all__ = ["COLUMNS", "MESSAGES", "load_messages", "paid_orders", "report_query", "run_report_query", "stamp_text"]
