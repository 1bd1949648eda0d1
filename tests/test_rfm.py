"""RFM (`score`) and `ntile`: memory (population pass) and SQL agree with independent computations.

Populations of every size from empty to a few dozen, with many equal values. The
RFM scores respect ties: 1 + floor(5 × customers with a worse value ÷ customers),
so equal values share a score, and customers without a paid order get none.
`ntile` keeps SQL's NTILE: ties go by customer id, the first `n % 5` tiles hold
one customer more, fewer than five customers get tiles 1..n.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal

from datasets import load_people, sqlite_copy, values_on
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crmrules
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.population import population
from crmrules.backends.sql import dialect_named, render, runners
from crmrules.backends.sql.planner import values_select
from crmrules.context import evaluation_context

AS_OF = date(2026, 6, 30)
SCORES = ["rfm_r", "rfm_f", "rfm_m", "rfm_class", "value_tier", "nt_f"]
# the NTILE the RFM scores used before `score`: still there for equal-sized tiles
NTILE_RULES = "attribute nt_f = ntile(5, order_count, among: order_count > 0)"


def score(values: list, value, buckets: int) -> int:
    """The tie-respecting score, counted directly: 1 + floor(buckets × values strictly below ÷ values)."""
    below = sum(1 for other in values if other < value)
    return 1 + buckets * below // len(values)


def ntile(ranked: list, buckets: int) -> dict:
    """SQL's NTILE over values already in order: tile sizes differ by at most one, larger first."""
    size, extra = divmod(len(ranked), buckets)
    tiles, position = {}, 0
    for tile in range(1, buckets + 1):
        for _ in range(size + (1 if tile <= extra else 0)):
            tiles[ranked[position][-1]] = tile
            position += 1
    return tiles


def expected_scores(people: list[dict]) -> dict:
    """RFM computed directly from the orders, not by the engine."""
    end = datetime(2026, 6, 30, 23, 59, 59, 999999)
    facts = {}
    for person in people:
        paid = [o for o in person.get("orders", []) if o["status"] == "paid" and o["created_at"] <= end]
        if paid:
            last = max(o["created_at"] for o in paid)
            facts[person["id"]] = ((AS_OF - last.date()).days, len(paid), sum((o["total"] for o in paid), Decimal(0)))
    # recency: fewer days is better, so a worse value is more days
    recency = [-f[0] for f in facts.values()]
    frequency, monetary = [f[1] for f in facts.values()], [f[2] for f in facts.values()]
    tiles = ntile(sorted((f[1], c) for c, f in facts.items()), 5)
    return {c: (score(recency, -f[0], 5), score(frequency, f[1], 5), score(monetary, f[2], 5), tiles[c])
            for c, f in facts.items()}


orders = st.lists(st.builds(
    dict, created_at=st.sampled_from([datetime(2026, 6, 1), datetime(2026, 6, 20, 10), datetime(2025, 1, 1),
                                      datetime(2026, 7, 3)]),
    status=st.sampled_from(["paid", "paid", "refunded"]),
    total=st.sampled_from([Decimal("10"), Decimal("10"), Decimal("25.50"), Decimal("99.99")])), max_size=3)
people_lists = st.lists(orders, max_size=23).map(
    lambda histories: [{"id": f"c{i:02d}" if i % 3 else f"{i}", "points": 0, "orders": [
        {**o, "id": f"{i}-{j}"} for j, o in enumerate(history)]} for i, history in enumerate(histories)])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people_lists)
def test_scores_match_an_independent_ntile_on_every_backend(people):
    program = crmrules.load_text(NTILE_RULES).program_for(attributes=SCORES)
    schema = program.schema
    prepared = [prepare_customer(p, schema) for p in people]
    expected = expected_scores(prepared)
    loaded = load_people(prepared, schema)
    results = {"interpreter": values_on("interpreter", prepared, program, SCORES, AS_OF),
               "memory": values_on("memory", prepared, program, SCORES, AS_OF),
               "duckdb": values_on("duckdb", loaded.connection, program, SCORES, AS_OF),
               "sqlite": values_on("sqlite", sqlite_copy(loaded, schema), program, SCORES, AS_OF)}
    for backend, got in results.items():
        scores = {c: (v["rfm_r"], v["rfm_f"], v["rfm_m"], v["nt_f"]) for c, v in got.items() if v["rfm_r"] is not None}
        assert scores == expected, backend
        assert all(v["rfm_class"] is None for c, v in got.items() if c not in expected), backend
    assert results["interpreter"] == results["memory"] == results["duckdb"] == results["sqlite"]
    # selecting only the scored customers reads the ranking CTE directly: same scores
    scored = crmrules.load_text(f"segment scored: order_count > 0\n{NTILE_RULES}").program_for(attributes=SCORES)
    tree = values_select(scored, [(n, scored.attributes[n].body) for n in SCORES],
                         dialect_named("duckdb"), evaluation_context(AS_OF, scored.schema),
                         where=scored.segments["scored"].body)
    assert "FROM \"pop0\"" in render(tree, dialect_named("duckdb"), pretty=False)
    rows = runners.fetch("duckdb", loaded.connection, render(tree, dialect_named("duckdb"), pretty=False))
    assert {str(r[0]): dict(zip(SCORES, r[1:])) for r in rows} == {
        c: v for c, v in results["duckdb"].items() if c in expected}


