"""Run a SELECT on an engine (DuckDB, SQLite, PostgreSQL, Spark) and read the rows back; connections to them."""

from __future__ import annotations

import re
import sqlite3
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote as url_quote

from sqlglot import exp

from crmrules.errors import DataError, EvaluationError

if TYPE_CHECKING:
    from crmrules.compiler.pipeline import Program
    from crmrules.schema import Schema

Members = dict[str, list[str]]


@dataclass(frozen=True)
class SqlHandle:
    """An open SQL engine: its kind ("duckdb" | "sqlite" | "postgres" | "spark") and connection (or SparkSession)."""

    kind: str
    connection: object
    # the schema fitted to this source (`dispatch.fit_schema`): without the time columns it lacks and no rule
    # reads, so visibility leaves them out; None when the source has every column
    schema: Schema | None = None

    def fitted(self, program: Program) -> Program:
        """The program to plan queries for this source with: its schema fitted to the source's columns."""
        if self.schema is None or self.schema is program.schema:
            return program
        return replace(program, schema=self.schema)


def collect(rows, segments: list[str]) -> Members:
    """Members per segment from rows of (customer_id, flag, flag, ...), ids sorted as strings."""
    members: Members = {name: [] for name in segments}
    for row in rows:
        for name, flag in zip(segments, row[1:]):
            if flag:
                members[name].append(str(row[0]))
    return {name: sorted(set(ids)) for name, ids in members.items()}


def fetch(kind: str, connection, sql: str) -> list[tuple]:
    """Rows of one SELECT on an engine: "duckdb", "sqlite", "postgres" (read-only transaction) or "spark"."""
    if kind == "spark":
        try:
            return [tuple(row) for row in connection.sql(sql).collect()]
        except Exception as error:  # noqa: BLE001 - PySpark's errors differ between classic and Connect
            raise engine_error("Spark", error) from None
    if kind == "postgres":
        import psycopg

        try:
            with connection.transaction():
                connection.execute("SET TRANSACTION READ ONLY")
                return connection.execute(sql).fetchall()
        except psycopg.Error as error:
            raise engine_error("PostgreSQL", error) from None
    if kind == "sqlite":
        _sqlite_failures.pop(id(connection), None)
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.Error as error:
            failure = _sqlite_failures.pop(id(connection), None)
            if failure is not None:  # a registered function refused a value: its own error, not SQLite's
                raise failure from None
            raise engine_error("SQLite", error) from None
    import duckdb

    from crmrules.progress import task

    try:
        prepare_duckdb(connection)
        with task("running the query", watch=connection):  # DuckDB's own percentage, with the time left
            return connection.execute(sql).fetchall()
    except duckdb.Error as error:
        raise engine_error("DuckDB", error) from None


# DuckDB connections `prepare_duckdb` has registered its functions on (the user's own ones included)
_prepared_duckdb: weakref.WeakSet = weakref.WeakSet()


def prepare_duckdb(connection) -> None:
    """Register the functions the DuckDB dialect relies on, once per connection: `crm_upper` and
    `crm_lower` are Python's str.upper/str.lower (DuckDB maps `ß`, `ﬁ`, `İ` one character at a time,
    `straße` → `STRAẞE`; Python, like the other engines, gives `STRASSE`). The dialect calls them only for
    non-ASCII text; NULL gives NULL without a call (DuckDB's default null handling)."""
    import duckdb

    if connection in _prepared_duckdb:
        return
    for name, function in (("crm_upper", str.upper), ("crm_lower", str.lower)):
        try:
            connection.create_function(name, function, ["VARCHAR"], "VARCHAR")
        except duckdb.NotImplementedException:  # registered before, on a connection the user passed twice
            pass
    _prepared_duckdb.add(connection)


def sqlite_connection(path: str | Path) -> sqlite3.Connection:
    """A read-only SQLite connection with Python's REGEXP, lower and upper, as the memory engine has them."""
    # a URI, percent-escaped, so `#` and `?` in a file name are part of it; mode=ro never creates a file
    uri = "file:" + url_quote(str(Path(path).absolute()), safe="/") + "?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    prepare_sqlite(connection)
    return connection


# the error a registered function raised, by connection: SQLite passes on only "user-defined function
# raised exception", so `fetch` raises the recorded one instead
_sqlite_failures: dict[int, Exception] = {}


