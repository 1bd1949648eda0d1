"""ClickHouse: emitted and checked as golden SQL (no engine here)."""

from __future__ import annotations

from sqlglot import exp

from crmrules import types as t
from crmrules.backends.sql.dialect import MONEY_SCALE, SqlDialect, call, case_when, number

_ADD = {"s": "addSeconds", "min": "addMinutes", "h": "addHours", "d": "addDays", "w": "addWeeks", "mo": "addMonths",
        "y": "addYears"}


class ClickHouse(SqlDialect):
    """ClickHouse: DateTime64(6) keeps microseconds; Decimal division keeps the dividend's scale, so widen first."""

    name = "clickhouse"
    sqlglot_name = "clickhouse"

    def timestamp(self, value):
        return call("toDateTime64", exp.Literal.string(value.isoformat(sep=" ", timespec="microseconds")),
                        number(6))

    def to_timestamp(self, value):
        return call("toDateTime64", value, number(6))

    def divide(self, a, b):
        widened = exp.Div(this=call("toDecimal128", a, number(12)),
                          expression=exp.Nullif(this=call("toDecimal128", b, number(12)), expression=number(0)))
        return call("round", widened, number(MONEY_SCALE))

    def shift(self, value, duration, sign, value_type, result_type):
        amount = number(duration.amount * sign)
        moved = call(_ADD[str(duration.unit)], value, amount)
        return call("toDate", moved) if result_type == t.DATE else moved

    def days_between(self, start, end):
        return call("dateDiff", exp.Literal.string("day"), start, end)

    def regex_search(self, value, pattern, node):
        return call("match", value, exp.Literal.string(self.ascii_pattern(pattern, node)))

    def make_date(self, year, month, day):
        return call("makeDate", year, month, day)

    def hash32(self, text):
        # reinterpretAsUInt32 reads little-endian: the 4 bytes reversed give the big-endian number
        return call("toUInt64", call("reinterpretAsUInt32", call("reverse", call(
            "substring", call("SHA256", text), number(1), number(4)))))

    def list_contains(self, haystack, needle):
        return call("has", haystack, needle)

    def list_length(self, value):
        return call("length", value)

    def distinct_list(self, value, condition):
        keep = case_when(condition, value) if condition is not None else value
        return call("groupUniqArray", keep)
