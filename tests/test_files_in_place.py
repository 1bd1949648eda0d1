"""Data files read in place (issue 14, item 2): typed views over the files, checked in one scan; DuckDB kept
to `--memory-limit`, spilling into `--spill-dir`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest

import crmrules
from crmrules.backends.dispatch import open_data
from crmrules.backends.resources import Resources
from crmrules.backends.sql.datadir import load_directory
from crmrules.errors import CrmRulesError, DataError

AS_OF = "2026-06-30"
RULES = crmrules.load_text('segment de: country == "DE"\nsegment buyers: count(orders) > 1\n')


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def as_parquet(csv_file: Path, select: str = "*") -> Path:
    target = csv_file.with_suffix(".parquet")
    duckdb.sql(f"COPY (SELECT {select} FROM read_csv('{csv_file}', all_varchar=true)) TO '{target}' "
               "(FORMAT PARQUET)")
    csv_file.unlink()
    return target


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
def test_tables_are_views_over_the_files_not_copies(tmp_path, kind):
    customers = write(tmp_path / "customers.csv", "id,country\nc1,DE\nc2,FR\n")
    if kind == "parquet":
        as_parquet(customers)
    elif kind == "jsonl":
        write(tmp_path / "customers.jsonl", "\n".join(json.dumps({"id": i, "country": c})
                                                      for i, c in (("c1", "DE"), ("c2", "FR"))))
        customers.unlink()
    loaded = load_directory(tmp_path, RULES.schema)
    try:
        kinds = dict(loaded.connection.execute(
            "SELECT table_name, table_type FROM information_schema.tables").fetchall())
        assert kinds["customers"] == "VIEW"
        assert kinds["orders"] == "BASE TABLE"  # no file: an empty table
        # what the file says now is what the view gives: nothing was copied
        if kind == "csv":
            with (tmp_path / "customers.csv").open("a", encoding="utf-8") as handle:
                handle.write("c3,DE\n")
            rows = loaded.connection.execute("SELECT id FROM customers WHERE country = 'DE' ORDER BY id").fetchall()
            assert rows == [("c1",), ("c3",)]
    finally:
        loaded.close()


def test_parquet_typed_columns_are_checked_by_row(tmp_path):
    write(tmp_path / "customers.csv", "id,country\nc1,DE\n")
    orders = write(tmp_path / "orders.csv", "id,customer_id,total\no1,c1,10\no2,c1,2.5\no3,c1,7\n")
    # a DOUBLE column with a fraction of a cent too many and an int column holding a fraction
    as_parquet(orders, "id, customer_id, CASE id WHEN 'o2' THEN 2.0000001 ELSE CAST(total AS DOUBLE) END AS total")
    with pytest.raises(DataError) as caught:
        RULES.run(tmp_path, as_of=AS_OF)
    assert "orders.parquet:2: column `total`" in caught.value.render()
    assert "orders.parquet:1" not in caught.value.render() and "orders.parquet:3" not in caught.value.render()


def test_repeated_ids_in_parquet_name_their_rows(tmp_path):
    as_parquet(write(tmp_path / "customers.csv", "id,country\nc1,DE\nc2,FR\nc1,FR\nc2,DE\nc2,PT\n"))
    with pytest.raises(CrmRulesError) as caught:
        RULES.run(tmp_path, as_of=AS_OF)
    text = caught.value.render()
    assert caught.value.code == "E0504"
    assert "customers.parquet:1: customer id `c1` again on line 3" in text
    assert "customers.parquet:2: customer id `c2` again on lines 4, 5" in text


def test_a_malformed_row_is_found_before_any_rule_runs(tmp_path):
    # no column here needs converting (all text): the check scan still parses every row
    write(tmp_path / "customers.csv", "id,country\nc1,DE\nc2,FR,extra\n")
    with pytest.raises(DataError) as caught:
        RULES.run(tmp_path, as_of=AS_OF)
    assert "customers.csv:3: malformed row (expected 2 fields, found 3)" in caught.value.render()


def test_the_same_answers_from_csv_parquet_and_json_lines(tmp_path):
    tables = {"customers": "id,country\nc1,DE\nc2,FR\nc3,DE\n",
              "orders": "id,customer_id,created_at,total\no1,c1,2026-01-01 10:00:00,5\no2,c1,2026-02-01 10:00:00,7\n"
                        "o3,c2,2026-03-01T10:00:00+02:00,1.5\no4,c2,2026-03-02 10:00:00,2\no5,c3,2026-03-02 10:00:00,2\n"}
    answers = []
    for kind in ("csv", "parquet", "jsonl"):
        directory = tmp_path / kind
        for name, text in tables.items():
            csv_file = write(directory / f"{name}.csv", text)
            if kind == "parquet":
                as_parquet(csv_file)
            elif kind == "jsonl":
                rows = duckdb.sql(f"SELECT * FROM read_csv('{csv_file}', all_varchar=true)").fetchall()
                header = text.splitlines()[0].split(",")
                write(directory / f"{name}.jsonl", "\n".join(json.dumps(dict(zip(header, row))) for row in rows))
                csv_file.unlink()
        answers.append(RULES.run(directory, as_of=AS_OF).members)
    assert answers[0] == answers[1] == answers[2] == {"de": ["c1", "c3"], "buyers": ["c1", "c2"]}


def test_memory_limit_and_spill_directory_reach_duckdb_and_are_cleaned_up(tmp_path):
    write(tmp_path / "data" / "customers.csv", "id,country\nc1,DE\n")
    spill = tmp_path / "spill"
    program = RULES.program
    with open_data(program, tmp_path / "data", resources=Resources(memory_limit="256MB", spill_dir=spill)) as (
            _, handle):
        limit, directory = handle.connection.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
        assert limit.startswith("244.1 MiB")  # DuckDB shows 256 MB in MiB
        assert Path(directory).parent == spill and Path(directory).is_dir()
    assert spill.is_dir() and os.listdir(spill) == []
    # the Python API's block form: the same for every run inside it
    with crmrules.limits(memory_limit="300MB"), open_data(program, tmp_path / "data") as (_, handle):
        assert handle.connection.execute("SELECT current_setting('memory_limit')").fetchone()[0].startswith("286")
    with open_data(program, tmp_path / "data") as (_, handle):
        directory = handle.connection.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        assert Path(directory).name.startswith("crmrules-spill-")  # never `.tmp` in the working directory
    with pytest.raises(ValueError, match="4GB"):
        Resources(memory_limit="lots")


def test_a_run_under_a_small_memory_limit_agrees(tmp_path):
    # 300,000 customers with 1.5M orders: DuckDB keeps its hash tables under 150 MB (spilling what does not fit)
    data = tmp_path / "shop"
    data.mkdir()
    duckdb.sql(f"COPY (SELECT 'c' || i AS id, CASE WHEN i % 3 = 0 THEN 'DE' ELSE 'FR' END AS country "
               f"FROM range(300000) t(i)) TO '{data / 'customers.parquet'}' (FORMAT PARQUET)")
    duckdb.sql(f"COPY (SELECT 'o' || i AS id, 'c' || (i % 300000) AS customer_id, "
               f"TIMESTAMP '2026-01-01' + INTERVAL (i % 1000) MINUTE AS created_at, CAST(i % 97 AS DECIMAL(38, 6)) "
               f"AS total FROM range(1500000) t(i)) TO '{data / 'orders.parquet'}' (FORMAT PARQUET)")
    rules = crmrules.load_text("segment big: sum(orders.total) > 300 and count(orders) >= 5\n")
    expected = rules.run(data, as_of=AS_OF).counts()
    with crmrules.limits(memory_limit="150MB", spill_dir=tmp_path / "spill"):
        assert rules.run(data, as_of=AS_OF).counts() == expected
    assert expected["big"] > 0


def test_command_line_options(tmp_path):
    from test_cli import crmrules as cli

    write(tmp_path / "data" / "customers.csv", "id,country\nc1,DE\n")
    write(tmp_path / "r.crm", 'segment de: country == "DE"\n')
    spill = tmp_path / "scratch" / "spill"
    result = cli("run", str(tmp_path / "r.crm"), "--data", str(tmp_path / "data"), "--as-of", AS_OF,
                 "--memory-limit", "512MB", "--spill-dir", str(spill), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["segments"]["de"]["count"] == 1
    assert spill.is_dir() and os.listdir(spill) == []
    result = cli("run", str(tmp_path / "r.crm"), "--data", str(tmp_path / "data"), "--memory-limit", "4 potatoes")
    assert result.returncode == 2 and "'4 potatoes' is not a size such as 4GB" in result.stderr
    for command in (["rfm"], ["profile", "--segment", "de", str(tmp_path / "r.crm")],
                    ["campaigns", "simulate", "--from", "2026-06-01", "--to", "2026-06-02", str(tmp_path / "r.crm")]):
        result = cli(*command, "--help")
        assert "--memory-limit" in result.stdout and "--spill-dir" in result.stdout, command


@pytest.mark.parametrize("folder", ["orders", "orders.parquet"])
def test_a_folder_of_parquet_parts_is_one_table(tmp_path, folder):
    """A table as Spark writes it (a folder of part files, partitions in subfolders) is read, never skipped."""
    write(tmp_path / "customers.csv", "id,country\nc1,DE\nc2,FR\nc3,DE\n")
    parts = tmp_path / folder
    for index, rows in enumerate((("o1", "c1"), ("o2", "c1")), start=1):
        part = write(parts / f"dt=2026-0{index}" / f"part-{index}.csv", "id,customer_id\n" + ",".join(rows) + "\n")
        as_parquet(part)
    as_parquet(write(parts / "part-3.csv", "id,customer_id\no3,c2\n"))
    assert RULES.run(tmp_path, as_of=AS_OF).members == {"de": ["c1", "c3"], "buyers": ["c1"]}


def test_a_bad_value_in_a_part_file_names_the_part_and_its_row(tmp_path):
    write(tmp_path / "customers.csv", "id,country\nc1,DE\n")
    parts = tmp_path / "orders"
    as_parquet(write(parts / "part-1.csv", "id,customer_id,total\no1,c1,10\n"), "id, customer_id, CAST(total AS DOUBLE) AS total")
    as_parquet(write(parts / "part-2.csv", "id,customer_id,total\no2,c1,10\no3,c1,2.0000001\n"),
               "id, customer_id, CAST(total AS DOUBLE) AS total")
    with pytest.raises(DataError) as caught:
        RULES.run(tmp_path, as_of=AS_OF)
    assert "part-2.parquet:2: column `total`" in caught.value.render()


def test_a_table_folder_without_parquet_files_is_an_error(tmp_path):
    write(tmp_path / "customers.csv", "id,country\nc1,DE\n")
    write(tmp_path / "orders" / "notes.txt", "not a table")
    with pytest.raises(DataError, match="without Parquet files"):
        RULES.run(tmp_path, as_of=AS_OF)


def test_a_table_given_twice_is_an_error(tmp_path):
    write(tmp_path / "customers.csv", "id,country\nc1,DE\n")
    write(tmp_path / "orders.csv", "id,customer_id\no1,c1\n")
    as_parquet(write(tmp_path / "orders" / "part-1.csv", "id,customer_id\no2,c1\n"))
    with pytest.raises(DataError, match="all hold table `orders`"):
        RULES.run(tmp_path, as_of=AS_OF)
