"""Campaign budgets: `over_budget` once one more send would pass the budget, in the planner's order; a holdout
costs nothing; the spending is read from the outbox (a failed message frees its cost, a killed run rerun
ends exact); batch, simulation and streaming agree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crmrules
from crmrules.campaigns import CampaignEngine, run_batch, simulate
from crmrules.campaigns.clock import held_out
from crmrules.campaigns.outbox import open_outbox
from crmrules.errors import CrmRulesError

ROOT = Path(__file__).resolve().parent.parent

DAILY = """
campaign gift:
    trigger: daily at 09:00
    action: coupon(code: "GIFT")
    budget: 1
    cost: 0.3
    holdout: {holdout}%
"""


def statuses(result) -> list[tuple[str, str, str]]:
    return [(m["due_at"], m["customer_id"], m["status"]) for m in result["messages"]]


def test_sends_stop_before_the_budget_is_passed_in_customer_order():
    rules = crmrules.load_text(DAILY.format(holdout=0))
    people = [{"id": f"c{i}"} for i in range(5)]
    result = simulate(rules, people, "2026-06-01", "2026-06-02", backend="memory")
    # 3 × 0.3 = 0.9 fits in 1; a fourth would make 1.2
    assert statuses(result) == [
        ("2026-06-01T09:00:00", "c0", "ready"), ("2026-06-01T09:00:00", "c1", "ready"),
        ("2026-06-01T09:00:00", "c2", "ready"), ("2026-06-01T09:00:00", "c3", "over_budget"),
        ("2026-06-01T09:00:00", "c4", "over_budget"),
        *[("2026-06-02T09:00:00", f"c{i}", "over_budget") for i in range(5)]]
    assert result["summary"] == {"gift": {"over_budget": 7, "ready": 3}}


def test_a_budget_met_exactly_still_sends_the_last_message():
    rules = crmrules.load_text(DAILY.format(holdout=0).replace("budget: 1", "budget: 0.9"))
    result = simulate(rules, [{"id": f"c{i}"} for i in range(5)], "2026-06-01", "2026-06-01", backend="memory")
    assert [s for _, _, s in statuses(result)] == ["ready"] * 3 + ["over_budget"] * 2


def test_a_holdout_costs_nothing_and_stops_with_the_sends():
    rules = crmrules.load_text(DAILY.format(holdout=50))
    people = [{"id": f"c{i:02d}"} for i in range(20)]
    result = simulate(rules, people, "2026-06-01", "2026-06-01", backend="memory")
    expected, sent = [], 0
    for person in people:
        if sent == 3:
            expected.append("over_budget")
        elif held_out("gift", person["id"], Decimal(50)):
            expected.append("holdout")
        else:
            expected.append("ready")
            sent += 1
    assert [s for _, _, s in statuses(result)] == expected
    assert expected.count("holdout") >= 1 and expected.count("over_budget") >= 1  # the case is not vacuous


def test_the_spending_is_read_from_the_outbox_a_failed_message_frees_its_cost(tmp_path):
    rules = crmrules.load_text(DAILY.format(holdout=0))
    people = [{"id": f"c{i}"} for i in range(5)]
    path = tmp_path / "outbox.db"
    run_batch(rules, people, path, "2026-06-01", since="2026-06-01", backend="memory")
    with open_outbox(path) as outbox:
        ready = outbox.messages(status="ready")
        assert len(ready) == 3
        outbox.update(ready[0].id, "failed", datetime(2026, 6, 1, 10))  # a deliverer gave up on it
    run_batch(rules, people, path, "2026-06-02", backend="memory")
    with open_outbox(path) as outbox:
        day_two = [m.status for m in outbox.messages() if m.due_at.day == 2]
    assert day_two == ["ready", "over_budget", "over_budget", "over_budget", "over_budget"]


def test_budget_checks_in_the_language():
    base = 'campaign a:\n    trigger: daily at 09:00\n    action: coupon(code: "X")\n'
    for fields, code in (("    budget: 0\n    cost: 1\n", "E0211"), ("    budget: 10\n", "E0212"),
                         ("    budget: 10\n    cost: 0.0000001\n", "E0213")):
        with pytest.raises(CrmRulesError) as caught:
            crmrules.load_text(base + fields)
        assert code in caught.value.render(), caught.value.render()
    assert crmrules.load_text(base + "    cost: 0\n").campaigns["a"].cost == 0  # a cost alone: for the report


# ------------------------------------------------------------------------------- the three modes agree
MODES = crmrules.load_text("""
campaign cart:
    trigger: on add_to_cart
    wait: 3h
    action: email(template: "cart")
    cap: 1 per 2d
    budget: 0.5
    cost: 0.1
    holdout: 20%
campaign daily:
    audience: points >= 50
    trigger: daily at 09:00
    action: sms(template: "daily")
    budget: 3
    cost: 0.4
    priority: 2
campaign bday:
    trigger: on birthday - 1d at 10:00
    action: coupon(code: "B")
    budget: 0.2
    cost: 0.1
