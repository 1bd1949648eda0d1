"""A fixture month per trigger kind, with the messages computed by hand, on memory and on DuckDB."""

from __future__ import annotations

from decimal import Decimal

import pytest

import crmrules
from crmrules.campaigns import clock, run_batch, simulate
from crmrules.campaigns.outbox import open_outbox
from crmrules.errors import CrmRulesError

BACKENDS = ["memory", "duckdb"]


def person(cid: str, **fields) -> dict:
    base = {"id": cid, "email": f"{cid}@x.com", "phone": "+351900000000", "email_subscribed": True,
            "sms_subscribed": True, "registered_at": "2020-01-01T00:00:00"}
    base.update(fields)
    return base


def order(at: str, total, category: str = "dress", price=None) -> dict:
    return {"id": f"o-{at}-{total}", "created_at": at, "status": "paid", "total": total,
            "items": [{"category": category, "price": price if price is not None else total, "quantity": 1}]}


def shown(result: dict, *fields: str) -> list[tuple]:
    fields = fields or ("campaign", "customer_id", "fired_at", "due_at", "status")
    return [tuple(m[f] for f in fields) for m in result["messages"]]


def sim(text: str, people: list[dict], start: str, end: str, backend: str, tick: str = "1h") -> dict:
    return simulate(crmrules.load_text(text), people, start, end, tick=tick, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_event_trigger_with_wait_unless_and_quiet_hours(backend):
    text = """
campaign cart:
    trigger: on add_to_cart where event.category == "coat"
    wait: 2h
    unless: any(orders where created_at within 2h)
    action: sms(template: "cart", name: first_name)
    quiet: 22:00-08:00
"""
    people = [
        person("a", first_name="Ana", events=[{"type": "add_to_cart", "at": "2026-06-03T10:15:00", "category": "coat"}]),
        person("b", events=[{"type": "add_to_cart", "at": "2026-06-03T21:00:00", "category": "coat"}]),
        person("c", events=[{"type": "add_to_cart", "at": "2026-06-05T10:00:00", "category": "coat"}],
               orders=[order("2026-06-05T11:00:00", 80)]),
        person("d", events=[{"type": "add_to_cart", "at": "2026-06-05T10:00:00", "category": "shoes"}]),
        person("e", sms_subscribed=False,
               events=[{"type": "add_to_cart", "at": "2026-06-06T09:00:00", "category": "coat"}]),
        person("f", events=[{"type": "add_to_cart", "at": "2026-07-06T09:00:00", "category": "coat"}]),
    ]
    result = sim(text, people, "2026-06-01", "2026-06-30", backend)
    assert shown(result) == [
        ("cart", "a", "2026-06-03T10:15:00", "2026-06-03T12:15:00", "ready"),
        ("cart", "b", "2026-06-03T21:00:00", "2026-06-04T08:00:00", "ready"),  # 23:00 is quiet
        ("cart", "c", "2026-06-05T10:00:00", "2026-06-05T12:00:00", "cancelled"),  # ordered within 2h
        ("cart", "e", "2026-06-06T09:00:00", "2026-06-06T11:00:00", "no_consent"),
    ]
    assert result["messages"][0]["args"] == {"template": "cart", "name": "Ana"}
    assert result["summary"] == {"cart": {"cancelled": 1, "no_consent": 1, "ready": 2}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_daily_schedule_with_a_cap(backend):
    text = """
campaign nudge:
    audience: points >= 100
    trigger: daily at 09:00
    action: email(template: "n", points: points)
    cap: 2 per 7d
"""
    people = [person("f", points=150), person("g", points=50), person("h", points=150, email=None)]
    result = sim(text, people, "2026-06-01", "2026-06-10", backend)
    statuses = {m["fired_at"][:10]: m["status"] for m in result["messages"] if m["customer_id"] == "f"}
    # (due - 7d, due]: 06-01 drops out of the window of 06-08 (exactly 7 days earlier is outside)
    ready = {"2026-06-01", "2026-06-02", "2026-06-08", "2026-06-09"}
    assert statuses == {f"2026-06-{d:02}": "ready" if f"2026-06-{d:02}" in ready else "capped" for d in range(1, 11)}
    assert {m["status"] for m in result["messages"] if m["customer_id"] == "h"} == {"no_consent"}
    assert not [m for m in result["messages"] if m["customer_id"] == "g"]
    assert result["messages"][0]["args"] == {"template": "n", "points": 150}


@pytest.mark.parametrize("backend", BACKENDS)
def test_birthday_minus_three_days_across_the_year_and_on_29_february(backend):
    text = """
campaign bday:
    trigger: on birthday - 3d
    action: email(template: "bday")
"""
    people = [person("h", birthday="1990-01-01"), person("i", birthday="1992-02-29"),
              person("j", birthday="1990-03-10"), person("k")]
    result = sim(text, people, "2026-12-01", "2027-03-01", backend)
    assert shown(result) == [
        ("bday", "h", "2026-12-29T09:00:00", "2026-12-29T09:00:00", "ready"),
        ("bday", "i", "2027-02-25T09:00:00", "2027-02-25T09:00:00", "ready"),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_thirty_days_after_the_last_order(backend):
    text = """
campaign winback:
    trigger: 30d after last_order_at
    action: email(template: "wb")
"""
    people = [
        person("k", orders=[order("2026-05-10T14:00:00", 50)]),
        # a new order before the 30 days are up starts a new wait (its 30 days end after the period)
        person("l", orders=[order("2026-05-20T10:00:00", 50), order("2026-06-15T12:00:00", 70)]),
        person("m", orders=[order("2026-04-01T10:00:00", 50)]),  # due before the first run: never
    ]
    result = sim(text, people, "2026-06-01", "2026-06-30", backend)
    assert shown(result) == [("winback", "k", "2026-06-09T14:00:00", "2026-06-09T14:00:00", "ready")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_when_becomes_and_reaches_fire_once_per_crossing(backend):
    text = """
attribute favourite = top(order_items.category by price * quantity)
campaign likes_coats:
    trigger: when favourite becomes "coat"
    action: award_points(points: 100)
campaign big:
    trigger: when total_spent reaches 1000
    action: coupon(code: "BIG", spent: total_spent)
"""
    people = [
        person("n", orders=[order("2026-05-01T10:00:00", 600, "dress"),
                            order("2026-06-10T10:20:00", 500, "coat", price=700)]),
        person("o", orders=[order("2026-05-01T10:00:00", 1200, "coat")]),  # already there at the start
    ]
    result = sim(text, people, "2026-06-01", "2026-06-30", backend)
    assert shown(result) == [
        ("big", "n", "2026-06-10T11:00:00", "2026-06-10T11:00:00", "ready"),  # the first tick after the order
        ("likes_coats", "n", "2026-06-10T11:00:00", "2026-06-10T11:00:00", "ready"),
    ]
    assert result["messages"][0]["args"] == {"code": "BIG", "spent": "1100.000000"} or \
        Decimal(result["messages"][0]["args"]["spent"]) == 1100


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_channel_limit_goes_to_the_higher_priority_then_to_the_earlier_declaration(backend):
    text = """
limit email: 1 per 7d
campaign a_low:
    trigger: daily at 09:00
    action: email(template: "low")
campaign b_high:
    trigger: daily at 09:00
    action: email(template: "high")
    priority: 5
campaign c_first:
    trigger: daily at 10:00
    action: sms(template: "one")
campaign d_second:
    trigger: daily at 10:00
    action: sms(template: "two")
limit sms: 1 per 1d
"""
    result = sim(text, [person("p")], "2026-06-01", "2026-06-02", backend)
    assert shown(result, "campaign", "fired_at", "status") == [
        ("a_low", "2026-06-01T09:00:00", "capped"), ("b_high", "2026-06-01T09:00:00", "ready"),
        ("c_first", "2026-06-01T10:00:00", "ready"), ("d_second", "2026-06-01T10:00:00", "capped"),
        ("a_low", "2026-06-02T09:00:00", "capped"), ("b_high", "2026-06-02T09:00:00", "capped"),
        ("c_first", "2026-06-02T10:00:00", "ready"), ("d_second", "2026-06-02T10:00:00", "capped"),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_consent_is_checked_at_the_due_instant(backend):
    text = """
campaign later:
    trigger: on signup
    wait: 1d
    action: email(template: "hello")
"""
    # no history of consent in the data: a customer without an address or a subscription never gets one
    people = [person("q", events=[{"type": "signup", "at": "2026-06-02T10:00:00"}]),
              person("r", email_subscribed=None, events=[{"type": "signup", "at": "2026-06-02T10:00:00"}]),
              person("s", email=None, events=[{"type": "signup", "at": "2026-06-02T10:00:00"}])]
    result = sim(text, people, "2026-06-01", "2026-06-30", backend)
    assert shown(result, "customer_id", "due_at", "status") == [
        ("q", "2026-06-03T10:00:00", "ready"), ("r", "2026-06-03T10:00:00", "no_consent"),
        ("s", "2026-06-03T10:00:00", "no_consent")]


def test_holdout_follows_the_pinned_bucket():
    text = """
campaign half:
    trigger: daily at 09:00
    action: popup(message: "hi")
    holdout: 50%
"""
    people = [person(f"c{i}") for i in range(200)]
    result = sim(text, people, "2026-06-01", "2026-06-01", "memory")
    assert len(result["messages"]) == 200
    for message in result["messages"]:
        expected = "holdout" if clock.held_out("half", message["customer_id"], Decimal(50)) else "ready"
        assert message["status"] == expected
    assert 60 < result["summary"]["half"]["holdout"] < 140


def test_a_batch_run_initialises_then_continues_and_refuses_a_clock_going_back(tmp_path):
    rules = crmrules.load_text("""
campaign nudge:
    trigger: daily at 09:00
    action: popup(message: "hi")
""")
    box = tmp_path / "outbox.db"
    first = run_batch(rules, [person("a")], box, "2026-06-01", backend="memory")
    assert first["initialised"] and first["messages"] == []
    second = run_batch(rules, [person("a")], box, "2026-06-03", backend="memory")
    assert [m["fired_at"] for m in second["messages"]] == ["2026-06-02T09:00:00", "2026-06-03T09:00:00"]
    with pytest.raises(CrmRulesError) as caught:
        run_batch(rules, [person("a")], box, "2026-06-02", backend="memory")
    assert caught.value.code == "E0702"
    with open_outbox(box) as outbox:
        assert len(outbox.messages()) == 2
        assert outbox.last_run().isoformat() == "2026-06-03T23:59:59.999999"


def test_streaming_unknown_customers_are_counted_and_unlistened_events_ignored():
    rules = crmrules.load_text("""
campaign cart:
    trigger: on add_to_cart
    action: popup(message: "hi")
""")
    engine = rules.campaign_engine()
    assert engine.on_event({"type": "view", "at": "2026-06-01T10:00:00"}, None) == []
    assert engine.on_event({"type": "add_to_cart", "at": "2026-06-01T10:00:00"}, None) == []
    assert engine.unknown_events == 1
    [message] = engine.on_event({"type": "add_to_cart", "at": "2026-06-01T10:00:00"}, person("a"))
    assert (message.status, message.customer_id) == ("ready", "a")
    # a customer who registers later does not exist yet at the event
    late = person("z", registered_at="2026-07-01T00:00:00")
    assert engine.on_event({"type": "add_to_cart", "at": "2026-06-01T10:00:00"}, late) == []
    assert engine.unknown_events == 2
