"""Real engines for the tests: a throwaway PostgreSQL cluster on loopback and a local SparkSession.

When an engine is missing the tests that need it are skipped, unless
CRMRULES_REQUIRE_ENGINES=1 (as `.ci/run` sets), where a missing engine fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _missing(what: str):
    if os.environ.get("CRMRULES_REQUIRE_ENGINES") == "1":
        pytest.fail(f"{what} is required (CRMRULES_REQUIRE_ENGINES=1) but not available")
    pytest.skip(f"{what} is not available")


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    """initdb + pg_ctl start with fsync off, C collation, trust auth on 127.0.0.1; stopped at the end."""

    def __init__(self):
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            _missing("PostgreSQL (initdb, pg_ctl)")
        self.pg_ctl = pg_ctl
        self.directory = Path(tempfile.mkdtemp(prefix="crmrules-pg-"))
        self.port = _free_port()
        self.data = self.directory / "data"
        # PostgreSQL refuses to run as root: run it as the `postgres` system user then
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.directory, "postgres")
        self._run([initdb, "-D", str(self.data), "--locale=C", "-E", "UTF8", "-A", "trust", "-U", "postgres"])
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off")
        self._run([pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.directory / "log"), "-w", "start"])
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(self.prefix + command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def stop(self) -> None:
        subprocess.run(self.prefix + [self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def spark_session():
    """A local SparkSession (local[2], UI off, loopback, UTC), or a skip/fail when Spark cannot start."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        _missing("pyspark")
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        _missing("Java (for Spark)")
    from crmrules.backends.dispatch import local_spark

    return local_spark()


# ------------------------------------------------------------ every engine, one way in
# The semantics suite and the catalogue fixtures run on each of these through the Backend
# protocol (crmrules/backends/protocol.py), like ibis' backend suite.
ENGINES = ("interpreter", "memory", "duckdb", "sqlite", "postgres", "spark")
ROW_ENGINES = ("interpreter", "memory")
_pg_schemas = iter(range(10**9))


class EngineData:
    """Customer dicts loaded into one engine: `backend.members/values(program, data, ..., ctx)`."""

    def __init__(self, name: str, people: list[dict], schema, request):
        from crmrules.backends.customer_data import prepare_customer
        from crmrules.backends.dispatch import BACKENDS

        self.name = name
        self.backend = BACKENDS[name]
        self._cleanup = []
        prepared = [prepare_customer(p, schema) for p in people]
        if name in ROW_ENGINES:
            self.data = prepared
            return
        from datasets import load_people, sqlite_copy

        from crmrules.backends.sql.runners import SqlHandle

        loaded = load_people(prepared, schema)
        if name == "duckdb":
            self.data = SqlHandle("duckdb", loaded.connection)
        elif name == "sqlite":
            self.data = SqlHandle("sqlite", sqlite_copy(loaded, schema))
        elif name == "postgres":
            import psycopg

            from crmrules.backends.sql.transfer import to_postgres

            connection = psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True)
            pg_schema = f"engine{next(_pg_schemas)}"
            to_postgres(loaded, schema, connection, pg_schema)
            connection.execute(f'SET search_path TO "{pg_schema}"')
            self._cleanup.append(lambda: (connection.execute(f'DROP SCHEMA "{pg_schema}" CASCADE'),
                                          connection.close()))
            self.data = SqlHandle("postgres", connection)
        elif name == "spark":
            from crmrules.backends.sql.transfer import to_spark

            spark = request.getfixturevalue("spark")
            scratch = tempfile.mkdtemp(prefix="crmrules-spark-")
            to_spark(loaded, schema, spark, scratch)
            self._cleanup.append(lambda: shutil.rmtree(scratch, ignore_errors=True))
            self.data = SqlHandle("spark", spark)
        else:
            raise AssertionError(name)

    def members(self, program, segments, ctx) -> dict[str, list[str]]:
        return self.backend.members(program, self.data, segments, ctx)

    def values(self, program, names, ctx) -> dict[str, dict[str, object]]:
        return self.backend.values(program, self.data, names, ctx)

    def close(self) -> None:
        for step in self._cleanup:
            step()
