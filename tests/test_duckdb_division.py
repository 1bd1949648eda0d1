"""DuckDB's division (backends/sql/dialects/duckdb.py) is exact both ways it is computed: operands below a
million are scaled into BIGINTs, larger ones into HUGEINTs; either way the quotient is `values.divide`'s,
rounded half away from zero to the money scale, and null for a zero divisor. A whole divisor (a count) takes
`divide_by_whole`, which leaves it unscaled: the same quotients."""

from __future__ import annotations

from decimal import Decimal

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from crmrules import values
from crmrules.backends.sql.dialect import cast, number
from crmrules.backends.sql.dialects import DIALECTS

# money as the engines hold it: up to 6 places, around both sides of the BIGINT way's limit (10^6)
MONEY = st.one_of(
    st.decimals(min_value=Decimal("-999999.999999"), max_value=Decimal("999999.999999"), places=6),
    st.decimals(min_value=Decimal("-99999999999999999.999999"), max_value=Decimal("99999999999999999.999999"),
                places=6),
    st.sampled_from([Decimal(0), Decimal("999999.999999"), Decimal("1000000"), Decimal("-1000000"),
                     Decimal("0.000001"), Decimal("-0.000005"), Decimal("2.5")]))
COUNTS = st.one_of(st.integers(min_value=-3_000_000, max_value=3_000_000),
                   st.integers(min_value=-(2**62), max_value=2**62), st.sampled_from([0, 1, -1, 2**63 - 1]))


def duckdb_quotient(connection, a, b):
    def operand(value):
        return cast(number(value), "DECIMAL(38, 6)") if isinstance(value, Decimal) else cast(number(value), "BIGINT")

    dialect = DIALECTS["duckdb"]()
    divide = dialect.divide if isinstance(b, Decimal) else dialect.divide_by_whole
    tree = exp.select(divide(operand(a), operand(b)))
    return connection.execute(tree.sql(dialect="duckdb")).fetchone()[0]


@settings(max_examples=300, deadline=None)
@given(MONEY, st.one_of(MONEY, COUNTS))
def test_division_is_exact_on_either_side_of_the_bigint_limit(a, b):
    with duckdb.connect() as connection:
        assert duckdb_quotient(connection, a, b) == values.divide(a, b)


def test_halves_round_away_from_zero_and_zero_divides_to_null():
    with duckdb.connect() as connection:
        cases = [(Decimal("0.000001"), 2), (Decimal("-0.000001"), 2), (Decimal("5000000.000001"), 2),
                 (Decimal("-5000000.000001"), 2), (Decimal("1"), 3), (Decimal("12345678901234.5"), 0),
                 (Decimal("3"), Decimal("0")), (Decimal("999999.999999"), 2**63 - 1), (Decimal("-1"), -(2**62)),
                 (Decimal("0.0000015"), 1), (Decimal("2.5"), -2)]
        for a, b in cases:
            assert duckdb_quotient(connection, a, b) == values.divide(a, b), (a, b)
        assert duckdb_quotient(connection, Decimal("0.000001"), 2) == Decimal("0.000001")
        assert duckdb_quotient(connection, Decimal("-5000000.000001"), 2) == Decimal("-2500000.000001")
