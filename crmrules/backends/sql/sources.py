"""Open what `--data` names (a directory, a DuckDB or SQLite file, a PostgreSQL URL, a SparkSession) and run on it."""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from datetime import date, datetime
from pathlib import Path

from crmrules.backends.sql import runners, transfer
from crmrules.backends.sql.datadir import load_directory
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
            return runners.run_postgres(connection, program, segments, now)
    if backend == "spark" and not isinstance(data, (str, Path)):
        return runners.run_spark(data, program, segments, now)
    path = Path(data)
    if not path.exists():
        raise DataError(f"{path}: no such data directory or database file")
    if path.is_dir():
        loaded = load_directory(path, program.schema)
        warnings.extend(loaded.warnings)
        return _run_loaded(loaded, program, backend, segments, now)
    if path.suffix in SQLITE_SUFFIXES:
        if backend != "sqlite":
            raise DataError(f"{path}: a SQLite database runs on the sqlite backend", hint="use --backend sqlite")
        return runners.run_sqlite(runners.sqlite_connection(path), program, segments, now)
    if backend != "duckdb":
        raise DataError(f"{path}: a DuckDB database runs on the duckdb backend", hint="use --backend duckdb")
    import duckdb

    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        raise DataError(f"{path}: cannot open as a DuckDB database: {str(error).splitlines()[0]}") from None
    return runners.run_duckdb(connection, program, segments, now)


def _run_loaded(loaded, program: Program, backend: str, segments: list[str], now) -> dict[str, list[str]]:
    if backend == "duckdb":
        return runners.run_duckdb(loaded.connection, program, segments, now)
    if backend == "memory":
        from crmrules.backends.memory_run import run_memory

        return run_memory(program, transfer.customers(loaded, program.schema), segments, now)
    with tempfile.TemporaryDirectory(prefix="crmrules-") as scratch:
        if backend == "sqlite":
            database = Path(scratch) / "data.sqlite"
            with closing(sqlite3.connect(database)) as writer:
                transfer.to_sqlite(loaded, program.schema, writer)
            connection = runners.sqlite_connection(database)
            try:
                return runners.run_sqlite(connection, program, segments, now)
            finally:
                connection.close()
        spark = local_spark()
        transfer.to_spark(loaded, program.schema, spark, scratch)
        return runners.run_spark(spark, program, segments, now)


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
