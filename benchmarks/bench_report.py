"""The campaign report (`crmrules campaigns report`) against hand-written DuckDB SQL, timed in the same run.

    python benchmarks/bench_report.py [--messages 100000] [--data examples/shop/data] [--window 14d]
                                      [--backends duckdb,sqlite] [--repeat 3]

`--messages` messages of two campaigns of the demo shop (winback and birthday), due over June 2026 to its
customers, sent (`ready`, `delivered`), held out or capped, are inserted through the Outbox API; then
`rules.campaign_report(data, outbox, as_of="2026-06-30", window=...)` runs on each backend over the demo
shop's CSV files (the whole call: reading the outbox, opening the data, the temporary messages table and
the query). The baseline does the same work by hand: the outbox's rows read with sqlite3, loaded into
DuckDB, joined with the paid orders of orders.csv read by DuckDB (`due < created_at <= due + window`).
Both must find the same converted messages and revenue per campaign and group: the script says so, or
fails. The demo shop is generated when absent (examples/shop/generate.py).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb

import crmrules
from crmrules.campaigns.messages import Message
from crmrules.campaigns.outbox import open_outbox

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-06-30"
END_OF_DAY = "2026-06-30 23:59:59.999999"  # `now` of a date as-of: the end of that day
CAMPAIGNS = {"winback": "email", "birthday": "email"}
STATUSES = ["ready", "delivered", "delivered", "holdout", "capped"]


def shop(data: Path) -> Path:
    if not (data / "customers.csv").exists():
        subprocess.run([sys.executable, str(ROOT / "examples/shop/generate.py"), str(data)], check=True)
    return data


def make_outbox(path: Path, data: Path, count: int) -> None:
    """`count` seeded messages to the shop's customers, due at 09:00 or 10:00 on a day of June 2026."""
    lines = (data / "customers.csv").read_text(encoding="utf-8").splitlines()[1:]
    ids = [line.split(",", 1)[0] for line in lines]
    rng = random.Random(12)
    messages = []
    for n in range(count):
        campaign = rng.choice(list(CAMPAIGNS))
        due = datetime(2026, 6, 1, 9) + timedelta(days=rng.randrange(30), hours=rng.randrange(2))
        messages.append(Message(id=f"m{n:07d}", campaign=campaign, customer_id=rng.choice(ids),
                                channel=CAMPAIGNS[campaign], args={"template": campaign}, fired_at=due,
                                due_at=due, status=rng.choice(STATUSES), updated_at=due))
    with open_outbox(path) as box, box.transaction():
        box.insert_many(messages)


BASELINE = """
WITH o AS (
    SELECT customer_id, created_at, total
    FROM read_csv($orders, header = true,
                  types = {'id': 'VARCHAR', 'customer_id': 'VARCHAR', 'created_at': 'TIMESTAMP',
                           'status': 'VARCHAR', 'total': 'DECIMAL(18, 2)'})
    WHERE status = 'paid' AND created_at <= TIMESTAMP '%(end)s'
), m AS (
    SELECT unnest($ids) AS id, unnest($campaigns) AS campaign, unnest($customers) AS customer_id,
           unnest($groups) AS grp, CAST(unnest($dues) AS TIMESTAMP) AS due
), per_message AS (
    SELECT m.campaign, m.grp, m.id, count(o.customer_id) AS orders, sum(o.total) AS revenue
    FROM m LEFT JOIN o ON o.customer_id = m.customer_id
                      AND o.created_at > m.due AND o.created_at <= m.due + INTERVAL %(days)d DAY
    GROUP BY m.campaign, m.grp, m.id
)
SELECT campaign, grp, count(*), count(*) FILTER (WHERE orders > 0), coalesce(sum(revenue), 0)
FROM per_message GROUP BY campaign, grp
"""


def baseline(outbox: Path, data: Path, days: int) -> dict:
    """{(campaign, group): (messages, converted, revenue)} by hand: sqlite3 for the outbox, DuckDB for the rest."""
    reader = sqlite3.connect(outbox)
    rows = reader.execute("SELECT id, campaign, customer_id, status, due_at FROM outbox "
                          "WHERE status IN ('ready', 'sending', 'delivered', 'holdout') AND due_at <= ?",
                          (END_OF_DAY.replace(" ", "T"),)).fetchall()
    reader.close()
    ids, campaigns, customers, statuses, dues = (list(column) for column in zip(*rows))
    groups = ["holdout" if status == "holdout" else "sent" for status in statuses]
    connection = duckdb.connect()
    found = connection.execute(BASELINE % {"end": END_OF_DAY, "days": days}, {
        "orders": str(data / "orders.csv"), "ids": ids, "campaigns": campaigns, "customers": customers,
        "groups": groups, "dues": dues}).fetchall()
    connection.close()
    return {(campaign, group): (n, converted, Decimal(revenue)) for campaign, group, n, converted, revenue in found}


def per_message(revenue: Decimal, messages: int) -> str:
    return str((revenue / messages).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def agree(report: dict, expected: dict) -> list[str]:
    """The differences between the report's figures and the baseline's (none: they agree)."""
    differences = []
    for (campaign, group), (messages, converted, revenue) in sorted(expected.items()):
        figures = report["campaigns"][campaign]
        mine = (figures[group], figures[f"converted_{group}"], figures[f"revenue_{group}"])
        theirs = (messages, converted, per_message(revenue, messages))
        if mine != theirs:
            differences.append(f"{campaign} {group}: report {mine}, baseline {theirs}")
    return differences


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--data", default=str(ROOT / "examples/shop/data"), help="the demo shop's CSV directory")
    parser.add_argument("--window", default="14d", help="whole days, e.g. 14d (the baseline adds days)")
    parser.add_argument("--backends", default="duckdb,sqlite")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest is shown")
    args = parser.parse_args()
    if not args.window.endswith("d") or not args.window[:-1].isdigit():
        parser.error("--window: whole days, e.g. 14d")
    days = int(args.window[:-1])
    data = shop(Path(args.data))
    rules = crmrules.load(str(ROOT / "examples/shop/shop.crm"))
    with tempfile.TemporaryDirectory() as scratch:
        outbox = Path(scratch) / "outbox.db"
        began = time.perf_counter()
        make_outbox(outbox, data, args.messages)
        print(f"outbox of {args.messages:,} messages made in {time.perf_counter() - began:.2f} s")
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            expected = baseline(outbox, data, days)
            times.append(time.perf_counter() - began)
        base = min(times)
        converted = sum(found[1] for found in expected.values())
        print(f"hand-written DuckDB SQL (sqlite3 read, DuckDB load and join): {base:.2f} s, "
              f"{converted:,} converted messages")
        failed = False
        for backend in args.backends.split(","):
            times, report = [], None
            for _ in range(args.repeat):
                began = time.perf_counter()
                report = rules.campaign_report(str(data), str(outbox), as_of=AS_OF, window=args.window,
                                               backend=backend, warnings=[])
                times.append(time.perf_counter() - began)
            differences = agree(report, expected)
            failed = failed or bool(differences)
            took = min(times)
            print(f"campaign_report on {backend}: {took:.2f} s ({args.messages / took:,.0f} messages/s): "
                  f"{took / base:.1f}× the hand-written query; same conversions and revenue: "
                  f"{'yes' if not differences else 'NO'}")
            for difference in differences:
                print(f"  {difference}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
