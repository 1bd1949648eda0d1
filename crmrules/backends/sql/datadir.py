"""Load a data directory (CSV, Parquet or JSON lines per table) into a private in-memory DuckDB.

CSV and JSON files are read once into typed tables; Parquet files stay where
they are, behind typed views. Column types come from the schema; a value that
does not convert is reported with its file, line and column.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crmrules import types as t
from crmrules.errors import DataError
from crmrules.schema import Schema, TableSpec

EXTENSIONS = (".csv", ".parquet", ".jsonl", ".ndjson", ".json")
_SCALAR_TYPES = {t.Scalar.BOOL: "BOOLEAN", t.Scalar.INT: "BIGINT", t.Scalar.DECIMAL: "DECIMAL(38, 6)",
                 t.Scalar.STRING: "VARCHAR", t.Scalar.DATE: "DATE", t.Scalar.TIMESTAMP: "TIMESTAMP"}


def duckdb_type(column_type: t.Type) -> str:
    """The DuckDB type that holds values of a schema type."""
    scalar = _SCALAR_TYPES[column_type.scalar]
    return f"{scalar}[]" if column_type.is_list else scalar


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A DuckDB string literal (file paths only; rule values never reach SQL text)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class LoadedData:
    """A DuckDB connection holding the tables of a data directory, and what loading noticed."""

    connection: duckdb.DuckDBPyConnection
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def load_directory(path: str | Path, schema: Schema) -> LoadedData:
    """Every table of the schema from `path`, typed; a missing file is an empty table."""
    directory = Path(path)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a data directory", hint="give a directory of customers.csv, orders.csv, ...")
    loaded = LoadedData(duckdb.connect())
    for spec in schema.tables.values():
        found = [directory / f"{spec.source}{ext}" for ext in EXTENSIONS if (directory / f"{spec.source}{ext}").exists()]
        if len(found) > 1:
            raise DataError(f"{directory}: {', '.join(p.name for p in found)} all hold table `{spec.name}`",
                            hint="keep one file per table")
        if not found:
            _create_empty(loaded.connection, spec)
            continue
        loaded.files[spec.name] = found[0]
        if found[0].suffix == ".csv":
            _load_csv(loaded, spec, found[0])
        elif found[0].suffix == ".parquet":
            _load_parquet(loaded, spec, found[0])
        else:
            _load_json_lines(loaded, spec, found[0])
    return loaded


def _create_empty(connection, spec: TableSpec) -> None:
    columns = ", ".join(f"{quote(c.source)} {duckdb_type(c.type)}" for c in spec.columns.values())
    connection.execute(f"CREATE TABLE {quote(spec.source)} ({columns})")


def _converted(expression: str, column_type: t.Type) -> str:
    if column_type.is_list:
        # lists in text files are JSON arrays: ["coat", "vip"]
        return f"CAST(from_json({expression}, '[\"VARCHAR\"]') AS {duckdb_type(column_type)})"
    return f"CAST({expression} AS {duckdb_type(column_type)})"


def _load_csv(loaded: LoadedData, spec: TableSpec, path: Path) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise DataError(f"{path}: the file is empty; a CSV file starts with a header row")
    if len(set(header)) != len(header):
        duplicate = next(name for name in header if header.count(name) > 1)
        raise DataError(f"{path}:1: column `{duplicate}` appears twice in the header")
    # every column is read as text and converted by the schema, so a bad value can be named
    columns = ", ".join(f"{literal(name)}: 'VARCHAR'" for name in header)
    raw = (f"read_csv({literal(str(path))}, header=true, auto_detect=false, delim=',', quote='\"', escape='\"', "
           f"strict_mode=true, columns={{{columns}}})")
    _typed_table(loaded, spec, path, raw, header, line_offset=1)


def _column_names(loaded: LoadedData, raw: str, path: Path, what: str) -> list[str]:
    try:
        return [row[0] for row in loaded.connection.execute(f"DESCRIBE SELECT * FROM {raw}").fetchall()]
    except duckdb.Error as error:
        raise DataError(f"{path}: not readable as {what}: {_first_line(error)}") from None


def _load_json_lines(loaded: LoadedData, spec: TableSpec, path: Path) -> None:
    raw = f"read_json({literal(str(path))}, format='newline_delimited')"
    header = _column_names(loaded, raw, path, "JSON lines")
    _typed_table(loaded, spec, path, raw, header, line_offset=0, text=False)


def _load_parquet(loaded: LoadedData, spec: TableSpec, path: Path) -> None:
    raw = f"read_parquet({literal(str(path))})"
    header = _column_names(loaded, raw, path, "Parquet")
    columns = _select_list(loaded, spec, path, header, text=False)
    # Parquet is read in place: a view, not a copy
    loaded.connection.execute(f"CREATE VIEW {quote(spec.source)} AS SELECT {columns} FROM {raw}")


def _select_list(loaded: LoadedData, spec: TableSpec, path: Path, header: list[str], text: bool) -> str:
    known = {c.source for c in spec.columns.values()}
    extra = [name for name in header if name not in known]
    if extra:
        listed = ", ".join(f"`{name}`" for name in extra)
        loaded.warnings.append(f"{path.name}: {listed} {'is' if len(extra) == 1 else 'are'} not in the schema of "
                               f"{spec.name}; ignored (map {'it' if len(extra) == 1 else 'them'} with --schema)")
    parts = []
    for column in spec.columns.values():
        if column.source in header:
            source = quote(column.source)
            expression = _converted(source, column.type) if text else f"CAST({source} AS {duckdb_type(column.type)})"
        else:
            expression = f"CAST(NULL AS {duckdb_type(column.type)})"
        parts.append(f"{expression} AS {quote(column.source)}")
    return ", ".join(parts)


def _typed_table(loaded: LoadedData, spec: TableSpec, path: Path, raw: str, header: list[str],
                 line_offset: int, text: bool = True) -> None:
    columns = _select_list(loaded, spec, path, header, text)
    try:
        loaded.connection.execute(f"CREATE TABLE {quote(spec.source)} AS SELECT {columns} FROM {raw}")
    except duckdb.Error as error:
        message = str(error)
        line = re.search(r"CSV Error on Line: (\d+)", message)
        if line:
            original = re.search(r"Original Line: (.*)", message)
            found = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
            detail = f"expected {found.group(1)} fields, found {found.group(2)}" if found else _first_line(error)
            raise DataError(f"{path}:{line.group(1)}: malformed row ({detail})"
                            + (f": `{original.group(1)}`" if original else "")) from None
        raise _conversion_error(loaded, spec, path, raw, header, line_offset, text) or \
            DataError(f"{path}: {_first_line(error)}") from None


def _conversion_error(loaded, spec, path, raw, header, line_offset, text) -> DataError | None:
    """Find the first value that does not convert, and name its line and column."""
    numbered = f"(SELECT row_number() OVER () AS __line, * FROM {raw})"
    for column in spec.columns.values():
        if column.source not in header:
            continue
        source = quote(column.source)
        if column.type.is_list and text:
            bad = f"{source} IS NOT NULL AND NOT json_valid({source})"
        else:
            bad = f"{source} IS NOT NULL AND TRY_CAST({source} AS {duckdb_type(column.type)}) IS NULL"
        row = loaded.connection.execute(
            f"SELECT __line, CAST({source} AS VARCHAR) FROM {numbered} WHERE {bad} ORDER BY __line LIMIT 1").fetchone()
        if row is not None:
            line, value = row
            return DataError(f"{path}:{line + line_offset}: column `{column.source}`: {value!r} is not a "
                             f"{column.type}", hint=_type_hint(column.type))
    return None


def _type_hint(column_type: t.Type) -> str | None:
    return {t.TIMESTAMP: "timestamps look like 2026-01-31 09:30:00", t.DATE: "dates look like 2026-01-31",
            t.BOOL: "use true or false", t.DECIMAL: "use a plain number such as 12.50",
            t.INT: "use a whole number"}.get(column_type, "lists are JSON arrays such as [\"a\", \"b\"]"
                                             if column_type.is_list else None)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
