"""PostgreSQL: exact NUMERIC arithmetic, arrays with `= ANY`, POSIX regular expressions."""

from __future__ import annotations

from sqlglot import exp

from crmrules import types as t
from crmrules.backends.sql.dialect import MONEY_SCALE, SqlDialect, call, cast, number, paren


def _collate(value: exp.Expression, collation: str) -> exp.Expression:
    if not isinstance(value, (exp.Column, exp.Literal)):
        value = paren(value)  # COLLATE binds tighter than `||`
    return exp.Collate(this=value, expression=exp.Identifier(this=collation, quoted=True))


class Postgres(SqlDialect):
    """PostgreSQL 13+, built with ICU (for Unicode upper/lower: `und-x-icu`).

    Strings compare and sort by code point whatever the database's collation (`COLLATE "C"`);
    upper/lower map case by Unicode, not by the database's LC_CTYPE (in a C database, ASCII only).
    """

    name = "postgres"
    sqlglot_name = "postgres"
    materialized_ctes = True

    def text_order(self, value, value_type):
        return _collate(value, "C") if value_type == t.STRING else value

    def change_case(self, value, upper):
        return super().change_case(_collate(value, "und-x-icu"), upper)

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

    def hash32(self, text):
        # the digest's first 4 bytes, big-endian, as a BIGINT (get_byte gives 0..255)
        digest = call("sha256", call("convert_to", text, exp.Literal.string("UTF8")))
        total = None
        for index, weight in enumerate((16777216, 65536, 256, 1)):
            byte = exp.Mul(this=cast(call("get_byte", digest.copy(), number(index)), "BIGINT"),
                           expression=number(weight))
            total = byte if total is None else exp.Add(this=total, expression=byte)
        return paren(total)

    def list_contains(self, haystack, needle):
        return exp.EQ(this=needle, expression=exp.Any(this=paren(haystack)))

    def list_length(self, value):
        return call("cardinality", value)


    def empty_list(self, element):
        return cast(exp.Array(expressions=[]), "TEXT[]")
