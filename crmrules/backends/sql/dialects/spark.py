"""Spark SQL (3.x, 4.x): arrays with array_contains/size, collect_set, Java regular expressions.

Decimals: Spark holds at most 38 digits, and when two decimals need more between them
(DECIMAL(38, 6) money against the literal 100.1234567, DECIMAL(10, 7)) it drops the
finer one's extra places, silently. So money is read as DECIMAL(24, 6) (18 integer
digits: past a quintillion the cast fails, in ANSI mode an error), each sum or
difference is cast back to 18 integer digits, and a literal has at most 20 places:
the common type always fits in 38 digits and keeps every place. A product or
quotient whose operands have more places than Spark keeps exactly is refused.
"""

from __future__ import annotations

from sqlglot import exp

from crmrules import types as t
from crmrules.backends.sql.dialect import MONEY_SCALE, SqlDialect, call, case_when, cast, number

INTEGER_DIGITS = 18  # money's integer digits in Spark: 38 less the places a literal may have
MAX_PLACES = 38 - INTEGER_DIGITS


def _scale(value: exp.Expression) -> int:
    """The decimal places of a decimal expression as Spark types it (at least money's)."""
    match value:
        case exp.Literal(is_number=True):
            return len(value.name.partition(".")[2])
        case exp.Cast() if value.to.expressions:
            return int(value.to.expressions[-1].name)
        case exp.Mul():
            return _scale(value.this) + _scale(value.expression)
        case exp.Round() if isinstance(places := value.args.get("decimals"), exp.Literal) and places.is_number:
            return max(min(_scale(value.this), int(places.name)), MONEY_SCALE)
    return max([MONEY_SCALE, *(_scale(child) for child in value.iter_expressions())])


class Spark(SqlDialect):
    """Spark 3.x with spark.sql.ansi.enabled off and the session time zone set to the store's."""

    name = "spark"
    sqlglot_name = "spark"

    def decimal_column(self, column, where=""):
        return cast(column, f"DECIMAL({INTEGER_DIGITS + MONEY_SCALE}, {MONEY_SCALE})")

    def decimal(self, value):
        places = max(-value.as_tuple().exponent, 0)
        if places > MAX_PLACES:
            raise self.unsupported(f"the decimal {value} (more than {MAX_PLACES} decimal places)")
        return number(value)

    def exact(self, value, value_type):
        if value_type != t.DECIMAL:
            return value
        # a sum needs one digit more than its operands: cast back, or the next one would drop places
        places = _scale(value)
        return cast(value, f"DECIMAL({INTEGER_DIGITS + places}, {places})")

    def multiply(self, a, b, a_type, b_type):
        places = sum(_scale(v) for v, v_type in ((a, a_type), (b, b_type)) if v_type == t.DECIMAL)
        if places > MONEY_SCALE:
            raise self.unsupported(f"multiplying by a decimal with more than {MONEY_SCALE} decimal places")
        return super().multiply(a, b, a_type, b_type)

    def divide(self, a, b):
        if max(_scale(a), _scale(b)) > 12:
            raise self.unsupported("dividing a decimal with more than 12 decimal places")
        quotient = exp.Div(this=cast(a, "DECIMAL(38, 12)"),
                           expression=exp.Nullif(this=cast(b, "DECIMAL(38, 12)"), expression=number(0)))
        return exp.Round(this=quotient, decimals=number(MONEY_SCALE))

    def days_between(self, start, end):
        return call("datediff", end, start)

    def hash32(self, text):
        # sha2 hashes the string's UTF-8 bytes; conv reads the first 8 hex digits as base 16
        hexadecimal = call("substr", call("sha2", text, number(256)), number(1), number(8))
        return cast(call("conv", hexadecimal, number(16), number(10)), "BIGINT")

    def list_length(self, value):
        # size(NULL) is -1 unless ANSI mode is on; the language says null
        return case_when(exp.Is(this=value, expression=exp.Null()), exp.Null(), otherwise=call("size", value.copy()))


    def distinct_list(self, value, condition):
        keep = case_when(condition, value) if condition is not None else value
        return call("collect_set", keep)

    def empty_list(self, element):
        return cast(call("array"), "ARRAY<STRING>")
