"""Read a data directory (CSV, Parquet or JSON lines per table), or one file as the customers table, in
place: a private DuckDB holds a typed view over each file, never a copy of it.

Column types come from the schema; each view's select list converts the file's
columns (CSV and JSON-lines values are read as text) into them. Nothing is read
loosely: before any rule runs, each file is scanned once for values that would not
convert exactly (a fraction in an int column, money past 6 decimal places, a year
past 9999, a list that is not a JSON array) and for repeated customer ids; those are
errors naming the file, line and column, all of a file's reported together (up to
`MAX_ERRORS`). Lines are numbered only when something is wrong: a scan without them
streams, so a file larger than memory is checked within DuckDB's memory limit
(`backends.resources`). Time-zone offsets move to the store's time zone, as they do
for customer dicts (`customer_data.convert`). Paths are read literally: DuckDB would
expand `*`, `?` and `[` as a glob.
"""

from __future__ import annotations

import csv
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crmrules import types as t
from crmrules.backends.resources import Resources, open_duckdb
from crmrules.errors import DataError, raise_all
from crmrules.schema import Schema, TableSpec

EXTENSIONS = (".csv", ".parquet", ".jsonl", ".ndjson", ".json")
MAX_ERRORS = 20
_SCALAR_TYPES = {t.Scalar.BOOL: "BOOLEAN", t.Scalar.INT: "BIGINT", t.Scalar.DECIMAL: "DECIMAL(38, 6)",
                 t.Scalar.STRING: "VARCHAR", t.Scalar.DATE: "DATE", t.Scalar.TIMESTAMP: "TIMESTAMP"}
# the columns a table's rows are found by: a file without its key column would be read as rows of nobody
KEYS = {"customers": "id", "orders": "customer_id", "events": "customer_id", "order_items": "order_id"}
# what Python (and so every engine's answers) can hold
_RANGE = {t.Scalar.DATE: ("DATE '0001-01-01'", "DATE '9999-12-31'"),
          t.Scalar.TIMESTAMP: ("TIMESTAMP '0001-01-01 00:00:00'", "TIMESTAMP '9999-12-31 23:59:59.999999'")}
# exact text of each scalar: anything a cast would round or guess at is refused instead
_INT_TEXT = r"\s*[+-]?[0-9]+\s*"
_DECIMAL_TEXT = r"\s*[+-]?([0-9]+(\.[0-9]{0,6}0*)?|\.[0-9]{1,6}0*)\s*"
# a time of day followed by an offset (`+02:00`, `-0500`, `Z`): an aware timestamp
_OFFSET = r"[0-9]:[0-9]{2}(:[0-9]{2}(\.[0-9]*)?)?\s*([+-][0-9]{2}(:?[0-9]{2})?|[zZ])\s*$"
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
            "FLOAT", "DOUBLE", "DECIMAL")


