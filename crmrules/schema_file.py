"""Schema mapping files (TOML or YAML) and dicts, validated with pydantic and applied to a schema."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, ValidationError

from crmrules import types as t
from crmrules.errors import SchemaError, did_you_mean
from crmrules.schema import ColumnSpec, Schema, TableSpec, build_schema

TYPE_NAMES = [str(s) for s in t.Scalar if s not in (t.Scalar.NULL, t.Scalar.DURATION)] + \
    [f"list[{s}]" for s in ("string", "int", "decimal", "date", "timestamp", "bool")]


class ColumnMapping(BaseModel):
    """`name = { type = "int", source = "their_name", values = ["a", "b"], closed = true }`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str | None = None
    source: str | None = None
    values: list[str] | None = None
    closed: bool | None = None


class TableMapping(BaseModel):
    """`[tables.NAME]`: the user's table name and column mappings."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str | None = None
    columns: dict[str, str | ColumnMapping] = {}


class MappingFile(BaseModel):
    """A whole mapping file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    timezone: str = "UTC"
    tables: dict[str, TableMapping] = {}


_FIELDS = {"": MappingFile, "table": TableMapping, "column": ColumnMapping}


def read_mapping(path: Path) -> dict:
    """The parsed content of a TOML or YAML mapping file; SchemaError with line and column if malformed."""
    if path.suffix not in (".toml", ".yaml", ".yml"):
        raise SchemaError(f"{path}: unknown schema file type `{path.suffix}`", hint="use .toml, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SchemaError(f"{path}: cannot read the schema file: {error.strerror}") from None
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise SchemaError(f"{path}: malformed TOML: {error}") from None
    import yaml  # only needed for YAML files

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise SchemaError(f"{path}{where}: malformed YAML: {getattr(error, 'problem', error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: a schema file holds a mapping, not a {type(data).__name__}")
    return data


def apply_mapping(base: Schema, data: dict, origin: str) -> Schema:
    """`base` with the tables, columns and time zone of a mapping applied."""
    try:
        mapping = MappingFile.model_validate(data)
    except ValidationError as error:
        raise _from_validation(error, origin) from None
    _check_timezone(mapping.timezone, origin)
    tables = dict(base.tables)
    for table_name, table in mapping.tables.items():
        if table_name not in tables:
            raise SchemaError(f"{origin}: tables.{table_name}: unknown table",
                              hint=did_you_mean(table_name, tables) or f"tables: {', '.join(tables)}")
        tables[table_name] = _apply_table(tables[table_name], table, f"{origin}: tables.{table_name}")
    return build_schema(tables, mapping.timezone)


def _apply_table(spec: TableSpec, table: TableMapping, where: str) -> TableSpec:
    columns = dict(spec.columns)
    for name, entry in table.columns.items():
        here = f"{where}.columns.{name}"
        existing = columns.get(name)
        entry = ColumnMapping(source=entry) if isinstance(entry, str) else entry
        column_type = existing.type if existing else None
        if entry.type is not None:
            column_type = t.parse_type(entry.type)
            if column_type is None:
                raise SchemaError(f"{here}.type: unknown type \"{entry.type}\"",
                                  hint=_quoted_hint(entry.type, TYPE_NAMES))
            if existing is not None and column_type != existing.type:
                raise SchemaError(f"{here}.type: `{name}` is a built-in {existing.type} column; its type "
                                  f"cannot change", hint="map it to a column of that type, or add a new column")
        if column_type is None:
            raise SchemaError(f"{here}: `{name}` is not a column of {spec.name}",
                              hint=(did_you_mean(name, columns) or "")
                              + f" to add a column, give its type: {name} = {{ type = \"int\" }}".lstrip())
        columns[name] = ColumnSpec(name, column_type, entry.source or (existing.source if existing else name),
                                   *_known_values(existing, entry, column_type, here))
    sources: dict[str, str] = {}
    for column in columns.values():
        if column.source in sources:
            raise SchemaError(f"{where}.columns: `{sources[column.source]}` and `{column.name}` both map to "
                              f"`{column.source}`", hint="map each column to a column of its own")
        sources[column.source] = column.name
    return TableSpec(spec.name, table.source or spec.source, MappingProxyType(columns), spec.time_column)


def _known_values(existing: ColumnSpec | None, entry: ColumnMapping, column_type: t.Type,
                  where: str) -> tuple[frozenset[str], bool]:
    """A column's known values: a closed list is replaced by the mapping's, an open one extended."""
    values = existing.values if existing else frozenset()
    closed = existing.closed if existing else False
    if entry.closed is not None:
        closed = entry.closed
    if entry.values is not None:
        if column_type != t.STRING:
            raise SchemaError(f"{where}.values: only a string column lists its values, this one is {column_type}")
        values = frozenset(entry.values) if closed else values | frozenset(entry.values)
    if closed and not values:
        raise SchemaError(f"{where}.closed: a closed column needs its `values`",
                          hint='values = ["paid", "pending"]')
    return values, closed


def _check_timezone(zone: str, origin: str) -> None:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SchemaError(f"{origin}: timezone: unknown time zone \"{zone}\"",
                          hint=_quoted_hint(zone, available_timezones())) from None


def _quoted_hint(name: str, candidates) -> str | None:
    hint = did_you_mean(name, candidates)
    return hint.replace("`", '"') if hint else None


def _from_validation(error: ValidationError, origin: str) -> SchemaError:
    errors = error.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(part) for part in first["loc"] if part not in ("str", "ColumnMapping")]
    path = ".".join(loc)
    if len(loc) == 4 and loc[2] == "columns" and first["type"] != "extra_forbidden":
        return SchemaError(f"{origin}: {path}: expected the name of your column, or a table such as "
                           "{ type = \"int\", source = \"your_name\" }")
    if first["type"] == "extra_forbidden":
        depth = {1: "", 3: "table", 5: "column"}.get(len(loc), "")
        known = list(_FIELDS[depth].model_fields)
        return SchemaError(f"{origin}: {path}: unknown key `{loc[-1]}`",
                           hint=did_you_mean(loc[-1], known) or f"known keys: {', '.join(known)}")
    return SchemaError(f"{origin}: {path or 'the file'}: {first['msg']}")
