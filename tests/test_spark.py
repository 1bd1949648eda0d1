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


def test_spark_reads_a_data_directory_itself_with_the_loaders_checks(spark, tmp_path):
    """Bad values are named by file, column, value and the row's key; repeated ids are refused (E0504)."""
    import pytest

    from crmrules.backends.spark_source import SparkData

    rules = crmrules.load_text("segment buyers: sum(orders.total) > 10\n")
    (tmp_path / "customers.csv").write_text("id,points\nc1,5\nc2,1.5\n")
    (tmp_path / "orders.csv").write_text("id,customer_id,created_at,status,total\no1,c1,2026-01-01 10:00:00,paid,lots\n")
    with pytest.raises(crmrules.CrmRulesError) as raised:
        rules.run(SparkData(str(tmp_path), spark), as_of="2026-06-30")
    shown = [error.message for error in getattr(raised.value, "errors", [raised.value])]
    assert any("orders.csv: column `total`: 'lots' is not a decimal (the row with id `o1`)" in m
               for m in shown), shown
    assert any("customers.csv: column `points`: '1.5' is not a int (the row with id `c2`)" in m for m in shown), shown
    (tmp_path / "customers.csv").write_text("id,points\nc1,5\nc1,6\n")
    (tmp_path / "orders.csv").write_text("id,customer_id,created_at,status,total\no1,c1,2026-01-01 10:00:00,paid,11\n")
    with pytest.raises(crmrules.DataError) as raised:
        rules.run(SparkData(str(tmp_path), spark), as_of="2026-06-30")
    assert raised.value.code == "E0504" and "customer id `c1` is on 2 rows" in raised.value.message


def test_catalog_tables_and_parquet_output_from_a_users_session(spark, tmp_path):
    """`catalog:DB` reads the session catalog's tables, typed; `write_parquet` leaves the rows on Spark."""
    import duckdb
    import pytest

    from crmrules.backends.spark_source import SparkData

    (tmp_path / "customers.csv").write_text("id,points\n00042,5\nc2,\n")
    (tmp_path / "orders.csv").write_text("id,customer_id,created_at,status,total\no1,00042,2026-01-01 10:00:00,paid,10.5\n")
    rules = crmrules.load_text("segment buyers: sum(orders.total) > 10\nsegment unknown_points: points is null\n")
    expected = rules.run(tmp_path, as_of="2026-06-30").members
    spark.sql(f"CREATE DATABASE IF NOT EXISTS crm_shop LOCATION '{tmp_path / 'warehouse'}'")
    for table in ("customers", "orders"):
        (spark.read.csv(str(tmp_path / f"{table}.csv"), header=True).write.mode("overwrite")
         .option("path", str(tmp_path / "warehouse" / table)).saveAsTable(f"crm_shop.{table}"))
    try:
        source = SparkData("catalog:crm_shop", spark)
        assert rules.run(source, as_of="2026-06-30").members == expected
        output = tmp_path / "out"
        counts = rules.write_parquet(source, str(output), as_of="2026-06-30")
        assert counts == {name: len(ids) for name, ids in expected.items()}
        rows = duckdb.sql(f"SELECT * FROM read_parquet('{output}/*.parquet') ORDER BY customer_id").fetchall()
        assert rows == [("00042", True, False), ("c2", False, True)]
        assert not spark.catalog.tableExists("customers")  # the typed views are gone afterwards
        with pytest.raises(crmrules.DataError, match="already exists"):
            rules.write_parquet(source, str(output), as_of="2026-06-30")
        with pytest.raises(crmrules.DataError, match="no database `nowhere`"):
            rules.run(SparkData("catalog:nowhere", spark), as_of="2026-06-30")
    finally:
        spark.sql("DROP DATABASE crm_shop CASCADE")
