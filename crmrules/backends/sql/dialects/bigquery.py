"""BigQuery: emitted and checked as golden SQL (no engine here)."""

from __future__ import annotations

from sqlglot import exp

from crmrules import types as t
from crmrules.backends.sql.dialect import _UNIT_NAMES, MONEY_SCALE, SqlDialect, call, case_when, cast, number


class BigQuery(SqlDialect):
    """GoogleSQL: DATETIME for store-local timestamps, BIGNUMERIC money, DATE_ADD/DATETIME_ADD for intervals."""

    name = "bigquery"
    sqlglot_name = "bigquery"

    def timestamp(self, value):
        return cast(exp.Literal.string(value.isoformat(sep=" ", timespec="microseconds")), "DATETIME")

    def to_timestamp(self, value):
        return cast(value, "DATETIME")

    def divide(self, a, b):
        quotient = call("SAFE_DIVIDE", cast(a, "BIGNUMERIC"), cast(b, "BIGNUMERIC"))
        return call("ROUND", quotient, number(MONEY_SCALE), exp.Literal.string("ROUND_HALF_AWAY_FROM_ZERO"))

    def shift(self, value, duration, sign, value_type, result_type):
        # sqlglot turns `x + INTERVAL` into arithmetic BigQuery rejects; its functions clamp months
        unit = exp.var(_UNIT_NAMES[duration.unit])
        amount = number(duration.amount * sign)
        if result_type == t.DATE:
            return exp.DateAdd(this=value, expression=amount, unit=unit)
        return exp.DatetimeAdd(this=cast(value, "DATETIME"), expression=amount, unit=unit)

    def days_between(self, start, end):
        return call("DATE_DIFF", end, start, exp.var("DAY"))

    def regex_search(self, value, pattern, node):
        return call("REGEXP_CONTAINS", value, exp.Literal.string(self.ascii_pattern(pattern, node)))

    def make_date(self, year, month, day):
        return call("DATE", year, month, day)

    def hash32(self, text):
        # SHA256 of a STRING hashes its UTF-8 bytes; a "0x" text casts to INT64 as hexadecimal
        hexadecimal = call("SUBSTR", call("TO_HEX", call("SHA256", text)), number(1), number(8))
        return cast(call("CONCAT", exp.Literal.string("0x"), hexadecimal), "INT64")

    def list_contains(self, haystack, needle):
        element = exp.to_identifier("element")
        return exp.Exists(this=exp.select(number(1)).from_(
            exp.Unnest(expressions=[haystack], alias=exp.TableAlias(columns=[element]))).where(
            exp.EQ(this=exp.column(element), expression=needle)))

    def list_length(self, value):
        return call("ARRAY_LENGTH", value)

    def distinct_list(self, value, condition):
        keep = case_when(condition, value) if condition is not None else value
        # BigQuery rejects arrays holding NULL
        return exp.ArrayAgg(this=exp.IgnoreNulls(this=exp.Distinct(expressions=[keep])))

    def empty_list(self, element):
        return exp.Array(expressions=[])
