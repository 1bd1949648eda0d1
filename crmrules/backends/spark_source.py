"""Spark as its users run it: a session on their cluster, and data Spark reads itself.

`spark_session(url)` connects to a Spark Connect server (`sc://host:15002`) or a
master (`spark://host:7077`, `yarn`, `local[N]`); an unreachable cluster is one
clear line, not a Java traceback. `SparkData(location, spark)` names what to read:
`catalog:DATABASE` (the session catalog's tables, named as in the schema mapping)
or a directory of Parquet, CSV or JSON-lines files in the layout of a data
directory (`customers.parquet`, `orders.csv`, ... each a file or a directory of
part files, or `orders/` of Parquet parts), on any path Spark's file systems take.

Nothing passes through the driver: each table becomes a temporary view of the
session, typed by the schema with the same rules as the DuckDB loader
(`sql/datadir.py`): text that would not convert exactly is an error naming the
file, column, value and the row's key; customer ids are unique. Each check is one
Spark job that stops at the first `MAX_ERRORS` bad values.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from crmrules import types as t
from crmrules.backends.sql.datadir import (
    _DECIMAL_TEXT,
    _INT_TEXT,
    _OFFSET,
    EXTENSIONS,
    KEYS,
    MAX_ERRORS,
    _type_hint,
)
from crmrules.errors import DataError, raise_all

if TYPE_CHECKING:
    from crmrules.backends.sql.runners import SqlHandle
    from crmrules.compiler.pipeline import Program
    from crmrules.schema import Schema, TableSpec

CATALOG = "catalog:"
_SPARK_TYPES = {t.Scalar.BOOL: "boolean", t.Scalar.INT: "bigint", t.Scalar.DECIMAL: "decimal(38,6)",
                t.Scalar.STRING: "string", t.Scalar.DATE: "date", t.Scalar.TIMESTAMP: "timestamp"}
_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".ndjson": "json", ".json": "json"}
# dates and times as the DuckDB loader takes them; Spark's own cast would also take `2026` as 2026-01-01
_DATE_TEXT = r"\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}\s*"
_TIMESTAMP_TEXT = (r"\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]*)?)?)?"
                   r"\s*([+-][0-9]{2}(:?[0-9]{2})?|[zZ])?\s*")
CONNECT_PORT = 15002  # Spark Connect's default
MASTER_PORT = 7077


@dataclass(frozen=True)
class SparkData:
    """Data Spark reads itself: `location` is `catalog:DATABASE` or a directory (or one file: the customers
    table); `spark` is a SparkSession, a URL for `spark_session`, or None for a local session."""

    location: str
    spark: object = None


def spark_session(url: str | None = None):
    """A SparkSession on `url`: `sc://host:port` (Spark Connect), a master URL (`spark://host:7077`, `yarn`,
    `local[N]`), or None for local[2] on loopback. Session time zone UTC (the dialect's timestamps are
    store-local wall clocks) and Spark's console progress bar off (it would write over ours)."""
    url = url or "local[2]"
    import warnings

    # pyspark's check of the pandas version warns on import about features crmrules never uses
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError("the spark backend needs pyspark: pip install 'crmrules[spark]'") from None
    if url.startswith("sc://"):
        _reachable(url, CONNECT_PORT)
        try:
            builder = SparkSession.builder.remote(url)
        except ImportError as error:
            raise DataError(f"Spark Connect needs its client libraries: {error}",
                            hint="pip install 'pyspark[connect]'") from None
    else:
        if url.startswith("spark://"):
            _reachable(url, MASTER_PORT)
        builder = SparkSession.builder.master(url).appName("crmrules").config("spark.ui.showConsoleProgress", "false")
        if url.startswith("local"):
            # a local session stays on loopback, without a web UI
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = (builder.config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
                       .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.shuffle.partitions", "4"))
    try:
        session = builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    except Exception as error:  # noqa: BLE001 - Java missing, a refused configuration: one line, no traceback
        raise DataError(f"cannot start Spark on {url}: {first_line(error)}",
                        hint="check the URL, that Java is installed (java -version) and the cluster runs") from None
    if not url.startswith("sc://"):
        session.sparkContext.setLogLevel("ERROR")
    return session


def _reachable(url: str, default_port: int) -> None:
    """Fail fast with one line when no server answers at the URL's host and port: Spark itself would retry
    for a minute and then fail every query with a Java traceback."""
    reasons = []
    for address in urlsplit(url).netloc.split(","):
        host, _, port = address.partition(":")
        try:
            with socket.create_connection((host or "localhost", int(port or default_port)), timeout=5):
                return
        except (OSError, ValueError) as error:
            reasons.append(f"{address}: {getattr(error, 'strerror', None) or error}")
    raise DataError(f"cannot reach Spark at {url} ({'; '.join(reasons)})",
                    hint="check the URL and that the cluster is running")


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def opened_spark(program: Program, data, warnings: list[str], readers: dict[str, str]) -> Iterator[SqlHandle]:
    """An SqlHandle on Spark for `data`: a SparkSession as it is (its own tables), or `SparkData` / a path /
    `catalog:DB` read into typed temporary views, dropped afterwards. `readers`: table -> the declarations
    reading it, shown in the warning when the table is missing."""
    from crmrules.backends.sql.runners import SqlHandle

    if type(data).__name__ == "SparkSession":
        yield SqlHandle("spark", data)
        return
    if not isinstance(data, SparkData):
        data = SparkData(str(data))
    session = data.spark if type(data.spark).__name__ == "SparkSession" else spark_session(data.spark)
    from crmrules.progress import task

    # Spark's own progress (its tasks done in the running stages) as a bar of ours, on a terminal
    with task("running on Spark", watch=SparkProgress(session)):
        views = register_views(session, program, data.location, warnings, readers)
        try:
            yield SqlHandle("spark", session)
        finally:
            for name in views:
                session.catalog.dropTempView(name)


def register_views(session, program: Program, location: str, warnings: list[str],
                   readers: dict[str, str]) -> list[str]:
    """A typed temporary view per schema table read from `location`; their names."""
    schema = program.schema
    if location.startswith(CATALOG):
        frames = _catalog_tables(session, location[len(CATALOG):], schema)
    else:
        frames = _file_tables(session, location, schema)
        if not frames:
            raise DataError(f"{location}: no data files ({', '.join(f'customers{e}' for e in EXTENSIONS)}, ...)",
                            hint="give a directory with a file (or a directory of part files) per table")
    if location.startswith(CATALOG) and "customers" not in frames:
        customers = schema.table("customers").source
        raise DataError(f"{location}: no table `{customers}` (customers)", code="E0503",
                        hint="map yours with --schema: [tables.customers] source = \"their_table\"")
    errors: list[DataError] = []
    typed = {}
    for spec in schema.tables.values():
        found = frames.get(spec.name)
        if found is None:
            if spec.name in readers:
                warnings.append(f"{location}: no {spec.source} table: {spec.name} is empty for {readers[spec.name]}")
            typed[spec.name] = _empty(session, spec)
            continue
        where, frame, is_file = found
        try:
            typed[spec.name] = _typed(frame, spec, where, schema.timezone, is_file, warnings, errors)
        except DataError as error:
            errors.append(error)
    raise_all(errors)
    _check_unique_ids(typed["customers"], schema.table("customers"), frames.get("customers"))
    for spec in schema.tables.values():
        typed[spec.name].createOrReplaceTempView(spec.source)
    return [spec.source for spec in schema.tables.values()]


def _catalog_tables(session, database: str, schema: Schema) -> dict:
    if not database:
        raise DataError("catalog: names no database", hint="give --data catalog:DATABASE")
    if not _spark_call(lambda: session.catalog.databaseExists(database), database):
        raise DataError(f"{CATALOG}{database}: the session's catalog has no database `{database}`",
                        hint="list them with SHOW DATABASES; for a Hive metastore, set "
                             "spark.sql.catalogImplementation=hive in spark-defaults.conf", code="E0503")
    found = {}
    for spec in schema.tables.values():
        name = f"{_quote(database)}.{_quote(spec.source)}"
        if _spark_call(lambda n=name: session.catalog.tableExists(n), name):
            found[spec.name] = (f"{database}.{spec.source}", session.table(name), False)
    return found


def _file_tables(session, location: str, schema: Schema) -> dict:
    """Table name -> (path, DataFrame, True) for each table with data under `location` (a single data file
    is the customers table)."""
    root = location.rstrip("/")
    suffix = os.path.splitext(root)[1].lower()
    if suffix in _FORMATS:
        return {"customers": (root, _read(session, root, _FORMATS[suffix]), True)}
    found = {}
    for spec in schema.tables.values():
        candidates = [(f"{root}/{spec.source}{ext}", form) for ext, form in _FORMATS.items()]
        candidates.append((f"{root}/{spec.source}", "parquet"))
        present = [(path, form) for path, form in candidates if _exists(session, path)]
        if len(present) > 1:
            raise DataError(f"{root}: {', '.join(path.rsplit('/', 1)[1] for path, _ in present)} all hold table "
                            f"`{spec.name}`", hint="keep one file (or directory of part files) per table")
        if present:
            path, form = present[0]
            found[spec.name] = (path, _read(session, path, form), True)
    return found


def _exists(session, path: str) -> bool:
    """Whether Spark's file systems hold a file or directory at `path` (binaryFile: no schema to infer)."""
    try:
        session.read.format("binaryFile").load(path).schema  # noqa: B018 - analysis checks the path
        return True
    except Exception as error:  # noqa: BLE001 - PySpark's errors differ between classic and Connect
        if "PATH_NOT_FOUND" in str(error) or "does not exist" in str(error):
            return False
        raise DataError(f"{path}: {first_line(error)}") from None


def _read(session, path: str, form: str):
    reader = session.read
    if form == "csv":
        # every column as text, converted by the schema so a bad value can be named; RFC 4180 quoting
        frame = reader.csv(path, header=True, inferSchema=False, multiLine=True, escape='"', mode="FAILFAST")
    elif form == "json":
        # numbers and booleans as their text too: `42` and `"00042"` stay two ids, 2.5 is no int
        frame = reader.json(path, primitivesAsString=True, mode="FAILFAST")
    else:
        frame = reader.parquet(path)
    _spark_call(lambda: frame.columns, path)  # reads the header or footer now: a bad file is named here
    return frame


def _spark_call(call, where: str):
    try:
        return call()
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 - a Spark failure on a user's path or table: one line
        raise DataError(f"{where}: {first_line(error)}") from None


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _spark_type(column_type: t.Type) -> str:
    scalar = _SPARK_TYPES[column_type.scalar]
    return f"array<{scalar}>" if column_type.is_list else scalar


def _empty(session, spec: TableSpec):
    from pyspark.sql import functions as F

    row = session.range(0).select(*(F.lit(None).cast(_spark_type(c.type)).alias(c.source)
                                    for c in spec.columns.values()))
    return row


def _try_cast(column, type_name: str):
    # Column.try_cast is Spark 4; before it, a cast outside ANSI mode (Spark 3's default) gives null
    return column.try_cast(type_name) if hasattr(column, "try_cast") else column.cast(type_name)


def _conversion(column, column_type: t.Type, source_type: str, zone: str, is_file: bool = True):
    """(the converted value, a condition true for a value that would not convert exactly, or None).

    A Parquet file's instant (TIMESTAMP adjusted to UTC) moves to the store's zone, as the DuckDB loader
    moves it; a catalog table's timestamp is read as the wall clock Spark shows in the UTC session, as a
    SparkSession's own tables always were (a Hive metastore keeps no time-zone-free timestamps)."""
    from pyspark.sql import functions as F

    target = _spark_type(column_type)
    text = source_type == "string"
    scalar = column_type.scalar
    if column_type.is_list:
        if text:  # lists in text files are JSON arrays: ["coat", "vip"]
            parsed = F.from_json(column, "array<string>")
            return parsed.cast(target), parsed.isNull()
        tried = _try_cast(column, target)
        return tried, tried.isNull()
    if scalar == t.Scalar.STRING:
        return column.cast("string"), None
    if scalar == t.Scalar.TIMESTAMP and text:
        trimmed = F.trim(column)
        instant = _try_cast(trimmed, "timestamp")
        # an offset moves the instant to the store's zone; a naive time is already the store's
        local = F.when(trimmed.rlike(_OFFSET), F.from_utc_timestamp(instant, zone)).otherwise(instant)
        return local, ~trimmed.rlike(f"^{_TIMESTAMP_TEXT}$") | local.isNull() | (F.year(local) < 1)
    if scalar == t.Scalar.TIMESTAMP and source_type == "timestamp" and is_file:
        return F.from_utc_timestamp(column, zone), None  # an instant: the store's wall clock
    patterns = {t.Scalar.INT: _INT_TEXT, t.Scalar.DECIMAL: _DECIMAL_TEXT, t.Scalar.DATE: _DATE_TEXT}
    if text and scalar in patterns:
        tried = _try_cast(F.trim(column), target)
        return tried, ~column.rlike(f"^{patterns[scalar]}$") | tried.isNull()
    tried = _try_cast(column, target)
    if scalar in (t.Scalar.INT, t.Scalar.DECIMAL) and not text and source_type != "boolean":
        # a fraction in an int column, or a seventh decimal place, would be rounded by the cast
        return tried, tried.isNull() | (tried != column)
    return tried, tried.isNull()


def _typed(frame, spec: TableSpec, where: str, zone: str, is_file: bool, warnings: list[str],
           errors: list[DataError]):
    """The frame with the schema's columns and types; its bad values appended to `errors`."""
    from pyspark.sql import functions as F

    types = {field.name: field.dataType.simpleString() for field in frame.schema.fields}
    if not is_file:  # a catalog's names are case-insensitive, as Spark resolves them
        types = {name.lower(): kind for name, kind in types.items()}
    present = {c.source: (c.source if is_file else c.source.lower()) for c in spec.columns.values()}
    key = spec.columns.get(KEYS.get(spec.name, ""))
    if key is not None and present[key.source] not in types:
        raise DataError(f"{where}: no `{key.source}` column: every row of {spec.name} needs one",
                        hint=f"name the column `{key.source}`, or map yours with --schema: "
                             f"[tables.{spec.name}.columns] {KEYS[spec.name]} = \"their_name\"")
    extra = [name for name in types if name not in set(present.values())]
    if extra and is_file:
        listed = ", ".join(f"`{name}`" for name in extra)
        warnings.append(f"{where}: {listed} {'is' if len(extra) == 1 else 'are'} not in the schema of "
                        f"{spec.name}; ignored (map {'it' if len(extra) == 1 else 'them'} with --schema)")
    converted, checks = [], []
    for column in spec.columns.values():
        name = present[column.source]
        if name not in types:
            converted.append(F.lit(None).cast(_spark_type(column.type)).alias(column.source))
            continue
        value, bad = _conversion(F.col(_quote(name)), column.type, types[name], zone, is_file)
        converted.append(value.alias(column.source))
        if bad is not None:
            checks.append((column, F.col(_quote(name)), bad))
    if checks:
        # a bad value is shown with its row's own id where the table has one (an order's), else its key
        shown = spec.columns.get("id") if spec.columns.get("id") and present[spec.columns["id"].source] in types \
            else key
        key_column = F.col(_quote(present[shown.source])) if shown is not None else None
        errors.extend(_bad_values(frame, where, shown.source if shown is not None else None, key_column, checks))
    return frame.select(*converted)


def _bad_values(frame, where: str, key: str | None, key_column, checks) -> list[DataError]:
    """One job: the first MAX_ERRORS rows holding a value that would not convert, by file, column and key."""
    from pyspark.sql import functions as F

    flags = [F.when(raw.isNotNull() & bad, raw.cast("string")) for _, raw, bad in checks]
    key_value = key_column.cast("string") if key_column is not None else F.lit(None)
    any_bad = functools.reduce(lambda a, b: a | b, (flag.isNotNull() for flag in flags))
    rows = _spark_call(lambda: frame.where(any_bad)
                       .select(F.input_file_name(), key_value, *flags).limit(MAX_ERRORS + 1).collect(), where)
    errors = []
    for row in rows[:MAX_ERRORS]:
        source = row[0] or where
        for (column, _, _), value in zip(checks, row[2:]):
            if value is None or len(errors) >= MAX_ERRORS:
                continue
            shown = value if len(value) < 60 else value[:57] + "..."
            on = f" (the row with {key} `{row[1]}`)" if row[1] is not None else ""
            errors.append(DataError(f"{source}: column `{column.source}`: {shown!r} is not a {column.type}{on}",
                                    hint=_type_hint(column.type)))
    if len(rows) > MAX_ERRORS:
        errors.append(DataError(f"{where}: more bad values not shown (the first {MAX_ERRORS} are above)"))
    return errors


def _check_unique_ids(customers, spec: TableSpec, found) -> None:
    """One row per customer: a repeated id would be both in and out of a segment."""
    from pyspark.sql import functions as F

    if found is None:
        return
    where = found[0]
    key = F.col(_quote(spec.columns["id"].source))
    rows = _spark_call(lambda: customers.where(key.isNotNull()).groupBy(key).count().where(F.col("count") > 1)
                       .orderBy(key).limit(MAX_ERRORS).collect(), where)
    raise_all([DataError(f"{where}: customer id `{value}` is on {count} rows", hint="keep one row per customer",
                         code="E0504") for value, count in rows])


class SparkProgress:
    """What `progress.task(watch=...)` follows, for Spark: the percentage of the tasks of the session's running
    stages that are done."""

    def __init__(self, session):
        self.session = session

    def execute(self, statement: str) -> None:
        """The display turns DuckDB's progress on with SET statements; Spark always tracks its stages."""

    def query_progress(self) -> float:
        found = stage_progress(self.session)
        return -1 if found is None or not found[1] else 100 * found[0] / found[1]


def stage_progress(session) -> tuple[int, int] | None:
    """(completed, total) tasks of the session's running stages, for a progress bar; None when Spark does
    not say (Spark Connect, no stage running)."""
    context = getattr(session, "sparkContext", None)
    try:
        tracker = context.statusTracker() if context is not None else None
    except Exception:  # noqa: BLE001 - Spark Connect sessions have no SparkContext
        return None
    if tracker is None:
        return None
    stages = [tracker.getStageInfo(stage) for stage in tracker.getActiveStageIds()]
    stages = [stage for stage in stages if stage is not None]
    if not stages:
        return None
    return sum(s.numCompletedTasks for s in stages), sum(s.numTasks for s in stages)
