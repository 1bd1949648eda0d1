"""A shop larger than memory, read in place from Parquet: time and peak RSS.

    python benchmarks/bench_scale.py [--customers 10000000] [--dir DIR (default: crmrules-scale in the system temp dir)] [--memory-limit 6GB]
                                     [--baseline-customers 1000000] [--generate-only]

Generates a seeded shop as Parquet with DuckDB SQL (customers, 5× orders, ~1.5 items per order, 20× events:
at 10M customers that is 50M orders and 200M events), cached under `--dir/<customers>` and reused when
present. Then, each in a child process (`crmrules` on the command line, `--memory-limit` given) so its peak
RSS is its own, measures wall time and peak RSS of:

1. one segment (`crmrules run --segment`),
2. the whole catalogue: 30 segments on catalogue attributes and functions plus every template, in one run
   (as bench_catalogue.py part 2 does),
3. RFM (`crmrules rfm`),

and the whole-catalogue run again on a `--baseline-customers` shop (default 1M) in the same way, printing
the per-customer time at the large size ÷ at the baseline (target < 1: the large run is no slower per customer).
Targets: peak RSS under 8 GB, no run failing for lack of memory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_catalogue import SEGMENTS

AS_OF = "2026-06-30"
CRMRULES = [sys.executable, "-m", "crmrules"]

# hash-based numbers: the same data on every run, whatever the thread count (random() is not)
_RND = "CREATE MACRO rnd(i, salt) AS (hash(i, salt) % 1000003) / 1000003.0"
_TABLES = {
    "customers": """SELECT
            lpad(CAST(i AS VARCHAR), 8, '0') AS id, 'c' || i || '@example.com' AS email, NULL::VARCHAR AS phone,
            'Ana' AS first_name, 'Silva' AS last_name,
            CASE WHEN rnd(i, 2) < 0.5 THEN 'female' ELSE 'male' END AS gender,
            DATE '1960-01-01' + CAST(floor(rnd(i, 3) * 16000) AS INTEGER) AS birthday,
            'PT' AS country, 'Porto' AS city, 'pt' AS language, 'ads' AS source,
            TIMESTAMP '2023-01-01' + INTERVAL (CAST(floor(rnd(i, 4) * 1000) AS INTEGER)) DAY AS registered_at,
            rnd(i, 5) < 0.6 AS email_subscribed, rnd(i, 6) < 0.3 AS sms_subscribed,
            CASE WHEN rnd(i, 7) < 0.3 THEN ['coat'] WHEN rnd(i, 8) < 0.5 THEN ['dress', 'vip'] ELSE [] END AS tags,
            'silver' AS tier, CAST(floor(rnd(i, 9) * 5000) AS BIGINT) AS points
        FROM range({n}) t(i)""",
    "orders": """SELECT
            'o' || i AS id, lpad(CAST(CAST(floor(rnd(i, 14) * {n}) AS BIGINT) AS VARCHAR), 8, '0') AS customer_id,
            TIMESTAMP '2024-01-01' + INTERVAL (CAST(floor(rnd(i, 15) * 912 * 86400) AS BIGINT)) SECOND AS created_at,
            CASE WHEN rnd(i, 16) < 0.85 THEN 'paid' ELSE 'refunded' END AS status,
            CAST(5 + rnd(i, 17) * 300 AS DECIMAL(38, 6)) AS total, CAST(0 AS DECIMAL(38, 6)) AS discount,
            NULL::VARCHAR AS coupon, 'web' AS channel
        FROM range({orders}) t(i)""",
    # from the order numbers, not a join with the orders file: one or two items per order
    "order_items": """SELECT 'o' || i AS order_id, 'p' || j AS product_id,
            (['coat', 'dress', 'shoes', 'skincare', 'face_cream'])[1 + CAST(floor(rnd(i * 2 + j, 18) * 5) AS INTEGER)]
                AS category,
            CAST(1 AS BIGINT) AS quantity, CAST(20 AS DECIMAL(38, 6)) AS price
        FROM range({orders}) t(i), range(2) u(j) WHERE j = 0 OR rnd(i, 19) < 0.5""",
    "events": """SELECT
            lpad(CAST(CAST(floor(rnd(i, 20) * {n}) AS BIGINT) AS VARCHAR), 8, '0') AS customer_id,
            (['visit', 'view', 'add_to_cart', 'favorite', 'search'])[1 + CAST(floor(rnd(i, 21) * 5) AS INTEGER)] AS type,
            TIMESTAMP '2024-01-01' + INTERVAL (CAST(floor(rnd(i, 22) * 912 * 86400) AS BIGINT)) SECOND AS "at",
            NULL::VARCHAR AS product_id, 'coat' AS category, NULL::VARCHAR AS value
        FROM range({events}) t(i)""",
    "products": """SELECT 'p' || i AS id, 'Product ' || i AS title, 'coat' AS category,
            CAST(20 AS DECIMAL(38, 6)) AS price, ['new'] AS tags FROM range(2) t(i)""",
}


def generate(directory: Path, customers: int, memory_limit: str) -> None:
    """The shop as one Parquet file per table in `directory`; written beside it first, renamed when whole."""
    if (directory / "complete").exists():
        print(f"reusing {directory}", flush=True)
        return
    scratch = directory.with_name(directory.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    connection.execute(f"SET memory_limit = '{memory_limit}'")
    connection.execute("SET preserve_insertion_order = false")
    connection.execute(f"SET temp_directory = '{scratch / 'spill'}'")
    connection.execute(_RND)
    sizes = {"n": customers, "orders": 5 * customers, "events": 20 * customers}
    start = time.perf_counter()
    for table, select in _TABLES.items():
        began = time.perf_counter()
        target = scratch / f"{table}.parquet"
        connection.execute(f"COPY ({select.format(**sizes)}) TO '{target}' "
                           "(FORMAT PARQUET, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)")
        print(f"  {table}: {target.stat().st_size / 2**20:,.0f} MiB in {time.perf_counter() - began:.0f} s",
              flush=True)
    connection.close()
    shutil.rmtree(scratch / "spill", ignore_errors=True)
    (scratch / "complete").write_text(f"{customers}\n")
    shutil.rmtree(directory, ignore_errors=True)
    scratch.rename(directory)
    print(f"generated {customers:,} customers into {directory} in {time.perf_counter() - start:.0f} s", flush=True)


def catalogue_rules(path: Path) -> list[str]:
    """A rule file of bench_catalogue's 30 segments; the names to run: those and every template."""
    import crmrules.ast
    import crmrules.stdlib

    path.write_text("\n".join(f"segment {name}: {rule}" for name, rule in SEGMENTS.items()) + "\n")
    templates = [d.name for d in crmrules.stdlib.prelude().declarations if isinstance(d, crmrules.ast.SegmentDecl)]
    return [*SEGMENTS, *templates]


