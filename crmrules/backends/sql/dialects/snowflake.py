"""Snowflake: emitted and checked as golden SQL (no engine here)."""

from __future__ import annotations

from sqlglot import exp

from crmrules import types as t
from crmrules.backends.sql.dialect import _UNIT_NAMES, SqlDialect, call, case_when, cast, number


class Snowflake(SqlDialect):
    """Snowflake: REGEXP_LIKE must match the whole string, so a search uses REGEXP_INSTR; DATEADD clamps months."""

    name = "snowflake"
    sqlglot_name = "snowflake"

    def shift(self, value, duration, sign, value_type, result_type):
        moved = call("DATEADD", exp.var(_UNIT_NAMES[duration.unit]), number(duration.amount * sign), value)
        return cast(moved, "DATE") if result_type == t.DATE else cast(moved, "TIMESTAMP")

    def days_between(self, start, end):
        return call("DATEDIFF", exp.var("DAY"), start, end)

    def regex_search(self, value, pattern, node):
        # the canonical pattern has no `(?i)` (Snowflake takes flags as a parameter): case-sensitive
        args = [value, exp.Literal.string(self.ascii_pattern(pattern, node)), number(1), number(1), number(0),
                exp.Literal.string("c")]
        return exp.GT(this=call("REGEXP_INSTR", *args), expression=number(0))

    def make_date(self, year, month, day):
        return call("DATE_FROM_PARTS", year, month, day)

    def hash32(self, text):
        hexadecimal = call("SUBSTR", call("SHA2", text, number(256)), number(1), number(8))
        return call("TO_NUMBER", hexadecimal, exp.Literal.string("XXXXXXXX"))

    def list_contains(self, haystack, needle):
        return call("ARRAY_CONTAINS", cast(needle, "VARIANT"), haystack)

    def list_length(self, value):
        return call("ARRAY_SIZE", value)

    def distinct_list(self, value, condition):
        keep = case_when(condition, value) if condition is not None else value
        return call("ARRAY_UNIQUE_AGG", keep)

    def empty_list(self, element):
        return call("ARRAY_CONSTRUCT")
