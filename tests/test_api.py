"""The Python API: load, load_text, segments, segment(name).matches, campaigns, tests."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

import crmrules

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shop" / "shop.crm"


def test_load_lists_segments_with_titles():
    rules = crmrules.load(EXAMPLE)
    assert rules.segments[0] == ("young_women", "Under 30, by birthday")
    assert ("coat_fans_not_dormant", None) in rules.segments
    # the catalogue's segments and attributes are usable, but only the file's own are listed
    assert ("dormant", "No paid order for 60 days or more (沉睡客户)") not in rules.segments
    assert rules.attributes == ["dormant_days", "coat_orders"]
    assert set(rules.campaigns) == {"winback", "cart_reminder", "birthday", "replenish", "first_order_thanks",
                                    "vip_welcome"}


def test_load_several_files_as_one_rule_set(tmp_path):
    (tmp_path / "a.crm").write_text("attribute spend = sum(orders.total)\n")
    (tmp_path / "b.crm").write_text("segment big: spend > 10\n")
    rules = crmrules.load([tmp_path / "a.crm", tmp_path / "b.crm"])
    assert rules.segment("big").matches({"orders": [{"total": 11}]}, date(2026, 1, 1))


def test_errors_of_several_files_come_together(tmp_path):
    (tmp_path / "a.crm").write_text("segment a: (\n")
    (tmp_path / "b.crm").write_text("segment b: )\n")
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load([tmp_path / "a.crm", tmp_path / "b.crm"])
    assert [e.span.source.name for e in caught.value.errors] == [str(tmp_path / "a.crm"), str(tmp_path / "b.crm")]


def test_matches_with_dates_datetimes_and_aware_now():
    rules = crmrules.load_text("segment recent: count(orders where created_at within 1d) > 0")
    customer = {"orders": [{"created_at": datetime(2026, 6, 30, 23, 0)}]}
    segment = rules.segment("recent")
    assert segment.matches(customer, date(2026, 6, 30))
    assert not segment.matches(customer, datetime(2026, 6, 30, 22, 0))
    assert segment.matches(customer, datetime(2026, 6, 30, 23, 30, tzinfo=timezone.utc))


def test_unknown_segment_suggests_the_closest():
    rules = crmrules.load(EXAMPLE)
    with pytest.raises(crmrules.UnknownNameError) as caught:
        rules.segment("dormnat")
    assert caught.value.hint == "did you mean `dormant`?"


def test_schema_from_a_dict_with_renamed_columns():
    schema = {"tables": {"customers": {"columns": {"points": "loyalty_points"}},
                         "orders": {"columns": {"total": "amount"}}}}
    rules = crmrules.load_text("segment s: points > 5 and sum(orders.total) > 1", schema=schema)
    customer = {"loyalty_points": 6, "orders": [{"amount": Decimal("1.5")}]}
    assert rules.segment("s").matches(customer, date(2026, 1, 1))


def test_run_tests_reports_each_case():
    results = crmrules.load(EXAMPLE).run_tests()
    assert [(r.segment, r.case, r.passed) for r in results] == [
        ("big_coat_buyers", 1, True), ("big_coat_buyers", 2, True), ("dormant", 1, True), ("dormant", 2, True),
        ("cart_abandoners", 1, True), ("cart_abandoners", 2, True)]


def test_prepare_customer_converts_json_values():
    schema = crmrules.default_schema()
    prepared = crmrules.prepare_customer({"birthday": "2000-01-02", "orders": [{"total": 1.1}]}, schema)
    assert prepared["birthday"] == date(2000, 1, 2)
    assert prepared["orders"][0]["total"] == Decimal("1.1")
    ready = {"id": "1", "orders": [{"total": Decimal(1)}]}
    assert crmrules.prepare_customer(ready, schema) is ready


PEOPLE = [
    {"id": "a", "orders": [{"id": "a1", "total": Decimal("120"), "status": "paid", "created_at": "2026-06-01"}]},
    # dormant: the last paid order 121 days before 2026-06-30 (60 to 179 days; from 180 on, lost)
    {"id": "b", "orders": [{"id": "b1", "total": Decimal("20"), "status": "paid", "created_at": "2026-03-01"}]},
    {"id": "c", "points": 9},
    # registered after the as-of date: does not exist yet
    {"id": "d", "registered_at": "2026-07-02T10:00:00", "points": 50},
]


@pytest.mark.parametrize("backend", ["memory", "interpreter", "duckdb", "sqlite"])
def test_run_on_a_list_of_customers_is_the_same_on_every_engine(backend):
    rules = crmrules.load_text("segment big: sum(orders.total) > 100\nsegment pointy: points > 5\n")
    result = rules.run(PEOPLE, backend=backend, as_of="2026-06-30", segments=["big", "pointy", "dormant"])
    assert result.members == {"big": ["a"], "pointy": ["c"], "dormant": ["b"]}
    assert result.as_of == date(2026, 6, 30)
    values = rules.values(PEOPLE, ["order_count", "total_spent"], backend=backend, as_of=date(2026, 6, 30))
    assert values["a"] == {"order_count": 1, "total_spent": Decimal(120)}
    assert set(values) == {"a", "b", "c"}


def test_the_rule_set_never_changes_and_segments_handed_out_stay_valid():
    rules = crmrules.load_text("segment big: sum(orders.total) > 100\n")
    program = rules.program
    big = rules.segment("big")
    dormant = rules.segment("dormant")  # a template: checked into a program of its own
    rules.values(PEOPLE, ["clv", "rfm_class"], as_of="2026-06-30")
    assert rules.program is program and "dormant" not in program.segments
    assert big.program is program and "dormant" in dormant.program.segments
    assert rules.segment("big") is big
    customer = {"orders": [{"total": 101, "status": "paid", "created_at": "2026-03-01"}]}
    assert big.matches(customer, date(2026, 6, 30))
    assert dormant.matches(customer, date(2026, 6, 30))
    assert rules.program_for(segments=["dormant"]) is dormant.program  # memoised per set of names
    with pytest.raises(crmrules.UnknownNameError, match="unknown name `clvv`"):
        rules.values(PEOPLE, ["clvv"])


def test_as_of_defaults_to_today_in_the_store_time_zone():
    from crmrules.context import today

    schema = {"timezone": "Pacific/Kiritimati", "tables": {}}
    rules = crmrules.load_text("segment everyone: true\n", schema=schema)
    assert rules.run(PEOPLE[:1], as_of=None).as_of == today("Pacific/Kiritimati")


def test_segment_sql_is_fixed_at_as_of():
    sql = crmrules.load_text("segment recent: count(orders where created_at within 1d) > 0").segment("recent")
    assert "2026-06-29" in sql.sql("duckdb", as_of="2026-06-30")


@pytest.mark.parametrize("backend", ["interpreter", "memory", "duckdb"])
def test_node_values_of_a_segment_for_one_customer(backend):
    rules = crmrules.load_text("segment big: sum(orders.total) > 100 and points > 5\n")
    values = rules.node_values("a", "big", data=PEOPLE, backend=backend, as_of="2026-06-30")
    body = rules.program.segments["big"].body
    assert values[body] is None  # true and unknown (no points)
    assert Decimal(120) in values.values()
    alone = rules.node_values({"points": 7}, "big", as_of="2026-06-30")
    assert alone[body] is False


def test_a_population_computed_first_serves_templates_asked_for_later():
    rules = crmrules.load_text("segment big: sum(orders.total) > 100\n")
    population = rules.population(PEOPLE, as_of="2026-06-30")
    value = rules.segment("rfm_important_value")
    now = date(2026, 6, 30)
    assert [p["id"] for p in PEOPLE if value.matches(p, now, population=population)] == \
        rules.run(PEOPLE, as_of=now, segments=["rfm_important_value"]).members["rfm_important_value"]
