"""Trino: emitted and checked as golden SQL (no engine here)."""

from __future__ import annotations

from sqlglot import exp

from crmrules import types as t
from crmrules.backends.sql.dialect import _UNIT_NAMES, SqlDialect, call, case_when, cast, number


class Trino(SqlDialect):
    """Trino: date_add clamps months; sqlglot's interval arithmetic would not."""

    name = "trino"
    sqlglot_name = "trino"

    def shift(self, value, duration, sign, value_type, result_type):
        unit = exp.Literal.string(_UNIT_NAMES[duration.unit].lower())
        moved = call("date_add", unit, number(duration.amount * sign), value)
        return cast(moved, "DATE") if result_type == t.DATE else cast(moved, "TIMESTAMP")

    def days_between(self, start, end):
        return call("date_diff", exp.Literal.string("day"), start, end)

    def regex_search(self, value, pattern, node):
        return call("regexp_like", value, exp.Literal.string(self.ascii_pattern(pattern, node)))

    def make_date(self, year, month, day):
        return call("from_iso8601_date", call("format", exp.Literal.string("%04d-%02d-%02d"), year, month, day))

    def hash32(self, text):
        hexadecimal = call("substr", call("to_hex", call("sha256", call("to_utf8", text))), number(1), number(8))
        return call("from_base", hexadecimal, number(16))

    def list_contains(self, haystack, needle):
        return call("contains", haystack, needle)

    def list_length(self, value):
        return call("cardinality", value)

    def distinct_list(self, value, condition):
        keep = case_when(condition, value) if condition is not None else value
        return call("array_distinct", call("array_agg", keep))
