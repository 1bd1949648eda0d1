"""The built-in catalogue on a large seeded shop, in one process.

    python benchmarks/bench_catalogue.py [--customers 1000000] [--repeat 3] [--show-sql] [--data FILE]

Generates bench_sql.py's shop (customers / 5× orders / 20× events, seeded) into a
DuckDB file, then prints:

1. RFM: the compiled query of every customer's rfm_r, rfm_f, rfm_m and rfm_class
   (the catalogue's definitions, through `SqlGenerator.values`) against the same
   scores written by hand with DuckDB's NTILE, checked to return the same scores;
   median milliseconds of each and the ratio compiled / hand (target ≤ 1.1×).
2. A rule file of 30 segments, each on a different catalogue attribute or
   function, plus every template segment, in one `RuleSet.run` on the file:
   wall time and peak RSS of the process (DuckDB's memory is part of the RSS).
3. `RuleSet.profile` of the `dormant` template, alone and `vs="high_value"`.

The data is generated in a child process and part 2 runs first, so the peak RSS
reported for it is not hidden by the generation's or part 1's; the table at the
end is in the order above.

The customers table has extra columns (total_spent, days_since_last_order, age)
for bench_sql.py; they are not declared here (default schema), so the catalogue's
definitions of those names, computed from orders and birthdays, are the ones used.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

import crmrules  # noqa: E402
import crmrules.ast  # noqa: E402
import crmrules.stdlib  # noqa: E402
from bench_sql import generate  # noqa: E402
from crmrules.backends.sql import dialect_named, render  # noqa: E402
from crmrules.backends.sql.generator import SqlGenerator  # noqa: E402
from crmrules.backends.sql.runners import build_query  # noqa: E402
from crmrules.values import evaluation_instant  # noqa: E402

AS_OF = date(2026, 6, 30)
NOW = "TIMESTAMP '2026-06-30 23:59:59.999999'"
RFM = ["rfm_r", "rfm_f", "rfm_m", "rfm_class"]

# the same scores by hand: paid orders up to `now` per customer, ranked with NTILE, ties by id
HAND_RFM = f"""
WITH paid AS (
    SELECT customer_id,
           date_diff('day', CAST(max(created_at) AS DATE), DATE '2026-06-30') AS recency,
           count(*) AS frequency,
           sum(total) AS monetary
    FROM orders
    WHERE status = 'paid' AND created_at <= {NOW}
    GROUP BY customer_id
), scored AS (
    SELECT customer_id,
           6 - NTILE(5) OVER (ORDER BY recency, customer_id) AS r,
           NTILE(5) OVER (ORDER BY frequency, customer_id) AS f,
           NTILE(5) OVER (ORDER BY monetary, customer_id) AS m
    FROM paid
)
SELECT customer_id, r, f, m,
       CASE WHEN m >= 3 THEN
                CASE WHEN r >= 3 THEN CASE WHEN f >= 3 THEN 'important_value' ELSE 'important_develop' END
                     ELSE CASE WHEN f >= 3 THEN 'important_keep' ELSE 'important_retain' END END
            ELSE
                CASE WHEN r >= 3 THEN CASE WHEN f >= 3 THEN 'general_value' ELSE 'general_develop' END
                     ELSE CASE WHEN f >= 3 THEN 'general_keep' ELSE 'general_retain' END END
       END AS class
FROM scored
"""

# one segment per catalogue attribute or function, each a different one
SEGMENTS = {
    "s01_age_30s": "age >= 30 and age < 40",
    "s02_email_and_sms": 'subscription_status == "email+sms"',
    "s03_registered_1y": "days_since_registration > 365",
    "s04_aov": "aov > 50",
    "s05_big_order": "spent_once > 250",
    "s06_refunder": "refund_rate > 0.2",
    "s07_items_per_order": "items_per_order >= 1.5",
    "s08_short_cycle": "purchase_cycle_days < 90",
    "s09_spend_band": 'spend_band == "500-999"',
    "s10_ordered_30d": "ordered(within: 30d)",
    "s11_spent_365d": "spent(within: 365d) > 300",
    "s12_orders_90d": "orders_within(within: 90d) >= 2",
    "s13_recent_visit": "days_since_last_visit < 14",
    "s14_viewer": "view_count >= 5",
    "s15_abandoned_cart": "abandoned_cart",
    "s16_abandoned_checkout": "abandoned_checkout",
    "s17_did_view_30d": 'did("view", within: 30d)',
    "s18_viewed_coat_7d": 'viewed("coat", within: 7d)',
    "s19_searched_coat": 'searched("coat")',
    "s20_top_category_coat": 'preferred_category == "coat"',
    "s21_bought_shoes_ever": '"shoes" in categories_bought',
    "s22_skincare_share": 'category_share("skincare") > 0.5',
    "s23_prefers_coat": 'prefers("coat")',
    "s24_bought_dress_90d": 'bought("dress", within: 90d)',
    "s25_promo_high": 'promo_sensitivity == "high"',
    "s26_coupon_user": "coupon_use_count > 0",
    "s27_rfm_555": 'rfm_cell == "555"',
    "s28_clv": "clv > 500",
    "s29_lifecycle_dormant": 'lifecycle == "dormant"',
    "s30_value_top": 'value_tier == "top"',
}


def peak_rss_mb() -> float:
    """The process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(path: str, customers: int) -> None:
    """Write the seeded shop into a DuckDB file (run in a child process)."""
    connection = duckdb.connect(path)
    generate(connection, customers)
    connection.execute("CHECKPOINT")
    connection.close()