def prepare_sqlite(connection: sqlite3.Connection) -> None:
    """Register the functions the SQLite dialect relies on."""
    from crmrules.backends.builtins import hash32
    from crmrules.backends.sql.dialects.sqlite import money_functions

    cache: dict[str, re.Pattern] = {}
    key = id(connection)

    def fail(error: Exception) -> None:
        _sqlite_failures[key] = error
        raise error

    for name, (arity, function) in money_functions(fail).items():
        connection.create_function(name, arity, function, deterministic=True)

    def regexp(pattern, value):
        if pattern is None or value is None:
            return None
        compiled = cache.get(pattern) or cache.setdefault(pattern, re.compile(pattern))
        return compiled.search(value) is not None

    connection.create_function("regexp", 2, regexp, deterministic=True)
    # `bucket`: SQLite has no SHA-256; the one Python rule every engine follows (`builtins.hash32`)
    connection.create_function("crm_hash32", 1, lambda v: None if v is None else hash32(str(v)), deterministic=True)
    connection.create_function("lower", 1, lambda v: None if v is None else v.lower(), deterministic=True)
    connection.create_function("upper", 1, lambda v: None if v is None else v.upper(), deterministic=True)


def connect_postgres(url: str):
    """A psycopg 3 connection, or one clear line when the server cannot be reached."""
    try:
        import psycopg
    except ImportError:
        raise DataError("the postgres backend needs psycopg: pip install 'crmrules[postgres]'") from None
    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as error:
        raise DataError(f"cannot connect to PostgreSQL: {str(error).strip().splitlines()[0]}") from None


# each engine's tables (and views) and their columns, in the schemas a query's unqualified names reach
_COLUMNS_SQL = {
    "duckdb": "SELECT table_name, column_name FROM information_schema.columns "
              "WHERE table_catalog = current_database() AND table_schema = current_schema()",
    "sqlite": "SELECT m.name, p.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p "
              "WHERE m.type IN ('table', 'view')",
    "postgres": "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = ANY(current_schemas(false))",
}


def source_columns(handle: SqlHandle) -> dict[str, set[str]] | None:
    """Table name -> column names of the database behind `handle` (lower case where the engine ignores
    case); None for an engine that is not asked (Spark)."""
    sql = _COLUMNS_SQL.get(handle.kind)
    if sql is None:
        return None
    folded = handle.kind != "postgres"
    found: dict[str, set[str]] = {}
    for table_name, column in fetch(handle.kind, handle.connection, sql):
        if folded:
            table_name, column = table_name.lower(), column.lower()
        found.setdefault(table_name, set()).add(column)
    return found


def repeated_ids(handle: SqlHandle, table_name: str, column: str, limit: int = 20) -> list[tuple[str, int]]:
    """Customer ids that appear on more than one row of the customers table, with their counts."""
    from crmrules.backends.sql import dialect_named, render

    key = exp.column(column, quoted=True)
    count = exp.Count(this=exp.Star())
    query = (exp.select(key, count).from_(exp.Table(this=exp.to_identifier(table_name, quoted=True)))
             .where(exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null())))
             .group_by(key.copy()).having(exp.GT(this=count.copy(), expression=exp.Literal.number(1)))
             .order_by(key.copy()).limit(limit))
    return fetch(handle.kind, handle.connection, render(query, dialect_named(handle.kind), pretty=False))


def create_empty_view(handle: SqlHandle, spec) -> None:
    """A temporary, empty view standing for a table the database lacks and no rule reads (DuckDB, SQLite:
    a temporary view lives in the connection, never in the database file)."""
    from crmrules.backends.sql import dialect_named, render
    from crmrules.backends.sql.datadir import duckdb_type

    def null(column) -> exp.Expression:
        if handle.kind != "duckdb":
            return exp.Null()
        return exp.Cast(this=exp.Null(), to=exp.DataType.build(duckdb_type(column.type), dialect="duckdb"))

    select = exp.select(*(exp.alias_(null(c), exp.to_identifier(c.source, quoted=True))
                          for c in spec.columns.values())).where(exp.false())
    create = exp.Create(this=exp.Table(this=exp.to_identifier(spec.source, quoted=True)), kind="VIEW",
                        expression=select, properties=exp.Properties(expressions=[exp.TemporaryProperty()]))
    handle.connection.execute(render(create, dialect_named(handle.kind), pretty=False))


def engine_error(engine: str, error: Exception) -> EvaluationError:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "Out of Memory" in first:
        return EvaluationError(f"{engine} could not run the query: {first}",
                               hint="give it more memory (--memory-limit, such as 8GB) or spill to a disk with "
                                    "room (--spill-dir)")
    return EvaluationError(f"{engine} could not run the query: {first}",
                           hint="check that the data has the schema's tables and columns (see --schema)")
