"""Campaign engine figures, each against a baseline timed in the same run.

    python benchmarks/bench_campaigns.py [--customers 1000000] [--events 200000] [--rows 200000]
                                         [--shop shop.duckdb] [--only streaming|outbox|winback]

1. streaming `on_event` with 20 campaigns: events per second (target ≥ 50,000 on one core), listened and
   unlistened events mixed; unlistened events alone against a bare dict lookup;
2. a daily tick of a win-back campaign over the generated shop of bench_sql.py (1M customers), its
   audience built on orders (the catalogue's `dormant`): time against the audience segment's own query
   (target ≤ 1.5×), the shop kept open between ticks as the baseline keeps its connection (the time with
   opening it is printed too);
3. outbox inserts: rows per second (target ≥ 100,000), against SQLite's own executemany of the same rows.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))

import crmrules  # noqa: E402
from bench_sql import generate  # noqa: E402
from crmrules.backends.sql import members_query  # noqa: E402
from crmrules.campaigns import CampaignEngine, run_batch  # noqa: E402
from crmrules.campaigns.engine import opened_data  # noqa: E402
from crmrules.campaigns.messages import Message, message_id  # noqa: E402
from crmrules.campaigns.outbox import open_outbox  # noqa: E402
from crmrules.context import evaluation_context  # noqa: E402

LISTENED = ["add_to_cart", "checkout", "favorite", "search", "signup"]


def streaming_rules() -> crmrules.RuleSet:
    """20 campaigns: 15 on events (5 types × 3), 5 on schedules."""
    parts = []
    for index in range(15):
        kind = LISTENED[index % len(LISTENED)]
        parts.append(f"""
campaign on_{index}:
    audience: points >= {index * 10}
    trigger: on {kind} where event.category == "coat"
    wait: {index % 3}h
    action: popup(message: "m{index}")
    cap: 1 per 1d
""")
    for index in range(5):
        parts.append(f"""
campaign daily_{index}:
    trigger: daily at 0{index + 1}:00
    action: popup(message: "d{index}")
""")
    return crmrules.load_text("".join(parts))


def bench_streaming(count: int) -> None:
    rules = streaming_rules()
    rng = random.Random(7)
    customers = [{"id": f"c{i}", "points": rng.randrange(200), "email": None,
                  "registered_at": datetime(2025, 1, 1)} for i in range(1000)]
    start = datetime(2026, 6, 1)
    kinds = LISTENED + ["view"] * 15 + ["visit"] * 15  # 1 in 7 listened
    events = [({"type": rng.choice(kinds), "at": start + timedelta(seconds=i), "category": "coat"},
               customers[rng.randrange(len(customers))]) for i in range(count)]
    engine = CampaignEngine(rules, ":memory:")
    began = time.perf_counter()
    made = sum(len(engine.on_event(event, customer)) for event, customer in events)
    mixed = time.perf_counter() - began
    unlistened = [(e, c) for e, c in events if e["type"] not in LISTENED]
    began = time.perf_counter()
    for event, customer in unlistened:
        engine.on_event(event, customer)
    alone = time.perf_counter() - began
    listened = frozenset(LISTENED)
    began = time.perf_counter()
    for event, _ in unlistened:
        event.get("type") in listened  # noqa: B015 - the baseline: one dict read and a set test
    bare = time.perf_counter() - began
    print(f"streaming, 20 campaigns: {count / mixed:,.0f} events/s mixed (1 in 7 listened, {made:,} messages; "
          f"target ≥ 50,000)")
    print(f"  unlistened events: {len(unlistened) / alone:,.0f} events/s, {alone / len(unlistened) * 1e9:,.0f} ns "
          f"each; bare lookup {bare / len(unlistened) * 1e9:,.0f} ns ({alone / bare:.1f}×)")


# win-back audiences built on orders (the catalogue's `dormant`: no paid order for 60 days or more); a daily
# win-back mails people the day they become dormant; the wider ones show how the cost grows with messages
AUDIENCES = {
    "became dormant today": "dormant and not dormant_for(dormant_days + 1) and email_subscribed",
    "dormant within a week": "dormant and not dormant_for(dormant_days + 7) and email_subscribed",
    "every dormant customer": "dormant and email_subscribed",
}


def bench_winback(customers: int, repeat: int, shop: str | None) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        database = Path(shop) if shop else Path(scratch) / "shop.duckdb"
        if not database.exists():
            connection = duckdb.connect(str(database))
            began = time.perf_counter()
            generate(connection, customers)
            connection.close()
            print(f"generated {customers:,} customers in {time.perf_counter() - began:.1f} s")
        for label, audience in AUDIENCES.items():
            _winback(database, Path(scratch), label, audience, repeat)


def _winback(database: Path, scratch: Path, label: str, audience: str, repeat: int) -> None:
    rules = crmrules.load_text(f"""