def test_small_populations_and_all_equal_values():
    program = crmrules.load_text(NTILE_RULES).program_for(attributes=SCORES)
    day = datetime(2026, 6, 1)
    people = [{"id": name, "points": 0, "orders": [{"id": name, "created_at": day, "status": "paid", "total": Decimal(5)}]}
              for name in ("b", "a", "c")]
    got = values_on("memory", people, program, SCORES, AS_OF)
    # three customers, all equal: every score 1 (nobody is worse than anyone); ntile deals tiles 1, 2, 3 by id
    assert {c: (v["rfm_r"], v["rfm_f"], v["rfm_m"], v["nt_f"]) for c, v in got.items()} == {
        "a": (1, 1, 1, 1), "b": (1, 1, 1, 2), "c": (1, 1, 1, 3)}
    # nobody with a paid order: no scores, no error
    assert all(v["rfm_r"] is None for v in values_on("memory", [{"id": "x"}], program, SCORES, AS_OF).values())


def test_population_places_a_new_customer_between_the_cuts():
    rules = crmrules.load_text("segment top_spenders: rfm_m == 5")
    people = [{"id": f"c{i}", "orders": [{"id": str(i), "created_at": datetime(2026, 6, 1) + timedelta(days=i % 7),
                                          "status": "paid", "total": Decimal(i * 10)}]} for i in range(1, 11)]
    cuts = population(rules.program, people, AS_OF)
    segment = rules.segment("top_spenders")
    rich = {"id": "zz", "orders": [{"created_at": datetime(2026, 6, 2), "status": "paid", "total": Decimal(1000)}]}
    poor = {"id": "zz", "orders": [{"created_at": datetime(2026, 6, 2), "status": "paid", "total": Decimal(1)}]}
    assert segment.matches(rich, AS_OF, population=cuts)
    assert not segment.matches(poor, AS_OF, population=cuts)
    (cut,) = [c for node, c in cuts.cuts.items() if c.size == 10]
    # score 5 needs at least 8 of the 10 below: 90 and 100; the rich newcomer has all 10 below, still 5
    assert cut.values == tuple(range(10, 101, 10))
    assert [cut.tile(Decimal(v), "zz") for v in (1, 10, 30, 90, 95, 1000)] == [1, 1, 2, 5, 5, 5]


def test_rfm_period_redefined_in_a_rule_file_sets_m(tmp_path):
    # c0: 100 fourteen months ago and 10 last month; c1: 50 and c2: 20 last month
    people = [{"id": "c0", "orders": [
                  {"id": "a", "created_at": datetime(2025, 4, 1), "status": "paid", "total": Decimal(100)},
                  {"id": "b", "created_at": datetime(2026, 6, 1), "status": "paid", "total": Decimal(10)}]},
              {"id": "c1", "orders": [{"id": "c", "created_at": datetime(2026, 6, 2), "status": "paid",
                                       "total": Decimal(50)}]},
              {"id": "c2", "orders": [{"id": "d", "created_at": datetime(2026, 6, 3), "status": "paid",
                                       "total": Decimal(20)}]}]
    names = ["rfm_monetary", "rfm_m"]
    all_time = crmrules.load_text("").program_for(attributes=names)
    last_year = crmrules.load_text("attribute rfm_period = 365d").program_for(attributes=names)
    schema = all_time.schema
    prepared = [prepare_customer(p, schema) for p in people]
    loaded = load_people(prepared, schema)
    for program, expected in ((all_time, {"c0": (Decimal(110), 4), "c1": (Decimal(50), 2), "c2": (Decimal(20), 1)}),
                              (last_year, {"c0": (Decimal(10), 1), "c1": (Decimal(50), 4), "c2": (Decimal(20), 2)})):
        for backend, handle in (("interpreter", prepared), ("memory", prepared), ("duckdb", loaded.connection),
                                ("sqlite", sqlite_copy(loaded, schema))):
            got = values_on(backend, handle, program, names, AS_OF)
            assert {c: (v["rfm_monetary"], v["rfm_m"]) for c, v in got.items()} == expected, backend
    # `crmrules rfm` ranks by the redefined period too, and says which
    (tmp_path / "orders.csv").write_text("id,customer_id,created_at,status,total\n" + "".join(
        f"{o['id']},{p['id']},{o['created_at']:%Y-%m-%d %H:%M:%S},paid,{o['total']}\n"
        for p in people for o in p["orders"]))
    rules = tmp_path / "period.crm"
    rules.write_text("attribute rfm_period = 365d\n")
    result = subprocess.run([sys.executable, "-m", "crmrules", "rfm", str(rules), "--data", str(tmp_path),
                             "--as-of", "2026-06-30", "--format", "json"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["period"] == "365d"
    assert {score: (Decimal(cut["min"]), Decimal(cut["max"]), cut["customers"])
            for score, cut in report["scores"]["m"].items()} == {"1": (10, 10, 1), "2": (20, 20, 1), "4": (50, 50, 1)}
