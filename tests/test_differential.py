"""Same answer everywhere: memory, DuckDB, SQLite and PostgreSQL agree on generated rules and data.

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
from crmrules.backends.sql import members_query, runners
from crmrules.backends.population import ntiles
from crmrules.backends.sql.transfer import to_postgres

SCHEMA = resolve_schema(EXTRA_COLUMNS)
IDS = st.sampled_from(["00001", "00002", "c3", "0042", "x"])
people_sets = st.lists(customers(IDS), min_size=1, max_size=5).map(with_unique_ids)
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_schemas = itertools.count()


def memory_members(rules, people, names):
    # rules ranking customers (`ntile`) need the whole population first, as a run computes it
    ranked = rules.population(people, as_of=NOW) if ntiles(rules.program) else None
    members = {}
    for name in names:
        segment = rules.segment(name)
        members[name] = sorted(p["id"] for p in people if segment.matches(p, NOW, population=ranked))
    return members


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
    expected = memory_members(rules, people, names)
    loaded = load_people(people, SCHEMA)
    assert runners.run_duckdb(loaded.connection, rules.program, names, NOW) == expected
    sqlite = sqlite_copy(loaded, SCHEMA)
    assert runners.run_sqlite(sqlite, rules.program, names, NOW) == expected
    # the one-segment query (what `crmrules sql` prints) takes shortcuts of its own: check it too
    for name in names:
        for connection, dialect in ((loaded.connection, "duckdb"), (sqlite, "sqlite")):
            rows = connection.execute(members_query(rules.program, name, dialect, NOW)).fetchall()
            assert sorted(str(r[0]) for r in rows) == expected[name]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(conditions(), min_size=1, max_size=3), people_sets)
def test_memory_and_postgres_agree(pg, condition_list, people):
    rules = crmrules.load_text(rule_text(condition_list), schema=SCHEMA)
    names = [name for name, _ in rules.segments]
    expected = memory_members(rules, people, names)
    loaded = load_people(people, SCHEMA)
    schema_name = f"t{next(_schemas)}"
    to_postgres(loaded, SCHEMA, pg, schema_name)
    pg.execute(f'SET search_path TO "{schema_name}"')
    try:
        assert runners.run_postgres(pg, rules.program, names, NOW) == expected
    finally:
        pg.execute(f'DROP SCHEMA "{schema_name}" CASCADE')


@SETTINGS
@given(conditions(), people_sets)
def test_p_not_p_and_p_is_null_partition_in_sql(condition, people):
    rules = crmrules.load_text(f"segment p: {condition}\nsegment not_p: not ({condition})\n"
                               f"segment unknown_p: ({condition}) is null\nsegment everyone: true\n", schema=SCHEMA)
    loaded = load_people(people, SCHEMA)
    names = ["p", "not_p", "unknown_p", "everyone"]
    for members in (runners.run_duckdb(loaded.connection, rules.program, names, NOW),
                    runners.run_sqlite(sqlite_copy(loaded, SCHEMA), rules.program, names, NOW)):
        parts = [set(members[n]) for n in ("p", "not_p", "unknown_p")]
        assert sum(len(p) for p in parts) == len(members["everyone"])
        assert set().union(*parts) == set(members["everyone"])
