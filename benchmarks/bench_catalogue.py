"""The built-in catalogue on a large seeded shop, in one process.

    python benchmarks/bench_catalogue.py [--customers 1000000] [--repeat 3] [--show-sql] [--data FILE]

Generates bench_sql.py's shop (customers / 5× orders / 20× events, seeded) into a
DuckDB file, then prints:

1. RFM: the compiled query of rfm_r, rfm_f, rfm_m and rfm_class of every customer with a paid order
   (the catalogue's tie-respecting `score` definitions, through `planner.values_select`) against the
   same scores written by hand with DuckDB's RANK() and COUNT(*) OVER (), checked to return the same
   scores; median milliseconds of each and the ratio compiled / hand (target of issue 14: ≤ 1.0×).
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
import json
import multiprocessing
import os
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
from crmrules.backends.sql import segments_query  # noqa: E402
from crmrules.backends.sql.planner import values_select  # noqa: E402
from crmrules.context import evaluation_context  # noqa: E402

AS_OF = date(2026, 6, 30)
NOW = "TIMESTAMP '2026-06-30 23:59:59.999999'"
RFM = ["rfm_r", "rfm_f", "rfm_m", "rfm_class"]

# the same scores by hand: paid orders up to `now` per customer; a score is 1 + 5 × (buyers with a worse
# value) DIV (buyers), worse = more days for R (rfm_period is all time: M is every paid order)
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
           1 + 5 * (RANK() OVER (ORDER BY recency DESC) - 1) // COUNT(*) OVER () AS r,
           1 + 5 * (RANK() OVER (ORDER BY frequency) - 1) // COUNT(*) OVER () AS f,
           1 + 5 * (RANK() OVER (ORDER BY monetary) - 1) // COUNT(*) OVER () AS m
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
    connection.execute("SET enable_progress_bar = false")
    generate(connection, customers)
    connection.execute("CHECKPOINT")
    connection.close()


def check_data(connection, customers: int) -> tuple[int, int]:
    """Check what lets the hand-written RFM skip parts of the engine's semantics; (orders after now,
    ids in orders or events without a customer row)."""
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
    # ids the compiled query must look for in events too (every existing customer gets a row)
    only_events = connection.execute(
        "SELECT count(DISTINCT e.customer_id) FROM events e ANTI JOIN customers c ON c.id = e.customer_id").fetchone()[0]
    return late, only_events


def timed_pair(connection, queries: dict[str, str], repeat: int) -> tuple[dict[str, float], dict[str, list[tuple]]]:
    """Median milliseconds (fetchall included) over `repeat` rounds, the queries alternating so that load
    from other processes falls on each alike, after a warm-up round that gives the rows."""
    rows = {name: connection.execute(sql).fetchall() for name, sql in queries.items()}
    times: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(repeat):
        for name, sql in queries.items():
            start = time.perf_counter()
            connection.execute(sql).fetchall()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}, rows


def cpu_seconds(connection, sql: str) -> float | None:
    """DuckDB's own CPU time for one run of the query (summed over its threads), from its JSON profile;
    steadier than wall time when other processes share the cores. None if this DuckDB reports none."""
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch:
        output = Path(scratch) / "profile.json"
        connection.execute("PRAGMA enable_profiling = 'json'")
        connection.execute(f"PRAGMA profiling_output = '{output}'")
        try:
            connection.execute(sql).fetchall()
        finally:
            connection.execute("PRAGMA disable_profiling")
        try:
            profile = json.loads(output.read_text())
        except (OSError, ValueError):
            return None
    found = profile.get("cpu_time", (profile.get("query") or {}).get("cpu_time"))
    return float(found) if found is not None else None


def compiled_rfm_tree():
    """The catalogue's RFM attributes of every customer, as the engine compiles them (a sqlglot tree)."""
    # the customers RFM scores: those with a paid order, as the hand-written query lists them
    rules = crmrules.load_text("segment scored: order_count > 0")
    program = rules.program_for(attributes=RFM)
    return values_select(program, [(name, program.attributes[name].body) for name in RFM], dialect_named("duckdb"),
                         evaluation_context(AS_OF, program.schema),
                         where=program.segments["scored"].body)


