"""SQLite: no DECIMAL, no arrays, no date arithmetic that clamps months; each is built here by hand.

- Money is exact as integers scaled by 10^MONEY_SCALE: a decimal column is read
  as `CAST(ROUND(x * 1000000) AS INTEGER)` and decimal literals are scaled the
  same way, so sums and comparisons are integer arithmetic. SQLite's integers hold
  about ±9.2 trillion of money (MONEY_LIMIT); past that SQLite would silently turn
  to inexact REAL, so every read of a money column (`crm_money`), every money sum,
  difference and product (`crm_exact`) and every division (`crm_div`, exact in
  Python) goes through a function the runner registers, which raises E0505
  instead (`money_functions`).
- Timestamps are text in one fixed-width form, `YYYY-MM-DD HH:MM:SS.ffffff`,
  which sorts like time; dates are `YYYY-MM-DD`.
- Lists are JSON arrays, searched with `json_each`.
- `REGEXP`, `lower` and `upper` are Python's, registered by the SQLite runner,
  so they behave exactly as in memory (patterns are the canonical ones every engine gets).
- Decimal literals finer than MONEY_SCALE places cannot be held and are refused (E0401).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.backends.sql.dialect import (MONEY_SCALE, SqlDialect, and_, call, cast, int_literal, number,
                                          paren)
from crmrules.errors import DataError

SCALE = 10 ** MONEY_SCALE
INT64 = 2 ** 63 - 1
MONEY_LIMIT = Decimal(INT64).scaleb(-MONEY_SCALE)  # the largest money SQLite holds as an integer of millionths
_HINT = "amounts this large need DuckDB or PostgreSQL (--backend duckdb)"
_SQLITE_UNITS = {ast.DurationUnit.SECOND: ("seconds", 1), ast.DurationUnit.MINUTE: ("minutes", 1),
                 ast.DurationUnit.HOUR: ("hours", 1), ast.DurationUnit.DAY: ("days", 1),
                 ast.DurationUnit.WEEK: ("days", 7)}


def _int(value: exp.Expression) -> exp.Expression:
    return cast(value, "INTEGER")


class SQLite(SqlDialect):
    """SQLite 3.35+ through Python's sqlite3 module."""

    name = "sqlite"
    sqlglot_name = "sqlite"
    materialized_ctes = True
    join_through_ids = True

    def read(self, value, value_type):
        if value is None:
            return None
        if value_type == t.DECIMAL:
            return Decimal(int(value)) / SCALE
        if value_type == t.BOOL:
            return bool(value)
        if value_type == t.TIMESTAMP:
            return datetime.fromisoformat(value)
        if value_type == t.DATE:
            return date.fromisoformat(value)
        if value_type.is_list:
            # JSON text here; the base sorts it as every engine does (a null element last, not a TypeError)
            return super().read(json.loads(value), value_type)
        return super().read(value, value_type)

    def timestamp(self, value):
        return exp.Literal.string(value.isoformat(sep=" ", timespec="microseconds"))

    def date(self, value):
        return exp.Literal.string(value.isoformat())

    def boolean(self, value):
        return number(1 if value else 0)

    def decimal(self, value: Decimal):
        scaled = value * SCALE
        if scaled != scaled.to_integral_value():
            # money is an integer of millionths here: a finer literal would be rounded, and answers with it
            raise self.unsupported(f"the decimal {value} (more than {MONEY_SCALE} decimal places)")
        if abs(scaled) > INT64:
            raise self.unsupported(f"the decimal {value} (beyond ±{MONEY_LIMIT}, the money SQLite holds exactly)")
        return number(int(scaled))

    def decimal_column(self, column, where=""):
        # exact, in Python: `ROUND(x * 1000000)` clamps past the range and rounds long texts through REAL
        return call("crm_money", column, exp.Literal.string(where))

    def int_as_decimal(self, value):
        known = int_literal(value)
        if known is not None:  # a literal is scaled (and checked) here, once
            return self.decimal(Decimal(known))
        return self.exact(exp.Mul(this=value, expression=number(SCALE)), t.DECIMAL)

    def exact(self, value, value_type):
        # past its integers SQLite silently computes in REAL: crm_exact refuses that result
        return call("crm_exact", value) if value_type == t.DECIMAL else value

    def decimal_zero(self):
        return number(0)

    def divide(self, a, b):
        # in SQL, 2|A|·S overflows into REAL from about 4.6 million: Python's integers do not overflow
        return call("crm_div", a, b)

    def multiply(self, a, b, a_type, b_type):
        if a_type == t.DECIMAL and b_type == t.DECIMAL:
            raise self.unsupported("multiplying two decimals exactly")
        product = exp.Mul(this=a, expression=b)
        return self.exact(product, t.DECIMAL) if t.DECIMAL in (a_type, b_type) else product

    def round(self, value, digits, value_type):
        if value_type != t.DECIMAL:
            return exp.Round(this=value, decimals=digits)
        places = int_literal(digits)
        if places is None:
            raise self.unsupported("rounding a decimal to a computed number of places")
        if places < MONEY_SCALE - 18:
            # a step past the largest integer SQLite holds: every value it holds rounds to 0
            return exp.Mul(this=value, expression=number(0))
        step = 10 ** max(MONEY_SCALE - places, 0)
        half = exp.Mul(this=call("sign", value), expression=number(step // 2))
        # integer division truncates towards zero, so adding half of the step first rounds half away
        return exp.Mul(this=paren(exp.Div(this=paren(exp.Add(this=value.copy(), expression=half)),
                                              expression=number(step), typed=True)), expression=number(step))

    def shift(self, value, duration, sign, value_type, result_type):
        if duration.unit in (ast.DurationUnit.MONTH, ast.DurationUnit.YEAR):
            months = duration.amount * (12 if duration.unit == ast.DurationUnit.YEAR else 1) * sign
            return self._add_months(value, months, value_type)
        unit, factor = _SQLITE_UNITS[duration.unit]
        modifier = exp.Literal.string(f"{'+' if sign > 0 else '-'}{duration.amount * factor} {unit}")
        if result_type == t.DATE:
            return call("date", value, modifier)
        moved = call("strftime", exp.Literal.string("%Y-%m-%d %H:%M:%S"), value, modifier)
        # strftime drops the microseconds; a stored timestamp keeps them at characters 20-26
        fraction = call("substr", value.copy(), number(20)) if value_type == t.TIMESTAMP else \
            exp.Literal.string(".000000")
        return exp.DPipe(this=moved, expression=fraction)

    def _add_months(self, value, months: int, value_type):
        # SQLite's '+1 month' rolls 31 January over into March; clamp to the month's last day instead
        start = call("date", value, exp.Literal.string("start of month"), exp.Literal.string(f"{months:+d} months"))
        last_day = _int(call("strftime", exp.Literal.string("%d"), value.copy(),
                                 exp.Literal.string("start of month"), exp.Literal.string(f"{months + 1:+d} months"),
                                 exp.Literal.string("-1 days")))
        day = _int(call("strftime", exp.Literal.string("%d"), value.copy()))
        offset = call("printf", exp.Literal.string("+%d days"),
                          exp.Sub(this=call("min", day, last_day), expression=number(1)))
        moved = call("date", start, offset)
        if value_type == t.DATE:
            return moved
        return exp.DPipe(this=moved, expression=call("substr", value.copy(), number(11)))

    def days_between(self, start, end):
        return _int(exp.Sub(this=call("julianday", end), expression=call("julianday", start)))

    def to_date(self, value):
        return call("date", value)

    def to_timestamp(self, value):
        return exp.DPipe(this=call("date", value), expression=exp.Literal.string(" 00:00:00.000000"))

    def date_part(self, part, value):
        return _int(call("strftime", exp.Literal.string({"year": "%Y", "month": "%m", "day": "%d"}[part]), value))

    def make_date(self, year, month, day):
        # printf gives "2026-00-00" for a null month; date() reads that as null, as the other engines give
        return call("date", call("printf", exp.Literal.string("%04d-%02d-%02d"), year, month, day))

    def hash32(self, text):
        # SQLite has no SHA-256: `crm_hash32` is Python's hashlib, registered by the runner (`prepare_sqlite`)
        return call("crm_hash32", text)

    def contains_text(self, haystack, needle):
        return exp.GT(this=call("instr", haystack, needle), expression=number(0))

    def starts_with(self, value, prefix):
        return exp.EQ(this=call("substr", value, number(1), call("length", prefix)), expression=prefix)


    def regex_search(self, value, pattern, node):
        # REGEXP is Python's here (registered by the runner), reading the canonical pattern as every engine
        return exp.RegexpLike(this=value, expression=exp.Literal.string(self.ascii_pattern(pattern, node)))

    def list_contains(self, haystack, needle):
        return exp.Exists(this=exp.select(number(1)).from_(call("json_each", haystack)).where(
            exp.EQ(this=exp.column("value"), expression=needle)))

    def list_length(self, value):
        return call("json_array_length", value)

    def distinct_list(self, value, condition):
        keep = exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))
        if condition is not None:
            keep = and_(condition, keep)
        return exp.Filter(this=call("json_group_array", exp.Distinct(expressions=[value])),
                          expression=exp.Where(this=keep))

    def empty_list(self, element):
        return exp.Literal.string("[]")


