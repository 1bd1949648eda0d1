"""Data sources (issue 9, item 5): one file as the customers table, a user's own database with fewer tables and
columns, paths read literally and read-only, and no silent mis-read of a data file."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime

import duckdb
import pytest

import crmrules
from crmrules.errors import CrmRulesError, DataError

AS_OF = "2026-06-30"
RULES = crmrules.load_text('segment de: country == "DE"\nsegment all_people: true\n')
BUYERS = crmrules.load_text("segment buyers: count(orders) > 0\n")


def members(rules, data, backend=None, **options):
    return rules.run(data, backend=backend, as_of=AS_OF, **options).members


def write(path, text: str, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def error_text(error: CrmRulesError) -> str:
    return error.render()


# ------------------------------------------------------------------ one file is the customers table
@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
def test_one_file_is_the_customers_table(tmp_path, kind):
    csv_file = write(tmp_path / "people.csv", "id,country\nc1,DE\nc2,FR\n")
    if kind == "csv":
        data = csv_file
    else:
        data = tmp_path / f"people.{kind}"
        connection = duckdb.connect()
        options = "(FORMAT PARQUET)" if kind == "parquet" else "(FORMAT JSON)"
        connection.execute(f"COPY (SELECT * FROM read_csv('{csv_file}', all_varchar=true)) TO '{data}' {options}")
    for backend in (None, "sqlite", "memory"):
        assert members(RULES, data, backend) == {"de": ["c1"], "all_people": ["c1", "c2"]}
    result = BUYERS.run(str(data), as_of=AS_OF)
    assert result.members == {"buyers": []}
    assert any("orders" in warning for warning in result.warnings)


def test_one_file_on_the_command_line(tmp_path):
    from test_cli import crmrules as cli

    write(tmp_path / "people.CSV", "id,country\nc1,DE\n")
    write(tmp_path / "r.crm", 'segment de: country == "DE"\n')
    result = cli("run", str(tmp_path / "r.crm"), "--data", str(tmp_path / "people.CSV"), "--as-of", AS_OF,
                 "--format", "json", "--members")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["segments"]["de"]["members"] == ["c1"]


# ------------------------------------------------------------------ a user's own database
def duckdb_file(path, tables: dict[str, str]):
    connection = duckdb.connect(str(path))
    for statement in tables.values():
        connection.execute(statement)
    connection.close()
    return path


def sqlite_file(path, tables: dict[str, str]):
    connection = sqlite3.connect(path)
    for statement in tables.values():
        connection.execute(statement)
    connection.commit()
    connection.close()
    return path


CUSTOMERS_ONLY = {"customers": "CREATE TABLE customers (id VARCHAR, country VARCHAR)",
                  "rows": "INSERT INTO customers VALUES ('c1', 'DE'), ('c2', 'FR')"}


@pytest.mark.parametrize("make", [duckdb_file, sqlite_file])
def test_a_database_without_registered_at_or_other_tables(tmp_path, make):
    database = make(tmp_path / ("shop.duckdb" if make is duckdb_file else "shop.sqlite"), CUSTOMERS_ONLY)
    assert members(RULES, database) == {"de": ["c1"], "all_people": ["c1", "c2"]}
    with pytest.raises(DataError) as caught:
        members(crmrules.load_text('segment fr: city == "Paris"\n'), database)
    text = error_text(caught.value)
    assert caught.value.code == "E0503"
    assert "customers.city" in text and '[tables.customers.columns]' in text and 'city = "' in text
    with pytest.raises(DataError) as caught:
        members(BUYERS, database)
    assert "orders" in error_text(caught.value) and "[tables.orders]" in error_text(caught.value)


def test_postgres_without_registered_at(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS lean CASCADE")
        connection.execute("CREATE SCHEMA lean")
        connection.execute("CREATE TABLE lean.customers (id TEXT, country TEXT)")
        connection.execute("CREATE TABLE lean.orders (id TEXT, customer_id TEXT, total NUMERIC)")
        connection.execute("CREATE TABLE lean.events (customer_id TEXT, type TEXT)")
        connection.execute("INSERT INTO lean.customers VALUES ('c1', 'DE'), ('c2', 'FR')")
    url = f"{postgres_url}?options=-csearch_path%3Dlean"
    assert members(RULES, url) == {"de": ["c1"], "all_people": ["c1", "c2"]}
    with pytest.raises(DataError) as caught:
        members(crmrules.load_text('segment fr: city == "Paris"\n'), url)
    assert "customers.city" in error_text(caught.value)


# ------------------------------------------------------------------ paths are paths, read-only
def test_sqlite_names_with_hash_and_question_mark(tmp_path):
    database = sqlite_file(tmp_path / "shop#1.db", CUSTOMERS_ONLY)
    other = sqlite_file(tmp_path / "shop", {"customers": "CREATE TABLE customers (id TEXT, country TEXT)",
                                            "rows": "INSERT INTO customers VALUES ('zz', 'DE')"})
    assert members(RULES, database) == {"de": ["c1"], "all_people": ["c1", "c2"]}
    question = sqlite_file(tmp_path / "a?b.sqlite", CUSTOMERS_ONLY)
    assert members(RULES, question)["de"] == ["c1"]
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(DataError):
        members(RULES, tmp_path / "new#2.db")
    with pytest.raises(DataError):
        members(RULES, tmp_path / "none.sqlite")
    assert sorted(os.listdir(tmp_path)) == before
    assert other.exists()


@pytest.mark.parametrize("name", ["shop[1]", "a*", "b?"])
def test_directories_named_like_globs_are_read_literally(tmp_path, name):
    write(tmp_path / name / "customers.csv", "id,country\nc1,DE\n")
    for decoy in ("shop1", "ab", "b1", "a"):
        write(tmp_path / decoy / "customers.csv", "id,country\nzz,DE\n")
    assert members(RULES, tmp_path / name)["de"] == ["c1"]


@pytest.mark.parametrize("backend", [None, "sqlite", "memory"])
def test_sources_are_never_written(tmp_path, backend):
    directory = tmp_path / "data"
    write(directory / "customers.csv", "id,country\nc1,DE\n")
    database = duckdb_file(tmp_path / "shop.duckdb", CUSTOMERS_ONLY)
    lite = sqlite_file(tmp_path / "shop.sqlite", CUSTOMERS_ONLY)
    sources = [directory / "customers.csv", directory, database, lite]
    before = {p: (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns) for p in sources}
    listing = sorted(os.listdir(tmp_path))
    members(RULES, directory, backend)
    members(RULES, directory / "customers.csv", backend)
    members(RULES, database if backend in (None, "duckdb") else lite, "sqlite" if backend == "sqlite" else None)
    members(RULES, lite)
    assert {p: (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns) for p in sources} == before
    assert sorted(os.listdir(tmp_path)) == listing


# ------------------------------------------------------------------ no silent mis-reads
def test_byte_order_mark_and_upper_case_extension(tmp_path):
    write(tmp_path / "customers.CSV", "\ufeffid,country\nc1,DE\n")
    for backend in (None, "memory"):
        assert members(RULES, tmp_path, backend) == {"de": ["c1"], "all_people": ["c1"]}
    assert members(RULES, tmp_path / "customers.CSV") == {"de": ["c1"], "all_people": ["c1"]}


def test_customers_without_an_id_column(tmp_path):
    write(tmp_path / "customers.csv", "client,country\nc1,DE\n")
    with pytest.raises(DataError) as caught:
        members(RULES, tmp_path)
    assert "customers.csv" in error_text(caught.value) and "`id`" in error_text(caught.value)


@pytest.mark.parametrize("backend", [None, "sqlite", "memory", "interpreter"])
def test_duplicate_customer_ids_are_rejected_naming_both_rows(tmp_path, backend):
    write(tmp_path / "customers.csv", "id,country\nc1,DE\nc2,FR\nc1,FR\n")
    with pytest.raises(DataError) as caught:
        members(RULES, tmp_path, backend)
    assert "customers.csv:2" in error_text(caught.value) and "line 4" in error_text(caught.value)
    people = [{"id": "c1", "country": "DE"}, {"id": "c1", "country": "FR"}]
    with pytest.raises(DataError) as caught:
        members(RULES, people, backend)
    assert "[0]" in error_text(caught.value) and "[1]" in error_text(caught.value)


@pytest.mark.parametrize("make", [duckdb_file, sqlite_file])
def test_duplicate_ids_in_a_database(tmp_path, make):
    database = make(tmp_path / ("d.duckdb" if make is duckdb_file else "d.sqlite"), {
        "customers": "CREATE TABLE customers (id VARCHAR, country VARCHAR)",
        "rows": "INSERT INTO customers VALUES ('c1', 'DE'), ('c1', 'FR')"})
    with pytest.raises(DataError) as caught:
        members(RULES, database)
    assert "`c1`" in error_text(caught.value) and caught.value.code == "E0504"


def test_time_zone_offsets_move_to_the_store_zone(tmp_path):
    schema = {"timezone": "Asia/Tokyo"}
    rules = crmrules.load_text("segment joined_by_june: registered_at < 2026-06-01\n", schema=schema)
    # 2026-05-31 20:00 in Berlin is 2026-06-01 03:00 in Tokyo: not before June there
    write(tmp_path / "customers.csv", "id,registered_at\nc1,2026-05-31T20:00:00+02:00\nc2,2026-05-31 20:00:00\n")
    for backend in (None, "sqlite", "memory"):
        assert members(rules, tmp_path, backend) == {"joined_by_june": ["c2"]}
    segment = rules.segment("joined_by_june")
    assert not segment.matches({"id": "c1", "registered_at": "2026-05-31T20:00:00+02:00"}, datetime(2026, 6, 30))
    write(tmp_path / "j" / "customers.jsonl", json.dumps({"id": "c1", "registered_at": "2026-05-31T18:00:00Z"}))
    assert members(rules, tmp_path / "j") == {"joined_by_june": []}


@pytest.mark.parametrize(("text", "column"), [
    ("id,points\nc1,1.5\n", "points"),
    ("id,points\nc1,99999999999999999999\n", "points"),
    ("id,registered_at\nc1,10000-01-01 00:00:00\n", "registered_at"),
    ("id,birthday\nc1,12026-01-01\n", "birthday"),
    ("id,tags\nc1,\"\"\"vip\"\"\"\n", "tags"),
    ("id,tags\nc1,\"{\"\"a\"\": 1}\"\n", "tags"),
])
def test_values_that_would_be_misread_are_errors(tmp_path, text, column):
    write(tmp_path / "customers.csv", text)
    with pytest.raises(DataError) as caught:
        members(RULES, tmp_path)
    assert f"customers.csv:2: column `{column}`" in error_text(caught.value)


def test_money_beyond_six_places_is_an_error_and_every_bad_value_is_reported(tmp_path):
    write(tmp_path / "customers.csv", "id\nc1\n")
    write(tmp_path / "orders.csv", "id,customer_id,total\no1,c1,1.1234567\no2,c1,1.1234560\no3,c1,x\no4,c1,2\n")
    with pytest.raises(CrmRulesError) as caught:
        members(BUYERS, tmp_path)
    text = error_text(caught.value)
    assert "orders.csv:2: column `total`" in text and "orders.csv:4: column `total`" in text
    assert "orders.csv:3" not in text


def test_many_bad_values_are_reported_up_to_a_limit(tmp_path):
    write(tmp_path / "customers.csv", "id,points\n" + "".join(f"c{i},x{i}\n" for i in range(50)))
    with pytest.raises(CrmRulesError) as caught:
        members(RULES, tmp_path)
    text = error_text(caught.value)
    assert text.count("column `points`") == 20 and "more" in text


def test_json_lines_ids_keep_their_exact_text(tmp_path):
    write(tmp_path / "customers.jsonl", "\n".join(json.dumps(r) for r in [
        {"id": 42, "country": "DE"}, {"id": "00042", "country": "DE"}, {"id": "x7", "points": 3}]))
    assert members(RULES, tmp_path)["de"] == ["00042", "42"]
    write(tmp_path / "bad" / "customers.jsonl", json.dumps({"id": "c1", "points": 2.5}))
    with pytest.raises(DataError) as caught:
        members(RULES, tmp_path / "bad")
    assert "customers.jsonl:1: column `points`" in error_text(caught.value)
    write(tmp_path / "list" / "customers.jsonl", json.dumps({"id": "c1", "tags": "vip"}))
    with pytest.raises(DataError) as caught:
        members(RULES, tmp_path / "list")
    assert "customers.jsonl:1: column `tags`" in error_text(caught.value)
