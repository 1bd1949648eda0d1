"""The engines by name, and opening what `data` names for one of them.

`data` may be a data directory (CSV, Parquet, JSON lines), a DuckDB or SQLite
file, a PostgreSQL URL, a SparkSession, or a list of customer dicts. `open_data`
turns it into what the chosen engine takes (see `backends.protocol`): customer
dicts for the in-memory engines, an `SqlHandle` for a SQL engine (copying the
data over when the engine cannot read it where it is).

Sources are only ever read: files through a private DuckDB, databases read-only.
A database of the user's own may lack what no rule reads: its schema is fitted
(`fit_schema`) before any query runs, so a time column it lacks is left out of
visibility, a table it lacks is empty (DuckDB, SQLite), and a column or table a
rule reads but the source lacks is one clear error naming the mapping fix.
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
from crmrules.compiler import visibility
from crmrules.errors import DataError, UnsupportedFeatureError, did_you_mean, raise_all

if TYPE_CHECKING:
    from crmrules.backends.protocol import Backend
    from crmrules.backends.resources import Resources
    from crmrules.backends.sql.runners import SqlHandle
    from crmrules.compiler.pipeline import Program
    from crmrules.schema import Schema

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
        return "spark" if type(data).__name__ in ("SparkSession", "SparkData") else "duckdb"
    text = str(data)
    if text.startswith("catalog:"):
        return "spark"  # only Spark has a catalog of tables to read
    if text.startswith(POSTGRES_SCHEMES):
        return "postgres"
    if Path(text).suffix.lower() in SQLITE_SUFFIXES:
        return "sqlite"
    return "duckdb"


@contextmanager
def open_data(program: Program, data, backend: str | None = None, warnings: list[str] | None = None,
              resources: Resources | None = None):
    """(Backend, what it takes) for `data`: prepared customer dicts or an `SqlHandle`, closed afterwards.
    The DuckDB connections opened here keep to `resources` (default: those of `resources.using`)."""
    if resources is not None:
        from crmrules.backends.resources import using

        with using(resources), open_data(program, data, backend, warnings) as opened:
            yield opened
        return
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
            yield fit_schema(program, _handle("postgres", connection), "the PostgreSQL database", warnings)
        return
    if name == "spark" and _spark_reads(data):
        from crmrules.backends.spark_source import opened_spark

        readers = {table: _shown(users) for table, users in _readers(program)[0].items()}
        with opened_spark(program, data, warnings, readers) as handle:
            yield handle
        return
    path = Path(data)
    if not path.exists():
        raise DataError(f"{path}: no such data directory or database file")
    from crmrules.backends.sql.datadir import EXTENSIONS

    if path.is_dir() or path.suffix.lower() in EXTENSIONS:
        from crmrules.backends.sql.datadir import load_directory, load_file

        # one file is the customers table; a directory holds a file per table
        # read in place: typed views over the files, checked first (datadir)
        loaded = load_directory(path, program.schema) if path.is_dir() else load_file(path, program.schema)
        try:
            warnings.extend(loaded.warnings)
            warnings.extend(missing_tables(program, loaded.files, path))
            with _loaded(loaded, program, name) as opened:
                yield opened
        finally:
            loaded.close()
        return
    if path.suffix.lower() in SQLITE_SUFFIXES:
        if name != "sqlite":
            raise DataError(f"{path}: a SQLite database runs on the sqlite backend", hint="use --backend sqlite")
        from crmrules.backends.sql import runners

        connection = runners.sqlite_connection(path)
        try:
            yield fit_schema(program, _handle("sqlite", connection), path, warnings)
        finally:
            connection.close()
        return
    if name != "duckdb":
        raise DataError(f"{path}: a DuckDB database runs on the duckdb backend", hint="use --backend duckdb")
    import duckdb

    from crmrules.backends.resources import open_duckdb

    try:
        connection, spill = open_duckdb(str(path), read_only=True)
    except duckdb.Error as error:
        raise DataError(f"{path}: cannot open as a DuckDB database: {str(error).splitlines()[0]}") from None
    try:
        yield fit_schema(program, _handle("duckdb", connection), path, warnings)
    finally:
        connection.close()
        spill.cleanup()


@contextmanager
def _opened_people(program: Program, people: list, name: str):
    """Customer dicts for an engine: as they are (converted) for rows engines, loaded for SQL ones."""
    from crmrules.backends.customer_data import prepare_customer

    if name == "postgres":
        raise DataError("the postgres backend reads a PostgreSQL database: give --data postgresql://...")
    prepared = [prepare_customer(person, program.schema) for person in people]
    unique_people(prepared, program.schema)
    if BACKENDS.takes(name) == "rows":
        yield prepared
        return
    from crmrules.backends.people import people_to_duckdb

    loaded = people_to_duckdb(prepared, program.schema)
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
        from crmrules.backends.memory_batches import CustomerChunks

        # streamed in chunks, never a list of every customer (memory_batches)
        yield CustomerChunks(loaded, program.schema)
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


def _readers(program: Program) -> tuple[dict[str, list[str]], dict[tuple[str, str], list[str]]]:
    """Who reads what: table -> the declarations aggregating over it, (table, column) -> those reading it
    (the key columns a table's rows are joined by included)."""
    tables: dict[str, list[str]] = {}
    columns: dict[tuple[str, str], list[str]] = {}

    def note(found: dict, key, name: str) -> None:
        if name not in found.setdefault(key, []):
            found[key].append(name)

    for decl in [*program.segments.values(), *program.attributes.values()]:
        for node in ast.walk(decl.body):
            if isinstance(node, ast.Aggregate):
                read = [node.table] + (["orders"] if node.table == "order_items" else [])
                for table in read:
                    note(tables, table, decl.name)
                    for column in JOIN_KEYS.get(table, ()):
                        note(columns, (table, column), decl.name)
                if node.table == "order_items":
                    note(columns, ("orders", "id"), decl.name)
            elif isinstance(node, ast.Column):
                note(columns, (node.table, node.name), decl.name)
    return tables, columns


# the columns each table's rows are tied to their customer (or order) by
JOIN_KEYS = {"orders": ("customer_id",), "events": ("customer_id",), "order_items": ("order_id",)}


def _shown(users: list[str]) -> str:
    return ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")


def missing_tables(program: Program, found: dict, where: Path) -> list[str]:
    """A warning for each table the rules read that the directory has no file for (it is empty)."""
    from crmrules.backends.sql.datadir import EXTENSIONS

    warnings = []
    for table, users in _readers(program)[0].items():
        if table not in found:
            source = program.schema.table(table).source
            if where.is_dir():
                warnings.append(f"{where}: no {source} file ({', '.join(EXTENSIONS)}): {table} is empty for "
                                f"{_shown(users)}")
            else:
                warnings.append(f"{where}: one file is the customers table only: {table} is empty for "
                                f"{_shown(users)}")
    return warnings


def unique_people(people: list[dict], schema: Schema) -> None:
    """One customer per id in a list of customers: a repeated id is an error naming both entries."""
    id_of = schema.column("customers", "id").source
    first: dict[object, int] = {}
    errors = []
    for index, person in enumerate(people):
        key = person.get(id_of)
        if key is None:
            continue
        if key in first and len(errors) < 20:
            errors.append(DataError(f"customer[{index}]: id `{key}` again (first at customer[{first[key]}])",
                                    hint="give each customer once, with all their orders and events", code="E0504"))
        first.setdefault(key, index)
    raise_all(errors)


def fit_schema(program: Program, handle: SqlHandle, where, warnings: list[str]) -> SqlHandle:
    """The handle of a user's own database with the schema fitted to what it holds, checked before any query:
    a table or column a rule reads but the database lacks is an error naming the mapping fix; a time column
    it lacks and no rule reads is left out (every row of it is undated); a table no rule reads is empty;
    customer ids are unique."""
    from dataclasses import replace

    from crmrules.backends.sql import runners
    from crmrules.schema import build_schema

    found = runners.source_columns(handle)
    if found is None:
        return handle
    schema = program.schema
    fold = (lambda name: name.lower()) if handle.kind != "postgres" else (lambda name: name)
    read_tables, read_columns = _readers(program)
    errors: list[DataError] = []
    tables = dict(schema.tables)
    for spec in schema.tables.values():
        columns = found.get(fold(spec.source))
        users = read_tables.get(spec.name, [])
        if columns is None:
            if spec.name == "customers" or users or (handle.kind == "postgres" and spec.name in ("orders", "events")):
                errors.append(DataError(
                    f"{where}: no table `{spec.source}` ({spec.name}"
                    + (f", read by {_shown(users)})" if users else ")"),
                    hint=f"map yours with --schema: [tables.{spec.name}] source = \"their_table\""
                         + (", or create it empty" if spec.name != "customers" else ""), code="E0503"))
            else:
                runners.create_empty_view(handle, spec)
            continue
        kept = dict(spec.columns)
        for column in spec.columns.values():
            if fold(column.source) in columns:
                continue
            readers = read_columns.get((spec.name, column.name))
            if readers or (spec.name == "customers" and column.name == "id"):
                errors.append(DataError(
                    f"{where}: table `{spec.source}` has no column `{column.source}` ({spec.name}.{column.name}"
                    + (f", read by {_shown(readers)})" if readers else ")"),
                    hint=f"map yours with --schema: [tables.{spec.name}.columns] {column.name} = \"their_name\"",
                    code="E0503"))
            elif column.name in visibility_columns(spec.name, schema):
                # only visibility would read it: without it, every row is undated (exists)
                del kept[column.name]
                warnings.append(f"{where}: no column {spec.name}.{column.source}: every row of {spec.source} "
                                f"counts as {'registered' if spec.name == 'customers' else 'dated before now'}")
        if len(kept) != len(spec.columns):
            from types import MappingProxyType

            tables[spec.name] = replace(spec, columns=MappingProxyType(kept))
    raise_all(errors)
    customers = schema.table("customers")
    repeated = runners.repeated_ids(handle, customers.source, customers.columns["id"].source)
    raise_all([DataError(f"{where}: customer id `{key}` is on {count} rows of `{customers.source}`",
                         hint="keep one row per customer", code="E0504") for key, count in repeated])
    if all(tables[name] is spec for name, spec in schema.tables.items()):
        return handle
    return replace(handle, schema=build_schema(tables, schema.timezone))


def local_spark():
    """A local SparkSession on loopback, UI off, UTC: what `--backend spark` uses without `--spark`."""
    from crmrules.backends.spark_source import spark_session

    return spark_session("local[2]")


def _spark_reads(data) -> bool:
    """Whether Spark reads `data` itself (a session, `SparkData`, a catalog, a data directory or file, any
    URI): everything but a local database file, which runs on its own engine."""
    if not isinstance(data, (str, Path)):
        return True
    text = str(data)
    from crmrules.backends.sql.datadir import EXTENSIONS

    return (text.startswith("catalog:") or ("://" in text and not text.startswith(POSTGRES_SCHEMES)) or Path(text).is_dir()
            or Path(text).suffix.lower() in EXTENSIONS)


def visibility_columns(table: str, schema: Schema) -> tuple[str, ...]:
    """The columns of a table that only the visibility rule reads (`compiler.visibility`): without them every
    row of the table is undated, so it exists."""
    if table == "customers":
        return (visibility.REGISTERED_AT,)
    column = visibility.time_column(table, schema)
    return (column,) if column is not None else ()
