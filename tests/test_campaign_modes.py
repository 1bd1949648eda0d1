"""Properties of the campaign planner on generated shops: idempotent, split-invariant, guard rails that
hold, and the three modes (batch on DuckDB, simulation, streaming) giving the same messages."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crmrules
from crmrules.campaigns import CampaignEngine, run_batch, simulate
from crmrules.campaigns.messages import COUNTED
from crmrules.campaigns.outbox import open_outbox
from crmrules.values import shift

RULES = crmrules.load_text("""
limit email: 2 per 3d
campaign cart:
    trigger: on add_to_cart
    wait: 3h
    unless: any(orders where created_at within 3h)
    action: email(template: "cart", points: points)
    cap: 1 per 2d
    quiet: 22:00-08:00
campaign daily:
    audience: points >= 50
    trigger: daily at 09:00
    action: email(template: "daily")
    cap: 2 per 5d
    holdout: 20%
campaign winback:
    trigger: 2d after last_order_at
    action: sms(template: "wb")
    quiet: 21:00-09:00
campaign big:
    trigger: when total_spent reaches 300
    action: coupon(code: "BIG")
campaign bday:
    trigger: on birthday - 1d at 10:00
    action: email(template: "bday")
    priority: 3
""")
START = datetime(2026, 6, 1)
END = datetime(2026, 6, 7, 23, 59, 59)
TICK = "6h"
FIELDS = ("campaign", "customer_id", "fired_at", "due_at", "status", "args")


def _moment(offset: int) -> str:
    # seconds past the start, off the hour so that events never coincide with schedules or ticks
    moment = START - timedelta(days=3) + timedelta(minutes=offset, seconds=17)
    return moment.isoformat()


people_strategy = st.lists(
    st.fixed_dictionaries({
        "points": st.sampled_from([0, 60, 200]),
        "email_subscribed": st.sampled_from([True, False, None]),
        "sms_subscribed": st.booleans(),
        "email": st.sampled_from(["x@y.com", None]),
        "birthday": st.sampled_from(["1990-06-03", "1991-06-06", "1990-01-01", None]),
        "orders": st.lists(st.tuples(st.integers(0, 10 * 24 * 60), st.sampled_from([50, 120, 260])), max_size=3),
        "events": st.lists(st.tuples(st.integers(0, 10 * 24 * 60), st.sampled_from(["add_to_cart", "view"])),
                           max_size=4),
    }), min_size=1, max_size=5)


def build(raw: list[dict]) -> list[dict]:
    people = []
    for index, item in enumerate(raw):
        person = {"id": f"c{index}", "phone": "+351", "registered_at": "2026-01-01T00:00:00",
                  **{k: item[k] for k in ("points", "email_subscribed", "sms_subscribed", "email", "birthday")}}
        person["orders"] = [{"id": f"o{index}-{n}", "created_at": _moment(at), "status": "paid", "total": total}
                            for n, (at, total) in enumerate(item["orders"])]
        person["events"] = [{"type": kind, "at": _moment(at)} for at, kind in item["events"]]
        people.append(person)
    return people


def rows(messages) -> list[tuple]:
    return [tuple(m[f] if isinstance(m, dict) else getattr(m, f) for f in FIELDS) for m in messages]


def stored(path) -> list[tuple]:
    with open_outbox(path) as outbox:
        return [(m.campaign, m.customer_id, m.fired_at.isoformat(), m.due_at.isoformat(), m.status, m.args)
                for m in outbox.messages()]


def batch(people, tmp, cuts, backend="memory") -> list[tuple]:
    path = tmp / f"outbox-{len(list(tmp.iterdir()))}.db"
    run_batch(RULES, people, path, START, tick=TICK, backend=backend)  # initialises at the start
    for cut in [*cuts, END]:
        run_batch(RULES, people, path, cut, tick=TICK, backend=backend)
    return stored(path)


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


@SETTINGS
@given(raw=people_strategy, cuts=st.lists(st.integers(1, int((END - START).total_seconds()) - 1), max_size=4))
def test_splitting_a_period_into_runs_equals_one_run_and_running_twice_equals_once(tmp_path_factory, raw, cuts):
    tmp = tmp_path_factory.mktemp("split")
    people = build(raw)
    once = batch(people, tmp, [])
    split = batch(people, tmp, [START + timedelta(seconds=s) for s in sorted(set(cuts))])
    assert split == once
    path = tmp / "twice.db"
    run_batch(RULES, people, path, START, tick=TICK, backend="memory")
    run_batch(RULES, people, path, END, tick=TICK, backend="memory")
    first = stored(path)
    again = run_batch(RULES, people, path, END, tick=TICK, backend="memory")
    assert again["messages"] == [] and stored(path) == first == once


def _window_counts_hold(messages, key, count, per):
    counted = [m for m in messages if m["status"] in COUNTED]
    for m in counted:
        since = shift(datetime.fromisoformat(m["due_at"]), per, -1)
        inside = [o for o in counted if key(o) == key(m)
                  and since < datetime.fromisoformat(o["due_at"]) <= datetime.fromisoformat(m["due_at"])]
        assert len(inside) <= count, (m, inside)


@SETTINGS
@given(raw=people_strategy)
def test_caps_limits_and_consent_always_hold(raw):
    people = build(raw)
    result = simulate(RULES, people, START, END, tick=TICK, backend="memory")
    messages = result["messages"]
    for name, decl in RULES.program.campaigns.items():
        if decl.cap is not None:
            _window_counts_hold([m for m in messages if m["campaign"] == name], lambda m: m["customer_id"],
                                decl.cap.count, decl.cap.per)
    for channel, limit in RULES.program.limits.items():
        _window_counts_hold([m for m in messages if m["channel"] == channel], lambda m: m["customer_id"],
                            limit.count, limit.per)
    by_id = {p["id"]: p for p in people}
    for m in messages:
        if m["status"] in COUNTED:
            person = by_id[m["customer_id"]]
            if m["channel"] == "email":
                assert person["email_subscribed"] is True and person["email"] is not None
            if m["channel"] == "sms":
                assert person["sms_subscribed"] is True and person["phone"] is not None


def stream(people) -> list[tuple]:
    engine = CampaignEngine(RULES, ":memory:", tick=TICK)
    engine.tick(START, people)
    events = sorted(((datetime.fromisoformat(e["at"]), p["id"], n, e, p) for p in people
                     for n, e in enumerate(p["events"])), key=lambda x: x[:3])
    for at, _, _, event, person in events:
        if START < at <= END:
            engine.tick(at, people)
            engine.on_event(event, person)
    engine.tick(END, people)
    return [(m.campaign, m.customer_id, m.fired_at.isoformat(), m.due_at.isoformat(), m.status, m.args)
            for m in engine.outbox.messages()]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(raw=people_strategy)
def test_batch_on_duckdb_simulation_and_streaming_agree(tmp_path_factory, raw):
    people = build(raw)
    simulated = rows(simulate(RULES, people, START, END, tick=TICK, backend="memory")["messages"])
    on_duckdb = batch(people, tmp_path_factory.mktemp("duck"), [], backend="duckdb")
    assert on_duckdb == simulated
    assert stream(people) == simulated


def test_the_generated_shops_do_fire_every_kind():
    """The properties above are not vacuous: a busy shop gets messages of every campaign."""
    raw = [{"points": 200, "email_subscribed": True, "sms_subscribed": True, "email": "x@y.com",
            "birthday": "1990-06-03", "orders": [(3 * 24 * 60 + 30, 260), (4 * 24 * 60 + 50, 120)],
            "events": [(3 * 24 * 60 + 100, "add_to_cart"), (5 * 24 * 60 + 7, "add_to_cart")]}]
    people = build(raw)
    result = simulate(RULES, people, START, END, tick=TICK, backend="memory")
    assert {m["campaign"] for m in result["messages"]} == set(RULES.program.campaigns)
    assert stream(people) == rows(result["messages"])
