"""The SQL engines behind the `Backend` protocol: one query per call, run on an open `SqlHandle`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from crmrules import ast
from crmrules import types as t
from crmrules.backends.sql import dialect_named, render, segments_query
from crmrules.backends.sql.planner import values_select
from crmrules.backends.sql.runners import SqlHandle, collect, fetch
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext
from crmrules.errors import DataError

# nodes that are not values of their own in a SELECT: list literals are compiled by `in`
_NO_COLUMN = (ast.ListLiteral, ast.Ever)


class SqlBackend:
    """A SQL engine ("duckdb", "sqlite", "postgres", "spark") taking an `SqlHandle` of the same kind."""

    takes = "sql"

    def __init__(self, kind: str):
        self.name = kind
        self.dialect = dialect_named(kind)

    def __repr__(self) -> str:
        return f"SqlBackend({self.name!r})"

    def members(self, program: Program, handle: SqlHandle, segments: Sequence[str],
                ctx: EvaluationContext) -> dict[str, list[str]]:
        """The sorted ids of each segment's members, from one fused query."""
        from crmrules.progress import task

        program = handle.fitted(program)  # the source's own schema (dispatch.fit_schema)
        with task(f"compiling {len(segments)} segment{'s' if len(segments) != 1 else ''} to SQL"):
            sql = segments_query(program, segments, self.dialect.name, ctx, pretty=False)  # once per content
        with task(f"querying {handle.kind}"):
            rows = fetch(handle.kind, handle.connection, sql)
        with task(f"collecting the members of {len(rows):,} customers"):
            return collect(rows, list(segments))

    def values(self, program: Program, handle: SqlHandle, names: Sequence[str],
               ctx: EvaluationContext) -> dict[str, dict[str, object]]:
        """The named attributes of every existing customer: {id: {name: value}}."""
        program = handle.fitted(program)  # the source's own schema (dispatch.fit_schema)
        exprs = [program.attributes[name].body for name in names]
        tree = values_select(program, list(zip(names, exprs)), self.dialect, ctx)
        rows = fetch(handle.kind, handle.connection, render(tree, self.dialect, pretty=False))
        read = self.dialect.read
        return {str(row[0]): {name: read(value, expr.type) for name, expr, value in zip(names, exprs, row[1:])}
                for row in rows}

    def node_values(self, program: Program, handle: SqlHandle, customer_id: str, expr: ast.Expr,
                    ctx: EvaluationContext) -> dict[ast.Expr, object]:
        """The value of `expr` and of each customer-level sub-expression for one customer, from one query."""
        program = handle.fitted(program)  # the source's own schema (dispatch.fit_schema)
        nodes = list(dict.fromkeys(customer_nodes(expr)))
        columns = [(f"n{index}", node) for index, node in enumerate(nodes)]
        tree = values_select(program, columns, self.dialect, ctx, customer_id=customer_id)
        rows = fetch(handle.kind, handle.connection, render(tree, self.dialect, pretty=False))
        if not rows:
            raise DataError(f"no customer `{customer_id}` in the data at {ctx.instant:%Y-%m-%d %H:%M:%S}",
                            hint="check the id and --as-of")
        read = self.dialect.read
        return {node: read(value, node.type) for node, value in zip(nodes, rows[0][1:])}


def customer_nodes(expr: ast.Expr) -> Iterator[ast.Expr]:
    """`expr` and its sub-expressions evaluated once per customer, outermost first: not the per-row insides
    of aggregates, nor the bodies behind attribute and segment names, nor what an `ntile` ranks."""
    if not isinstance(expr, _NO_COLUMN) and not (isinstance(expr, ast.Literal) and expr.type == t.DURATION):
        yield expr
    if isinstance(expr, (ast.Aggregate, ast.AttributeRef, ast.SegmentRef, ast.Ntile)):
        return
    for child in ast.children(expr):
        if isinstance(child, ast.Expr):
            yield from customer_nodes(child)


def distinct_values(handle: SqlHandle, schema, table: str, column: str) -> set[str]:
    """The distinct non-null values of a string column (our `table.column`, read under its source names),
    e.g. the event types a data set holds; none when the source has no such table or column."""
    from sqlglot import exp

    from crmrules.backends.sql.dialect import ident
    from crmrules.backends.sql.dialect import table as table_node
    from crmrules.errors import EvaluationError

    dialect = dialect_named(handle.kind)
    spec = schema.table(table)
    value = exp.Column(this=ident(spec.columns[column].source))
    query = exp.select(value).distinct().from_(table_node(spec.source)).where(
        exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())))
    try:
        rows = fetch(handle.kind, handle.connection, render(query, dialect, pretty=False))
    except EvaluationError:
        return set()  # nothing to learn from a table or column the data does not have
    return {str(row[0]) for row in rows}
