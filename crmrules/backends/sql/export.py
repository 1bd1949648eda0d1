"""Write segment membership to a Parquet path instead of collecting it: `crmrules run --output PATH`.

One row per existing customer, `customer_id` and a true/false column per segment, from
the fused query (`planner.segments_select`). On Spark the cluster writes it (a directory
of part files, on any path Spark's file systems take) and counts it; on DuckDB it is one
file. Only the counts come back to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot import exp

from crmrules.backends.sql import dialect_named, render
from crmrules.backends.sql.planner import segments_select
from crmrules.errors import DataError, UnsupportedFeatureError

if TYPE_CHECKING:
    from crmrules.backends.sql.runners import SqlHandle
    from crmrules.compiler.pipeline import Program
    from crmrules.context import EvaluationContext

# the engines that write Parquet themselves; the others would pass every row through Python
WRITERS = ("duckdb", "spark")


def write_members(program: Program, handle: SqlHandle, segments: Sequence[str], ctx: EvaluationContext,
                  path: str) -> dict[str, int]:
    """Write each customer's membership of `segments` to `path` (Parquet); the members of each segment."""
    if handle.kind not in WRITERS:
        raise UnsupportedFeatureError(f"--output writes Parquet from DuckDB or Spark, not {handle.kind}",
                                      hint="run on --backend duckdb or spark, or print members with "
                                           "--format csv")
    program = handle.fitted(program)  # the source's own schema (dispatch.fit_schema)
    dialect = dialect_named(handle.kind)
    query = segments_select(program, segments, dialect, ctx)
    if handle.kind == "spark":
        return _spark(handle.connection, render(query, dialect, pretty=False), list(segments), path)
    return _duckdb(handle.connection, query, list(segments), path)


def _counts(segments: list[str], source: exp.Expression, dialect) -> str:
    counted = [exp.alias_(exp.Sum(this=exp.Cast(this=exp.column(name, quoted=True), to=exp.DataType.build("INT"))),
                          exp.to_identifier(name, quoted=True)) for name in segments]
    return render(exp.select(*counted).from_(source), dialect, pretty=False)


def _duckdb(connection, query: exp.Select, segments: list[str], path: str) -> dict[str, int]:
    import duckdb

    from crmrules.backends.sql.runners import prepare_duckdb

    if Path(path).exists():
        raise DataError(f"{path}: already exists", hint="remove it or give another --output")
    dialect = dialect_named("duckdb")
    prepare_duckdb(connection)
    try:
        connection.sql(render(query, dialect, pretty=False)).write_parquet(str(path))
        source = exp.func("read_parquet", exp.Literal.string(str(path)))
        [row] = connection.execute(_counts(segments, source, dialect)).fetchall()
    except duckdb.Error as error:
        raise DataError(f"{path}: cannot write: {str(error).strip().splitlines()[0]}") from None
    return {name: int(count or 0) for name, count in zip(segments, row)}


def _spark(session, sql: str, segments: list[str], path: str) -> dict[str, int]:
    from pyspark.sql import functions as F

    from crmrules.backends.spark_source import first_line

    try:
        session.sql(sql).write.parquet(path)  # fails when something is there already
        written = session.read.parquet(path)
        [row] = written.agg(*(F.sum(F.col(f"`{name}`").cast("int")) for name in segments)).collect()
    except Exception as error:  # noqa: BLE001 - PySpark's errors differ between classic and Connect
        message = first_line(error)
        hint = "remove it or give another --output" if "ALREADY_EXISTS" in message else None
        raise DataError(f"{path}: cannot write: {message}", hint=hint) from None
    return {name: int(count or 0) for name, count in zip(segments, row)}
