"""Compiled SQL against hand-written DuckDB SQL on a large seeded shop, in one process.

    python benchmarks/bench_sql.py [--customers 1000000] [--repeat 5] [--data FILE]

Generates customers / 5× orders / 20× events (seeded, inside DuckDB), then
times, for each query, the SQL crmrules compiles against the same question
written by hand (the two alternating, checked to return the same ids), and prints
the ratios of wall time and of CPU time (this process's, DuckDB's threads included;
steadier on a shared machine); also the rule→SQL compile time and 20 segments in
one fused query against 20 separate queries.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date
from pathlib import Path

import duckdb

import crmrules
from crmrules.backends.sql import members_query, segments_query
from crmrules.context import evaluation_context

AS_OF = date(2026, 6, 30)
NOW = "TIMESTAMP '2026-06-30 23:59:59.999999'"
D30 = "TIMESTAMP '2026-05-31 23:59:59.999999'"
D365 = "TIMESTAMP '2025-06-30 23:59:59.999999'"
SCHEMA = {"tables": {"customers": {"columns": {
    "total_spent": {"type": "decimal"}, "days_since_last_order": {"type": "int"}, "age": {"type": "int"}}}}}

RULES = {
    "q1": '(total_spent > 100 and "coat" in tags and days_since_last_order < 30) or (age < 20 and gender == "female")',
    "q2": 'count(events where type == "add_to_cart" and at within 30d) > 0 and '
          "count(orders where created_at within 30d) == 0",
    "q4": 'count(orders where any(items where category == "coat") and created_at within 365d) >= 2 and '
          'avg(orders.total where any(items where category == "coat") and created_at within 365d) > 150',
}
HAND = {
    "q1": """SELECT id FROM customers WHERE (total_spent > 100 AND list_contains(tags, 'coat')
             AND days_since_last_order < 30) OR (age < 20 AND gender = 'female')""",
    "q2": f"""SELECT customer_id FROM events WHERE type = 'add_to_cart' AND "at" > {D30} AND "at" <= {NOW}
              EXCEPT SELECT customer_id FROM orders WHERE created_at > {D30} AND created_at <= {NOW}""",
    "q4": f"""SELECT o.customer_id FROM orders o
              WHERE o.created_at > {D365} AND o.created_at <= {NOW}
                AND EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id AND i.category = 'coat')
              GROUP BY o.customer_id HAVING count(*) >= 2 AND avg(o.total) > 150""",
}


def generate(connection, customers: int) -> None:
    """A seeded shop: n customers, 5n orders, ~1.5 items per order, 20n events."""
    n = customers
    # hash-based numbers: the same data on every run, whatever the thread count (random() is not)
    connection.execute("CREATE MACRO rnd(i, salt) AS (hash(i, salt) % 1000003) / 1000003.0")
    connection.execute(f"""
        CREATE TABLE customers AS SELECT
            lpad(CAST(i AS VARCHAR), 7, '0') AS id, 'c' || i || '@example.com' AS email, NULL::VARCHAR AS phone,
            'Ana' AS first_name, 'Silva' AS last_name,
            CASE WHEN rnd(i, 2) < 0.5 THEN 'female' ELSE 'male' END AS gender,
            DATE '1960-01-01' + CAST(floor(rnd(i, 3) * 16000) AS INTEGER) AS birthday,
            'PT' AS country, 'Porto' AS city, 'pt' AS language, 'ads' AS source,
            TIMESTAMP '2023-01-01' + INTERVAL (CAST(floor(rnd(i, 4) * 1000) AS INTEGER)) DAY AS registered_at,
            rnd(i, 5) < 0.6 AS email_subscribed, rnd(i, 6) < 0.3 AS sms_subscribed,
            CASE WHEN rnd(i, 7) < 0.3 THEN ['coat'] WHEN rnd(i, 8) < 0.5 THEN ['dress', 'vip'] ELSE [] END AS tags,
            'silver' AS tier, CAST(floor(rnd(i, 9) * 5000) AS BIGINT) AS points,
            CAST(rnd(i, 10) * 400 AS DECIMAL(38, 6)) AS total_spent,
            CASE WHEN rnd(i, 11) < 0.2 THEN NULL ELSE CAST(floor(rnd(i, 12) * 120) AS BIGINT) END AS days_since_last_order,
            CAST(14 + floor(rnd(i, 13) * 60) AS BIGINT) AS age
        FROM range({n}) t(i)""")
    connection.execute(f"""
        CREATE TABLE orders AS SELECT
            'o' || i AS id, lpad(CAST(CAST(floor(rnd(i, 14) * {n}) AS BIGINT) AS VARCHAR), 7, '0') AS customer_id,
            TIMESTAMP '2024-01-01' + INTERVAL (CAST(floor(rnd(i, 15) * 912 * 86400) AS BIGINT)) SECOND AS created_at,
            CASE WHEN rnd(i, 16) < 0.85 THEN 'paid' ELSE 'refunded' END AS status,
            CAST(5 + rnd(i, 17) * 300 AS DECIMAL(38, 6)) AS total, CAST(0 AS DECIMAL(38, 6)) AS discount,
            NULL::VARCHAR AS coupon, 'web' AS channel
        FROM range({5 * n}) t(i)""")
    connection.execute("""
        CREATE TABLE order_items AS SELECT o.id AS order_id, 'p' || j AS product_id,
            (['coat', 'dress', 'shoes', 'skincare', 'face_cream'])[1 + CAST(floor(rnd(o.id || j, 18) * 5) AS INTEGER)] AS category,
            CAST(1 AS BIGINT) AS quantity, CAST(20 AS DECIMAL(38, 6)) AS price
        FROM orders o, range(1 + CAST(rnd(o.id, 19) < 0.5 AS INTEGER)) t(j)""")
    connection.execute(f"""
        CREATE TABLE events AS SELECT
            lpad(CAST(CAST(floor(rnd(i, 20) * {n}) AS BIGINT) AS VARCHAR), 7, '0') AS customer_id,
            (['visit', 'view', 'add_to_cart', 'favorite', 'search'])[1 + CAST(floor(rnd(i, 21) * 5) AS INTEGER)] AS type,
            TIMESTAMP '2024-01-01' + INTERVAL (CAST(floor(rnd(i, 22) * 912 * 86400) AS BIGINT)) SECOND AS at,
            NULL::VARCHAR AS product_id, 'coat' AS category, NULL::VARCHAR AS value
        FROM range({20 * n}) t(i)""")
    connection.execute("CREATE TABLE products (id VARCHAR, title VARCHAR, category VARCHAR, price DECIMAL(38, 6), "
                       "tags VARCHAR[])")


def timed(connection, sql: str, repeat: int) -> tuple[float, int]:
    """Median milliseconds over `repeat` runs (after one warm-up), and the row count."""
    rows = len(connection.execute(sql).fetchall())
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        connection.execute(sql).fetchall()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), rows


def timed_pair(connection, queries: dict[str, str], repeat: int) -> tuple[dict[str, tuple[float, float]], dict]:
    """{name: (median wall ms, median CPU ms)} over `repeat` rounds, the queries alternating so that load from
    other processes falls on each alike, after a warm-up round that gives the rows. CPU is this process's
    (DuckDB's threads included): steadier than wall time when other processes share the cores."""
    rows = {name: sorted(connection.execute(sql).fetchall()) for name, sql in queries.items()}
    wall: dict[str, list[float]] = {name: [] for name in queries}
    cpu: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(repeat):
        for name, sql in queries.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            connection.execute(sql).fetchall()
            cpu[name].append((time.process_time() - start_cpu) * 1000)
            wall[name].append((time.perf_counter() - start) * 1000)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in queries}, rows


