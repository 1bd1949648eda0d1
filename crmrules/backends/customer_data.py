"""Check and convert one customer's data (a dict with `orders` and `events`) to the schema's types."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from crmrules import types as t
from crmrules.errors import DataError, did_you_mean
from crmrules.schema import Schema

NESTED = {"customers": (("orders", "orders"), ("events", "events")), "orders": (("items", "order_items"),)}


def prepare_customer(customer: dict, schema: Schema, strict: bool = False) -> dict:
    """The customer with values converted to the schema's types; DataError names the first bad value.

    A customer whose values already have the right types comes back as the same object.
    `strict` also rejects keys the schema does not know (with the closest known key as the hint):
    a misspelt field would otherwise read as null.
    """
    if not isinstance(customer, dict):
        raise DataError(f"a customer must be a mapping of fields, got {type(customer).__name__}")
    return _record(customer, "customers", schema, "customer", strict)


# Python types a value may already have for each scalar type, so it needs no conversion
_READY = {t.Scalar.STRING: (str,), t.Scalar.BOOL: (bool,), t.Scalar.INT: (int,),
          t.Scalar.DECIMAL: (Decimal, int), t.Scalar.DATE: (date,), t.Scalar.TIMESTAMP: (datetime,)}
# the same promise as Python code over a value `{v}`, for the generated code's inline checks: true for a
# value the engine can use as it is, false for anything else (the caller tells null from a wrong type)
_TESTS = {t.Scalar.STRING: "type({v}) is str", t.Scalar.BOOL: "type({v}) is bool",
          t.Scalar.INT: "type({v}) is int", t.Scalar.DECIMAL: "(type({v}) is _D or type({v}) is int)",
          t.Scalar.DATE: "type({v}) is _date", t.Scalar.TIMESTAMP: "(type({v}) is _DT and {v}.tzinfo is None)"}
# the names those tests use
TEST_NAMES = {"_D": Decimal, "_date": date, "_DT": datetime}


def fits(value, expected: t.Type) -> bool:
    """Whether a (non-null) value is of the engine's own type for `expected`: what `type_test` checks,
    and money that is a finite number (the interpreter checks that too; generated code leaves it to
    the comparison, which raises on NaN)."""
    if expected.is_list:
        return value.__class__ is list
    return value.__class__ in _READY[expected.scalar] and not _needs_work(value)


def type_test(expected: t.Type, first: str, var: str) -> str:
    """Python code true when the value is of the engine's own type for `expected` (a list: a `list`;
    its elements are checked by `prepare_customer`); `first` is the first mention of the value (it may
    assign `var`), `var` every later one."""
    test = "type({v}) is list" if expected.is_list else _TESTS[expected.scalar]
    return test.replace("{v}", first, 1).replace("{v}", var)


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


def _record(row: dict, table: str, schema: Schema, where: str, strict: bool = False) -> dict:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a record of {table}, got {type(row).__name__}")
    if strict:
        _known_keys(row, table, schema, where)
    out = row
    for source, expected, ready in _plan(schema, table):
        value = row.get(source)
        if value is None or (value.__class__ in ready and not _needs_work(value)):
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
        converted = [_record(r, child_table, schema, f"{where}.{key}[{i}]", strict) for i, r in enumerate(rows)]
        if any(a is not b for a, b in zip(converted, rows)):
            out = dict(row) if out is row else out
            out[key] = converted
    return out


def _known_keys(row: dict, table: str, schema: Schema, where: str) -> None:
    known = [c.source for c in schema.table(table).columns.values()] + [key for key, _ in NESTED.get(table, ())]
    for key in row:
        if key not in known:
            raise DataError(f"{where}.{key}: `{key}` is not a column of {table}", hint=did_you_mean(str(key), known)
                            or f"the columns of {table}: {', '.join(known)}")


def _needs_work(value) -> bool:
    # an aware timestamp moves to the store's zone; NaN and infinite money are errors
    if value.__class__ is datetime:
        return value.tzinfo is not None
    return value.__class__ is Decimal and not value.is_finite()


def convert(value, expected: t.Type, where: str, zone: str = "UTC"):
    """`value` as the Python type the engine uses for `expected`, or a DataError naming `where`."""
    if expected.is_list:
        if not isinstance(value, (list, tuple)):
            raise _bad(value, expected, where)
        element = t.element_of(expected)
        return [None if v is None else convert(v, element, f"{where}[{i}]", zone) for i, v in enumerate(value)]
    scalar = expected.scalar
    # a subclass (a StrEnum, an IntEnum, pandas' Timestamp) becomes the plain type the engines compare
    if scalar == t.Scalar.STRING and isinstance(value, str):
        return str.__str__(value)
    if scalar == t.Scalar.BOOL and isinstance(value, bool):
        return value
    if isinstance(value, bool):
        raise _bad(value, expected, where)
    if scalar == t.Scalar.INT and isinstance(value, int):
        return int(value)
    if scalar == t.Scalar.DECIMAL:
        number = _decimal(value)
        if number is not None:
            if isinstance(number, Decimal) and not number.is_finite():
                raise _bad(value, expected, where, "money must be a finite number")
            return number
    if scalar == t.Scalar.DATE:
        if isinstance(value, datetime):
            raise _bad(value, expected, where, "give a date without a time of day")
        if isinstance(value, date):
            return date(value.year, value.month, value.day)
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
            return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                            value.microsecond, fold=value.fold)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
    raise _bad(value, expected, where)


def _decimal(value) -> Decimal | None:
    """A number given for money as a Decimal (NaN and infinities included: the caller rejects them)."""
    if isinstance(value, Decimal):
        return Decimal(value)
    if isinstance(value, int):
        return value if value.__class__ is int else int(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest text that reads back as this float
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


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
