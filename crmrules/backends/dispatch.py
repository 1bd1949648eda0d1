"""The engines by name, and opening what `data` names for one of them.

`data` may be a data directory (CSV, Parquet, JSON lines), a DuckDB or SQLite
file, a PostgreSQL URL, a SparkSession, or a list of customer dicts. `open_data`
turns it into what the chosen engine takes (see `backends.protocol`): customer
dicts for the in-memory engines, an `SqlHandle` for a SQL engine (copying the
data over when the engine cannot read it where it is).
"""

from __future__ import annotations

import importlib
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from crmrules import ast
from crmrules.errors import DataError, UnsupportedFeatureError, did_you_mean

if TYPE_CHECKING:
    from crmrules.backends.protocol import Backend
    from crmrules.compiler.pipeline import Program

SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class BackendRegistry(Mapping):
    """Engine name -> Backend, each built on first use: listing the names imports no engine
    (the SQL ones import sqlglot, which the command line should not pay for to show `--help`)."""

    def __init__(self, entries: dict[str, tuple[str, str, str, tuple]]):
        # name -> (what it takes, module, class, constructor arguments)
        self._entries = entries
        self._built: dict[str, Backend] = {}

    def __getitem__(self, name: str) -> Backend:
        backend = self._built.get(name)
        if backend is None:
            _, module, cls, args = self._entries[name]
            backend = self._built[name] = getattr(importlib.import_module(module), cls)(*args)
        return backend

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def takes(self, name: str) -> str:
        """What the named engine takes ("rows" or "sql"), without building it."""
        return self._entries[name][0]

    def names(self, takes: str | None = None) -> list[str]:
        """The engine names, or only those taking `takes`."""
        return [name for name, entry in self._entries.items() if takes is None or entry[0] == takes]


_SQL = "crmrules.backends.sql.backend"
BACKENDS = BackendRegistry({
    "duckdb": ("sql", _SQL, "SqlBackend", ("duckdb",)),
    "sqlite": ("sql", _SQL, "SqlBackend", ("sqlite",)),
    "postgres": ("sql", _SQL, "SqlBackend", ("postgres",)),
    "spark": ("sql", _SQL, "SqlBackend", ("spark",)),
    "memory": ("rows", "crmrules.backends.memory", "MemoryBackend", ()),
    "interpreter": ("rows", "crmrules.backends.interpreter", "InterpreterBackend", ()),
})


def backend_named(name: str) -> Backend:
    """The engine of that name; UnsupportedFeatureError with the closest name otherwise."""
    if name not in BACKENDS:
        raise UnsupportedFeatureError(f"unknown backend `{name}`", None,
                                      did_you_mean(name, list(BACKENDS)) or f"backends: {', '.join(BACKENDS)}",
                                      code="E0402")
    return BACKENDS[name]


def default_backend(data) -> str:
    """The engine `data` runs on unless another is asked for."""
    if isinstance(data, (list, tuple)):
        return "memory"
    if not isinstance(data, (str, Path)):
        return "spark" if type(data).__name__ == "SparkSession" else "duckdb"
    text = str(data)
    if text.startswith(POSTGRES_SCHEMES):
        return "postgres"
    if Path(text).suffix in SQLITE_SUFFIXES:
        return "sqlite"
    return "duckdb"


@contextmanager
def open_data(program: Program, data, backend: str | None = None, warnings: list[str] | None = None):
    """(Backend, what it takes) for `data`: prepared customer dicts or an `SqlHandle`, closed afterwards."""
    name = backend or default_backend(data)
    engine = backend_named(name)
    warnings = warnings if warnings is not None else []
    if isinstance(data, (list, tuple)):
        with _opened_people(program, list(data), name) as opened:
            yield engine, opened
        return
    if not isinstance(data, (str, Path)) and name != "spark":
        raise DataError(f"the {name} backend cannot read a {type(data).__name__}",
                        hint="give a data directory, a database file or URL, or a list of customers")
    with _opened(program, data, name, warnings) as opened:
        yield engine, opened


def _handle(kind: str, connection):
    from crmrules.backends.sql.runners import SqlHandle

    return SqlHandle(kind, connection)