def main() -> None:
    """Generate the data and print every comparison."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", help="a DuckDB file to generate into and keep (reused, read-only, when it exists)")
    args = parser.parse_args()
    if args.data and Path(args.data).exists():
        connection = duckdb.connect(args.data, read_only=True)
        print(f"reusing {args.data}")
    else:
        connection = duckdb.connect(args.data or ":memory:")
        start = time.perf_counter()
        generate(connection, args.customers)
        print(f"generated {args.customers:,} customers / {5 * args.customers:,} orders / "
              f"{20 * args.customers:,} events in {time.perf_counter() - start:.1f} s")
    connection.execute("SET enable_progress_bar = false")

    print(f"{'query':6} {'hand ms':>9} {'compiled ms':>12} {'ratio':>7} {'hand cpu':>9} {'compiled cpu':>13} "
          f"{'cpu ratio':>9} {'members':>9}")
    for name, rule in RULES.items():
        rules = crmrules.load_text(f"segment {name}: {rule}", schema=SCHEMA)
        compiled = members_query(rules.program, name, "duckdb", evaluation_context(AS_OF, rules.program.schema),
                                 pretty=False)
        medians, rows = timed_pair(connection, {"hand": HAND[name], "compiled": compiled}, args.repeat)
        assert rows["hand"] == rows["compiled"], \
            f"{name}: hand-written finds {len(rows['hand'])}, compiled {len(rows['compiled'])} (or other ids)"
        (hand_ms, hand_cpu), (ours_ms, ours_cpu) = medians["hand"], medians["compiled"]
        print(f"{name:6} {hand_ms:9.1f} {ours_ms:12.1f} {ours_ms / hand_ms:7.2f} {hand_cpu:9.1f} {ours_cpu:13.1f} "
              f"{ours_cpu / hand_cpu:9.2f} {len(rows['compiled']):9,}")

    compile_times = []
    for _ in range(50):
        start = time.perf_counter()
        rules = crmrules.load_text(f"segment q4: {RULES['q4']}", schema=SCHEMA)
        segments_query(rules.program, ["q4"], "duckdb", evaluation_context(AS_OF, rules.program.schema), pretty=False)
        compile_times.append((time.perf_counter() - start) * 1000)
    print(f"rule → SQL compile of q4 again in a new RuleSet (parse, check, generate, print unformatted; warm): "
          f"median {statistics.median(compile_times):.2f} ms (stages and a new text each time: bench_compile.py)")

    thresholds = [50 + 15 * i for i in range(20)]
    text = "\n".join(f"segment s{i}: sum(orders.total where created_at within 365d) > {t} and "
                     f"count(events where type == \"view\") >= {i % 5}" for i, t in enumerate(thresholds))
    rules = crmrules.load_text(text, schema=SCHEMA)
    names = [n for n, _ in rules.segments]
    ctx = evaluation_context(AS_OF, rules.program.schema)
    fused_ms, _ = timed(connection, segments_query(rules.program, names, "duckdb", ctx), args.repeat)
    separate = [members_query(rules.program, n, "duckdb", ctx) for n in names]
    start_all = []
    for _ in range(max(1, args.repeat // 2)):
        start = time.perf_counter()
        for sql in separate:
            connection.execute(sql).fetchall()
        start_all.append((time.perf_counter() - start) * 1000)
    separate_ms = statistics.median(start_all)
    print(f"20 segments: fused {fused_ms:.0f} ms, separate {separate_ms:.0f} ms, "
          f"fused is {separate_ms / fused_ms:.1f}× faster (target ≥ 3×)")


if __name__ == "__main__":
    main()
