"""The language's semantics on every engine: 3-valued logic, exact money, windows, as-of, empty aggregates.

Each test runs on the interpreter, the generated-code engine, DuckDB, SQLite and
PostgreSQL, and a sample of them on Spark, through the one Backend protocol: the
same rule and customer must give the same answer everywhere.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from datasets import with_unique_ids
from engines import ENGINES, EngineData
from helpers import EXTRA_COLUMNS

import crmrules
from crmrules.context import evaluation_context

# Spark starts slowly and runs each query in about a second: it runs a sample of the suite
SPARK_SAMPLE = {"test_comparison_with_null_is_unknown", "test_aggregates_over_no_rows",
                "test_within_30d_is_exactly_the_last_30_calendar_days", "test_segment_membership_is_two_valued",
                "test_functions", "test_as_of_hides_future_rows"}


def pytest_generate_tests(metafunc):
    if "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", [e for e in ENGINES if e != "spark" or metafunc.function.__name__ in SPARK_SAMPLE])


@pytest.fixture
def member(engine, request):
    """`member(condition, customer, now, rules)`: whether the customer is in `segment s: condition` on `engine`."""

    def member(condition: str, customer: dict, now=date(2026, 6, 30), rules: str = "") -> bool:
        rule_set = crmrules.load_text(f"{rules}\nsegment s: {condition}\n", schema=EXTRA_COLUMNS)
        people = with_unique_ids([{"id": "c1", **customer}])
        data = EngineData(engine, people, rule_set.schema, request)
        try:
            return "c1" in data.members(rule_set.program, ["s"], evaluation_context(now, rule_set.schema))["s"]
        finally:
            data.close()

    return member

# ------------------------------------------------------------ three-valued logic
# `p` and `q` are true, false or unknown (null) through a nullable bool column.
TRUTH = {True: "true", False: "false", None: "unknown"}


def _tri(value):
    return {"vip": value}


def _and(a, b):
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _or(a, b):
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _not(a):
    return None if a is None else not a


@pytest.mark.parametrize("a", [True, False, None])
@pytest.mark.parametrize("b", [True, False, None])
def test_and_or_truth_tables(a, b, member):
    customer = {"vip": a, "email_subscribed": b}
    assert member("vip and email_subscribed", customer) == (_and(a, b) is True)
    assert member("vip or email_subscribed", customer) == (_or(a, b) is True)
    assert member("not (vip and email_subscribed)", customer) == (_not(_and(a, b)) is True)
    assert member("not (vip or email_subscribed)", customer) == (_not(_or(a, b)) is True)
    assert member("(vip and email_subscribed) is null", customer) == (_and(a, b) is None)
    assert member("(vip or email_subscribed) is null", customer) == (_or(a, b) is None)


@pytest.mark.parametrize("a", [True, False, None])
def test_not_unknown_is_unknown(a, member):
    assert member("not vip", _tri(a)) == (a is False)
    assert member("vip is null", _tri(a)) == (a is None)
    assert member("vip is not null", _tri(a)) == (a is not None)


@pytest.mark.parametrize("age", [None, 25, 30, 35])
def test_comparison_with_null_is_unknown(age, member):
    customer = {"age": age}
    assert member("age > 30", customer) == (age is not None and age > 30)
    # the documented pitfall: `not age > 30` leaves out customers of unknown age
    assert member("not age > 30", customer) == (age is not None and age <= 30)
    assert member("age is null or age <= 30", customer) == (age is None or age <= 30)


@pytest.mark.parametrize("age", [None, 10, 20, 30, 40])
def test_between_and_in_with_null(age, member):
    customer = {"age": age}
    assert member("age between 20 and 30", customer) == (age is not None and 20 <= age <= 30)
    assert member("not (age between 20 and 30)", customer) == (age is not None and not 20 <= age <= 30)
    assert member("age in [10, 30]", customer) == (age in (10, 30))
    assert member("age not in [10, 30]", customer) == (age is not None and age not in (10, 30))


@pytest.mark.parametrize("tags", [None, [], ["vip", None], [None]])
@pytest.mark.parametrize("nickname", [None, "vip", "x"])
def test_membership_in_a_list_value_with_nulls(tags, nickname, member):
    # a null list or needle is unknown (so `not` of it is no member either); null elements never match
    customer = {"tags": tags, "nickname": nickname}
    found = None if tags is None or nickname is None else nickname in [t for t in tags if t is not None]
    assert member("nickname in tags", customer) == (found is True)
    assert member("not (nickname in tags)", customer) == (found is False)
    assert member('"vip" in tags', customer) == (tags is not None and "vip" in tags)
    assert member('not ("vip" in tags)', customer) == (tags is not None and "vip" not in tags)


def test_partition_of_a_predicate(member):
    for age in (None, 5, 50):
        customer = {"age": age}
        verdicts = [member(p, customer) for p in ("age > 18", "not (age > 18)", "(age > 18) is null")]
        assert verdicts.count(True) == 1


def test_segment_membership_is_two_valued(member):
    rules = "segment adult: age >= 18\nsegment known: nickname is not null"
    unknown_age = {"age": None, "nickname": "z"}
    # `adult` is unknown for this customer, so it is not a member, and `known - adult` keeps them
    assert member("known - adult", unknown_age, rules=rules)
    assert member("known and not adult", unknown_age, rules=rules)
    assert member("known & adult", {"age": 20, "nickname": "z"}, rules=rules)
    assert member("adult | known", {"age": 3, "nickname": "z"}, rules=rules)
    assert not member("adult | known", {"age": 3, "nickname": None}, rules=rules)


# ---------------------------------------------------------------- exact money
@pytest.mark.parametrize(("total", "expected"), [
    (Decimal("100.00"), False), (Decimal("100.01"), True), (Decimal("100"), False), (100, False),
    (101, True), (100.01, True), (100.0, False),
])
def test_decimal_threshold(total, expected, member):
    customer = {"orders": [{"total": total, "created_at": datetime(2026, 1, 1)}]}
    assert member("sum(orders.total) > 100", customer) is expected
    assert member("max(orders.total) > 100", customer) is expected


def test_decimal_sums_do_not_drift(member):
    orders = [{"total": Decimal("0.1"), "created_at": datetime(2026, 1, 1)},
              {"total": Decimal("0.2"), "created_at": datetime(2026, 1, 2)}]
    assert member("sum(orders.total) == 0.3", {"orders": orders})
    floats = [{"total": 0.1, "created_at": datetime(2026, 1, 1)},
              {"total": 0.2, "created_at": datetime(2026, 1, 2)}]
    assert member("sum(orders.total) == 0.3", {"orders": floats})


def test_division_rounds_and_divides_by_zero_to_null(member):
    assert member("score / 3 == 0.333333", {"score": Decimal(1)})
    assert member("score / 0 is null", {"score": Decimal(1)})
    assert member("age % 3 == -1", {"age": -7})


# ------------------------------------------------------------------- windows
@pytest.mark.parametrize(("ordered", "inside"), [
    (datetime(2026, 6, 30, 23, 59), True),   # today counts
    (datetime(2026, 6, 1, 0, 0), True),      # 30th calendar day back, first instant
    (datetime(2026, 5, 31, 23, 59, 59), False),
    (datetime(2026, 7, 1, 0, 0), False),     # after now: invisible
])
def test_within_30d_is_exactly_the_last_30_calendar_days(ordered, inside, member):
    customer = {"orders": [{"total": 5, "created_at": ordered}]}
    assert member("count(orders where created_at within 30d) == 1", customer) is inside
    if ordered <= datetime(2026, 6, 30, 23, 59, 59):
        assert member("count(orders where days_since(created_at) < 30) == 1", customer) is inside


def test_within_calendar_months(member):
    customer = {"seen_at": datetime(2025, 12, 31, 12)}
    assert member("seen_at within 6mo", customer, now=date(2026, 6, 30))
    assert not member("seen_at within 6mo", customer, now=date(2026, 7, 1))


def test_as_of_hides_future_rows(member):
    orders = [{"total": 50, "created_at": datetime(2026, 1, 10), "status": "paid"},
              {"total": 70, "created_at": datetime(2026, 3, 10), "status": "paid"}]
    customer = {"orders": orders, "events": [{"type": "visit", "at": datetime(2026, 3, 1)}]}
    assert member("sum(orders.total) == 50", customer, now=date(2026, 2, 1))
    assert member("sum(orders.total) == 120", customer, now=date(2026, 3, 10))
    assert member("count(events) == 0", customer, now=date(2026, 2, 28))
    assert member("count(events) == 1", customer, now=datetime(2026, 3, 1))


def test_customer_registered_after_now_is_no_member(member):
    customer = {"registered_at": datetime(2026, 7, 1)}
    assert not member("true", customer, now=date(2026, 6, 30))
    assert member("true", customer, now=date(2026, 7, 1))


def test_undated_rows_are_visible_but_outside_every_window(member):
    customer = {"orders": [{"total": 5}]}
    assert member("count(orders) == 1", customer)
    assert member("count(orders where created_at within 3000d) == 0", customer)


# ---------------------------------------------------------------- aggregates
def test_aggregates_over_no_rows(member):
    for customer in ({}, {"orders": []}, {"orders": [{"total": None}]}):
        assert member("count(orders.total) == 0", customer)
        assert member("sum(orders.total) == 0", customer)
        assert member("avg(orders.total) is null", customer)
        assert member("min(orders.total) is null and max(orders.total) is null", customer)
        assert member("not any(orders where total > 0) and none(orders where total > 0)", customer)


def test_nested_aggregates_and_distinct(member):
    orders = [{"total": 10, "created_at": datetime(2026, 1, 1),
               "items": [{"category": "coat"}, {"category": "shoes"}]},
              {"total": 20, "created_at": datetime(2026, 1, 2), "items": [{"category": "coat"}]}]
    customer = {"orders": orders}
    assert member('count(orders where any(items where category == "coat")) == 2', customer)
    assert member('count(order_items where category == "coat") == 2', customer)
    assert member('"shoes" in distinct(order_items.category)', customer)
    assert member("length(distinct(order_items.category)) == 2", customer)
    assert member("avg(orders.total) == 15", customer)


def test_text_operators(member):
    customer = {"email": "Ana@Example.com", "tags": ["vip", None]}
    assert member('email contains "@Example"', customer)
    assert member('lower(email) starts_with "ana"', customer)
    assert member('email matches "^[a-z]+@"', customer) is False
    assert member('email matches "(?i)^[a-z]+@"', customer)
    assert member('tags contains "vip" and "vip" in tags and not ("x" in tags)', customer)


def test_functions(member):
    customer = {"birthday": date(2000, 2, 29), "nickname": " z ", "score": Decimal("-2.5")}
    assert member("month(birthday) == 2 and day(birthday) == 29 and year(birthday) == 2000", customer)
    assert member('trim(nickname) == "z" and length(nickname) == 3', customer)
    assert member("abs(score) == 2.5 and round(score) == -3 and round(score, 1) == -2.5", customer)
    assert member("coalesce(age, 7) == 7 and if(score > 0, 1, 2) == 2", customer)
    assert member("birthday + 1y == 2001-02-28", customer)
    assert member("days_between(birthday, 2000-03-01) == 1", customer)


# ------------------------------------------------------------------ bad data
def test_wrong_types_become_data_errors():
    rules = crmrules.load_text("segment s: sum(orders.total) > 100")
    with pytest.raises(crmrules.DataError) as caught:
        rules.segment("s").matches({"orders": [{"total": "lots"}]}, date(2026, 1, 1))
    assert "customer.orders[0].total: expected decimal, got string 'lots'" in caught.value.message
    with pytest.raises(crmrules.DataError):
        rules.segment("s").matches({"orders": [{"total": 5}]}, date(2026, 1, 1), validate=True) or \
            rules.segment("s").matches({"orders": "nope"}, date(2026, 1, 1), validate=True)


def test_strings_and_aware_timestamps_are_converted():
    rules = crmrules.load_text("segment s: count(orders where created_at within 1d) == 1")
    customer = {"orders": [{"total": "5.00", "created_at": "2026-06-30T22:30:00-02:00"}]}
    # 22:30 at UTC-2 is 00:30 UTC on July 1st: after now, so invisible
    assert not rules.segment("s").matches(customer, date(2026, 6, 30))
    assert rules.segment("s").matches(customer, date(2026, 7, 1))


def test_duration_settings_are_values_on_every_engine(engine, request):
    """A duration-valued attribute (a setting such as `rfm_period`) asked for as a value: the same Duration
    from every engine (SQL carries it as its text), never an internal error."""
    from crmrules.ast import Duration, DurationUnit

    rule_set = crmrules.load_text("attribute p = 30d\nattribute q = if(points > 100, 2w, 6mo)\n",
                                  schema=EXTRA_COLUMNS)
    people = with_unique_ids([{"id": "c1", "points": 500}, {"id": "c2", "points": 5}, {"id": "c3"}])
    data = EngineData(engine, people, rule_set.schema, request)
    try:
        got = data.values(rule_set.program, ["p", "q"], evaluation_context(date(2026, 6, 30), rule_set.schema))
    finally:
        data.close()
    month, weeks = Duration(amount=6, unit=DurationUnit.MONTH), Duration(amount=2, unit=DurationUnit.WEEK)
    assert got == {"c1": {"p": Duration(30, DurationUnit.DAY), "q": weeks},
                   "c2": {"p": Duration(30, DurationUnit.DAY), "q": month},
                   "c3": {"p": Duration(30, DurationUnit.DAY), "q": month}}
