"""Same answer everywhere: the interpreter (the oracle), memory, DuckDB, SQLite and PostgreSQL agree on
generated rules and data.

Hypothesis generates rules (comparisons, null checks, boolean nesting, aggregates
with filters and windows, set operators) and small data sets full of nulls,
empty histories, ties and boundary timestamps and amounts.
"""

from __future__ import annotations

import itertools

import pytest
from datasets import load_people, sqlite_copy, with_unique_ids
from helpers import EXTRA_COLUMNS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rulegen import NOW, conditions, customers

import crmrules
from crmrules.api import resolve_schema
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.interpreter import InterpreterBackend
from crmrules.backends.sql import members_query
from crmrules.backends.sql.backend import SqlBackend
from crmrules.backends.sql.runners import SqlHandle
from crmrules.backends.sql.transfer import to_postgres
from crmrules.context import evaluation_context

SCHEMA = resolve_schema(EXTRA_COLUMNS)
IDS = st.sampled_from(["00001", "00002", "c3", "0042", "x"])
people_sets = st.lists(customers(IDS), min_size=1, max_size=5).map(with_unique_ids)
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_schemas = itertools.count()


def context(rules):
    """The evaluation context of every engine in these tests."""
    return evaluation_context(NOW, rules.program.schema)


def oracle_members(rules, people, names):
    """Each segment's members by the reference interpreter (it ranks `ntile` populations itself)."""
    prepared = [prepare_customer(p, rules.program.schema) for p in people]
    return InterpreterBackend().members(rules.program, prepared, names, context(rules))


def memory_members(rules, people, names):
    """Each segment's members by the generated-code engine, which must agree with the interpreter."""
    from crmrules.backends.dispatch import BACKENDS

    prepared = [prepare_customer(p, rules.program.schema) for p in people]
    return BACKENDS["memory"].members(rules.program, prepared, names, context(rules))


def sql_members(kind, connection, rules, names):
    """Each segment's members from the fused query on an engine."""
    return SqlBackend(kind).members(rules.program, SqlHandle(kind, connection), names, context(rules))


def rule_text(condition_list):
    lines = [f"segment s{i}: {c}" for i, c in enumerate(condition_list)]
    # set algebra over the generated segments, and a segment used inside a condition
    if len(condition_list) >= 2:
        lines.append("segment union_ = s0 | s1")
        lines.append("segment diff_ = s0 - s1")
        lines.append("segment both_ = s0 & s1 and not (s1 and s0 is null)")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def pg(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        yield connection


@SETTINGS
@given(st.lists(conditions(), min_size=1, max_size=3), people_sets)
def test_memory_duckdb_sqlite_agree(condition_list, people):
    rules = crmrules.load_text(rule_text(condition_list), schema=SCHEMA)
    names = [name for name, _ in rules.segments]
    expected = oracle_members(rules, people, names)
    assert memory_members(rules, people, names) == expected
    loaded = load_people(people, SCHEMA)
    assert sql_members("duckdb", loaded.connection, rules, names) == expected
    sqlite = sqlite_copy(loaded, SCHEMA)
    assert sql_members("sqlite", sqlite, rules, names) == expected
    # the one-segment query (what `crmrules sql` prints) takes shortcuts of its own: check it too
    for name in names:
        for connection, dialect in ((loaded.connection, "duckdb"), (sqlite, "sqlite")):
            rows = connection.execute(members_query(rules.program, name, dialect, context(rules))).fetchall()
            assert sorted(str(r[0]) for r in rows) == expected[name]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(conditions(), min_size=1, max_size=3), people_sets)
def test_memory_and_postgres_agree(pg, condition_list, people):
    rules = crmrules.load_text(rule_text(condition_list), schema=SCHEMA)
    names = [name for name, _ in rules.segments]
    expected = oracle_members(rules, people, names)
    loaded = load_people(people, SCHEMA)
    schema_name = f"t{next(_schemas)}"
    to_postgres(loaded, SCHEMA, pg, schema_name)
    pg.execute(f'SET search_path TO "{schema_name}"')
    try:
        assert sql_members("postgres", pg, rules, names) == expected
    finally:
        pg.execute(f'DROP SCHEMA "{schema_name}" CASCADE')


@SETTINGS
@given(conditions(), people_sets)
def test_p_not_p_and_p_is_null_partition_in_sql(condition, people):
    rules = crmrules.load_text(f"segment p: {condition}\nsegment not_p: not ({condition})\n"
                               f"segment unknown_p: ({condition}) is null\nsegment everyone: true\n", schema=SCHEMA)
    loaded = load_people(people, SCHEMA)
    names = ["p", "not_p", "unknown_p", "everyone"]
    for members in (sql_members("duckdb", loaded.connection, rules, names),
                    sql_members("sqlite", sqlite_copy(loaded, SCHEMA), rules, names)):
        parts = [set(members[n]) for n in ("p", "not_p", "unknown_p")]
        assert sum(len(p) for p in parts) == len(members["everyone"])
        assert set().union(*parts) == set(members["everyone"])


def as_set(value):
    return sorted(value, key=lambda item: (item is None, item if item is not None else 0)) \
        if isinstance(value, list) else value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(conditions(), people_sets)
def test_node_values_agree_with_the_interpreter(condition, people):
    # explain's per-node values: one query per customer on SQL, the tree walk in the interpreter
    rules = crmrules.load_text(f"segment p: {condition}\n", schema=SCHEMA)
    body = rules.program.segments["p"].body
    prepared = [prepare_customer(p, rules.program.schema) for p in people]
    handle = SqlHandle("duckdb", load_people(people, SCHEMA).connection)
    existing = InterpreterBackend().values(rules.program, prepared, [], context(rules))
    for customer in existing:
        expected = InterpreterBackend().node_values(rules.program, prepared, customer, body, context(rules))
        got = SqlBackend("duckdb").node_values(rules.program, handle, customer, body, context(rules))
        # a list is a set of values to the language (`in`, `contains`, `length`): SQL engines give list values
        # sorted (nulls last), the in-memory engines in the order the customer holds them
        assert {node: as_set(got[node]) for node in got if node in expected} == \
            {node: as_set(expected[node]) for node in got if node in expected}
