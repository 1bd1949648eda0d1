"""`score(n, value, among:)`: the tie-respecting ranking, on every engine and against the formula.

score = 1 + floor(n × (ranked customers with a strictly smaller value) ÷ (ranked customers));
ranked = `among` holds and the value is not null; null for everyone else. Checked by hand on
a small population with ties, nulls and an `among` condition on all six engines, and with
hypothesis against an independent count (equal values share a score, scores never go down
as the value grows, populations smaller than `n`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise

import pytest
from datasets import load_people, sqlite_copy, values_on
from engines import ENGINES, EngineData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crmrules
from crmrules.backends.customer_data import prepare_customer
from crmrules.context import evaluation_context

AS_OF = date(2026, 6, 30)
RULES = """
attribute by_points = score(5, points)
attribute by_points_3 = score(3, points, among: tier == "gold")
attribute by_spend = score(4, sum(orders.total where status == "paid"), among: count(orders) > 0)
attribute by_tier = score(2, tier)
attribute by_points_ntile = ntile(5, points)
"""
NAMES = ["by_points", "by_points_3", "by_spend", "by_tier", "by_points_ntile"]


def _order(total: str, created_at: datetime, status: str = "paid") -> dict:
    return {"created_at": created_at, "status": status, "total": Decimal(total)}


# the date of each customer's orders (d has none): days since the latest, as of 2026-06-30
LAST_ORDER = {"a": datetime(2026, 6, 1), "b": datetime(2026, 6, 1, 18), "c": datetime(2026, 5, 1),
              "e": datetime(2026, 6, 20), "f": datetime(2026, 1, 1), "g": datetime(2026, 6, 29, 23)}


def _people() -> list[dict]:
    """Seven customers: points 10, 20, 20, 20, 30, null, 40; spends with ties; tiers gold/silver/null."""
    rows = [("a", 10, "gold", ["5.10"]), ("b", 20, "gold", ["5.10"]), ("c", 20, "silver", ["12.345"]),
            ("d", 20, None, []), ("e", 30, "gold", ["2.5", "2.6"]), ("f", None, "silver", ["99"]),
            ("g", 40, "silver", ["1", "1", "1"])]
    people = []
    for customer, points, tier, totals in rows:
        orders = [{**_order(total, LAST_ORDER[customer]), "id": f"{customer}{i}"} for i, total in enumerate(totals)]
        people.append({"id": customer, "points": points, "tier": tier, "orders": orders})
    return people


# by hand. points ranked: 10, 20, 20, 20, 30, 40 (f has none): 6 customers
#   a: 0 below → 1 + 5·0 // 6 = 1; b, c, d: 1 below → 1 + 5 // 6 = 1; e: 4 below → 1 + 20 // 6 = 4; g: 5 → 1 + 25 // 6 = 5
# points among gold (a 10, b 20, e 30): a 1, b 1 + 3 // 3 = 2, e 1 + 6 // 3 = 3; others null
# paid spend among customers with orders (a 5.10, b 5.10, c 12.345, e 5.1, f 99, g 3): 6 customers
#   g 3 → 1; a, b, e 5.1 (1 below) → 1 + 4 // 6 = 1; c (4 below) → 1 + 16 // 6 = 3; f (5) → 1 + 20 // 6 = 4
# tier as text (gold < silver), null tier unranked: gold a, b, e → 1; silver c, f, g (3 of 6 below) → 1 + 6 // 6 = 2
# ntile(5, points) keeps NTILE (ties by id): a 1, b 1, c 2, d 3, e 4, g 5
EXPECTED = {
    "a": {"by_points": 1, "by_points_3": 1, "by_spend": 1, "by_tier": 1, "by_points_ntile": 1},
    "b": {"by_points": 1, "by_points_3": 2, "by_spend": 1, "by_tier": 1, "by_points_ntile": 1},
    "c": {"by_points": 1, "by_points_3": None, "by_spend": 3, "by_tier": 2, "by_points_ntile": 2},
    "d": {"by_points": 1, "by_points_3": None, "by_spend": None, "by_tier": None, "by_points_ntile": 3},
    "e": {"by_points": 4, "by_points_3": 3, "by_spend": 1, "by_tier": 1, "by_points_ntile": 4},
    "f": {"by_points": None, "by_points_3": None, "by_spend": 4, "by_tier": 2, "by_points_ntile": None},
    "g": {"by_points": 5, "by_points_3": None, "by_spend": 1, "by_tier": 2, "by_points_ntile": 5},
}


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    data = EngineData(request.param, _people(), crmrules.default_schema(), request)
    yield data
    data.close()


def test_hand_computed_scores_on_every_engine(engine):
    program = crmrules.load_text(RULES).program
    assert engine.values(program, NAMES, evaluation_context(AS_OF, program.schema)) == EXPECTED


# rankings whose SQL sorts a key that orders alike (`compiler/ranking_key.py`): the date, or the value reversed
KEYED_RULES = """
attribute recent = score(3, -days_since(max(orders.created_at)), among: count(orders) > 0)
attribute by_points_reversed = score(5, -points)
attribute by_points_reversed_ntile = ntile(5, -points)
"""
KEYED = ["recent", "by_points_reversed", "by_points_reversed_ntile"]
# days since the latest order: a 29, b 29 (same date), c 60, e 10, f 180, g 1; d has no order
#   ranked by -days (6): f 0 below → 1; c 1 → 1 + 3 // 6 = 1; a, b 2 → 2; e 4 → 1 + 12 // 6 = 3; g 5 → 3
# -points: g -40, e -30, b c d -20, a -10 (f none): g 1, e 1 + 5 // 6 = 1, b c d 1 + 10 // 6 = 2, a 1 + 25 // 6 = 5
# ntile(5, -points) by -points then id: g, e | b | c | d | a
KEYED_EXPECTED = {
    "a": {"recent": 2, "by_points_reversed": 5, "by_points_reversed_ntile": 5},
    "b": {"recent": 2, "by_points_reversed": 2, "by_points_reversed_ntile": 2},
    "c": {"recent": 1, "by_points_reversed": 2, "by_points_reversed_ntile": 3},
    "d": {"recent": None, "by_points_reversed": 2, "by_points_reversed_ntile": 4},
    "e": {"recent": 3, "by_points_reversed": 1, "by_points_reversed_ntile": 1},
    "f": {"recent": 1, "by_points_reversed": None, "by_points_reversed_ntile": None},
    "g": {"recent": 3, "by_points_reversed": 1, "by_points_reversed_ntile": 1},
}


def test_rankings_by_a_key_that_orders_alike_on_every_engine(engine):
    program = crmrules.load_text(KEYED_RULES).program
    assert engine.values(program, KEYED, evaluation_context(AS_OF, program.schema)) == KEYED_EXPECTED


def test_score_is_named_in_errors_and_explain():
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text("attribute x = score(0, points)")
    assert caught.value.code == "E0205" and "`score`" in caught.value.message
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text("attribute x = count(orders where score(5, total) > 1)")
    assert caught.value.code == "E0206"
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text("attribute score = 3")
    assert caught.value.code == "E0105"


# ---------------------------------------------------------------- against the formula
def formula(values: dict[str, object], buckets: int) -> dict[str, int | None]:
    """The definition, counted directly: no sorting, no bisecting."""
    ranked = [v for v in values.values() if v is not None]
    return {c: None if v is None else 1 + buckets * sum(1 for other in ranked if other < v) // len(ranked)
            for c, v in values.items()}


populations = st.lists(st.one_of(st.none(), st.integers(-3, 3)), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(populations, st.integers(1, 7))
def test_scores_follow_the_formula_on_every_in_process_engine(points, buckets):
    program = crmrules.load_text(f"attribute s = score({buckets}, points)").program
    people = [prepare_customer({"id": f"c{i:02d}", "points": p}, program.schema) for i, p in enumerate(points)]
    expected = formula({p["id"]: p["points"] for p in people}, buckets)
    loaded = load_people(people, program.schema)
    results = {"interpreter": values_on("interpreter", people, program, ["s"], AS_OF),
               "memory": values_on("memory", people, program, ["s"], AS_OF),
               "duckdb": values_on("duckdb", loaded.connection, program, ["s"], AS_OF),
               "sqlite": values_on("sqlite", sqlite_copy(loaded, program.schema), program, ["s"], AS_OF)}
    for backend, got in results.items():
        scores = {c: v["s"] for c, v in got.items()}
        assert scores == expected, backend
    # equal values share a score; a larger value never has a smaller score; scores stay within 1..n
    by_value = sorted((p["points"], expected[p["id"]]) for p in people if p["points"] is not None)
    assert all(b[1] >= a[1] and (a[0] != b[0] or a[1] == b[1]) for a, b in pairwise(by_value))
    assert all(1 <= s <= buckets for _, s in by_value)
    if by_value:
        assert by_value[0][1] == 1  # the smallest value has nobody below it


money = st.decimals(min_value=Decimal(-50), max_value=Decimal(50), places=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(money, max_size=3), max_size=9), st.integers(1, 6))
def test_decimal_sums_are_ranked_exactly(histories, buckets):
    program = crmrules.load_text(
        f"attribute s = score({buckets}, sum(orders.total), among: count(orders) > 0)").program
    people = [prepare_customer({"id": f"c{i}", "orders": [
        {"id": f"{i}-{j}", "created_at": datetime(2026, 5, 1), "status": "paid", "total": t}
        for j, t in enumerate(totals)]}, program.schema) for i, totals in enumerate(histories)]
    expected = formula({f"c{i}": sum(totals, Decimal(0)) if totals else None for i, totals in enumerate(histories)},
                       buckets)
    loaded = load_people(people, program.schema)
    for backend, handle in (("memory", people), ("duckdb", loaded.connection),
                            ("sqlite", sqlite_copy(loaded, program.schema))):
        assert {c: v["s"] for c, v in values_on(backend, handle, program, ["s"], AS_OF).items()} == expected, backend
