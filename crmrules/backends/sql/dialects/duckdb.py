"""DuckDB: the embedded default."""

from __future__ import annotations

from sqlglot import exp

from crmrules.backends.sql.dialect import (MONEY_SCALE, SqlDialect, and_, call, case_when, cast, number, paren,
                                          places)


# the money values a BIGINT holds scaled by 10^MONEY_SCALE, with room to spare (see DuckDB.divide)
_SMALL = exp.DataType.build(f"DECIMAL(12, {MONEY_SCALE})")


class DuckDB(SqlDialect):
    """DuckDB divides DECIMALs into DOUBLEs, so division is done on scaled HUGEINTs to stay exact."""

    name = "duckdb"
    sqlglot_name = "duckdb"
    materialized_ctes = True

    def divide(self, a, b):
        return _exact_division(a, b, whole_b=False)

    def divide_by_whole(self, a, b):
        # a whole divisor (an average's count) needs no scaling: fewer operations, which DuckDB also plans faster
        return _exact_division(a, b, whole_b=True)

    def modulo(self, a, b):
        # DuckDB gives a DOUBLE for DECIMALs of different scales: a literal finer than money sets one scale
        scale = max(places(a), places(b))
        if scale > MONEY_SCALE:
            a, b = cast(a, f"DECIMAL(38, {scale})"), cast(b, f"DECIMAL(38, {scale})")
        return super().modulo(a, b)

    def list_contains(self, haystack, needle):
        return call("list_contains", haystack, needle)

    def list_membership(self, haystack, needle, haystack_may_be_null, needle_may_be_null):
        # for a needle that is never null, DuckDB's own test says what the language does: null for a null list,
        # and null elements never match (`list_contains([NULL, 'a'], 'b')` is false); a null needle is not
        # always null in DuckDB (`list_contains([], NULL)` is false)
        if needle_may_be_null:
            return super().list_membership(haystack, needle, haystack_may_be_null, needle_may_be_null)
        return self.list_contains(haystack, needle)

    def list_length(self, value):
        return call("len", value)

    def starts_with(self, value, prefix):
        return call("starts_with", value, prefix)

    def change_case(self, value, upper):
        # DuckDB's own upper/lower map `ß` to `ẞ`, not `SS`: non-ASCII text goes to Python's str.upper/lower,
        # registered by the runner (`prepare_duckdb`); ASCII text (as many bytes as characters) stays native
        ascii_text = exp.EQ(this=call("strlen", value), expression=call("length", value.copy()))
        native = exp.Upper(this=value.copy()) if upper else exp.Lower(this=value.copy())
        return case_when(ascii_text, native, otherwise=call("crm_upper" if upper else "crm_lower", value.copy()))

    def hash32(self, text):
        # sha256 gives the digest as hex text: its first 8 digits, read as a hexadecimal number
        prefix = exp.DPipe(this=exp.Literal.string("0x"), expression=call(
            "substr", call("sha256", text), number(1), number(8)))
        return cast(paren(prefix), "BIGINT")

    def regex_search(self, value, pattern, node):
        return call("regexp_matches", value, exp.Literal.string(self.ascii_pattern(pattern, node)))

    def distinct_list(self, value, condition):
        keep = exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))
        if condition is not None:
            keep = and_(condition, keep)
        return exp.Filter(this=call("list", exp.Distinct(expressions=[value])), expression=exp.Where(this=keep))

    def empty_list(self, element):
        return cast(exp.Array(expressions=[]), "VARCHAR[]")


def _exact_division(a: exp.Expression, b: exp.Expression, whole_b: bool) -> exp.Expression:
    # scaling a DECIMAL(38, 6) into a HUGEINT costs more than the rest of a query like `avg(...) > 150`:
    # operands below a million (nearly every sum, count and average) are scaled as DECIMAL(12, 6), whose
    # scaled value is a BIGINT; larger ones take the HUGEINT way. Both are exact and round alike. Each
    # way repeats the operands: one holding a CASE (another division, an `if`) takes the HUGEINT way only,
    # so nested divisions do not multiply the query's length
    if a.find(exp.Case) or b.find(exp.Case):
        return exact_scaled_division(a, b, "HUGEINT", whole_b=whole_b)
    small_a, small_b = (exp.TryCast(this=x.copy(), to=_SMALL.copy()) for x in (a, b))
    fits = and_(exp.Not(this=exp.Is(this=small_a, expression=exp.Null())),
                exp.Not(this=exp.Is(this=small_b, expression=exp.Null())))
    fast = exact_scaled_division(a.copy(), b.copy(), "BIGINT", _SMALL.sql(), whole_b=whole_b)
    return case_when(fits, fast, otherwise=exact_scaled_division(a, b, "HUGEINT", whole_b=whole_b))


def exact_scaled_division(a: exp.Expression, b: exp.Expression, integer_type: str,
                          decimal_type: str = f"DECIMAL(38, {MONEY_SCALE})", whole_b: bool = False) -> exp.Expression:
    """`round_half_away(a / b, MONEY_SCALE)` computed on integers scaled by 10^MONEY_SCALE, exactly:
    `a` and `b` as `decimal_type` (values it cannot hold are the caller's to keep away), scaled into
    `integer_type`, which must also hold the numerator, 2·|a|·10^(2·MONEY_SCALE) (below 2·10^18 for
    DECIMAL(12, 6) and a BIGINT). A whole `b` (`whole_b`) is not scaled: with A = a·10^s,
    (2·A·10^s ± |b|·10^s) div (2·b·10^s) is (2·A ± |b|) div (2·b), the same quotient."""
    scale = number(10 ** MONEY_SCALE)
    big_a = cast(exp.Mul(this=cast(a, decimal_type), expression=scale), integer_type)
    twice_a = exp.Mul(this=number(2), expression=big_a)
    if whole_b:
        big_b = cast(b, integer_type)
    else:
        big_b = cast(exp.Mul(this=cast(b, decimal_type), expression=scale.copy()), integer_type)
        twice_a = exp.Mul(this=twice_a, expression=scale.copy())
    # DuckDB's `//` truncates toward zero, so q = (2·A·10^s + sign(A)·|B|) // (2·B) is A/B·10^s rounded half
    # away from zero: the half is added away from zero before the truncation
    numerator = exp.Add(this=twice_a, expression=exp.Mul(this=call("sign", big_a.copy()), expression=exp.Abs(
        this=big_b)))
    quotient = exp.IntDiv(this=paren(numerator), expression=paren(exp.Mul(this=number(2), expression=big_b.copy())))
    # a quotient by a whole number is no larger than A: on the BIGINT way it fits 12 digits, and times 10^-s it
    # is a DECIMAL(18, s), which DuckDB keeps in a BIGINT too
    small = whole_b and integer_type == "BIGINT"
    digits = 12 if small else 38
    unit = cast(number(f"0.{'0' * (MONEY_SCALE - 1)}1"), f"DECIMAL({MONEY_SCALE if small else 38}, {MONEY_SCALE})")
    result = exp.Mul(this=cast(quotient, f"DECIMAL({digits}, 0)"), expression=unit)
    return case_when(exp.EQ(this=big_b.copy(), expression=number(0)), exp.Null(), otherwise=result)
