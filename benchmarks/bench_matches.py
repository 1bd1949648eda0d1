"""Time `segment.matches` against a plain Python lambda and the rule-engine package, in one process.

    python benchmarks/bench_matches.py [--records 1000] [--repeat 15]

Prints the median time per record for each evaluator and the ratios the
language-core issue sets targets for: matches ≤ 2× the lambda (goal 1.5×),
≥ 20× faster than rule-engine, compiling one rule ≤ 1 ms, and
`import crmrules` + first compile ≤ 150 ms (measured in a fresh interpreter).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal

RULE = ('(total_spent > 100 and "coat" in tags and days_since_last_order < 30) '
        'or (age < 20 and gender == "female")')
SCHEMA = {"tables": {"customers": {"columns": {
    "total_spent": {"type": "decimal"}, "days_since_last_order": {"type": "int"}, "age": {"type": "int"},
}}}}
NOW = date(2026, 6, 30)


def records(count: int, seed: int = 7) -> list[dict]:
    """Varied 20-field customers, some fields null, seeded."""
    rng = random.Random(seed)
    tags = [[], ["coat"], ["dress"], ["coat", "vip"], ["shoes", "coat", "sale"]]
    out = []
    for i in range(count):
        out.append({
            "id": f"{i:05d}", "email": f"c{i}@example.com", "phone": None, "first_name": "Ana",
            "last_name": "Silva", "gender": rng.choice(["female", "male", None]),
            "birthday": date(1980 + rng.randrange(30), 1 + rng.randrange(12), 1), "country": "PT",
            "city": "Porto", "language": "pt", "source": rng.choice(["ads", "organic"]),
            "email_subscribed": rng.random() < 0.5, "sms_subscribed": False,
            "tags": rng.choice(tags), "tier": "silver", "points": rng.randrange(1000),
            "total_spent": Decimal(rng.randrange(0, 40000)) / 100,
            "days_since_last_order": rng.choice([None, rng.randrange(0, 90)]),
            "age": rng.choice([None, rng.randrange(14, 70)]), "registered_at": None,
        })
    return out


def median_us(fn, data, repeat: int) -> float:
    """Median over `repeat` runs of the time per record, in microseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for record in data:
            fn(record)
        times.append((time.perf_counter() - start) / len(data) * 1e6)
    return statistics.median(times)


DEFAULT_SCHEMA_RULE = 'points > 100 and "coat" in tags and country == "PT" or gender == "female"'


def startup_ms(rule: str, schema: dict | None) -> float:
    """`import crmrules` + compiling the first rule, in a fresh interpreter."""
    code = ("import time; s = time.perf_counter(); import crmrules; "
            f"r = crmrules.load_text({'segment s: ' + rule!r}, schema={schema!r}); "
            "r.segment('s'); print((time.perf_counter() - s) * 1000)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(5)]
    return statistics.median(runs)


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    import crmrules

    data = records(args.records)
    compile_times = []
    for _ in range(20):
        start = time.perf_counter()
        rules = crmrules.load_text(f"segment s: {RULE}", schema=SCHEMA)
        segment = rules.segment("s")
        compile_times.append((time.perf_counter() - start) * 1000)

    def lam(c):
        # the hand-written equivalent, null-safe as the rule must be
        return ((c["total_spent"] is not None and c["total_spent"] > 100 and c["tags"] is not None
                 and "coat" in c["tags"] and c["days_since_last_order"] is not None
                 and c["days_since_last_order"] < 30)
                or (c["age"] is not None and c["age"] < 20 and c["gender"] == "female"))

    expected = [bool(lam(c)) for c in data]
    got = [segment.matches(c, NOW) for c in data]
    assert got == expected, "crmrules and the lambda disagree"

    results = {"lambda": median_us(lam, data, args.repeat),
               "crmrules matches": median_us(lambda c: segment.matches(c, NOW), data, args.repeat),
               "crmrules matches(validate=True)":
                   median_us(lambda c: segment.matches(c, NOW, True), data, args.repeat)}
    try:
        import rule_engine

        context = rule_engine.Context(default_value=None)
        # rule-engine raises on `null < 30`, so its rule spells out the null checks
        engine_rule = rule_engine.Rule(
            '(total_spent > 100 and "coat" in tags and days_since_last_order != null '
            'and days_since_last_order < 30) or (age != null and age < 20 and gender == "female")',
            context=context)
        plain = [{**c, "total_spent": float(c["total_spent"])} for c in data]
        results["rule-engine"] = median_us(engine_rule.matches, plain, max(3, args.repeat // 3))
    except ImportError:
        print("rule-engine is not installed (pip install rule-engine); skipping it")

    base = results["lambda"]
    print(f"{'evaluator':34} {'median µs':>10} {'× lambda':>9}")
    for name, value in results.items():
        print(f"{name:34} {value:10.3f} {value / base:9.2f}")
    if "rule-engine" in results:
        print(f"rule-engine / crmrules matches: {results['rule-engine'] / results['crmrules matches']:.1f}×"
              " faster (target ≥ 20×)")
    print(f"matches / lambda: {results['crmrules matches'] / base:.2f}× (target ≤ 2×, goal 1.5×)")
    print(f"compile one rule (parse + check + codegen): median {statistics.median(compile_times):.3f} ms "
          "(target ≤ 1 ms)")
    print(f"import crmrules + first compile, default schema: median {startup_ms(DEFAULT_SCHEMA_RULE, None):.1f} ms"
          " (target ≤ 150 ms)")
    print(f"import crmrules + first compile, schema dict validated by pydantic: "
          f"median {startup_ms(RULE, SCHEMA):.1f} ms")


if __name__ == "__main__":
    main()