def check_data(connection, customers: int) -> int:
    """The data meets what lets the hand-written RFM skip parts of the engine's semantics; orders after now."""
    found = connection.execute("SELECT count(*) FROM customers").fetchone()[0]
    assert found == customers, f"the data file has {found:,} customers, not {customers:,} (use another --data)"
    late, undated = connection.execute(
        f"SELECT count(*) FILTER (WHERE created_at > {NOW}), count(*) FILTER (WHERE created_at IS NULL) "
        "FROM orders").fetchone()
    # everyone is registered by `now` and every order's customer has a customer row, so ranking the buyers
    # found in orders is ranking the engine's population; undated orders would count there, not here
    assert undated == 0, "undated orders: the hand-written RFM would not count them"
    future = connection.execute(f"SELECT count(*) FROM customers WHERE registered_at > {NOW}").fetchone()[0]
    assert future == 0, "customers registered after now: the hand-written RFM would rank them"
    orphans = connection.execute(
        "SELECT count(*) FROM orders o ANTI JOIN customers c ON c.id = o.customer_id").fetchone()[0]
    assert orphans == 0, "orders without a customer row"
    return late


def timed_rows(connection, sql: str, repeat: int) -> tuple[float, list[tuple]]:
    """Median milliseconds over `repeat` runs (after a warm-up run that gives the rows), fetchall included."""
    rows = connection.execute(sql).fetchall()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        connection.execute(sql).fetchall()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), rows


def compiled_rfm_tree():
    """The catalogue's RFM attributes of every customer, as the engine compiles them (a sqlglot tree)."""
    rules = crmrules.load_text("")
    rules._ensure(RFM, rules.program.attributes)
    program = rules.program
    generator = SqlGenerator(program, dialect_named("duckdb"), evaluation_instant(AS_OF, program.schema.timezone))
    return generator.values([(name, program.attributes[name].body) for name in RFM])


def bench_rfm(path: str, customers: int, repeat: int, show_sql: bool) -> dict:
    """Part 1: compiled against hand-written RFM, same answers checked."""
    d = dialect_named("duckdb")
    compiled = render(compiled_rfm_tree(), d, pretty=False)
    if show_sql:
        print("-- compiled RFM query (formatted):")
        print(render(compiled_rfm_tree(), d, pretty=True))
        print("-- hand-written RFM query:")
        print(textwrap.dedent(HAND_RFM).strip())
    connection = duckdb.connect(path, read_only=True)
    try:
        late = check_data(connection, customers)
        hand_ms, hand_rows = timed_rows(connection, HAND_RFM, repeat)
        ours_ms, our_rows = timed_rows(connection, compiled, repeat)
    finally:
        connection.close()
    scored = {(str(i), r, f, m, c) for i, r, f, m, c in our_rows if r is not None}
    unscored = [row for row in our_rows if row[1] is None]
    assert all(row[1:] == (None, None, None, None) for row in unscored), "partly scored customers"
    hand = {(str(i), r, f, m, c) for i, r, f, m, c in hand_rows}
    assert len(hand) == len(hand_rows), "hand-written RFM returned a customer twice"
    if scored != hand:
        only_ours, only_hand = sorted(scored - hand)[:5], sorted(hand - scored)[:5]
        raise AssertionError(f"RFM differs: compiled only {only_ours}, hand-written only {only_hand}")
    return {"compiled_ms": ours_ms, "hand_ms": hand_ms, "rows": len(our_rows), "scored": len(scored),
            "unscored": len(unscored), "late_orders": late}


def bench_run(path: str) -> dict:
    """Part 2: 30 catalogue segments and every template in one run on the DuckDB file."""
    templates = [d.name for d in crmrules.stdlib.prelude().declarations if isinstance(d, crmrules.ast.SegmentDecl)]
    text = "\n".join(f"segment {name}: {rule}" for name, rule in SEGMENTS.items())
    start = time.perf_counter()
    rules = crmrules.load_text(text)
    names = [*SEGMENTS, *templates]
    for name in templates:
        rules._require(name)
    check_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    sql = build_query(rules.program, names, "duckdb", AS_OF)
    compile_ms = (time.perf_counter() - start) * 1000
    rss_before = peak_rss_mb()
    start = time.perf_counter()
    result = rules.run(path, backend="duckdb", as_of=AS_OF, segments=names)
    run_s = time.perf_counter() - start
    rss_after = peak_rss_mb()
    return {"segments": len(names), "own": len(SEGMENTS), "templates": len(templates), "run_s": run_s,
            "check_ms": check_ms, "compile_ms": compile_ms, "sql_chars": len(sql), "rss_before": rss_before,
            "rss_after": rss_after, "counts": result.counts(), "warnings": result.warnings}


