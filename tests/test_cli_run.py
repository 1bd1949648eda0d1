"""End-to-end `crmrules run` and `crmrules sql` on the demo shop and on the Chinook extract."""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from test_cli import crmrules

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop" / "shop.crm"
CHINOOK_RULES = ROOT / "examples" / "chinook" / "chinook.crm"
CHINOOK_SCHEMA = ROOT / "examples" / "chinook" / "schema.toml"
# the MIT-licensed Chinook extract of ../shared/realdata, copied with its licence
CHINOOK_DATA = ROOT / "examples" / "chinook" / "data"


@pytest.fixture(scope="module")
def shop_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    sys.path.insert(0, str(ROOT / "examples" / "shop"))
    from generate import generate

    generate(out, customers=400, seed=3)
    return out


def run_json(*args):
    result = crmrules("run", *args, "--format", "json", "--members")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_demo_shop_same_members_on_every_backend(shop_data, backend):
    duckdb = run_json(str(SHOP), "--data", str(shop_data), "--as-of", "2026-06-30")
    assert duckdb["as_of"] == "2026-06-30"
    assert any(segment["count"] for segment in duckdb["segments"].values())
    assert run_json(str(SHOP), "--data", str(shop_data), "--as-of", "2026-06-30", "--backend", backend) == duckdb


def test_demo_shop_table_csv_and_sql(shop_data):
    table = crmrules("run", str(SHOP), "--data", str(shop_data), "--as-of", "2026-06-30")
    assert table.returncode == 0 and "big_coat_buyers" in table.stdout
    listing = crmrules("run", str(SHOP), "--data", str(shop_data), "--as-of", "2026-06-30", "--format", "csv",
                       "--segment", "dormant")
    lines = listing.stdout.splitlines()
    assert lines[0] == "customer_id" and len(lines) > 1
    members = run_json(str(SHOP), "--data", str(shop_data), "--as-of", "2026-06-30", "--segment", "dormant")
    assert lines[1:] == members["segments"]["dormant"]["members"]
    sql = crmrules("sql", str(SHOP), "--segment", "dormant", "--dialect", "postgres", "--as-of", "2026-06-30")
    assert sql.returncode == 0 and sql.stdout.startswith("WITH") and sql.stdout.rstrip().endswith(";")


def test_chinook_against_an_independent_count():
    report = run_json(str(CHINOOK_RULES), "--schema", str(CHINOOK_SCHEMA), "--data", str(CHINOOK_DATA),
                      "--as-of", "2011-12-31")
    spend = defaultdict(Decimal)
    with (CHINOOK_DATA / "chinook_invoices.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            spend[row["customer_id"]] += Decimal(row["total"])
    assert report["segments"]["big_spenders"]["members"] == sorted(c for c, s in spend.items() if s > 45)
    with (CHINOOK_DATA / "chinook_customers.csv").open(encoding="utf-8") as handle:
        brazil = sorted(row["customer_id"] for row in csv.DictReader(handle) if row["country"] == "Brazil")
    assert report["segments"]["brazil"]["members"] == brazil


@pytest.mark.parametrize(("files", "message"), [
    ({"orders.csv": "id,customer_id,total\no1,c1,12.5\no2,c1,lots\n"},
     "orders.csv:3: column `total`: 'lots' is not a decimal"),
    ({"orders.csv": "id,customer_id,total\no1,c1,1,2\n"}, "orders.csv:2: malformed row (expected 3 fields, found 4)"),
    ({"customers.csv": "id,email_subscribed\nc1,maybe\n"}, "customers.csv:2: column `email_subscribed`: 'maybe' is "
                                                          "not a bool"),
    ({"customers.csv": "id,tags\nc1,[oops\n"}, "customers.csv:2: column `tags`: '[oops' is not a list[string]"),
])
def test_bad_data_is_named_by_file_line_and_column(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = crmrules("run", str(SHOP), "--data", str(tmp_path), "--as-of", "2026-06-30")
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_clear_line():
    result = crmrules("run", str(SHOP), "--data", "postgresql://nobody@127.0.0.1:1/none", "--as-of", "2026-06-30")
    assert result.returncode == 1
    assert "cannot connect to PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_reads_a_duckdb_and_a_sqlite_file(tmp_path, shop_data):
    import sqlite3

    from crmrules.backends.sql.datadir import load_directory
    from crmrules.backends.sql.transfer import to_sqlite
    from crmrules.schema import default_schema

    loaded = load_directory(shop_data, default_schema())
    database = tmp_path / "shop.duckdb"
    loaded.connection.execute(f"ATTACH '{database}' AS target")
    for table in ("customers", "orders", "order_items", "events", "products"):
        loaded.connection.execute(f"CREATE TABLE target.{table} AS SELECT * FROM {table}")
    loaded.connection.execute("DETACH target")
    with sqlite3.connect(tmp_path / "shop.sqlite") as connection:
        to_sqlite(loaded, default_schema(), connection)
    expected = run_json(str(SHOP), "--data", str(shop_data), "--as-of", "2026-06-30")
    assert run_json(str(SHOP), "--data", str(database), "--as-of", "2026-06-30") == expected
    assert run_json(str(SHOP), "--data", str(tmp_path / "shop.sqlite"), "--as-of", "2026-06-30") == expected


def test_unknown_dialect_and_usage_errors(shop_data):
    result = crmrules("sql", str(SHOP), "--segment", "dormant", "--dialect", "postgress")
    assert result.returncode == 1 and "did you mean `postgres`?" in result.stderr
    result = crmrules("run", str(SHOP), "--data", str(shop_data), "--format", "table", "--members")
    assert result.returncode == 2


def test_parquet_and_json_lines_give_the_same_members(tmp_path, shop_data):
    expected = run_json(str(SHOP), "--data", str(shop_data), "--as-of", "2026-06-30")
    parquet, jsonl = tmp_path / "parquet", tmp_path / "jsonl"
    parquet.mkdir()
    jsonl.mkdir()
    from crmrules.backends.sql.datadir import load_directory
    from crmrules.schema import default_schema

    loaded = load_directory(shop_data, default_schema())
    for table in ("customers", "orders", "order_items", "events"):
        loaded.connection.execute(f"COPY {table} TO '{parquet / (table + '.parquet')}' (FORMAT PARQUET)")
        loaded.connection.execute(f"COPY {table} TO '{jsonl / (table + '.jsonl')}' (FORMAT JSON)")
    assert run_json(str(SHOP), "--data", str(parquet), "--as-of", "2026-06-30") == expected
    assert run_json(str(SHOP), "--data", str(jsonl), "--as-of", "2026-06-30") == expected


@pytest.mark.parametrize("backend", ["duckdb", "sqlite", "memory"])
def test_orders_without_a_customer_id_belong_to_nobody(tmp_path, backend):
    (tmp_path / "orders.csv").write_text("id,customer_id,created_at,status,total\n"
                                         "o1,,2026-06-01 10:00:00,paid,10\no2,c1,2026-06-01 10:00:00,paid,10\n")
    rules = tmp_path / "r.crm"
    rules.write_text("segment buyers: count(orders) > 0\nsegment scored: rfm_m is not null and order_count > 0\n")
    report = run_json(str(rules), "--data", str(tmp_path), "--as-of", "2026-06-30", "--members", "--backend", backend)
    assert {name: s["members"] for name, s in report["segments"].items()} == {"buyers": ["c1"], "scored": ["c1"]}
