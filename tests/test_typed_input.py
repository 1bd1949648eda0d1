"""Typed `matches()`: a value of the wrong Python type never produces an answer (issue 9, item 1).

The generated code reads each field once, by subscript, and checks its type (`type(x) is T`)
and falls back to `prepare_customer`, which converts what has one meaning (an ISO
date string, a float for money, an aware timestamp) or raises a DataError naming
the field. The interpreter behaves the same. `validate=True` also rejects keys the
schema does not know, with a suggestion.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

import crmrules
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.interpreter import Interpreter
from crmrules.context import evaluation_context
from crmrules.errors import DataError

NOW = date(2026, 6, 30)
SCHEMA = {"tables": {"customers": {"columns": {"balance": {"type": "decimal"}}}}}


def segment(rule: str):
    return crmrules.load_text(f"segment s: {rule}\n", schema=SCHEMA).segment("s")


def interpreted(rule: str, customer: dict):
    """The interpreter's verdict on one customer dict, as given (not prepared)."""
    rules = crmrules.load_text(f"segment s: {rule}\n", schema=SCHEMA)
    program = rules.program_for(segments=["s"])
    ctx = evaluation_context(NOW, program.schema)
    return Interpreter(program, customer, ctx).member("s")


WRONG = [
    # (rule, customer, the field the error names)
    ('"vip" in tags', {"id": "1", "tags": "xvipx"}, "tags"),
    ("email_subscribed", {"id": "1", "email_subscribed": "yes"}, "email_subscribed"),
    ("not email_subscribed", {"id": "1", "email_subscribed": 1}, "email_subscribed"),
    ('gender == "female"', {"id": "1", "gender": 7}, "gender"),
    ('gender != "female"', {"id": "1", "gender": ["female"]}, "gender"),
    ('gender in ["female", "male"]', {"id": "1", "gender": b"female"}, "gender"),
    ('email contains "@"', {"id": "1", "email": ["a@b"]}, "email"),
    ("points > 100", {"id": "1", "points": 150.5}, "points"),
    ("points == 1", {"id": "1", "points": True}, "points"),
    ("registered_at is null", {"id": "1", "registered_at": 20260101}, "registered_at"),
    ("birthday == 2000-01-01", {"id": "1", "birthday": datetime(2000, 1, 1, 12)}, "birthday"),
]


@pytest.mark.parametrize(("rule", "customer", "field"), WRONG)
def test_a_wrong_type_is_an_error_naming_the_field(rule, customer, field):
    with pytest.raises(DataError, match=rf"customer\.{field}\b"):
        segment(rule).matches(customer, NOW)


@pytest.mark.parametrize(("rule", "customer", "field"), WRONG)
def test_the_interpreter_rejects_the_same_wrong_types(rule, customer, field):
    with pytest.raises(DataError, match=rf"customer\.{field}\b"):
        interpreted(rule, customer)


CONVERTED = [
    # values with one meaning are converted on the slow path and answered
    ("balance > 100", {"id": "1", "balance": 100.5}, True),
    ("balance == 0.1", {"id": "1", "balance": 0.1}, True),
    ("balance == 0.1", {"id": "1", "balance": "0.10"}, True),
    ('"vip" in tags', {"id": "1", "tags": ("vip",)}, True),
    ("birthday == 2000-01-01", {"id": "1", "birthday": "2000-01-01"}, True),
    ("registered_at < 2026-01-01T00:00", {"id": "1", "registered_at": "2025-12-31T23:30:00-01:00"}, False),
    ("registered_at < 2026-01-01T00:00",
     {"id": "1", "registered_at": datetime(2025, 12, 31, 23, 30, tzinfo=timezone.utc)}, True),
]


@pytest.mark.parametrize(("rule", "customer", "expected"), CONVERTED)
def test_values_with_one_meaning_are_converted(rule, customer, expected):
    assert segment(rule).matches(customer, NOW) is expected
    assert interpreted(rule, customer) is expected


def test_subclasses_of_the_right_type_are_read_as_that_type():
    from enum import StrEnum

    class Gender(StrEnum):
        FEMALE = "female"

    class Stamp(datetime):
        pass

    customer = {"id": "1", "gender": Gender.FEMALE, "registered_at": Stamp(2020, 1, 1)}
    assert segment('gender == "female"').matches(customer, NOW) is True
    assert interpreted('gender == "female"', customer) is True


def test_fields_the_rule_does_not_read_are_not_checked_without_validate():
    assert segment("points > 1").matches({"id": "1", "points": 5, "tags": "oops"}, NOW) is True