segment lapsed: {audience}
campaign winback:
    audience: lapsed
    trigger: daily at 09:00
    action: email(template: "winback", coupon: "BACK15")
    cap: 1 per 30d
    holdout: 10%
""")
    now = datetime(2026, 6, 30, 9, 0)
    ctx = evaluation_context(now, rules.program.schema)
    query = members_query(rules.program, "lapsed", "duckdb", ctx)
    reader = duckdb.connect(str(database), read_only=True)
    segment_times, members = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        members = len(reader.execute(query).fetchall())
        segment_times.append(time.perf_counter() - began)
    reader.close()
    tick_times, cold_times, made = [], [], 0
    # a scheduler keeps the shop open between ticks, as the baseline keeps its connection
    with opened_data(rules, str(database)) as shop:
        for run in range(repeat):
            outbox = scratch / f"outbox-{label}-{run}.db"
            run_batch(rules, shop, outbox, now - timedelta(minutes=30))  # initialise
            began = time.perf_counter()
            result = run_batch(rules, shop, outbox, now)
            tick_times.append(time.perf_counter() - began)
            made = len(result["messages"])
    outbox = scratch / f"outbox-{label}-cold.db"
    run_batch(rules, str(database), outbox, now - timedelta(minutes=30))
    began = time.perf_counter()
    run_batch(rules, str(database), outbox, now)  # opening the database (and checking it) included
    cold_times.append(time.perf_counter() - began)
    segment, tick = min(segment_times), min(tick_times)
    print(f"daily win-back tick, {label} ({audience}): {tick:.2f} s for {made:,} messages; the audience "
          f"segment's own query {segment:.2f} s ({members:,} members): {tick / segment:.2f}× (target ≤ 1.5×); "
          f"opening the shop too: {min(cold_times):.2f} s ({min(cold_times) / segment:.2f}×)")


def bench_outbox(count: int) -> None:
    now = datetime(2026, 6, 1, 9)
    messages = [Message(id=message_id("c", f"c{i}", "schedule"), campaign="c", customer_id=f"c{i}", channel="email",
                        args={"template": "x"}, fired_at=now, due_at=now, status="ready", updated_at=now)
                for i in range(count)]
    with tempfile.TemporaryDirectory() as scratch:
        outbox = open_outbox(Path(scratch) / "outbox.db")
        began = time.perf_counter()
        with outbox.transaction():
            added = outbox.insert_many(messages)
        many = time.perf_counter() - began
        outbox.close()
        outbox = open_outbox(Path(scratch) / "one.db")
        began = time.perf_counter()
        with outbox.transaction():
            for message in messages:
                outbox.insert(message)
        single = time.perf_counter() - began
        outbox.close()
        import sqlite3

        raw = sqlite3.connect(Path(scratch) / "raw.db")
        raw.execute("CREATE TABLE t (id TEXT PRIMARY KEY, a, b, c, d, e, f, g, h)")
        rows = [(m.id, m.campaign, m.customer_id, m.channel, '{"template":"x"}', "t", "t", m.status, "t")
                for m in messages]
        began = time.perf_counter()
        with raw:
            raw.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING", rows)
        baseline = time.perf_counter() - began
        raw.close()
    print(f"outbox inserts: {added / many:,.0f} rows/s in one batch, {count / single:,.0f} rows/s one by one "
          f"(target ≥ 100,000); raw SQLite executemany {count / baseline:,.0f} rows/s ({many / baseline:.1f}×)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shop", help="a DuckDB file to keep the generated shop in (generated when absent)")
    parser.add_argument("--only", choices=("streaming", "outbox", "winback"))
    args = parser.parse_args()
    if args.only in (None, "streaming"):
        bench_streaming(args.events)
    if args.only in (None, "outbox"):
        bench_outbox(args.rows)
    if args.only in (None, "winback"):
        bench_winback(args.customers, args.repeat, args.shop)


if __name__ == "__main__":
    main()
