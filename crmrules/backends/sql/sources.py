"""Open what `--data` names (a directory, a DuckDB or SQLite file, a PostgreSQL URL, a SparkSession) and run on it."""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing, contextmanager
from datetime import date, datetime
from pathlib import Path

from crmrules import ast
from crmrules.backends.sql import runners, transfer
from crmrules.backends.sql.datadir import EXTENSIONS, load_directory
from crmrules.compiler.pipeline import Program
from crmrules.errors import DataError, UnsupportedFeatureError, did_you_mean

BACKENDS = ("duckdb", "sqlite", "postgres", "spark", "memory")
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def default_backend(data) -> str:
    """The backend a data source runs on unless another is asked for."""
    if not isinstance(data, (str, Path)):
        return "spark" if type(data).__name__ == "SparkSession" else "duckdb"
    text = str(data)
    if text.startswith(("postgresql://", "postgres://")):
        return "postgres"
    if Path(text).suffix in SQLITE_SUFFIXES:
        return "sqlite"
    return "duckdb"


def run(program: Program, data, backend: str | None, segments: list[str], now: date | datetime,
        warnings: list[str] | None = None) -> dict[str, list[str]]:
    """Members of each segment, evaluated by `backend` on `data`."""
    with engine(program, data, backend, warnings) as (kind, handle):
        if kind == "memory":
            from crmrules.backends.memory_run import run_memory

            return run_memory(program, handle, segments, now)
        return runners.collect(runners.fetch(kind, handle, runners.build_query(program, segments, kind, now)),
                               segments)


def values(program: Program, data, backend: str | None, names: list[str], now: date | datetime,
           warnings: list[str] | None = None) -> dict[str, dict[str, object]]:
    """Every existing customer's values of the named attributes, by customer id."""
    with engine(program, data, backend, warnings) as (kind, handle):
        return values_on(kind, handle, program, names, now)


def values_on(kind: str, handle, program: Program, names: list[str], now: date | datetime) -> dict[str, dict]:
    """`values` on an open engine, or ("memory", customer dicts)."""
    from crmrules.values import evaluation_instant

    exprs = [program.attributes[name].body for name in names]
    instant = evaluation_instant(now, program.schema.timezone)
    if kind == "memory":
        from crmrules.backends.customer_data import prepare_customer
        from crmrules.backends.memory import attribute_values
        from crmrules.backends.population import exists, ntiles, population

        people = [prepare_customer(p, program.schema) for p in handle]
        ranked = population(program, people, instant) if ntiles(program) else None
        compute = attribute_values(program, exprs)
        id_of = program.schema.column("customers", "id").source
        return {str(p[id_of]): dict(zip(names, compute(p, instant, ranked)))
                for p in people if exists(p, program.schema, instant)}
    from crmrules.backends.sql import dialect_named, render
    from crmrules.backends.sql.generator import SqlGenerator

    d = dialect_named(kind)
    tree = SqlGenerator(program, d, instant).values(list(zip(names, exprs)))
    rows = runners.fetch(kind, handle, render(tree, d, pretty=False))
    return {str(row[0]): {name: d.read(value, expr.type) for name, expr, value in zip(names, exprs, row[1:])}
            for row in rows}


def query_rows(program: Program, data, backend: str | None, build, warnings: list[str] | None = None):
    """Rows of a query that `build(dialect_name)` makes, run on `data` (never with the memory backend)."""
    with engine(program, data, backend, warnings) as (kind, handle):
        if kind == "memory":
            raise UnsupportedFeatureError("this report runs on a SQL backend", None,
                                          "use --backend duckdb, sqlite, postgres or spark", code="E0402")
        return kind, runners.fetch(kind, handle, build(kind))


@contextmanager
def engine(program: Program, data, backend: str | None, warnings: list[str] | None = None):
    """The engine `data` runs on: ("duckdb" | "sqlite" | "postgres" | "spark", connection) or ("memory", customers)."""
    backend = backend or default_backend(data)
    if backend not in BACKENDS:
        raise UnsupportedFeatureError(f"unknown backend `{backend}`", None,
                                      did_you_mean(backend, BACKENDS) or f"backends: {', '.join(BACKENDS)}",
                                      code="E0402")
    warnings = warnings if warnings is not None else []
    if backend == "postgres":
        if not str(data).startswith(("postgresql://", "postgres://")):
            raise DataError("the postgres backend reads a PostgreSQL database: give --data postgresql://...")
        connection = runners.connect_postgres(str(data))
        with connection:
            yield "postgres", connection
        return
    if backend == "spark" and not isinstance(data, (str, Path)):
        yield "spark", data
        return
    path = Path(data)
    if not path.exists():
        raise DataError(f"{path}: no such data directory or database file")
    if path.is_dir():
        loaded = load_directory(path, program.schema)
        warnings.extend(loaded.warnings)
        warnings.extend(missing_tables(program, loaded.files, path))
        with _loaded_engine(loaded, program, backend) as opened:
            yield opened
        return
    if path.suffix in SQLITE_SUFFIXES:
        if backend != "sqlite":
            raise DataError(f"{path}: a SQLite database runs on the sqlite backend", hint="use --backend sqlite")
        connection = runners.sqlite_connection(path)
        try:
            yield "sqlite", connection
        finally:
            connection.close()
        return
    if backend != "duckdb":
        raise DataError(f"{path}: a DuckDB database runs on the duckdb backend", hint="use --backend duckdb")
    import duckdb

    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        raise DataError(f"{path}: cannot open as a DuckDB database: {str(error).splitlines()[0]}") from None
    try:
        yield "duckdb", connection
    finally:
        connection.close()


def missing_tables(program: Program, found: dict, directory: Path) -> list[str]:
    """A warning for each table the rules read that the directory has no file for (it is empty)."""
    readers: dict[str, list[str]] = {}
    declarations = [*program.segments.values(), *program.attributes.values()]
    for decl in declarations:
        for node in ast.walk(decl.body):
            if isinstance(node, ast.Aggregate):
                tables = {node.table} | ({"orders"} if node.table == "order_items" else set())
                for name in tables:
                    if decl.name not in readers.setdefault(name, []):
                        readers[name].append(decl.name)
    warnings = []
    for name, users in readers.items():
        if name not in found:
            source = program.schema.table(name).source
            shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
            warnings.append(f"{directory}: no {source} file ({', '.join(EXTENSIONS)}): {name} is empty for "
                            f"{shown}")
    return warnings


@contextmanager
def _loaded_engine(loaded, program: Program, backend: str):
    if backend == "duckdb":
        yield "duckdb", loaded.connection
        return
    if backend == "memory":
        yield "memory", transfer.customers(loaded, program.schema)
        return
    with tempfile.TemporaryDirectory(prefix="crmrules-") as scratch:
        if backend == "sqlite":
            database = Path(scratch) / "data.sqlite"
            with closing(sqlite3.connect(database)) as writer:
                transfer.to_sqlite(loaded, program.schema, writer)
            connection = runners.sqlite_connection(database)
            try:
                yield "sqlite", connection
            finally:
                connection.close()
            return
        spark = local_spark()
        transfer.to_spark(loaded, program.schema, spark, scratch)
        yield "spark", spark


def local_spark():
    """A local SparkSession on loopback, UI off, UTC: what `--backend spark` uses for a data directory."""
    import os

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError("the spark backend needs pyspark: pip install 'crmrules[spark]'") from None
    session = (SparkSession.builder.master("local[2]").appName("crmrules")
            .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "4").config("spark.ui.showConsoleProgress", "false")
            .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session
