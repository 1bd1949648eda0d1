"""The whole catalogue in one fused query against the same questions asked one query each.

    python benchmarks/bench_fused.py [--customers 1000000] [--repeat 3] [--data FILE]

On bench_sql.py's seeded shop (customers / 5× orders / 20× events, in a DuckDB
file: generated, or reused with --data), the segments of bench_catalogue.py's
part 2 (30 segments on catalogue attributes and functions, plus every template)
are answered two ways, alternating, each round timed (wall and this process's CPU
time, DuckDB's threads included):

- fused: the one query crmrules runs for a rule file (`segments_query`: every
  segment a boolean column, each table's aggregates computed once for all);
- separate: one query per segment, the members of that segment only
  (`members_query`), run one after the other: what asking each question on its
  own costs. These separate queries are crmrules' own per-segment queries, not
  hand-written SQL: writing and checking 51 equivalent queries by hand (visibility
  as of now, customers without rows, nulls, ties) is what the compiler is for, and
  bench_sql.py and bench_catalogue.py compare single questions with hand-written
  SQL. Every segment's members are checked to be the same both ways.

Prints the medians, the ratio separate ÷ fused, and the members per segment.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_catalogue import SEGMENTS
from bench_sql import generate

import crmrules
import crmrules.ast
import crmrules.stdlib
from crmrules.backends.sql import members_query, segments_query
from crmrules.backends.sql.runners import prepare_duckdb
from crmrules.context import evaluation_context

AS_OF = date(2026, 6, 30)


def _generate(path: str, customers: int) -> None:
    """Write the seeded shop into a DuckDB file (run in a child process)."""
    connection = duckdb.connect(path)
    connection.execute("SET enable_progress_bar = false")
    generate(connection, customers)
    connection.execute("CHECKPOINT")
    connection.close()


def queries() -> tuple[list[str], str, dict[str, str]]:
    """The segment names, the fused query and one query per segment."""
    templates = [d.name for d in crmrules.stdlib.prelude().declarations if isinstance(d, crmrules.ast.SegmentDecl)]
    rules = crmrules.load_text("\n".join(f"segment {name}: {rule}" for name, rule in SEGMENTS.items()))
    names = [*SEGMENTS, *templates]
    program = rules.program_for(segments=templates)
    ctx = evaluation_context(AS_OF, program.schema)
    fused = segments_query(program, names, "duckdb", ctx, pretty=False)
    return names, fused, {name: members_query(program, name, "duckdb", ctx, pretty=False) for name in names}


def run_fused(connection, sql: str, names: list[str]) -> dict[str, set[str]]:
    """Each segment's members from the fused query's boolean columns."""
    members: dict[str, set[str]] = {name: set() for name in names}
    for row in connection.execute(sql).fetchall():
        for name, inside in zip(names, row[1:]):
            if inside:
                members[name].add(str(row[0]))
    return members


def run_separate(connection, separate: dict[str, str]) -> dict[str, set[str]]:
    """Each segment's members from its own query."""
    return {name: {str(row[0]) for row in connection.execute(sql).fetchall()} for name, sql in separate.items()}


def main() -> None:
    """Generate or open the data, time both ways and print the comparison."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", help="a DuckDB file to generate into and keep (reused when it exists)")
    args = parser.parse_args()
    scratch = None
    if args.data:
        path = str(Path(args.data).resolve())
    else:
        scratch = tempfile.TemporaryDirectory(prefix="bench-fused-")
        path = str(Path(scratch.name) / "shop.duckdb")
    try:
        if not Path(path).exists():
            start = time.perf_counter()
            child = multiprocessing.get_context("spawn").Process(target=_generate, args=(path, args.customers))
            child.start()
            child.join()
            assert child.exitcode == 0, f"generating the data failed (exit code {child.exitcode})"
            print(f"generated {args.customers:,} customers in {time.perf_counter() - start:.1f} s", flush=True)
        names, fused, separate = queries()
        connection = duckdb.connect(path, read_only=True)
        connection.execute("SET enable_progress_bar = false")
        prepare_duckdb(connection)
        together, apart = run_fused(connection, fused, names), run_separate(connection, separate)  # warm-up
        differ = [name for name in names if together[name] != apart[name]]
        assert not differ, f"fused and separate queries disagree on {differ}"
        times: dict[str, list[tuple[float, float]]] = {"fused": [], "separate": []}
        for _ in range(args.repeat):
            for label, run in (("fused", lambda: run_fused(connection, fused, names)),
                               ("separate", lambda: run_separate(connection, separate))):
                start, start_cpu = time.perf_counter(), time.process_time()
                run()
                times[label].append((time.perf_counter() - start, time.process_time() - start_cpu))
        connection.close()
    finally:
        if scratch is not None:
            scratch.cleanup()
    wall = {label: statistics.median(t[0] for t in values) for label, values in times.items()}
    cpu = {label: statistics.median(t[1] for t in values) for label, values in times.items()}
    print(f"{len(names)} segments ({len(SEGMENTS)} on catalogue attributes and functions + {len(names) - len(SEGMENTS)} "
          f"templates), same members both ways (checked); medians of {args.repeat} alternating rounds")
    print(f"{'':28} {'wall s':>8} {'cpu s':>8}")
    print(f"{'fused (one query)':28} {wall['fused']:8.2f} {cpu['fused']:8.2f}")
    print(f"{'separate (one per segment)':28} {wall['separate']:8.2f} {cpu['separate']:8.2f}")
    print(f"separate ÷ fused: {wall['separate'] / wall['fused']:.1f}× wall, {cpu['separate'] / cpu['fused']:.1f}× cpu")
    print("members: " + ", ".join(f"{name}={len(together[name]):,}" for name in names))


if __name__ == "__main__":
    main()
