"""SQLite: no DECIMAL, no arrays, no date arithmetic that clamps months; each is built here by hand.

- Money is exact as integers scaled by 10^MONEY_SCALE: a decimal column is read
  as `CAST(ROUND(x * 1000000) AS INTEGER)` and decimal literals are scaled the
  same way, so sums and comparisons are integer arithmetic. Values up to about
  4.6 million survive division; about 9.2 trillion otherwise.
- Timestamps are text in one fixed-width form, `YYYY-MM-DD HH:MM:SS.ffffff`,
  which sorts like time; dates are `YYYY-MM-DD`.
- Lists are JSON arrays, searched with `json_each`.
- `REGEXP`, `lower` and `upper` are Python's, registered by the SQLite runner,
  so they behave exactly as in memory.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.backends.sql.dialect import MONEY_SCALE, SqlDialect, and_, call, case_when, cast, number, paren

SCALE = 10 ** MONEY_SCALE
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
            return sorted(json.loads(value))
        return value

    def timestamp(self, value):
        return exp.Literal.string(value.isoformat(sep=" ", timespec="microseconds"))

    def date(self, value):
        return exp.Literal.string(value.isoformat())

    def boolean(self, value):
        return number(1 if value else 0)

    def decimal(self, value: Decimal):
        return number(int((value * SCALE).to_integral_value()))

    def decimal_column(self, column):
        return _int(exp.Round(this=exp.Mul(this=column, expression=number(SCALE))))

    def int_as_decimal(self, value):
        return paren(exp.Mul(this=value, expression=number(SCALE)))

    def decimal_zero(self):
        return number(0)

    def divide(self, a, b):
        # both operands are already scaled integers: q = (2|A|·S + |B|) / (2|B|), integer division
        numerator = exp.Add(this=exp.Mul(this=exp.Mul(this=number(2), expression=exp.Abs(this=a)),
                                         expression=number(SCALE)), expression=exp.Abs(this=b))
        # `typed` keeps sqlglot from turning integer division into REAL division
        quotient = exp.Div(this=paren(numerator),
                           expression=paren(exp.Mul(this=number(2), expression=exp.Abs(this=b.copy()))), typed=True)
        sign = exp.Mul(this=call("sign", a.copy()), expression=call("sign", b.copy()))
        result = exp.Mul(this=sign, expression=paren(quotient))
        return case_when(exp.EQ(this=b.copy(), expression=number(0)), exp.Null(), otherwise=result)

    def multiply(self, a, b, a_type, b_type):
        if a_type == t.DECIMAL and b_type == t.DECIMAL:
            raise self.unsupported("multiplying two decimals exactly")
        return exp.Mul(this=a, expression=b)

    def round(self, value, digits, value_type):
        if value_type != t.DECIMAL:
            return exp.Round(this=value, decimals=digits)
        if not isinstance(digits, exp.Literal):
            raise self.unsupported("rounding a decimal to a computed number of places")
        places = int(digits.this)
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

    def contains_text(self, haystack, needle):
        return exp.GT(this=call("instr", haystack, needle), expression=number(0))

    def starts_with(self, value, prefix):
        return exp.EQ(this=call("substr", value, number(1), call("length", prefix)), expression=prefix)


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