def show_sql() -> None:
    """Print the two RFM queries of part 1."""
    print("-- compiled RFM query (formatted; the benchmark runs it unformatted):")
    print(render(compiled_rfm_tree(), dialect_named("duckdb"), pretty=True) + ";")
    print("-- hand-written RFM query:")
    print(textwrap.dedent(HAND_RFM).strip() + ";", flush=True)


def bench_rfm(path: str, customers: int, repeat: int) -> dict:
    """Part 1: compiled against hand-written RFM, same answers checked."""
    compiled = render(compiled_rfm_tree(), dialect_named("duckdb"), pretty=False)
    connection = duckdb.connect(path, read_only=True)
    try:
        connection.execute("SET enable_progress_bar = false")
        late, only_events = check_data(connection, customers)
        medians, rows = timed_pair(connection, {"hand": HAND_RFM, "compiled": compiled}, repeat)
        hand_cpu, ours_cpu = cpu_seconds(connection, HAND_RFM), cpu_seconds(connection, compiled)
    finally:
        connection.close()
    hand_ms, ours_ms, hand_rows, our_rows = medians["hand"], medians["compiled"], rows["hand"], rows["compiled"]
    scored = {(str(i), r, f, m, c) for i, r, f, m, c in our_rows if r is not None}
    unscored = [row for row in our_rows if row[1] is None]
    assert all(row[1:] == (None, None, None, None) for row in unscored), "partly scored customers"
    hand = {(str(i), r, f, m, c) for i, r, f, m, c in hand_rows}
    assert len(hand) == len(hand_rows), "hand-written RFM returned a customer twice"
    if scored != hand:
        only_ours, only_hand = sorted(scored - hand)[:5], sorted(hand - scored)[:5]
        raise AssertionError(f"RFM differs: compiled only {only_ours}, hand-written only {only_hand}")
    return {"compiled_ms": ours_ms, "hand_ms": hand_ms, "rows": len(our_rows), "scored": len(scored),
            "unscored": len(unscored), "late_orders": late, "only_events": only_events, "hand_cpu": hand_cpu,
            "compiled_cpu": ours_cpu}


def bench_run(path: str) -> dict:
    """Part 2: 30 catalogue segments and every template in one run on the DuckDB file."""
    templates = [d.name for d in crmrules.stdlib.prelude().declarations if isinstance(d, crmrules.ast.SegmentDecl)]
    text = "\n".join(f"segment {name}: {rule}" for name, rule in SEGMENTS.items())
    start = time.perf_counter()
    rules = crmrules.load_text(text)
    names = [*SEGMENTS, *templates]
    program = rules.program_for(segments=templates)  # the templates checked too, in one pass
    check_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    sql = segments_query(program, names, "duckdb", evaluation_context(AS_OF, program.schema), pretty=False)
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
    parser.add_argument("--rfm-only", action="store_true", help="only part 1, the RFM comparison")
    args = parser.parse_args()
    if args.show_sql:
        show_sql()
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
        load_before = os.getloadavg()[0]
        print(f"peak RSS before the benchmark: {peak_rss_mb():,.0f} MiB; load average {load_before:.1f} "
              f"on {os.cpu_count()} cores", flush=True)

        run = profiles = None
        if not args.rfm_only:
            run = bench_run(path)
            print(f"[2] run of {run['segments']} segments done in {run['run_s']:.1f} s", flush=True)
            profiles = bench_profile(path)
            print("[3] profiles done", flush=True)
        rfm = bench_rfm(path, args.customers, args.repeat)
        print("[1] RFM done", flush=True)
    finally:
        if scratch is not None:
            scratch.cleanup()

    load_after = os.getloadavg()[0]
    report(args, rfm, run, profiles, load_before, load_after)


