"""`bucket(salt, n)`: random splits, the same on every engine and the same as campaign holdouts.

The expected buckets are computed here with hashlib, straight from the pinned rule:
the first 4 bytes of SHA-256(salt + ":" + id) (UTF-8), big-endian, mod n.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections import Counter
from datetime import date

import pytest
from datasets import load_people, sqlite_copy
from engines import ENGINES, ROW_ENGINES

import crmrules
from crmrules.backends.dispatch import BACKENDS
from crmrules.backends.sql.dialects import DIALECTS
from crmrules.backends.sql.planner import values_select
from crmrules.backends.sql.runners import SqlHandle
from crmrules.backends.sql.transfer import to_postgres, to_spark
from crmrules.campaigns import clock
from crmrules.context import evaluation_context

AS_OF = date(2026, 6, 30)
RULES = crmrules.load_text('attribute split3 = bucket("spring", 3)\n'
                           'attribute split1000 = bucket("测试 salt", 1000)\n'
                           'attribute holdout = bucket("winback", 10000)\n'
                           'segment group_a = bucket("spring", 3) == 0\n')
NAMES = ["split3", "split1000", "holdout"]
# ids of many shapes: ASCII, digits only, non-ASCII (UTF-8 hashing), spaces
IDS = [f"c{i}" for i in range(99_000)] + [str(i) for i in range(500)] + [f"客户{i} é" for i in range(500)]
# Spark runs a smaller sample: 100k rows through a local SparkSession would dominate the suite
SAMPLE = {"spark": 1_000, "interpreter": 10_000}


def expected(salt: str, n: int, customer_id: str) -> int:
    digest = hashlib.sha256((salt + ":" + customer_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], byteorder="big", signed=False) % n


class Ids:
    """Customers that are only an id, in one engine: the SQL engines are loaded with one INSERT (row by row
    this many customers would take minutes), then copied as the engine tests copy any data set."""

    def __init__(self, name: str, ids: list[str], request):
        schema = crmrules.default_schema()
        self.backend, self.cleanup = BACKENDS[name], []
        if name in ROW_ENGINES:
            self.data = [{"id": i} for i in ids]
            return
        loaded = load_people([], schema)
        loaded.connection.execute("INSERT INTO customers (id) SELECT unnest(?::VARCHAR[])", [ids])
        if name == "duckdb":
            self.data = SqlHandle("duckdb", loaded.connection)
        elif name == "sqlite":
            self.data = SqlHandle("sqlite", sqlite_copy(loaded, schema))
        elif name == "postgres":
            import psycopg

            connection = psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True)
            to_postgres(loaded, schema, connection, "buckets")
            connection.execute('SET search_path TO "buckets"')
            self.cleanup.append(lambda: (connection.execute('DROP SCHEMA "buckets" CASCADE'), connection.close()))
            self.data = SqlHandle("postgres", connection)
        else:
            scratch = tempfile.mkdtemp(prefix="crmrules-buckets-")
            to_spark(loaded, schema, request.getfixturevalue("spark"), scratch)
            self.cleanup.append(lambda: shutil.rmtree(scratch, ignore_errors=True))
            self.data = SqlHandle("spark", request.getfixturevalue("spark"))

    def values(self, program, names, ctx):
        return self.backend.values(program, self.data, names, ctx)

    def members(self, program, segments, ctx):
        return self.backend.members(program, self.data, segments, ctx)


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    size = SAMPLE.get(request.param, len(IDS))
    ids = IDS[:size // 2] + IDS[-size // 2:] if size < len(IDS) else IDS
    data = Ids(request.param, ids, request)
    yield data, ids
    for step in data.cleanup:
        step()


def test_buckets_are_the_hash_of_salt_and_id_on_every_engine(engine):
    data, ids = engine
    program = RULES.program_for(attributes=NAMES)
    got = data.values(program, NAMES, evaluation_context(AS_OF, program.schema))
    assert len(got) == len(ids)
    wrong = [(i, got[i]) for i in ids if got[i] != {
        "split3": expected("spring", 3, i), "split1000": expected("测试 salt", 1000, i),
        "holdout": expected("winback", 10000, i)}]
    assert not wrong, wrong[:5]
    members = data.members(program, ["group_a"], evaluation_context(AS_OF, program.schema))["group_a"]
    assert members == sorted(i for i in ids if expected("spring", 3, i) == 0)


def test_the_split_is_even_and_the_holdout_rule_is_the_same():
    counts = Counter(expected("spring", 3, i) for i in IDS)
    assert all(abs(n - len(IDS) / 3) < 0.02 * len(IDS) for n in counts.values()), counts
    # campaigns hold customers out by the same function: bucket(campaign, 10000)
    assert all(clock.holdout_bucket("winback", i) == expected("winback", 10000, i) for i in IDS[:2000])


def test_a_customer_without_an_id_has_no_bucket():
    program = RULES.program_for(attributes=NAMES)
    from crmrules.backends.interpreter import evaluate

    body = program.attributes["split3"].body
    assert evaluate(program, {"id": None}, body, evaluation_context(AS_OF, program.schema)).value(body) is None


@pytest.mark.parametrize("text, code", [
    ('bucket("s", 0)', "E0216"), ('bucket("s", -2)', "E0216"), ('bucket("s", points)', "E0216"),
    ('bucket("s", 2.5)', "E0216"), ('bucket(email, 2)', "E0217"), ('bucket(3, 2)', "E0301"),
])
def test_bucket_needs_a_salt_and_a_count_written_out(text, code):
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text(f"attribute x = {text}\n").program_for(attributes=["x"])
    assert caught.value.code == code


def test_bucket_is_per_customer_not_per_row():
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text('attribute x = count(orders where bucket("s", 2) == 0)\n').program_for(attributes=["x"])
    assert caught.value.code == "E0217" and "where" in caught.value.message


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_dialect_emits_sha256(dialect):
    program = RULES.program_for(attributes=["split3"])
    sql = values_select(program, [("split3", program.attributes["split3"].body)], DIALECTS[dialect](),
                        evaluation_context(AS_OF, program.schema)).sql(DIALECTS[dialect].sqlglot_name)
    assert ("crm_hash32" if dialect == "sqlite" else "sha") in sql.lower()
    assert "'spring:'" in sql