def test_validate_rejects_unknown_keys_with_a_suggestion():
    with pytest.raises(DataError, match="emial_subscribed") as raised:
        segment("email_subscribed").matches({"id": "1", "emial_subscribed": True}, NOW, validate=True)
    assert "email_subscribed" in (raised.value.hint or "")


def test_validate_rejects_unknown_keys_of_nested_rows():
    customer = {"id": "1", "orders": [{"id": "o1", "totl": "5"}]}
    with pytest.raises(DataError, match=r"customer\.orders\[0\]\.totl") as raised:
        segment("count(orders) > 0").matches(customer, NOW, validate=True)
    assert "total" in (raised.value.hint or "")


def test_validate_accepts_known_keys():
    customer = {"id": "1", "email_subscribed": True, "orders": [{"id": "o1", "total": "5", "items": []}],
                "events": []}
    assert segment("email_subscribed").matches(customer, NOW, validate=True) is True


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"), "NaN",
                                 "Infinity"])
def test_non_finite_money_is_rejected(bad):
    schema = crmrules.load_text("segment s: true\n", schema=SCHEMA).schema
    with pytest.raises(DataError, match=r"customer\.balance"):
        prepare_customer({"id": "1", "balance": bad}, schema)
    with pytest.raises(DataError, match=r"customer\.orders\[0\]\.total"):
        prepare_customer({"id": "1", "orders": [{"id": "o", "total": bad}]}, schema)


@pytest.mark.parametrize("bad", [float("nan"), Decimal("NaN"), Decimal("sNaN")])
def test_not_a_number_money_never_answers(bad):
    with pytest.raises(DataError, match=r"customer\.balance"):
        segment("balance > 100").matches({"id": "1", "balance": bad}, NOW)


def test_eval_rejects_non_finite_money_in_json(tmp_path):
    from click.testing import CliRunner

    from crmrules.cli import main

    (tmp_path / "r.crm").write_text("segment s: total_spent > 100\n")
    for text in ('{"id": "1", "orders": [{"id": "o", "total": NaN, "status": "paid"}]}',
                 '{"id": "1", "orders": [{"id": "o", "total": -Infinity, "status": "paid"}]}'):
        (tmp_path / "c.json").write_text(text)
        result = CliRunner().invoke(main, ["eval", str(tmp_path / "r.crm"), "--segment", "s",
                                           "--customer", str(tmp_path / "c.json")])
        assert result.exit_code == 1, result.output
        assert "E0501" in result.output and "total" in result.output


def test_the_hot_path_reads_each_field_once_by_subscript():
    # `c.get(...)` costs about twice `c[...]`: the hot path must stay within 1.6x a hand-written lambda
    # (benchmarks/bench_matches.py); a missing field takes the slow path and reads as null
    rule = ('(balance > 100 and "coat" in tags and days_since_last_order < 30) '
            'or (age < 20 and gender == "female")')
    columns = {"balance": {"type": "decimal"}, "days_since_last_order": {"type": "int"}, "age": {"type": "int"}}
    schema = {"tables": {"customers": {"columns": columns}}}
    source = crmrules.load_text(f"segment s: {rule}\n", schema=schema).segment("s").source
    assert ".get(" not in source
    for field in ("balance", "tags", "days_since_last_order", "age", "gender"):
        assert source.count(f"c[{field!r}]") == 1, field


@pytest.mark.parametrize("customer", [
    {"id": "1"},
    {"id": "1", "points": None},
])
def test_a_missing_field_reads_as_null(customer):
    assert segment("points is null").matches(customer, NOW) is True
    assert segment("points > 1").matches(customer, NOW) is False


def test_a_dict_subclass_default_never_answers_for_a_missing_field():
    from collections import defaultdict

    customer = defaultdict(lambda: 5, {"id": "1"})
    assert segment("points is null").matches(customer, NOW) is True
    assert dict(customer) == {"id": "1"}  # the caller's data is never changed


def test_a_mapping_that_is_not_a_dict_is_read_like_one():
    from types import MappingProxyType

    assert segment("points > 1").matches(MappingProxyType({"id": "1", "points": 5}), NOW) is True
    with pytest.raises(DataError, match="customer.points"):
        segment("points > 1").matches(MappingProxyType({"id": "1", "points": "many"}), NOW)
    with pytest.raises(DataError, match="mapping"):
        segment("points > 1").matches(["id", "points"], NOW)
