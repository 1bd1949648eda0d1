"""Campaigns are checked strictly: actions' arguments, guard rails, `on` event types."""

from __future__ import annotations

import pytest

import crmrules


def campaign(trigger: str, action: str, extra: str = "") -> str:
    return f"campaign c:\n    trigger: {trigger}\n    action: {action}\n{extra}"


def test_an_unknown_event_type_is_a_warning_naming_the_closest_one():
    rules = crmrules.load_text(campaign("on add_to_cartt", 'sms(template: "cart")'))
    [warning] = rules.program.warnings
    assert warning.code == "W0302" and "add_to_cart" in warning.hint
    rules = crmrules.load_text(campaign("on brthday", 'sms(template: "cart")'))
    assert "birthday" in rules.program.warnings[0].hint
    assert crmrules.load_text(campaign("on add_to_cart", 'sms(template: "cart")')).program.warnings == []


def test_a_near_miss_of_a_declared_argument_is_named():
    rules = crmrules.load_text(campaign("daily at 09:00", 'email(template: "a", templat: "b", tier: tier)'))
    assert [w.code for w in rules.program.warnings] == ["W0202"]


@pytest.mark.parametrize(("action", "code"), [
    ('email(coupon: "X")', "E0208"), ('sms(tempate: "x")', "E0208"), ("coupon(code: 5)", "E0301"),
    ('webhook(uri: "https://x")', "E0208"), ("award_points(points: 1.5)", "E0301"), ("popup()", "E0208"),
])
def test_each_action_needs_its_arguments_with_their_types(action, code):
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text(campaign("daily at 09:00", action))
    assert caught.value.code == code


def test_a_closed_event_type_column_makes_an_unknown_type_an_error():
    schema = {"tables": {"events": {"columns": {"type": {"values": ["visit"], "closed": True}}}}}
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text(campaign("on vist", 'sms(template: "x")'), schema=schema)
    assert caught.value.code == "E0210" and "visit" in caught.value.hint


def test_guard_rails_that_cannot_work_are_errors():
    for extra in ("    cap: 0 per 7d\n", "    cap: 1 per 0d\n", "    quiet: 08:00-08:00\n"):
        with pytest.raises(crmrules.CrmRulesError) as caught:
            crmrules.load_text(campaign("daily at 09:00", 'email(template: "x")', extra))
        assert caught.value.code == "E0209"