def bench_profile(path: str) -> dict:
    """Part 3: the profile of `dormant`, alone and against `high_value`."""
    out = {}
    for label, vs in (("dormant", None), ("dormant vs high_value", "high_value")):
        rules = crmrules.load_text("")
        start = time.perf_counter()
        profile = rules.profile(path, "dormant", vs=vs, backend="duckdb", as_of=AS_OF)
        out[label] = ((time.perf_counter() - start), profile)
    return out


def main() -> None:
    """Generate the data and print every part."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--show-sql", action="store_true", help="print the compiled and hand-written RFM queries")
    parser.add_argument("--data", help="a DuckDB file to generate into and keep (reused when it exists)")
    args = parser.parse_args()
    scratch = None
    if args.data:
        path = str(Path(args.data).resolve())
    else:
        scratch = tempfile.TemporaryDirectory(prefix="bench-catalogue-")
        path = str(Path(scratch.name) / "shop.duckdb")
    try:
        if not Path(path).exists():
            start = time.perf_counter()
            # in a child process, so this process's peak RSS is the benchmark's own
            child = multiprocessing.get_context("spawn").Process(target=_generate, args=(path, args.customers))
            child.start()
            child.join()
            assert child.exitcode == 0, f"generating the data failed (exit code {child.exitcode})"
            print(f"generated {args.customers:,} customers / {5 * args.customers:,} orders / "
                  f"{20 * args.customers:,} events into {path} ({Path(path).stat().st_size / 2**20:,.0f} MiB) "
                  f"in {time.perf_counter() - start:.1f} s", flush=True)
        else:
            print(f"reusing {path}", flush=True)
        print(f"peak RSS before the benchmark: {peak_rss_mb():,.0f} MiB", flush=True)

        run = bench_run(path)
        print(f"[2] run of {run['segments']} segments done in {run['run_s']:.1f} s", flush=True)
        profiles = bench_profile(path)
        print("[3] profiles done", flush=True)
        rfm = bench_rfm(path, args.customers, args.repeat, args.show_sql)
        print("[1] RFM done", flush=True)
    finally:
        if scratch is not None:
            scratch.cleanup()

    print()
    print(f"1. RFM of every customer ({rfm['scored']:,} scored, {rfm['unscored']:,} without a paid order; "
          f"{rfm['late_orders']:,} orders after the as-of instant ignored), median of {args.repeat}, fetchall included")
    print(f"   {'query':34} {'ms':>9} {'rows':>10}")
    print(f"   {'hand-written (NTILE)':34} {rfm['hand_ms']:9.0f} {rfm['scored']:10,}")
    print(f"   {'compiled (SqlGenerator.values)':34} {rfm['compiled_ms']:9.0f} {rfm['rows']:10,}")
    ratio = rfm["compiled_ms"] / rfm["hand_ms"]
    print(f"   ratio compiled / hand: {ratio:.2f}× (target ≤ 1.1×) {'OK' if ratio <= 1.1 else 'SLOWER THAN TARGET'}; "
          f"same (customer_id, r, f, m, class) for every scored customer")
    print(f"2. One run: {run['segments']} segments ({run['own']} on catalogue attributes/functions + "
          f"{run['templates']} templates), backend duckdb")
    print(f"   check {run['check_ms']:.0f} ms, compile to SQL {run['compile_ms']:.0f} ms "
          f"({run['sql_chars']:,} chars), run (open file, query, collect members) {run['run_s']:.1f} s")
    print(f"   peak RSS {run['rss_before']:,.0f} MiB before → {run['rss_after']:,.0f} MiB after "
          f"(+{run['rss_after'] - run['rss_before']:,.0f} MiB; DuckDB's memory included)")
    counts = [f"{name}={count:,}" for name, count in run["counts"].items()]
    print(textwrap.fill("   members: " + ", ".join(counts), width=118, subsequent_indent="     "))
    if run["warnings"]:
        print(f"   warnings: {run['warnings']}")
    print("3. Profile (one SQL query each)")
    for label, (seconds, profile) in profiles.items():
        print(f"   {label:34} {seconds:7.1f} s")
    print()
    print(f"{'benchmark':44} {'result':>32}")
    print(f"{'1. RFM hand-written NTILE':44} {rfm['hand_ms']:29.0f} ms")
    print(f"{'1. RFM compiled':44} {rfm['compiled_ms']:29.0f} ms")
    print(f"{'1. RFM ratio compiled / hand (≤ 1.1×)':44} {ratio:31.2f}×")
    label = f"2. run, {run['segments']} segments, wall"
    print(f"{label:44} {run['run_s']:30.1f} s")
    rss = f"{run['rss_after']:,.0f} MiB (before {run['rss_before']:,.0f})"
    print(f"{'2. run, peak RSS':44} {rss:>32}")
    for label, (seconds, _) in profiles.items():
        print(f"{'3. profile ' + label:44} {seconds:30.1f} s")


if __name__ == "__main__":
    main()
