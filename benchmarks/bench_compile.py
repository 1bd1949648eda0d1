"""Rule → SQL compile time of a one-segment rule, stage by stage, against the 1 ms target.

    python benchmarks/bench_compile.py [--rounds 200] [--profile]

For each rule (bench_sql.py's q1, q2, q4, and two on catalogue attributes) it times,
in this process:

- warm, new text: the rule with a different number each round (so the parsed text
  is never reused), split into parse, check (resolve, types, optimise, lower: the
  rule and the catalogue declarations it uses), plan (the sqlglot tree) and render
  (sqlglot's generation of the unformatted text); what a REPL pays for a rule just
  typed, with the catalogue checked before and the SQL of its attributes, aggregates
  and CTEs kept from earlier queries (`compile_memo`);
- warm, same text: `load_text` + `members_query` of the same text in a new RuleSet
  each time (an app or REPL running a rule again): parsed once, the catalogue checked
  once, the query text built once (keyed by content), so what is left is checking
  the rule's own declaration and looking the query up;
- the uncached baseline, timed in the same run: the same text with every compile
  cache emptied first (parsed texts, checked catalogue declarations, query texts, and
  the SQL subtrees and texts `backends/sql/compile_memo.py` keeps);
- sqlglot's own `parse_one(sql).sql()` of the generated query: the cost of only
  reading and writing the text, for scale.

and, in a fresh child process, the first compile (imports excluded, the catalogue
read from the user's cache; wall time). Every other figure is a median of this process's CPU
time in ms (steadier than wall time on a shared machine; compiling is single-threaded); "÷ 1 ms" is the
ratio to the target. `--profile` prints where a warm new-text compile spends its
time (cProfile, grouped by package).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import sqlglot

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sql import RULES as SQL_RULES
from bench_sql import SCHEMA

import crmrules
from crmrules.api import check_with_catalogue, resolve_schema
from crmrules.backends.sql import dialect_named, members_query, render
from crmrules.backends.sql.planner import members_select
from crmrules.backends.sql.query_cache import clear_query_cache
from crmrules.compiler.catalogue_cache import CATALOGUE_CACHE
from crmrules.context import evaluation_context
from crmrules.grammar import parse
from crmrules.grammar.parser import clear_parse_cache

AS_OF = date(2026, 6, 30)
# CPU time of this process: other processes sharing the cores do not inflate it as they do wall time
clock = time.process_time
# {n}: the number changed every round of the new-text timing
RULES = {
    "q1": SQL_RULES["q1"].replace("total_spent > 100", "total_spent > {n}"),
    "q2": SQL_RULES["q2"].replace("== 0", "== {n}"),
    "q4": SQL_RULES["q4"].replace("> 150", "> {n}"),
    "catalogue": 'spent_once > {n} and prefers("coat")',
    "rfm": 'rfm_cell == "555" and clv > {n}',
}
# bench_sql.py's schema declares total_spent, age ... as customer columns; the catalogue rules use the default
SCHEMAS = {"q1": SCHEMA, "q2": SCHEMA, "q4": SCHEMA, "catalogue": None, "rfm": None}
STAGES = ("parse", "check", "plan", "render")

_FIRST = """
import time
from datetime import date
t0 = time.perf_counter()
import crmrules
from crmrules.backends.sql import members_query
from crmrules.context import evaluation_context
t1 = time.perf_counter()
rules = crmrules.load_text({text!r}, schema={schema!r})
members_query(rules.program, "s", "duckdb", evaluation_context(date(2026, 6, 30), rules.program.schema), pretty=False)
t2 = time.perf_counter()
print((t1 - t0) * 1000, (t2 - t1) * 1000)
"""


def text_of(name: str, n: int) -> str:
    """The one-segment rule file `name` with the number `n`."""
    return f"segment s: {RULES[name].format(n=n)}"


def staged(name: str, n: int) -> tuple[dict[str, float], str]:
    """One compile of a text, each stage timed (ms), and the SQL."""
    dialect = dialect_named("duckdb")
    schema = resolve_schema(SCHEMAS[name])
    t0 = clock()
    rules = parse(text_of(name, n))
    t1 = clock()
    program = check_with_catalogue(rules, schema)
    t2 = clock()
    tree = members_select(program, "s", dialect, evaluation_context(AS_OF, program.schema))
    t3 = clock()
    sql = render(tree, dialect, pretty=False)
    t4 = clock()
    return dict(zip(STAGES, ((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000, (t4 - t3) * 1000))), sql


def whole(name: str, n: int) -> float:
    """One compile through the public API (`load_text`, `members_query`), in ms."""
    start = clock()
    rules = crmrules.load_text(text_of(name, n), schema=SCHEMAS[name])
    members_query(rules.program, "s", "duckdb", evaluation_context(AS_OF, rules.program.schema), pretty=False)
    return (clock() - start) * 1000


def uncached(name: str, n: int) -> float:
    """`whole` with the compile caches emptied first (emptying them is not timed)."""
    clear_parse_cache()
    CATALOGUE_CACHE.clear()
    clear_query_cache()
    return whole(name, n)


def first_compile(name: str) -> tuple[float, float]:
    """(import ms, first compile ms) in a fresh process."""
    code = _FIRST.format(text=text_of(name, 100), schema=SCHEMAS[name])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def sqlglot_round_trip(sql: str, rounds: int) -> float:
    """Median ms of sqlglot reading and writing the generated text."""
    times = []
    for _ in range(rounds):
        start = clock()
        sqlglot.parse_one(sql, read="duckdb").sql("duckdb")
        times.append((clock() - start) * 1000)
    return statistics.median(times)


def profile(names: list[str], rounds: int) -> None:
    """Where warm new-text compiles spend their time, by package, and the top functions."""
    profiler = cProfile.Profile()
    profiler.enable()
    for name in names:
        for n in range(rounds):
            staged(name, 10_000 + n)
    profiler.disable()
    stats = pstats.Stats(profiler)
    by_package: dict[str, float] = defaultdict(float)
    for (path, _, _), (_, _, own, _, _) in stats.stats.items():
        for part in ("lark", "sqlglot/parser", "sqlglot/tokenizer", "sqlglot/generator", "sqlglot/generators",
                     "sqlglot", "crmrules/grammar", "crmrules/compiler", "crmrules/backends/sql", "crmrules"):
            if part in path:
                by_package[part] += own
                break
        else:
            by_package["other (builtins, copy, dataclasses)"] += own
    total = sum(by_package.values())
    print(f"\nprofile of {rounds} new-text compiles of each of {', '.join(names)} (own time by package):")
    for part, seconds in sorted(by_package.items(), key=lambda item: -item[1]):
        print(f"  {part:40} {100 * seconds / total:5.1f} %")
    stats.sort_stats("tottime").print_stats(15)


def main() -> None:
    """Time every rule and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    rounds = args.rounds
    print(f"sqlglot {sqlglot.__version__}, Python {sys.version.split()[0]}; medians of {rounds} rounds, ms")
    header = (f"{'rule':10} {'first':>7} | {'parse':>6} {'check':>6} {'plan':>6} {'render':>6} {'new':>6} "
              f"{'÷1 ms':>6} | {'same':>6} {'÷1 ms':>6} | {'uncached':>8} {'sqlglot':>8}")
    print("first: first compile in a fresh process; new: warm, a new text; same: warm, the same text in a new "
          "RuleSet;\nuncached: the same text with the caches emptied; sqlglot: parse_one(sql).sql() of the query")
    print(header)
    print("-" * len(header))
    for name in RULES:
        for n in range(20):  # warm up: imports, the catalogue, lark's tables, the caches
            staged(name, n)
            whole(name, 100)
        stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
        news: list[float] = []
        sql = ""
        for n in range(rounds):
            timing, sql = staged(name, 1_000 + n)
            for stage in STAGES:
                stages[stage].append(timing[stage])
            news.append(sum(timing.values()))
        same = statistics.median(whole(name, 100) for _ in range(rounds))
        cold = statistics.median(uncached(name, 100) for _ in range(max(10, rounds // 10)))
        whole(name, 100)  # fill the caches again
        _, first = first_compile(name)
        new = statistics.median(news)
        medians = [statistics.median(stages[stage]) for stage in STAGES]
        print(f"{name:10} {first:7.1f} | " + " ".join(f"{m:6.3f}" for m in medians)
              + f" {new:6.3f} {new:6.2f} | {same:6.3f} {same:6.2f} | {cold:8.3f} "
              f"{sqlglot_round_trip(sql, max(10, rounds // 10)):8.3f}")
    if args.profile:
        profile(list(RULES), max(20, rounds // 4))


if __name__ == "__main__":
    main()