@contextmanager
def _opened(program: Program, data, name: str, warnings: list[str]):
    if name == "postgres":
        if not str(data).startswith(POSTGRES_SCHEMES):
            raise DataError("the postgres backend reads a PostgreSQL database: give --data postgresql://...")
        from crmrules.backends.sql import runners

        connection = runners.connect_postgres(str(data))
        with connection:
            yield _handle("postgres", connection)
        return
    if name == "spark" and not isinstance(data, (str, Path)):
        yield _handle("spark", data)
        return
    path = Path(data)
    if not path.exists():
        raise DataError(f"{path}: no such data directory or database file")
    if path.is_dir():
        from crmrules.backends.sql.datadir import load_directory

        loaded = load_directory(path, program.schema)
        warnings.extend(loaded.warnings)
        warnings.extend(missing_tables(program, loaded.files, path))
        with _loaded(loaded, program, name) as opened:
            yield opened
        return
    if path.suffix in SQLITE_SUFFIXES:
        if name != "sqlite":
            raise DataError(f"{path}: a SQLite database runs on the sqlite backend", hint="use --backend sqlite")
        from crmrules.backends.sql import runners

        connection = runners.sqlite_connection(path)
        try:
            yield _handle("sqlite", connection)
        finally:
            connection.close()
        return
    if name != "duckdb":
        raise DataError(f"{path}: a DuckDB database runs on the duckdb backend", hint="use --backend duckdb")
    import duckdb

    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        raise DataError(f"{path}: cannot open as a DuckDB database: {str(error).splitlines()[0]}") from None
    try:
        yield _handle("duckdb", connection)
    finally:
        connection.close()


@contextmanager
def _opened_people(program: Program, people: list, name: str):
    """Customer dicts for an engine: as they are (converted) for rows engines, loaded for SQL ones."""
    from crmrules.backends.customer_data import prepare_customer

    if BACKENDS.takes(name) == "rows":
        yield [prepare_customer(person, program.schema) for person in people]
        return
    if name == "postgres":
        raise DataError("the postgres backend reads a PostgreSQL database: give --data postgresql://...")
    from crmrules.backends.people import people_to_duckdb

    loaded = people_to_duckdb(people, program.schema)
    try:
        with _loaded(loaded, program, name) as opened:
            yield opened
    finally:
        loaded.connection.close()


@contextmanager
def _loaded(loaded, program: Program, name: str):
    """A loaded data set (a private DuckDB) on the engine asked for: copied when it is not DuckDB."""
    from crmrules.backends.sql import runners, transfer

    if name == "duckdb":
        yield _handle("duckdb", loaded.connection)
        return
    if BACKENDS.takes(name) == "rows":
        from crmrules.backends.customer_data import prepare_customer

        yield [prepare_customer(person, program.schema) for person in transfer.customers(loaded, program.schema)]
        return
    with tempfile.TemporaryDirectory(prefix="crmrules-") as scratch:
        if name == "sqlite":
            database = Path(scratch) / "data.sqlite"
            with closing(sqlite3.connect(database)) as writer:
                transfer.to_sqlite(loaded, program.schema, writer)
            connection = runners.sqlite_connection(database)
            try:
                yield _handle("sqlite", connection)
            finally:
                connection.close()
            return
        if name != "spark":
            raise DataError(f"the {name} backend reads a database: give its URL")
        spark = local_spark()
        transfer.to_spark(loaded, program.schema, spark, scratch)
        yield _handle("spark", spark)


def missing_tables(program: Program, found: dict, directory: Path) -> list[str]:
    """A warning for each table the rules read that the directory has no file for (it is empty)."""
    readers: dict[str, list[str]] = {}
    declarations = [*program.segments.values(), *program.attributes.values()]
    for decl in declarations:
        for node in ast.walk(decl.body):
            if isinstance(node, ast.Aggregate):
                tables = {node.table} | ({"orders"} if node.table == "order_items" else set())
                for table in tables:
                    if decl.name not in readers.setdefault(table, []):
                        readers[table].append(decl.name)
    warnings = []
    from crmrules.backends.sql.datadir import EXTENSIONS

    for table, users in readers.items():
        if table not in found:
            source = program.schema.table(table).source
            shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
            warnings.append(f"{directory}: no {source} file ({', '.join(EXTENSIONS)}): {table} is empty for "
                            f"{shown}")
    return warnings


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