def duckdb_type(column_type: t.Type) -> str:
    """The DuckDB type that holds values of a schema type."""
    scalar = _SCALAR_TYPES[column_type.scalar]
    return f"{scalar}[]" if column_type.is_list else scalar


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A DuckDB string literal (file paths and time-zone names only; rule values never reach SQL text)."""
    return "'" + text.replace("'", "''") + "'"


def file_literal(path: Path, glob: str = "") -> str:
    """A file path for DuckDB's readers, read literally: its glob characters each in a class of its own;
    `glob` (such as `/**/*.parquet`) is added after it as a pattern."""
    return literal(re.sub(r"([\[*?])", r"[\1]", str(path)) + glob)


@dataclass
class LoadedData:
    """A DuckDB connection holding the tables of a data directory, and what loading noticed."""

    connection: duckdb.DuckDBPyConnection
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # the connection's private spill directory (`resources.open_duckdb`), removed by `close`
    spill: tempfile.TemporaryDirectory | None = None

    def close(self) -> None:
        """Close the connection and remove what it spilled."""
        self.connection.close()
        if self.spill is not None:
            self.spill.cleanup()


def table_files(directory: Path, source: str) -> list[Path]:
    """The files of a directory holding one table: `source` with a known extension, in any case, or a folder
    `source/` or `source.parquet/` of Parquet part files (as Spark and other writers leave a table)."""
    found = []
    for p in directory.iterdir():
        if p.is_file() and p.stem == source and p.suffix.lower() in EXTENSIONS:
            found.append(p)
        elif p.is_dir() and (p.name == source or (p.stem == source and p.suffix.lower() == ".parquet")):
            if not any(part.suffix.lower() == ".parquet" for part in p.rglob("*") if part.is_file()):
                raise DataError(f"{p}: a folder for table `{source}` without Parquet files",
                                hint="a table's folder holds Parquet part files (*.parquet)")
            found.append(p)
    return sorted(found)


def load_directory(path: str | Path, schema: Schema, resources: Resources | None = None) -> LoadedData:
    """Every table of the schema from `path`, typed; a missing file is an empty table."""
    directory = Path(path)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a data directory", hint="give a directory of customers.csv, orders.csv, ...")
    found = {spec.name: table_files(directory, spec.source) for spec in schema.tables.values()}
    for name, files in found.items():
        if len(files) > 1:
            raise DataError(f"{directory}: {', '.join(p.name for p in files)} all hold table `{name}`",
                            hint="keep one file per table")
    return _load({name: files[0] for name, files in found.items() if files}, schema, resources)


def load_file(path: str | Path, schema: Schema, resources: Resources | None = None) -> LoadedData:
    """One CSV, Parquet or JSON-lines file as the customers table; every other table is empty."""
    path = Path(path)
    if path.suffix.lower() not in EXTENSIONS:
        raise DataError(f"{path}: not a data file ({', '.join(EXTENSIONS)}) nor a database",
                        hint="give a data directory, a CSV, Parquet or JSON-lines file, or a database")
    return _load({"customers": path}, schema, resources)


def _load(files: dict[str, Path], schema: Schema, resources: Resources | None) -> LoadedData:
    from crmrules.progress import task

    connection, spill = open_duckdb(resources=resources)
    loaded = LoadedData(connection, spill=spill)
    try:
        with task("reading data", total=len(files)) as reading:
            for spec in schema.tables.values():
                path = files.get(spec.name)
                if path is None:
                    _create_empty(loaded.connection, spec)
                    continue
                loaded.files[spec.name] = path
                with task(f"checking {path.name}", watch=connection):
                    _load_table(loaded, spec, path, schema.timezone)
                reading.advance()
    except BaseException:
        loaded.close()
        raise
    return loaded


def _create_empty(connection, spec: TableSpec) -> None:
    columns = ", ".join(f"{quote(c.source)} {duckdb_type(c.type)}" for c in spec.columns.values())
    connection.execute(f"CREATE TABLE {quote(spec.source)} ({columns})")


def _load_table(loaded: LoadedData, spec: TableSpec, path: Path, zone: str) -> None:
    """Check one file in one scan, then put a typed view over it; its rows numbered by line only to name
    what is wrong."""
    suffix = path.suffix.lower()
    connection = loaded.connection
    if path.is_dir():
        # every part file below the folder; a row is named by its part file and its place in it
        parts = file_literal(path, "/**/*.parquet")
        raw = f"read_parquet({parts})"
        header = _describe(connection, raw, path, "Parquet")
        numbered = (f"SELECT regexp_extract(filename, '[^/]*$') || ':' || (file_row_number + 1) AS __line, "
                    f"* EXCLUDE (filename, file_row_number) "
                    f"FROM read_parquet({parts}, filename=true, file_row_number=true)")
    elif suffix == ".parquet":
        raw = f"read_parquet({file_literal(path)})"
        header = _describe(connection, raw, path, "Parquet")
        # Parquet knows each row's place in the file
        numbered = (f"SELECT file_row_number + 1 AS __line, * EXCLUDE (file_row_number) "
                    f"FROM read_parquet({file_literal(path)}, file_row_number=true)"
                    if "file_row_number" not in header else f"SELECT row_number() OVER () AS __line, * FROM {raw}")
    elif suffix == ".csv":
        header = {name: "VARCHAR" for name in _csv_header(path)}
        # every column is read as text and converted by the schema, so a bad value can be named
        columns = ", ".join(f"{literal(name)}: 'VARCHAR'" for name in header)
        raw = (f"read_csv({file_literal(path)}, header=true, auto_detect=false, delim=',', quote='\"', "
               f"escape='\"', strict_mode=true, columns={{{columns}}})")
        numbered = f"SELECT row_number() OVER () + 1 AS __line, * FROM {raw}"
    else:
        names = _describe(connection, f"read_json({file_literal(path)}, format='newline_delimited')", path,
                          "JSON lines")
        # as text too: `42` and `"00042"` stay two ids, and 2.5 is not rounded into an int column
        header = {name: "VARCHAR" for name in names}
        columns = ", ".join(f"{literal(name)}: 'VARCHAR'" for name in header)
        raw = f"read_json({file_literal(path)}, format='newline_delimited', columns={{{columns}}})"
        numbered = f"SELECT row_number() OVER () AS __line, * FROM {raw}"
    _check_key(spec, path, header)
    checks = _checks(spec, header, zone)
    key = _unique_key(spec, header, zone)
    # one streaming scan over the whole file (a text file's every row parsed, so a malformed one is found here)
    bad = " OR ".join(f"({column} IS NOT NULL AND ({test}))" for column, _, test in checks) or "false"
    counts = f"count(*) FILTER (WHERE {bad})" + (f", count({key}) - count(DISTINCT {key})" if key else ", 0")
    bad_rows, repeated = _fetch(connection, f"SELECT {counts} FROM {raw}", path)[0]
    if bad_rows:
        _report_values(connection, spec, path, f"({numbered})", checks)
    if repeated:
        _report_repeated_ids(connection, spec, path, f"({numbered})", header, zone)
    select = _select_list(loaded, spec, path, header, zone)
    _run(connection, f"CREATE VIEW {quote(spec.source)} AS SELECT {select} FROM {raw}", path)


def _csv_header(path: Path) -> list[str]:
    try:
        # utf-8-sig: a byte-order mark is not part of the first column's name
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start} of the header)",
                        hint="save the file as UTF-8") from None
    except csv.Error as error:
        raise DataError(f"{path}:1: malformed header ({error})") from None
    if not header:
        raise DataError(f"{path}: the file is empty; a CSV file starts with a header row")
    if len(set(header)) != len(header):
        duplicate = next(name for name in header if header.count(name) > 1)
        raise DataError(f"{path}:1: column `{duplicate}` appears twice in the header")
    return header


def _describe(connection, raw: str, path: Path, what: str) -> dict[str, str]:
    try:
        return {row[0]: row[1] for row in connection.execute(f"DESCRIBE SELECT * FROM {raw}").fetchall()}
    except duckdb.Error as error:
        raise DataError(f"{path}: not readable as {what}: {_first_line(error)}") from None


def _run(connection, sql: str, path: Path) -> None:
    _fetch(connection, sql, path)


def _fetch(connection, sql: str, path: Path) -> list[tuple]:
    """The rows of a query over a file; a file DuckDB cannot read is a DataError naming it (and its line)."""
    try:
        return connection.execute(sql).fetchall()
    except duckdb.Error as error:
        message = str(error)
        line = re.search(r"CSV Error on Line: (\d+)", message)
        if line:
            original = re.search(r"Original Line: (.*)", message)
            found = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
            detail = f"expected {found.group(1)} fields, found {found.group(2)}" if found else _first_line(error)
            raise DataError(f"{path}:{line.group(1)}: malformed row ({detail})"
                            + (f": `{original.group(1)}`" if original else "")) from None
        if isinstance(error, duckdb.OutOfMemoryException):
            raise DataError(f"{path}: {_first_line(error)}", hint="give DuckDB more memory (--memory-limit, such as "
                            "8GB) or spill to a disk with room (--spill-dir)") from None
        raise DataError(f"{path}: {_first_line(error)}") from None


def _check_key(spec: TableSpec, path: Path, header: dict[str, str]) -> None:
    key = KEYS.get(spec.name)
    column = spec.columns.get(key) if key else None
    if column is not None and column.source not in header:
        raise DataError(f"{path}: no `{column.source}` column: every row of {spec.name} needs one",
                        hint=f"name the column `{column.source}`, or map yours with --schema: "
                             f"[tables.{spec.name}.columns] {key} = \"their_name\"")


def _text(header: dict[str, str], name: str) -> bool:
    return header[name] == "VARCHAR"


def _converted(source: str, column_type: t.Type, text: bool, source_type: str, zone: str) -> str:
    """SQL converting a raw column to the schema type (after `_bad` found no value it would misread)."""
    target = duckdb_type(column_type)
    if column_type.is_list:
        # lists in text files are JSON arrays: ["coat", "vip"]
        return f"CAST(from_json({source}, '[\"VARCHAR\"]') AS {target})" if text else f"CAST({source} AS {target})"
    scalar = column_type.scalar
    if scalar == t.Scalar.TIMESTAMP and text:
        # an offset moves the instant to the store's zone; a naive time is already the store's
        return (f"CASE WHEN regexp_matches({source}, {literal(_OFFSET)}) THEN "
                f"timezone({literal(zone)}, CAST({source} AS TIMESTAMPTZ)) ELSE CAST({source} AS TIMESTAMP) END")
    if scalar == t.Scalar.TIMESTAMP and source_type.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone({literal(zone)}, {source})"
    if text and scalar in (t.Scalar.INT, t.Scalar.DECIMAL):
        return f"CAST(trim({source}) AS {target})"
    return f"CAST({source} AS {target})"


def _bad(source: str, column_type: t.Type, text: bool, source_type: str, zone: str) -> str | None:
    """SQL true for a raw value that would not convert exactly; None when every value converts."""
    if column_type.is_list:
        if text:
            # json_type raises on invalid JSON, and SQL need not short-circuit `or`
            return f"CASE WHEN json_valid({source}) THEN json_type({source}) <> 'ARRAY' ELSE true END"
        return f"TRY_CAST({source} AS {duckdb_type(column_type)}) IS NULL"
    scalar = column_type.scalar
    target = duckdb_type(column_type)
    if scalar == t.Scalar.STRING or (source_type == target and scalar not in _RANGE):
        return None  # text, or a typed column (Parquet) of the very type: every value converts exactly
    tried = f"TRY_CAST({source} AS {target})"
    if scalar in (t.Scalar.DATE, t.Scalar.TIMESTAMP):
        if scalar == t.Scalar.TIMESTAMP:
            tried = _converted(source, column_type, text, source_type, zone).replace("CAST(", "TRY_CAST(")
        low, high = _RANGE[scalar]
        return f"{tried} IS NULL OR {tried} NOT BETWEEN {low} AND {high}"
    if text and scalar == t.Scalar.INT:
        return f"NOT regexp_full_match({source}, {literal(_INT_TEXT)}) OR TRY_CAST(trim({source}) AS {target}) IS NULL"
    if text and scalar == t.Scalar.DECIMAL:
        return (f"NOT regexp_full_match({source}, {literal(_DECIMAL_TEXT)}) "
                f"OR TRY_CAST(trim({source}) AS {target}) IS NULL")
    if scalar in (t.Scalar.INT, t.Scalar.DECIMAL) and source_type.startswith(_NUMERIC):
        # a fraction in an int column, or a seventh decimal place, would be rounded by the cast
        return f"{tried} IS NULL OR {tried} <> {source}"
    return f"{tried} IS NULL"


def _checks(spec: TableSpec, header: dict[str, str], zone: str) -> list[tuple[str, str, str]]:
    """(quoted column, its name, SQL true for a value that would not convert exactly) for each column of the
    file that can hold one."""
    checks = []
    for column in spec.columns.values():
        if column.source not in header:
            continue
        source = quote(column.source)
        bad = _bad(source, column.type, _text(header, column.source), header[column.source], zone)
        if bad is not None:
            checks.append((source, column.source, bad))
    return checks


def _report_values(connection, spec: TableSpec, path: Path, relation: str, checks: list[tuple[str, str, str]]):
    """Raise every value that would not convert exactly, by line and column, up to MAX_ERRORS, together."""
    parts = [f"SELECT __line, {literal(name)} AS __column, CAST({source} AS VARCHAR) AS __value "
             f"FROM {relation} WHERE {source} IS NOT NULL AND ({bad})" for source, name, bad in checks]
    rows = _fetch(connection, f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY __line, __column "
                              f"LIMIT {MAX_ERRORS + 1}", path)
    errors = []
    for line, name, value in rows[:MAX_ERRORS]:
        column_type = next(c.type for c in spec.columns.values() if c.source == name)
        shown = value if len(value) < 60 else value[:57] + "..."
        errors.append(DataError(f"{path}:{line}: column `{name}`: {shown!r} is not a {column_type}",
                                hint=_type_hint(column_type)))
    if len(rows) > MAX_ERRORS:
        errors.append(DataError(f"{path}: more bad values not shown (the first {MAX_ERRORS} are above)"))
    raise_all(errors)


def _unique_key(spec: TableSpec, header: dict[str, str], zone: str) -> str | None:
    """The customer id as the view gives it (NULL where it would not convert), in the customers table only:
    a repeated id would be both in and out of a segment on SQL engines."""
    if spec.name != "customers":
        return None
    column = spec.columns["id"]
    key = _converted(quote(column.source), column.type, _text(header, column.source), header[column.source], zone)
    return key.replace("CAST(", "TRY_CAST(")


def _report_repeated_ids(connection, spec: TableSpec, path: Path, relation: str, header: dict[str, str],
                         zone: str) -> None:
    """Raise each repeated customer id with the lines it is on, up to MAX_ERRORS, together."""
    key = _unique_key(spec, header, zone)
    rows = _fetch(connection, f"SELECT {key} AS id, list(__line ORDER BY __line) FROM {relation} "
                              f"WHERE {key} IS NOT NULL GROUP BY 1 HAVING count(*) > 1 ORDER BY min(__line) "
                              f"LIMIT {MAX_ERRORS}", path)
    raise_all([DataError(f"{path}:{lines[0]}: customer id `{value}` again on line{'s' if len(lines) > 2 else ''} "
                         f"{', '.join(str(n) for n in lines[1:])}", hint="keep one row per customer", code="E0504")
               for value, lines in rows])


def _select_list(loaded: LoadedData, spec: TableSpec, path: Path, header: dict[str, str], zone: str) -> str:
    known = {c.source for c in spec.columns.values()}
    extra = [name for name in header if name not in known]
    if extra:
        listed = ", ".join(f"`{name}`" for name in extra)
        loaded.warnings.append(f"{path.name}: {listed} {'is' if len(extra) == 1 else 'are'} not in the schema of "
                               f"{spec.name}; ignored (map {'it' if len(extra) == 1 else 'them'} with --schema)")
    parts = []
    for column in spec.columns.values():
        if column.source in header:
            expression = _converted(quote(column.source), column.type, _text(header, column.source),
                                    header[column.source], zone)
        else:
            expression = f"CAST(NULL AS {duckdb_type(column.type)})"
        parts.append(f"{expression} AS {quote(column.source)}")
    return ", ".join(parts)


def _type_hint(column_type: t.Type) -> str | None:
    return {t.TIMESTAMP: "timestamps look like 2026-01-31 09:30:00 (an offset such as +02:00 is allowed), "
                         "years 1 to 9999",
            t.DATE: "dates look like 2026-01-31, years 1 to 9999", t.BOOL: "use true or false",
            t.DECIMAL: "use a plain number with at most 6 decimal places, such as 12.50",
            t.INT: "use a whole number"}.get(column_type, "lists are JSON arrays such as [\"a\", \"b\"]"
                                             if column_type.is_list else None)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