def report(args, rfm: dict, run: dict, profiles: dict, load_before: float, load_after: float) -> None:
    """The details of each part, then one table."""
    ratio = rfm["compiled_ms"] / rfm["hand_ms"]

    def cpu(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else "n/a"

    print()
    print(f"1. RFM, as of {AS_OF}: {rfm['scored']:,} customers scored, {rfm['unscored']:,} without a paid order "
          f"(no score); {rfm['late_orders']:,} orders dated after the as-of instant; {rfm['only_events']:,} ids in "
          "events without a customer row")
    print(f"   {'query':34} {'median ms':>10} {'DuckDB cpu s':>13} {'rows':>10}")
    print(f"   {'hand-written (RANK, COUNT OVER)':34} {rfm['hand_ms']:10.0f} {cpu(rfm['hand_cpu']):>13} {rfm['scored']:10,}")
    print(f"   {'compiled (values_select)':34} {rfm['compiled_ms']:10.0f} {cpu(rfm['compiled_cpu']):>13} "
          f"{rfm['rows']:10,}")
    verdict = "OK" if ratio <= 1.0 else "slower than the target"
    print(f"   compiled / hand: {ratio:.2f}× wall (target ≤ 1.0×: {verdict})"
          + (f", {rfm['compiled_cpu'] / rfm['hand_cpu']:.2f}× cpu" if rfm["hand_cpu"] and rfm["compiled_cpu"] else "")
          + f"; median of {args.repeat} alternating runs after a warm-up, fetchall included")
    print("   same (customer_id, r, f, m, class) for every scored customer: yes (checked)")
    if run is not None:
        report_run(run, profiles)
    print()
    rows = [
        ("1. RFM hand-written RANK, median", f"{rfm['hand_ms']:,.0f} ms"),
        ("1. RFM compiled, median", f"{rfm['compiled_ms']:,.0f} ms"),
        ("1. RFM compiled / hand (target ≤ 1.0×)", f"{ratio:.2f}×"),
        ("1. RFM DuckDB cpu, hand / compiled", f"{cpu(rfm['hand_cpu'])} s / {cpu(rfm['compiled_cpu'])} s"),
    ]
    if run is not None:
        rows += [
            (f"2. run, {run['segments']} segments, wall", f"{run['run_s']:.1f} s"),
            ("2. run, peak RSS after (before)", f"{run['rss_after']:,.0f} MiB ({run['rss_before']:,.0f} MiB)"),
            *((f"3. profile {label}", f"{seconds:.1f} s") for label, (seconds, _) in profiles.items()),
        ]
    rows.append(("machine: cores, load average before → after", f"{os.cpu_count()}, {load_before:.1f} → {load_after:.1f}"))
    width = max(len(label) for label, _ in rows)
    print(f"{'benchmark':{width}}  {'result':>24}")
    for label, value in rows:
        print(f"{label:{width}}  {value:>24}")


def report_run(run: dict, profiles: dict) -> None:
    """Parts 2 and 3 in detail."""
    print(f"2. One run on the DuckDB file: {run['segments']} segments ({run['own']} on catalogue attributes and "
          f"functions + {run['templates']} templates), one fused query")
    print(f"   check {run['check_ms']:.0f} ms, compile to SQL {run['compile_ms']:.0f} ms ({run['sql_chars']:,} chars), "
          f"run (open, query, collect members) {run['run_s']:.1f} s")
    print(f"   peak RSS of the process {run['rss_before']:,.0f} MiB before the run, {run['rss_after']:,.0f} MiB after "
          "(DuckDB's memory is part of it)")
    counts = [f"{name}={count:,}" for name, count in run["counts"].items()]
    print(textwrap.fill("   members: " + ", ".join(counts), width=118, subsequent_indent="     "))
    if run["warnings"]:
        print(f"   warnings: {run['warnings']}")
    print("3. Profiles (one SQL query each, on the file)")
    for label, (seconds, profile) in profiles.items():
        sizes = ", ".join(f"{name} {profile['summary'][name]['customers']:,} customers" for name in profile["segments"])
        print(f"   {label:24} {seconds:6.1f} s   ({sizes})")


if __name__ == "__main__":
    main()
