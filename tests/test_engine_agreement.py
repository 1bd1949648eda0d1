"""Agreement across engines on the inputs that used to split them (issue 9, item 9).

Every test runs on every engine (interpreter, generated code, DuckDB, SQLite,
PostgreSQL; Spark where marked), as the semantics suite does: decimal literals keep
every digit, rounding to any number of places, `%` by tiny numbers, string order
and case by code point, and money SQLite cannot hold is an error, never a wrong answer.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from datasets import with_unique_ids
from engines import ENGINES, EngineData
from helpers import EXTRA_COLUMNS

import crmrules
from crmrules.context import evaluation_context
from crmrules.errors import CrmRulesError, UnsupportedFeatureError

SPARK_SAMPLE = {"test_decimal_literals_keep_every_digit", "test_strings_order_by_code_point",
                "test_regex_classes_are_ascii", "test_unicode_case_mapping"}


def pytest_generate_tests(metafunc):
    if "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", [e for e in ENGINES if e != "spark" or metafunc.function.__name__ in SPARK_SAMPLE])


@pytest.fixture
def member(engine, request):
    """`member(condition, customer)`: whether the customer is in `segment s: condition` on `engine`."""

    def member(condition: str, customer: dict, now=date(2026, 6, 30)) -> bool:
        rule_set = crmrules.load_text(f"segment s: {condition}\n", schema=EXTRA_COLUMNS)
        data = EngineData(engine, with_unique_ids([{"id": "c1", **customer}]), rule_set.schema, request)
        try:
            return "c1" in data.members(rule_set.program, ["s"], evaluation_context(now, rule_set.schema))["s"]
        finally:
            data.close()

    return member


@pytest.mark.parametrize(("condition", "score", "expected"), [
    ("score > 100.1234567", "100.123457", True),
    ("score < 100.1234567", "100.123456", True),
    ("score == 100.1234567", "100.123457", False),
    ("score != 100.1234567", "100.123457", True),
    ("score >= 0.0000001", "0.000000", False),
    ("score + 0.0000004 > 1", "1.000000", True),
    ("score in [1.0000001, 2]", "1.000000", False),
])
def test_decimal_literals_keep_every_digit(condition, score, expected, engine, member):
    if engine == "spark":
        pass
    if engine == "sqlite":
        # SQLite holds money as integers of millionths: a finer literal is refused, never rounded
        with pytest.raises(UnsupportedFeatureError, match="decimal places"):
            member(condition, {"score": Decimal(score)})
        return
    assert member(condition, {"score": Decimal(score)}) is expected


@pytest.mark.parametrize(("condition", "score"), [
    ("round(score, -1) == 130", "125.000000"),
    ("round(score, -1) == -130", "-125.000000"),
    ("round(score, -2) == 100", "149.999999"),
    ("round(score, 100) == score", "1.234567"),
    ("round(score, -100) == 0", "1.234567"),
    ("round(score, 7) == score", "-1.234567"),
])
def test_round_to_any_number_of_places(condition, score, member):
    assert member(condition, {"score": Decimal(score)})


@pytest.mark.parametrize(("condition", "score", "expected"), [
    ("score % 0.0000001 == 0", "1.234567", True),
    ("score % 0.0000001 is null", "1.234567", False),
    ("score % 0.000001 == 0", "1.234567", True),
    ("score % 0.5 == 0.234567", "1.234567", True),
])
def test_modulo_by_tiny_decimals(condition, score, expected, engine, member):
    if engine == "sqlite" and "0.0000001" in condition:
        with pytest.raises(UnsupportedFeatureError, match="decimal places"):
            member(condition, {"score": Decimal(score)})
        return
    assert member(condition, {"score": Decimal(score)}) is expected


@pytest.mark.parametrize(("condition", "nickname", "expected"), [
    ('nickname < "a"', "B", True),
    ('nickname > "Z"', "a", True),
    ('nickname < "é"', "z", True),
    ('nickname >= "a"', "ä", True),
])
def test_strings_order_by_code_point(condition, nickname, expected, member):
    assert member(condition, {"nickname": nickname}) is expected


@pytest.mark.parametrize(("condition", "nickname", "expected"), [
    ('nickname < "a"', "B", True),
    ('nickname > "Z"', "a", True),
    ('min(orders.status) == "B"', None, True),
    ('top(orders.status) == "B"', None, True),
])
def test_postgres_orders_strings_by_code_point_whatever_the_collation(condition, nickname, expected, request):
    """A column of an ICU collation (which sorts "a" before "B") still compares by code point."""
    import psycopg

    customer = {"id": "c1", "nickname": nickname,
                "orders": [{"id": f"o{i}", "status": s, "total": 1} for i, s in enumerate(["a", "B", "b"])]}
    rule_set = crmrules.load_text(f"segment s: {condition}\n", schema=EXTRA_COLUMNS)
    data = EngineData("postgres", [customer], rule_set.schema, request)
    try:
        connection = data.data.connection
        if not connection.execute("SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'").fetchall():
            pytest.skip("this PostgreSQL has no ICU collations")
        connection.execute('ALTER TABLE customers ALTER COLUMN nickname TYPE TEXT COLLATE "und-x-icu"')
        connection.execute('ALTER TABLE orders ALTER COLUMN status TYPE TEXT COLLATE "und-x-icu"')
        # the collation does decide without COLLATE "C": "a" < "B" in it
        assert connection.execute("SELECT 'a' COLLATE \"und-x-icu\" < 'B'").fetchone()[0] is True
        got = "c1" in data.members(rule_set.program, ["s"], evaluation_context(date(2026, 6, 30), rule_set.schema))["s"]
    except psycopg.Error as error:
        pytest.fail(f"PostgreSQL: {error}")
    finally:
        data.close()
    assert got is expected


def test_postgres_sql_names_the_code_point_collation():
    from crmrules.backends.sql import members_query

    rule_set = crmrules.load_text('segment s: nickname < "a" and max(orders.status) > "b" and ntile(3, nickname) == 1 '
                                  'and top(orders.status) == "x" and lower(nickname) == "a"\n', schema=EXTRA_COLUMNS)
    sql = members_query(rule_set.program, "s", "postgres", evaluation_context(date(2026, 6, 30), rule_set.schema))
    assert '"c"."nickname" COLLATE "C" < \'a\'' in sql
    assert 'MAX("o"."status" COLLATE "C")' in sql
    assert 'ORDER BY CASE WHEN SUM(1) IS NULL THEN 1 ELSE 0 END, SUM(1) DESC NULLS LAST, "o"."status" COLLATE "C"' in sql
    assert 'ORDER BY "ranked"."v0" COLLATE "C"' in sql  # ntile's key, computed below its window
    assert 'LOWER("c"."nickname" COLLATE "und-x-icu")' in sql
    for dialect in ("duckdb", "sqlite", "spark"):  # they compare bytes already
        assert "COLLATE" not in members_query(rule_set.program, "s", dialect,
                                              evaluation_context(date(2026, 6, 30), rule_set.schema))


@pytest.mark.parametrize(("condition", "nickname", "expected"), [
    ('nickname matches "^\\\\w+$"', "école", False),
    ('nickname matches "^\\\\w+$"', "ab_9", True),
    ('nickname matches "^[\\\\w.]+$"', "a.b", True),
    ('nickname matches "^\\\\W$"', "é", True),
    ('nickname matches "^\\\\s$"', "\u00a0", False),
    ('nickname matches "^\\\\s$"', "\t", True),
    ('nickname matches "^\\\\d$"', "\u0663", False),
    ('nickname matches "^[a-z]+$"', "école", False),
    ('nickname matches "^\\\\s$"', "\v", True),
    ('nickname matches "^[\\\\s]$"', "\v", True),
    ('nickname matches "^\\\\S$"', "\v", False),
    ('nickname matches "(?i)^k$"', "\u212a", False),
    ('nickname matches "(?i)^[a-z]+$"', "\u017f", False),
    ('nickname matches "(?i)^ab$"', "AB", True),
    ('nickname matches "(?i)^s$"', "\u017f", False),
    ('nickname matches "(?i)^[^k]$"', "\u212a", True),
    ('nickname matches "(?i:k)\u212a"', "K\u212a", True),
    ('nickname matches "(?i)^[k-m]+$"', "KlM", True),
    ('nickname matches "(?i)^[\\w-]+$"', "a-B_\u212a", False),
    ('nickname matches "^[\\W]$"', "\u212a", True),
    ('nickname matches "^[^\\W\\d]+$"', "ab_", True),
    ('nickname matches "^[^\\W\\d]+$"', "a1", False),
    ('nickname matches "(?i)^[\\]\\^&x-]+$"', "]^&X-", True),
    ('nickname matches "(?i)é"', "É", False),
])
def test_regex_classes_are_ascii(condition, nickname, expected, engine, member):
    assert member(condition, {"nickname": nickname}) is expected


@pytest.mark.parametrize(("condition", "nickname", "expected"), [
    ('upper(nickname) == "ÉCOLE"', "école", True),
    ('lower(nickname) == "ñandú"', "ÑANDÚ", True),
    ('upper(nickname) == "STRASSE"', "straße", True),
    ('upper(nickname) == "FIX"', "\ufb01x", True),
    ('lower(nickname) == "i\u0307stanbul"', "İstanbul", True),
    ('length(upper(nickname)) == 7', "ßtraß", True),
    ('upper(nickname) is null', None, True),
])
def test_unicode_case_mapping(condition, nickname, expected, engine, member):
    assert member(condition, {"nickname": nickname}) is expected


@pytest.mark.parametrize("score", ["9300000000000.000000", "-9300000000000.5"])
def test_money_sqlite_cannot_hold_is_an_error(score, engine, member, request):
    if engine != "sqlite":
        assert member("score > 0", {"score": Decimal(score)}) is (Decimal(score) > 0)
        return
    with pytest.raises(CrmRulesError, match="score"):
        member("score > 0", {"score": Decimal(score)})


@pytest.mark.parametrize("score", ["5000000.000000", "-4700000.25"])
def test_sqlite_division_beyond_its_range_is_an_error_or_exact(score, engine, member, request):
    value = Decimal(score)
    try:
        got = member("score / 3 == 0 or score / 3 != 0", {"score": value})
    except CrmRulesError as error:
        assert engine == "sqlite" and "E0" in error.code
        return
    assert got is True
    # the quotient itself agrees with the in-memory one where an engine answers
    expected = crmrules.values.divide(value, 3)
    assert member(f"score / 3 == {expected}", {"score": value})


@pytest.mark.parametrize(("condition", "score"), [
    ("score * 2 > 0", "5000000000000"),
    ("score + score > 0", "5000000000000"),
    ("score - (0 - score) > 0", "5000000000000"),
    ("score / 0.000001 > 0", "10000000"),
    ("score * 2000000 > 0", "5000000"),
])
def test_money_results_sqlite_cannot_hold_are_an_error(condition, score, engine, member):
    if engine != "sqlite":
        assert member(condition, {"score": Decimal(score)}) is True
        return
    with pytest.raises(CrmRulesError, match="beyond") as error:
        member(condition, {"score": Decimal(score)})
    assert error.value.code == "E0505"


def test_money_sqlite_cannot_hold_names_its_column(engine, member):
    if engine != "sqlite":
        # the other engines hold these amounts: they answer
        assert member("score > 0", {"score": Decimal("-9300000000000.5")}) is False
        assert member("score == 9223372036854.775807", {"score": Decimal("9223372036854.775807")})
        return
    with pytest.raises(CrmRulesError, match=r"customers\.score") as error:
        member("score > 0", {"score": Decimal("-9300000000000.5")})
    assert error.value.code == "E0505"
    # the largest amount SQLite holds is read exactly
    assert member("score == 9223372036854.775807", {"score": Decimal("9223372036854.775807")})


@pytest.mark.parametrize(("condition", "refused"), [
    ("score < 10000000000000.5", UnsupportedFeatureError),  # a decimal literal: refused when compiled
    ("score < 10000000000000", CrmRulesError),  # an int made money: refused when computed
])
def test_money_literals_sqlite_cannot_hold_are_refused(condition, refused, engine, member):
    if engine != "sqlite":
        assert member(condition, {"score": Decimal(1)}) is True
        return
    with pytest.raises(refused, match="beyond"):
        member(condition, {"score": Decimal(1)})


def test_a_dot_never_matches_a_newline_in_any_engine(member):
    # PostgreSQL's `.` matches a newline where Python's, RE2's and Java's do not: the pattern is written as `[^\n]`
    assert not member('email matches "a.b"', {"email": "a\nb"})
    assert member('email matches "a.b"', {"email": "a-b"})
