"""Check and convert one customer's data (a dict with `orders` and `events`) to the schema's types."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from crmrules import types as t
from crmrules.errors import DataError
from crmrules.schema import Schema

NESTED = {"customers": (("orders", "orders"), ("events", "events")), "orders": (("items", "order_items"),)}


def prepare_customer(customer: dict, schema: Schema) -> dict:
    """The customer with values converted to the schema's types; DataError names the first bad value.

    A customer whose values already have the right types comes back as the same object.
    """
    if not isinstance(customer, dict):
        raise DataError(f"a customer must be a mapping of fields, got {type(customer).__name__}")
    return _record(customer, "customers", schema, "customer")


# Python types a value may already have for each scalar type, so it needs no conversion
_READY = {t.Scalar.STRING: (str,), t.Scalar.BOOL: (bool,), t.Scalar.INT: (int,),
          t.Scalar.DECIMAL: (Decimal, int), t.Scalar.DATE: (date,), t.Scalar.TIMESTAMP: (datetime,)}
_plans: dict[int, tuple[Schema, dict[str, list[tuple[str, t.Type, tuple[type, ...]]]]]] = {}


def _plan(schema: Schema, table: str) -> list[tuple[str, t.Type, tuple[type, ...]]]:
    cached = _plans.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = _plans[id(schema)] = (schema, {})
    columns = cached[1].get(table)
    if columns is None:
        columns = cached[1][table] = [
            (c.source, c.type, () if c.type.is_list else _READY.get(c.type.scalar, ()))
            for c in schema.table(table).columns.values()]
    return columns


def _record(row: dict, table: str, schema: Schema, where: str) -> dict:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a record of {table}, got {type(row).__name__}")
    out = row
    for source, expected, ready in _plan(schema, table):
        value = row.get(source)
        if value is None or (value.__class__ in ready and not _is_aware(value)):
            continue
        converted = convert(value, expected, f"{where}.{source}", schema.timezone)
        if converted is not value:
            out = dict(row) if out is row else out
            out[source] = converted
    for key, child_table in NESTED.get(table, ()):
        rows = row.get(key)
        if rows is None:
            continue
        if not isinstance(rows, (list, tuple)):
            raise DataError(f"{where}.{key}: expected a list of {child_table}, got {type(rows).__name__}")
        converted = [_record(r, child_table, schema, f"{where}.{key}[{i}]") for i, r in enumerate(rows)]
        if any(a is not b for a, b in zip(converted, rows)):
            out = dict(row) if out is row else out
            out[key] = converted
    return out


def _is_aware(value) -> bool:
    return value.__class__ is datetime and value.tzinfo is not None


def convert(value, expected: t.Type, where: str, zone: str = "UTC"):
    """`value` as the Python type the engine uses for `expected`, or a DataError naming `where`."""
    if expected.is_list:
        if not isinstance(value, (list, tuple)):
            raise _bad(value, expected, where)
        element = t.element_of(expected)
        return [None if v is None else convert(v, element, f"{where}[{i}]", zone) for i, v in enumerate(value)]
    scalar = expected.scalar
    if scalar == t.Scalar.STRING and isinstance(value, str):
        return value
    if scalar == t.Scalar.BOOL and isinstance(value, bool):
        return value
    if isinstance(value, bool):
        raise _bad(value, expected, where)
    if scalar == t.Scalar.INT and isinstance(value, int):
        return value
    if scalar == t.Scalar.DECIMAL:
        if isinstance(value, (Decimal, int)):
            return value
        if isinstance(value, float):
            return Decimal(repr(value))  # the shortest text that reads back as this float
        if isinstance(value, str):
            try:
                return Decimal(value.strip())
            except InvalidOperation:
                pass
    if scalar == t.Scalar.DATE:
        if isinstance(value, datetime):
            raise _bad(value, expected, where, "give a date without a time of day")
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
    if scalar == t.Scalar.TIMESTAMP:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise _bad(value, expected, where, "use ISO 8601, e.g. 2026-01-31T09:30:00") from None
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
            return value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
    raise _bad(value, expected, where)


def _bad(value, expected: t.Type, where: str, hint: str | None = None) -> DataError:
    shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
    return DataError(f"{where}: expected {expected}, got {_type_word(value)} {shown}", hint=hint)


def _type_word(value) -> str:
    match value:
        case bool():
            return "bool"
        case int():
            return "int"
        case float() | Decimal():
            return "number"
        case str():
            return "string"
        case datetime():
            return "timestamp"
        case date():
            return "date"
        case list() | tuple():
            return "list"
        case dict():
            return "record"
    return type(value).__name__
