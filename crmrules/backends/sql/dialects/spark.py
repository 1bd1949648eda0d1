"""Spark SQL (3.x): arrays with array_contains/size, collect_set, Java regular expressions."""

from __future__ import annotations

from sqlglot import exp

from crmrules.backends.sql.dialect import MONEY_SCALE, SqlDialect, call, case_when, cast, number


class Spark(SqlDialect):
    """Spark 3.x with spark.sql.ansi.enabled off and the session time zone set to the store's."""

    name = "spark"
    sqlglot_name = "spark"

    def divide(self, a, b):
        quotient = exp.Div(this=cast(a, "DECIMAL(38, 12)"),
                           expression=exp.Nullif(this=cast(b, "DECIMAL(38, 12)"), expression=number(0)))
        return exp.Round(this=quotient, decimals=number(MONEY_SCALE))

    def days_between(self, start, end):
        return call("datediff", end, start)

    def list_length(self, value):
        # size(NULL) is -1 unless ANSI mode is on; the language says null
        return case_when(exp.Is(this=value, expression=exp.Null()), exp.Null(), otherwise=call("size", value.copy()))


    def distinct_list(self, value, condition):
        keep = case_when(condition, value) if condition is not None else value
        return call("collect_set", keep)

    def empty_list(self, element):
        return cast(call("array"), "ARRAY<STRING>")
