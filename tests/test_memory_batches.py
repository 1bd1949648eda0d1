"""The memory engine's batch mode (backends/memory_batches.py): a data set streamed in chunks of customers,
evaluated in partitions, in this process or a pool of workers, gives the answers of the whole-list path, of
the interpreter and of DuckDB, holding one chunk at a time."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from datasets import load_people, with_unique_ids
from helpers import EXTRA_COLUMNS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rulegen import NOW, conditions, customers

import crmrules
from crmrules.api import resolve_schema
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.dispatch import open_data
from crmrules.backends.interpreter import InterpreterBackend
from crmrules.backends.memory import MemoryBackend
from crmrules.backends.memory_batches import CustomerChunks
from crmrules.backends.sql import transfer
from crmrules.backends.sql.backend import SqlBackend
from crmrules.backends.sql.datadir import load_directory
from crmrules.backends.sql.runners import SqlHandle
from crmrules.context import evaluation_context

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop"
AS_OF = "2026-06-30"
# rankings over the whole base: `ntile` (ties by id) and `score` (ties share a tile), and plain attributes
RANKED = """
attribute spend_ntile = ntile(4, sum(orders.total where status == "paid"), among: count(orders) > 0)
attribute points_score = score(3, points)
segment top_spenders: spend_ntile == 4
segment high_points: points_score >= 2 and email_subscribed
"""


@pytest.fixture(scope="module")
def shop(demo_data):
    rules = crmrules.load([SHOP / "shop.crm"])
    names = [name for name, _ in rules.segments]
    program = rules.program_for(segments=names)
    loaded = load_directory(demo_data, program.schema)
    yield rules, names, program, loaded
    loaded.close()


def whole_list(loaded, schema) -> list[dict]:
    return [prepare_customer(person, schema) for person in transfer.customers(loaded, schema)]


@pytest.mark.parametrize("fold", [True, False])
@pytest.mark.parametrize("chunk_size", [1, 7, 250, 10**6])
def test_demo_shop_members_in_chunks_equal_the_list_path_and_duckdb(shop, chunk_size, fold):
    _rules, names, program, loaded = shop
    ctx = evaluation_context(AS_OF, program.schema)
    chunks = CustomerChunks(loaded, program.schema, chunk_size=chunk_size, workers=1, fold=fold)
    found = MemoryBackend().members(program, chunks, names, ctx)
    assert found == MemoryBackend().members(program, whole_list(loaded, program.schema), names, ctx)
    assert found == SqlBackend("duckdb").members(program, SqlHandle("duckdb", loaded.connection), names, ctx)
    assert any(found.values())
    assert chunks.stats["folded"] == fold
    # folded, the query gives the existing customers only (one row each); else every id is read
    customers = chunks.stats["fetched"]["customers"] if fold else chunks.customer_count()
    assert chunks.stats["largest_chunk"] == min(chunk_size, customers)
    assert chunks.stats["chunks"] == -(-customers // chunk_size)  # one partition: every chunk full but the last
    if fold:  # no row of orders, items or events reached Python
        assert set(chunks.stats["fetched"]) == {"customers"}


def test_rankings_across_chunks_and_partitions_match_the_list_path(shop):
    _, _, _, loaded = shop
    rules = crmrules.load_text(RANKED)
    program = rules.program_for(segments=["top_spenders", "high_points"],
                                attributes=["spend_ntile", "points_score", "rfm_m", "value_tier", "lifecycle"])
    ctx = evaluation_context(AS_OF, program.schema)
    people = whole_list(loaded, program.schema)
    names = ["spend_ntile", "points_score", "rfm_m", "value_tier", "lifecycle"]
    expected_values = MemoryBackend().values(program, people, names, ctx)
    expected_members = MemoryBackend().members(program, people, ["top_spenders", "high_points"], ctx)
    for chunk_size, workers, fold in ((13, 1, False), (10**6, 1, False), (29, 2, False), (13, 2, True)):
        chunks = CustomerChunks(loaded, program.schema, chunk_size=chunk_size, workers=workers, fold=fold)
        assert MemoryBackend().values(program, chunks, names, ctx) == expected_values
        # folded, DuckDB ranks the whole base in one query: no partitions, no first pass
        assert chunks.stats["partitions"] == (1 if fold else workers)
        assert chunks.stats["passes"] == (1 if fold else 2)
        assert MemoryBackend().members(program, chunks, ["top_spenders", "high_points"], ctx) == expected_members
    assert {row["spend_ntile"] for row in expected_values.values()} == {None, 1, 2, 3, 4}


def test_the_pool_of_workers_runs_partitions_with_the_same_answers(shop):
    _rules, names, program, loaded = shop
    ctx = evaluation_context(AS_OF, program.schema)
    alone = CustomerChunks(loaded, program.schema, chunk_size=100, workers=1, fold=False)
    pooled = CustomerChunks(loaded, program.schema, chunk_size=100, workers=2, fold=False)
    expected = MemoryBackend().members(program, alone, names, ctx)
    assert MemoryBackend().members(program, pooled, names, ctx) == expected
    assert pooled.stats["pool"] and pooled.stats["partitions"] == 2
    assert not alone.stats["pool"]
    # each worker's chunks: bounded by the chunk size, more of them than one partition's base needs
    assert pooled.stats["largest_chunk"] <= 100
    assert pooled.stats["chunks"] >= alone.customer_count() // 100


def test_chunk_count_grows_with_the_base_and_chunks_stay_bounded(tmp_path):
    schema = resolve_schema(None)
    counts = []
    for size in (30, 300):
        people = [{"id": f"c{i:04}", "email": f"c{i}@example.com",
                   "orders": [{"id": f"o{i}-{k}", "total": 10 + k, "status": "paid",
                               "created_at": f"2026-01-0{k + 1}"} for k in range(i % 3)]}
                  for i in range(size)]
        loaded = load_people([prepare_customer(p, schema) for p in people], schema)
        chunks = CustomerChunks(loaded, schema, chunk_size=16, workers=1)
        rules = crmrules.load_text('segment buyers: count(orders where status == "paid") >= 1')
        found = MemoryBackend().members(rules.program, chunks, ["buyers"], evaluation_context(AS_OF, schema))
        assert found["buyers"] == sorted(f"c{i:04}" for i in range(size) if i % 3)
        assert chunks.stats["largest_chunk"] <= 16
        counts.append(chunks.stats["chunks"])
    assert counts == [2, 19]


def test_iterating_gives_every_customer_with_every_column_as_the_list_did(shop):
    _, _, program, loaded = shop
    chunks = CustomerChunks(loaded, program.schema, chunk_size=9, workers=1)
    id_of = program.schema.column("customers", "id").source

    def canonical(people):
        def order(o):
            return {**o, "items": sorted(o.get("items", []), key=repr)}
        return sorted(({**p, "orders": sorted(map(order, p.get("orders", [])), key=repr),
                        "events": sorted(p.get("events", []), key=repr)} for p in people), key=lambda p: p[id_of])

    assert canonical(chunks) == canonical(whole_list(loaded, program.schema))


def test_a_data_directory_opens_as_chunks_on_the_memory_engine_and_run_agrees_with_duckdb(shop, demo_data):
    rules, _names, program, _ = shop
    with open_data(program, demo_data, "memory") as (engine, opened):
        assert isinstance(opened, CustomerChunks)
        assert engine.name == "memory"
    assert rules.run(demo_data, backend="memory", as_of=AS_OF).members == \
        rules.run(demo_data, backend="duckdb", as_of=AS_OF).members
    assert rules.values(demo_data, ["order_count", "rfm_r", "value_tier"], backend="memory", as_of=AS_OF) == \
        rules.values(demo_data, ["order_count", "rfm_r", "value_tier"], backend="duckdb", as_of=AS_OF)


SCHEMA = resolve_schema(EXTRA_COLUMNS)
IDS = st.sampled_from(["00001", "00002", "c3", "0042", "x", "b7"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(conditions(), min_size=1, max_size=3),
       st.lists(customers(IDS), min_size=1, max_size=6).map(with_unique_ids), st.integers(1, 7))
def test_differential_data_in_chunks_agrees_with_the_interpreter_and_duckdb(condition_list, people, chunk_size):
    text = "\n".join(f"segment s{i}: {c}" for i, c in enumerate(condition_list))
    text += "\nattribute ranked = ntile(3, count(orders))\nsegment ranked_top: ranked == 3\n"
    text += "attribute scored = score(2, sum(orders.total))\nsegment scored_upper: scored == 2\n"
    rules = crmrules.load_text(text, schema=SCHEMA)
    names = [name for name, _ in rules.segments]
    ctx = evaluation_context(NOW, rules.program.schema)
    prepared = [prepare_customer(p, rules.program.schema) for p in people]
    expected = InterpreterBackend().members(rules.program, prepared, names, ctx)
    loaded = load_people(prepared, SCHEMA)
    expected_values = InterpreterBackend().values(rules.program, prepared, ["ranked", "scored"], ctx)
    for fold in (True, False):
        chunks = CustomerChunks(loaded, rules.program.schema, chunk_size=chunk_size, workers=1, fold=fold)
        assert MemoryBackend().members(rules.program, chunks, names, ctx) == expected
        assert chunks.stats["folded"] == fold
        assert MemoryBackend().values(rules.program, chunks, ["ranked", "scored"], ctx) == expected_values
    # the interpreter takes the chunks as any iterable of customers
    assert InterpreterBackend().members(rules.program, chunks, names, ctx) == expected
    assert SqlBackend("duckdb").members(rules.program, SqlHandle("duckdb", loaded.connection), names, ctx) == expected


PUSHED_DOWN = """
segment carted: did("add_to_cart", within: 30d)
segment searched_cream: searched("cream", within: 30d) and not ordered(within: 30d)
"""


def test_rows_no_rule_counts_are_never_fetched_and_answers_stay(shop):
    """Every aggregate over events has a condition on the event alone: only rows meeting one reach Python."""
    _, _, _, loaded = shop
    rules = crmrules.load_text(PUSHED_DOWN)
    names = [name for name, _ in rules.segments]
    ctx = evaluation_context(AS_OF, rules.program.schema)
    chunks = CustomerChunks(loaded, rules.program.schema, chunk_size=50, workers=1, fold=False)
    found = MemoryBackend().members(rules.program, chunks, names, ctx)
    prepared = whole_list(loaded, rules.program.schema)
    assert found == InterpreterBackend().members(rules.program, prepared, names, ctx)
    assert found["carted"] and found["searched_cream"]
    events = sum(len(person.get("events", [])) for person in prepared)
    # a month's add_to_cart and search events, not the rest of the history
    assert 0 < chunks.stats["fetched"]["events"] < events / 5
    # orders have an unconditioned reader (`ordered` counts every visible one in the window, a condition on the
    # order alone): kept to the window too
    assert chunks.stats["fetched"]["orders"] < sum(len(person.get("orders", [])) for person in prepared) / 5


@pytest.mark.parametrize("rule", [
    # the condition reads the order's items: no filter can be decided from the order's row alone
    'count(orders where status == "paid" and any(items where category == "coat")) >= 1',
    # one aggregate over events without a condition: every row is needed
    'count(events) >= 3 and did("add_to_cart", within: 30d)',
    # items are read through every visible order
    'sum(order_items: price * quantity) > 100 and ordered(within: 30d)',
])
def test_a_table_some_rule_reads_whole_is_fetched_whole(shop, rule):
    _, _, _, loaded = shop
    rules = crmrules.load_text(f"segment s: {rule}\n")
    ctx = evaluation_context(AS_OF, rules.program.schema)
    chunks = CustomerChunks(loaded, rules.program.schema, chunk_size=64, workers=1, fold=False)
    found = MemoryBackend().members(rules.program, chunks, ["s"], ctx)
    prepared = whole_list(loaded, rules.program.schema)
    assert found == InterpreterBackend().members(rules.program, prepared, ["s"], ctx)
    table = "orders" if "items" in rule else "events"
    assert chunks.stats["fetched"][table] == sum(len(person.get(table, [])) for person in prepared)


@pytest.mark.parametrize(("workers", "fold"), [(1, True), (1, False), (2, False)])
def test_a_memory_limit_too_small_is_the_users_error_in_this_process_and_in_workers(demo_data, workers, fold):
    """Each worker's DuckDB gets its share of `--memory-limit`; running out is an error saying what to do,
    raised here whichever process ran out (was an internal error from a worker)."""
    rules = crmrules.load([SHOP / "shop.crm"])
    names = [name for name, _ in rules.segments]
    program = rules.program_for(segments=names)
    loaded = load_directory(demo_data, program.schema)
    if workers == 1:  # this process's DuckDB runs the queries
        loaded.connection.execute("SET memory_limit = '3MB'")
    chunks = CustomerChunks(loaded, program.schema, chunk_size=100, workers=workers, fold=fold)
    with crmrules.limits(memory_limit="6MB"), pytest.raises(crmrules.CrmRulesError) as raised:
        MemoryBackend().members(program, chunks, names, evaluation_context(AS_OF, program.schema))
    loaded.close()
    assert "could not run the query" in str(raised.value) and "--memory-limit" in raised.value.hint


def test_data_too_large_for_the_memory_limit_is_named_with_the_fix(demo_data):
    rules = crmrules.load([SHOP / "shop.crm"])
    with crmrules.limits(memory_limit="2MB"), pytest.raises(crmrules.CrmRulesError) as raised:
        load_directory(demo_data, rules.program.schema)
    assert "Out of Memory" in str(raised.value) and "--memory-limit" in raised.value.hint


def test_workers_share_the_memory_limit():
    from crmrules.backends.resources import Resources, shared

    assert shared(Resources("6GB"), 2).memory_limit == "3000000000B"
    assert shared(Resources("1.5 GiB", "/scratch"), 3) == Resources("536870912B", "/scratch")
    assert shared(Resources("6GB"), 1) == Resources("6GB")
    assert shared(Resources(None), 4) == Resources(None)


# a leaf of every kind the folded query returns: counts, money (exact text), averages, dates and timestamps,
# strings (`top`, `first`), lists (`distinct`), booleans (`any`), rankings, and customer columns read directly
EVERY_KIND = """
attribute k_count = count(orders where status == "paid")
attribute k_money = sum(orders.total where status == "paid")
attribute k_avg = avg(orders.total)
attribute k_last_at = max(orders.created_at)
attribute k_top = top(order_items.category by price * quantity)
attribute k_first = first(orders: top(items.category by price * quantity) where status == "paid")
attribute k_distinct = distinct(order_items.category)
attribute k_any = any(events where type == "add_to_cart")
attribute k_tile = ntile(5, sum(orders.total), among: count(orders) > 0)
attribute k_mixed = if(k_any, k_money / (k_count + 1), null)
attribute k_tags = tags
attribute k_birthday = birthday
"""


def test_folded_values_of_every_kind_equal_the_rows_read_in_python(shop):
    _, _, _, loaded = shop
    rules = crmrules.load_text(EVERY_KIND)
    names = [line.split()[1] for line in EVERY_KIND.strip().splitlines() if line.startswith("attribute")]
    program = rules.program_for(attributes=names)
    ctx = evaluation_context(AS_OF, program.schema)
    folded = CustomerChunks(loaded, program.schema, chunk_size=37, workers=1)
    found = MemoryBackend().values(program, folded, names, ctx)
    assert folded.stats["folded"] and folded.stats["passes"] == 1
    assert found == MemoryBackend().values(program, whole_list(loaded, program.schema), names, ctx)
    assert found == MemoryBackend().values(program, CustomerChunks(loaded, program.schema, fold=False), names, ctx)
    # the same Python types as the engine computes them: exact money, sorted lists
    values = [row for row in found.values() if row["k_count"]]
    assert values and all(isinstance(row["k_money"], Decimal) for row in values)
    assert all(row["k_distinct"] == sorted(row["k_distinct"]) for row in values)


def test_a_rule_duckdb_cannot_fold_is_evaluated_over_the_rows(shop, monkeypatch):
    """When the folded query cannot be built, the engine reads the rows itself, with the same answers."""
    from crmrules.backends import memory_folded
    from crmrules.errors import CrmRulesError

    _rules, names, program, loaded = shop
    ctx = evaluation_context(AS_OF, program.schema)
    expected = MemoryBackend().members(program, CustomerChunks(loaded, program.schema, workers=1), names, ctx)

    def unsayable(*args, **kwargs):
        raise CrmRulesError("this dialect cannot say it")

    monkeypatch.setattr(memory_folded, "values_select", unsayable)
    chunks = CustomerChunks(loaded, program.schema, workers=1)
    assert MemoryBackend().members(program, chunks, names, ctx) == expected
    assert not chunks.stats["folded"] and chunks.stats["passes"] == 2 and "orders" in chunks.stats["fetched"]
