"""PostgreSQL: exact NUMERIC arithmetic, arrays with `= ANY`, POSIX regular expressions."""

from __future__ import annotations

from sqlglot import exp

from crmrules.backends.sql.dialect import MONEY_SCALE, SqlDialect, call, cast, number, paren


class Postgres(SqlDialect):
    """PostgreSQL 13+."""

    name = "postgres"
    sqlglot_name = "postgres"
    materialized_ctes = True

    def divide(self, a, b):
        quotient = exp.Div(this=cast(a, "NUMERIC"), expression=exp.Nullif(this=cast(b, "NUMERIC"),
                                                                             expression=number(0)))
        return exp.Round(this=quotient, decimals=number(MONEY_SCALE))

    def days_between(self, start, end):
        # the difference of two DATEs is a whole number of days
        return paren(exp.Sub(this=end, expression=start))

    def date_part(self, part, value):
        # EXTRACT gives NUMERIC here: `text(month(x))` must read "6", as everywhere else
        return cast(super().date_part(part, value), "INT")

    def list_contains(self, haystack, needle):
        return exp.EQ(this=needle, expression=exp.Any(this=paren(haystack)))

    def list_length(self, value):
        return call("cardinality", value)


    def empty_list(self, element):
        return cast(exp.Array(expressions=[]), "TEXT[]")