def measured(label: str, arguments: list[str], timeout: float) -> dict:
    """Run one command in a child process: wall seconds, its own CPU seconds and peak RSS (MiB, from
    `os.wait4`, the child's own rusage), and how it ended."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen([*CRMRULES, *arguments], stdout=out, stderr=err)
        timer = threading.Timer(timeout, child.kill)
        timer.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        timer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    ended = "killed (timeout)" if child.returncode == -9 else child.returncode
    result = {"label": label, "seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
              "rss_mib": usage.ru_maxrss / 1024, "status": ended,
              "stderr": stderr.strip().splitlines()[-3:] if child.returncode != 0 else []}
    print(f"  {label}: {seconds:.1f} s ({result['cpu']:.1f} s cpu), peak RSS {result['rss_mib']:,.0f} MiB, "
          f"exit {ended}", flush=True)
    for line in result["stderr"]:
        print(f"    {line}", flush=True)
    return result


def measure(directory: Path, customers: int, memory_limit: str, timeout: float, rules: Path,
            names: list[str], only_catalogue: bool = False) -> list[dict]:
    """The runs of one shop; only the whole catalogue when `only_catalogue`."""
    common = ["--data", str(directory), "--as-of", AS_OF, "--memory-limit", memory_limit]
    catalogue = ["run", str(rules), *common, "--format", "json", *(a for n in names for a in ("--segment", n))]
    runs = [(f"whole catalogue ({len(names)} segments), {customers:,} customers", catalogue)]
    if not only_catalogue:
        runs.insert(0, (f"one segment (s11_spent_365d), {customers:,} customers",
                        ["run", str(rules), *common, "--segment", "s11_spent_365d", "--format", "json"]))
        runs.append((f"RFM (crmrules rfm), {customers:,} customers", ["rfm", *common, "--format", "json"]))
    return [measured(label, arguments, timeout) for label, arguments in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--baseline-customers", type=int, default=1_000_000,
                        help="the shop the whole catalogue's per-customer time is compared with (0: none)")
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "crmrules-scale"),
                        help="where the generated shops are kept and reused")
    parser.add_argument("--memory-limit", default="6GB", help="passed to every run (DuckDB's memory limit)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each run may take")
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args()

    root = Path(args.dir)
    sizes = [args.customers] + ([args.baseline_customers] if args.baseline_customers else [])
    for customers in dict.fromkeys(sizes):
        generate(root / str(customers), customers, args.memory_limit)
    if args.generate_only:
        return
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        rules = Path(scratch) / "catalogue.crm"
        names = catalogue_rules(rules)
        large = measure(root / str(args.customers), args.customers, args.memory_limit, args.timeout, rules, names)
        baseline = []
        if args.baseline_customers and args.baseline_customers != args.customers:
            baseline = measure(root / str(args.baseline_customers), args.baseline_customers, args.memory_limit,
                               args.timeout, rules, names, only_catalogue=True)
    report(args, large, baseline)


def report(args, large: list[dict], baseline: list[dict]) -> None:
    print()
    width = max(len(r["label"]) for r in [*large, *baseline])
    print(f"{'run (--memory-limit ' + args.memory_limit + ')':{width}}  {'wall s':>8}  {'cpu s':>8}  "
          f"{'peak RSS MiB':>12}  exit")
    for run in [*large, *baseline]:
        rss = f"{run['rss_mib']:,.0f}"
        print(f"{run['label']:{width}}  {run['seconds']:8.1f}  {run['cpu']:8.1f}  {rss:>12}  {run['status']}")
    peaks = [r["rss_mib"] for r in large]
    if peaks:
        verdict = "OK" if max(peaks) < 8 * 1024 and all(r["status"] == 0 for r in large) else "MISSED"
        print(f"peak RSS at {args.customers:,} customers: {max(peaks):,.0f} MiB (target < 8 GiB, no failure: {verdict})")
    if baseline and all(r["status"] == 0 for r in (large[1], baseline[0])):
        per_large = large[1]["seconds"] / args.customers
        per_base = baseline[0]["seconds"] / args.baseline_customers
        ratio = per_large / per_base
        cpu_ratio = (large[1]["cpu"] / args.customers) / (baseline[0]["cpu"] / args.baseline_customers)
        print(f"whole catalogue per customer: {per_large * 1e6:.2f} µs at {args.customers:,}, "
              f"{per_base * 1e6:.2f} µs at {args.baseline_customers:,}: ratio {ratio:.2f} wall, {cpu_ratio:.2f} cpu "
              f"(target < 1: {'OK' if ratio < 1 else 'MISSED'}); load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
