"""The CLI on a real standalone Spark cluster: a master and a worker started here on loopback from the
installed pyspark distribution, shared by the module; every command runs in its own process (`--spark
spark://127.0.0.1:PORT`), as a user's job would, and is compared with DuckDB on the same files.

Data reaches Spark as files it reads itself (Parquet with part-file directories, CSV, JSON lines) and as
a catalog's tables (a Hive metastore in Derby, configured through spark-defaults.conf as a cluster's
would be); large results leave as Parquet written by the cluster (`--output`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from datasets import load_people, with_unique_ids
from engines import _free_port, _missing
from helpers import EXTRA_COLUMNS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rulegen import NOW, conditions, customers
from test_differential import oracle_members, rule_text

import crmrules
from crmrules.api import resolve_schema
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.sql.datadir import quote

FIXTURES = Path(__file__).parent / "fixtures" / "catalogue"
PEOPLE = json.loads((FIXTURES / "people.json").read_text())
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
TEMPLATES = "\n".join(f"segment t_{name} = {name}" for name in EXPECTED["templates"]) + "\n"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`spark://127.0.0.1:PORT` of a standalone master with one worker (2 cores, 1 GB), stopped at the end."""
    try:
        import pyspark
    except ImportError:
        _missing("pyspark")
    if subprocess.run(["java", "-version"], check=False, capture_output=True).returncode != 0:
        _missing("Java (for Spark)")
    home = Path(pyspark.__file__).parent
    directory = tmp_path_factory.mktemp("spark-cluster")
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOG_DIR": str(directory), "SPARK_WORKER_DIR": str(directory / "work")}
    port, ui = _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(home / "bin" / "spark-class")
    processes = []
    try:
        for name, arguments in (
                ("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                            "--webui-port", str(ui)]),
                ("worker", ["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "2",
                            "--memory", "1g", "--webui-port", str(_free_port())])):
            with (directory / f"{name}.log").open("w") as log:
                processes.append(subprocess.Popen([spark_class, *arguments], env=env, stdout=log,
                                                  stderr=subprocess.STDOUT))
        _wait_for_worker(ui, directory)
        yield url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_worker(ui: int, directory: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as response:
                if json.load(response).get("aliveworkers", 0) >= 1:
                    return
        except (OSError, ValueError):  # not listening yet, or a page that is not the JSON status yet
            pass
        time.sleep(0.5)
    logs = "\n".join(p.read_text()[-2000:] for p in directory.glob("*.log"))
    raise RuntimeError(f"the Spark worker did not register with the master:\n{logs}")


def crmrules_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The command line in a process of its own (a Spark driver per process, as users run it)."""
    return subprocess.run([sys.executable, "-m", "crmrules", *args], check=False, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", **(env or {})}, cwd=cwd)


def write_data(people: list[dict], schema, directory: Path, form: str | dict[str, str]) -> Path:
    """The customers' tables as a data directory of `form` files, or of each table's own form by name
    ("parquet": orders as a directory of part files; "csv": lists as JSON text; "jsonl")."""
    directory.mkdir(parents=True, exist_ok=True)
    loaded = load_people([prepare_customer(p, schema) for p in people], schema)
    for spec in schema.tables.values():
        kind = form if isinstance(form, str) else form.get(spec.name, "parquet")
        columns = ", ".join(f"to_json({quote(c.source)}) AS {quote(c.source)}" if c.type.is_list and kind == "csv"
                            else quote(c.source) for c in spec.columns.values())
        select = f"SELECT {columns} FROM {quote(spec.source)}"
        if kind == "parquet":
            parts = ", PER_THREAD_OUTPUT true" if spec.name == "orders" else ""
            loaded.connection.execute("SET threads = 2")
            target, options = directory / f"{spec.source}.parquet", f"FORMAT PARQUET{parts}"
        elif kind == "csv":
            target, options = directory / f"{spec.source}.csv", "HEADER, DELIMITER ','"
        else:
            target, options = directory / f"{spec.source}.jsonl", "FORMAT JSON"
        loaded.connection.execute(f"COPY ({select}) TO '{target}' ({options})")
    loaded.connection.close()
    return directory


def run_json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def members_of(report: dict) -> dict[str, list[str]]:
    return {name: found["members"] for name, found in report["segments"].items()}


def test_the_catalogue_fixture_from_csv_json_lines_and_parquet_into_parquet_output(cluster, tmp_path):
    """Every template on the fixture's people, from a directory mixing the three formats, written by the
    executors as Parquet (`--output`): the hand-computed answers, read back from the part files."""
    import duckdb

    forms = {"customers": "csv", "orders": "jsonl", "order_items": "parquet", "events": "csv"}
    data = write_data(PEOPLE, crmrules.default_schema(), tmp_path / "data", forms)
    (tmp_path / "templates.crm").write_text(TEMPLATES)
    output = tmp_path / "members"
    report = run_json(crmrules_cli("run", str(tmp_path / "templates.crm"), "--data", str(data), "--spark", cluster,
                                   "--as-of", "2026-06-30", "--format", "json", "--output", str(output)))
    expected = {f"t_{name}": sorted(ids) for name, ids in EXPECTED["templates"].items()}
    assert report["segments"] == {name: {"count": len(ids)} for name, ids in expected.items()}
    assert output.is_dir()  # part files, written by the executors
    parts = f"{output}/*.parquet"
    columns = [c[0] for c in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{parts}')").fetchall()]
    assert columns == ["customer_id", *expected]
    rows = duckdb.sql(f"SELECT * FROM read_parquet('{parts}') ORDER BY customer_id").fetchall()
    assert [row[0] for row in rows] == ["ana", "bo", "cy", "dee"]  # eve registers after the as-of date
    for index, name in enumerate(columns[1:], start=1):
        assert sorted(row[0] for row in rows if row[index]) == expected[name], name


@settings(max_examples=1, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.lists(conditions(), min_size=8, max_size=8),
       st.lists(customers(st.sampled_from(["00001", "00002", "c3", "0042", "x"])), min_size=4,
                max_size=6).map(with_unique_ids))
def test_the_differential_sample_from_parquet_parts_on_the_cluster(cluster, tmp_path_factory, condition_list,
                                                                   people):
    schema = resolve_schema(EXTRA_COLUMNS)
    rules = crmrules.load_text(rule_text(condition_list), schema=schema)
    names = [name for name, _ in rules.segments]
    directory = tmp_path_factory.mktemp("differential")
    data = write_data(people, schema, directory / "data", "parquet")
    assert (data / "orders.parquet").is_dir()  # part files, as Spark jobs write them
    (directory / "rules.crm").write_text(rule_text(condition_list))
    (directory / "schema.yaml").write_text(json.dumps(EXTRA_COLUMNS))
    report = run_json(crmrules_cli("run", str(directory / "rules.crm"), "--schema", str(directory / "schema.yaml"),
                                   "--data", str(data), "--spark", cluster, "--as-of", NOW.isoformat(),
                                   "--format", "json", "--members"))
    assert members_of(report) == oracle_members(rules, people, names)


CREATE_TABLES = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.master(sys.argv[1]).getOrCreate()
spark.sql("CREATE DATABASE shop")
for table in ("customers", "orders", "order_items", "events"):
    spark.read.parquet(f"{sys.argv[2]}/{table}.parquet").write.saveAsTable(f"shop.{table}")
spark.stop()
"""


def test_catalog_tables_of_a_hive_metastore(cluster, tmp_path):
    """`--data catalog:shop`: the tables of the session's catalog, here a Hive metastore in Derby set up in
    spark-defaults.conf (SPARK_CONF_DIR), as a cluster's configuration would have it."""
    data = write_data(PEOPLE, crmrules.default_schema(), tmp_path / "data", "parquet")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text(
        "spark.sql.catalogImplementation hive\n"
        f"spark.sql.warehouse.dir {tmp_path / 'warehouse'}\n"
        f"spark.hadoop.javax.jdo.option.ConnectionURL jdbc:derby:;databaseName={tmp_path / 'metastore'};create=true\n")
    env = {"SPARK_CONF_DIR": str(conf)}
    created = subprocess.run([sys.executable, "-c", CREATE_TABLES, cluster, str(data)], check=False,
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", **env},
                             cwd=tmp_path)
    assert created.returncode == 0, created.stderr[-3000:]
    (tmp_path / "templates.crm").write_text(TEMPLATES)
    report = run_json(crmrules_cli("run", str(tmp_path / "templates.crm"), "--data", "catalog:shop", "--spark",
                                   cluster, "--as-of", "2026-06-30", "--format", "json", "--members", env=env,
                                   cwd=tmp_path))
    assert members_of(report) == {f"t_{name}": sorted(ids) for name, ids in EXPECTED["templates"].items()}


def test_an_unreachable_master_is_one_clear_line(tmp_path):
    (tmp_path / "r.crm").write_text("segment s: true\n")
    result = crmrules_cli("run", str(tmp_path / "r.crm"), "--data", str(tmp_path), "--spark",
                          f"spark://127.0.0.1:{_free_port()}")
    assert result.returncode == 1
    assert "cannot reach Spark at spark://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr
