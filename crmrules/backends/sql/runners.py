"""Run a SELECT on an engine (DuckDB, SQLite, PostgreSQL, Spark) and read the rows back; connections to them."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from crmrules.errors import DataError, EvaluationError

Members = dict[str, list[str]]


@dataclass(frozen=True)
class SqlHandle:
    """An open SQL engine: its kind ("duckdb" | "sqlite" | "postgres" | "spark") and connection (or SparkSession)."""

    kind: str
    connection: object


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
        return [tuple(row) for row in connection.sql(sql).collect()]
    if kind == "postgres":
        import psycopg

        try:
            with connection.transaction():
                connection.execute("SET TRANSACTION READ ONLY")
                return connection.execute(sql).fetchall()
        except psycopg.Error as error:
            raise _engine_error("PostgreSQL", error) from None
    if kind == "sqlite":
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.Error as error:
            raise _engine_error("SQLite", error) from None
    import duckdb

    try:
        return connection.execute(sql).fetchall()
    except duckdb.Error as error:
        raise _engine_error("DuckDB", error) from None


def sqlite_connection(path: str | Path) -> sqlite3.Connection:
    """A read-only SQLite connection with Python's REGEXP, lower and upper, as the memory engine has them."""
    connection = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    prepare_sqlite(connection)
    return connection


def prepare_sqlite(connection: sqlite3.Connection) -> None:
    """Register the functions the SQLite dialect relies on."""
    cache: dict[str, re.Pattern] = {}

    def regexp(pattern, value):
        if pattern is None or value is None:
            return None
        compiled = cache.get(pattern) or cache.setdefault(pattern, re.compile(pattern))
        return compiled.search(value) is not None

    connection.create_function("regexp", 2, regexp, deterministic=True)
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


def _engine_error(engine: str, error: Exception) -> EvaluationError:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return EvaluationError(f"{engine} could not run the query: {first}",
                           hint="check that the data has the schema's tables and columns (see --schema)")