def money_functions(fail: Callable[[Exception], None]) -> dict[str, tuple[int, Callable]]:
    """The functions the dialect calls, by name: (number of arguments, function). `fail(error)` records
    the error and raises it: SQLite reports only "user-defined function raised exception"."""

    def too_large(what: str) -> None:
        fail(DataError(f"{what} is beyond ±{MONEY_LIMIT}, the money SQLite holds exactly (integers of "
                       f"millionths)", hint=_HINT, code="E0505"))

    def money(value, where):
        if value is None:
            return None
        try:
            number = Decimal(repr(value) if isinstance(value, float) else value)
        except (TypeError, ValueError, InvalidOperation):
            number = None
        if number is None or not number.is_finite():
            fail(DataError(f"{where}: {value!r} is not a money amount", hint="store money as a number",
                           code="E0501"))
        if number.adjusted() > 18:
            too_large(f"{where}: {value}")
        with localcontext(prec=60):
            scaled = number.scaleb(MONEY_SCALE).to_integral_value(ROUND_HALF_UP)
        if abs(scaled) > INT64:
            too_large(f"{where}: {value}")
        return int(scaled)

    def exact(value):
        if value is not None and type(value) is not int:
            too_large("a money result")
        return value

    def divide(a, b):
        if a is None or b is None or b == 0:
            return None
        exact(a), exact(b)
        # both are scaled integers: A·S / B rounded half away from zero
        quotient = (2 * abs(a) * SCALE + abs(b)) // (2 * abs(b))
        if quotient > INT64:
            too_large("a quotient")
        return quotient if (a < 0) == (b < 0) else -quotient

    return {"crm_money": (2, money), "crm_exact": (1, exact), "crm_div": (2, divide)}