""")
START = datetime(2026, 6, 1)
END = datetime(2026, 6, 5, 23, 59, 59)
TICK = "6h"

people_strategy = st.lists(st.fixed_dictionaries({
    "points": st.sampled_from([0, 60]),
    "birthday": st.sampled_from(["1990-06-03", "1991-06-04", None]),
    "carts": st.lists(st.integers(0, 5 * 24 * 60), max_size=4),
}), min_size=1, max_size=8)


def build(raw: list[dict]) -> list[dict]:
    people = []
    for index, item in enumerate(raw):
        people.append({"id": f"c{index}", "points": item["points"], "birthday": item["birthday"],
                       "email": "x@y.com", "email_subscribed": True, "phone": "+351", "sms_subscribed": True,
                       "events": [{"type": "add_to_cart", "at": (START + timedelta(minutes=at, seconds=17)).isoformat()}
                                  for at in item["carts"]]})
    return people


def stream(people) -> list[tuple]:
    engine = CampaignEngine(MODES, ":memory:", tick=TICK)
    engine.tick(START, people)
    events = sorted(((datetime.fromisoformat(e["at"]), p["id"], n, e, p) for p in people
                     for n, e in enumerate(p["events"])), key=lambda x: x[:3])
    for at, _, _, event, person in events:
        if START < at <= END:
            engine.tick(at, people)
            engine.on_event(event, person)
    engine.tick(END, people)
    return [(m.campaign, m.customer_id, m.due_at.isoformat(), m.status) for m in engine.outbox.messages()]


def batch(people, path: Path) -> list[tuple]:
    run_batch(MODES, people, path, START, tick=TICK, backend="duckdb")
    run_batch(MODES, people, path, START + timedelta(days=2, hours=5), tick=TICK, backend="duckdb")
    run_batch(MODES, people, path, END, tick=TICK, backend="duckdb")
    with open_outbox(path) as outbox:
        return [(m.campaign, m.customer_id, m.due_at.isoformat(), m.status) for m in outbox.messages()]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(raw=people_strategy)
def test_batch_simulation_and_streaming_agree_with_budgets(tmp_path_factory, raw):
    people = build(raw)
    simulated = [(m["campaign"], m["customer_id"], m["due_at"], m["status"])
                 for m in simulate(MODES, people, START, END, tick=TICK, backend="memory")["messages"]]
    assert batch(people, tmp_path_factory.mktemp("budget") / "outbox.db") == simulated
    assert stream(people) == simulated
    for name, decl in MODES.program.campaigns.items():
        sent = sum(1 for m in simulated if m[0] == name and m[3] == "ready")
        assert sent * decl.cost <= decl.budget


def test_the_generated_shops_do_run_over_budget():
    people = build([{"points": 60, "birthday": "1990-06-03", "carts": list(range(0, 5 * 24 * 60, 500))}] * 4)
    simulated = simulate(MODES, people, START, END, tick=TICK, backend="memory")
    assert {s for by in simulated["summary"].values() for s in by} >= {"ready", "over_budget"}
    assert all("over_budget" in by for by in simulated["summary"].values())
    assert stream(people) == [(m["campaign"], m["customer_id"], m["due_at"], m["status"])
                              for m in simulated["messages"]]


# ------------------------------------------------------------------------------- a killed run, rerun
_WRAPPER = """
import os, signal, sys
from crmrules.campaigns import outbox

kill_at, seen = int(os.environ.get("CRASH_AT", "0")), 0

def _counted(method):
    def wrapped(self, *args):
        global seen
        seen += 1
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return method(self, *args)
    return wrapped

for name in ("_execute", "_executemany", "_commit"):
    setattr(outbox.SqliteOutbox, name, _counted(getattr(outbox.SqliteOutbox, name)))
from crmrules.cli import main
sys.argv = ["crmrules", *sys.argv[1:]]
main()
"""


def test_a_killed_run_rerun_keeps_the_budget_exact(tmp_path):
    import sqlite3

    sys.path.insert(0, str(ROOT / "examples" / "shop"))
    from generate import generate

    data = tmp_path / "shop"
    generate(data, customers=40, seed=5)
    rules = tmp_path / "budget.crm"
    rules.write_text("""
campaign viewed:
    trigger: on view
    action: coupon(code: "V")
    budget: 1
    cost: 0.25
    holdout: 10%
campaign nudge:
    trigger: daily at 10:00
    action: coupon(code: "N")
    budget: 2
    cost: 0.5
""")
    wrapper = tmp_path / "crashing.py"
    wrapper.write_text(_WRAPPER)

    def run(outbox: Path, kill_at: int = 0) -> subprocess.CompletedProcess:
        command = [sys.executable, str(wrapper), "campaigns", "run", str(rules), "--data", str(data),
                   "--outbox", str(outbox), "--since", "2026-06-27", "--now", "2026-06-30"]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, "NO_COLOR": "1", "CRASH_AT": str(kill_at)})

    def contents(outbox: Path) -> list[tuple]:
        with sqlite3.connect(outbox) as connection:
            return connection.execute("SELECT id, campaign, customer_id, due_at, status FROM outbox "
                                      "ORDER BY id").fetchall()

    reference = tmp_path / "reference.db"
    assert run(reference).returncode == 0
    expected = contents(reference)
    by_status = {(c, s) for _, c, _, _, s in expected}
    assert {("viewed", "ready"), ("viewed", "over_budget"), ("nudge", "ready"), ("nudge", "over_budget")} <= by_status
    assert sum(1 for _, c, _, _, s in expected if c == "viewed" and s == "ready") == 4  # 4 × 0.25 = 1
    assert sum(1 for _, c, _, _, s in expected if c == "nudge" and s == "ready") == 4  # 4 × 0.5 = 2
    for point in (7, 60):
        outbox = tmp_path / f"killed-{point}.db"
        killed = run(outbox, point)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        rerun = run(outbox)
        assert rerun.returncode == 0, rerun.stderr
        assert contents(outbox) == expected, point
