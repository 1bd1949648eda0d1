"""Spark (local[2]) agrees with the in-memory engine, on a smaller sample than the other engines."""

from __future__ import annotations

import itertools
import tempfile

from datasets import load_people, with_unique_ids
from helpers import EXTRA_COLUMNS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rulegen import conditions, customers
from test_differential import oracle_members, rule_text, sql_members

import crmrules
from crmrules.api import resolve_schema
from crmrules.backends.sql.transfer import to_spark

SCHEMA = resolve_schema(EXTRA_COLUMNS)
_runs = itertools.count()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(conditions(), min_size=2, max_size=4),
       st.lists(customers(st.sampled_from(["00001", "00002", "c3", "x"])), min_size=1, max_size=4).map(with_unique_ids))
def test_memory_and_spark_agree(spark, condition_list, people):
    rules = crmrules.load_text(rule_text(condition_list), schema=SCHEMA)
    names = [name for name, _ in rules.segments]
    expected = oracle_members(rules, people, names)
    with tempfile.TemporaryDirectory() as scratch:
        to_spark(load_people(people, SCHEMA), SCHEMA, spark, scratch)
        assert sql_members("spark", spark, rules, names) == expected


def test_spark_backend_from_the_cli_data_directory(spark, tmp_path):
    (tmp_path / "customers.csv").write_text("id,points\n00042,5\nc2,\n")
    (tmp_path / "orders.csv").write_text("id,customer_id,created_at,status,total\no1,00042,2026-01-01 10:00:00,paid,10.5\n")
    rules = crmrules.load_text("segment buyers: sum(orders.total) > 10\nsegment unknown_points: points is null\n")
    result = rules.run(tmp_path, backend="spark", as_of="2026-06-30")
    assert result.members == {"buyers": ["00042"], "unknown_points": ["c2"]}
