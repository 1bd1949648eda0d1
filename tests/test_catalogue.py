"""The catalogue on every backend: hand-computed values of each attribute, function and template.

Fixture: tests/fixtures/catalogue/people.json (five customers) → expected.json,
as of 2026-06-30 (end of day). Conventions the expectations follow: purchase
attributes count paid orders; rows dated after the as-of instant are invisible
(dee's order of 2026-07-01, bo's view of 2026-07-02); a customer registered after
it (eve) does not exist yet; decimals are exact, divisions rounded to 6 places.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from datasets import load_people, sqlite_copy

import crmrules
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.sql.sources import values_on
from crmrules.backends.sql.transfer import to_postgres, to_spark

FIXTURES = Path(__file__).parent / "fixtures" / "catalogue"
PEOPLE = json.loads((FIXTURES / "people.json").read_text())
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
AS_OF = date(2026, 6, 30)
_functions = list(EXPECTED["functions"])
# each function call becomes an attribute f0, f1, ... of one rule text, next to a membership of every template
RULES = "\n".join(f"attribute f{i} = {call}" for i, call in enumerate(_functions)) + "\n" + "\n".join(
    f"segment t_{name} = {name}" for name in EXPECTED["templates"]) + "\n"
ATTRIBUTES = list(EXPECTED["attributes"])
_schemas = itertools.count()


def plain(value):
    """Engine values in the fixture's JSON form."""
    match value:
        case bool() | None | int() | str():
            return value
        case Decimal():
            return format(value.normalize(), "f") if value != 0 else "0"
        case datetime() | date():
            return value.isoformat()
        case list():
            return [plain(v) for v in value]
    raise TypeError(value)


@pytest.fixture(scope="module")
def rules():
    rule_set = crmrules.load_text(RULES)
    rule_set._ensure(ATTRIBUTES, rule_set.program.attributes)
    return rule_set


@pytest.fixture(scope="module")
def prepared():
    schema = crmrules.default_schema()
    return [prepare_customer(p, schema) for p in PEOPLE]


@pytest.fixture(scope="module")
def loaded(prepared):
    return load_people(prepared, crmrules.default_schema())


def engines(kind: str, loaded, prepared):
    """The handle `values_on` takes for a backend."""
    if kind == "memory":
        return prepared
    if kind == "duckdb":
        return loaded.connection
    if kind == "sqlite":
        return sqlite_copy(loaded, crmrules.default_schema())
    raise AssertionError(kind)


def values_for(kind: str, handle, rules, names):
    return {customer: {name: plain(v) for name, v in row.items()}
            for customer, row in values_on(kind, handle, rules.program, names, AS_OF).items()}


def expected_by_customer(section: str, names: list[str], rename=None) -> dict:
    people = sorted({c for per in EXPECTED[section].values() for c in per})
    return {c: {(rename or {}).get(n, n): EXPECTED[section][n][c] for n in names} for c in people}


def function_names():
    return {call: f"f{i}" for i, call in enumerate(_functions)}


def check_everything(kind, handle, rules):
    got = values_for(kind, handle, rules, ATTRIBUTES)
    assert got == expected_by_customer("attributes", ATTRIBUTES)
    calls = function_names()
    got = values_for(kind, handle, rules, list(calls.values()))
    assert got == expected_by_customer("functions", list(calls), calls)


@pytest.mark.parametrize("kind", ["memory", "duckdb", "sqlite"])
def test_attributes_and_functions(kind, rules, loaded, prepared):
    check_everything(kind, engines(kind, loaded, prepared), rules)


def test_attributes_and_functions_on_postgres(rules, loaded, postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        name = f"catalogue{next(_schemas)}"
        to_postgres(loaded, crmrules.default_schema(), connection, name)
        connection.execute(f'SET search_path TO "{name}"')
        check_everything("postgres", connection, rules)


def test_attributes_and_functions_on_spark(rules, loaded, spark):
    with tempfile.TemporaryDirectory() as scratch:
        to_spark(loaded, crmrules.default_schema(), spark, scratch)
        check_everything("spark", spark, rules)


@pytest.mark.parametrize("kind", ["memory", "duckdb", "sqlite"])
def test_templates(kind, rules, loaded, prepared):
    names = [f"t_{name}" for name in EXPECTED["templates"]]
    handle = engines(kind, loaded, prepared)
    if kind == "memory":
        from crmrules.backends.memory_run import run_memory

        members = run_memory(rules.program, handle, names, AS_OF)
    else:
        from crmrules.backends.sql import runners

        members = runners.collect(runners.fetch(kind, handle, runners.build_query(rules.program, names, kind, AS_OF)),
                                  names)
    assert {name.removeprefix("t_"): ids for name, ids in members.items()} == EXPECTED["templates"]


def test_matches_needs_the_population_for_rfm(rules, prepared):
    segment = rules.segment("t_rfm_general_value")
    dee = next(p for p in prepared if p["id"] == "dee")
    with pytest.raises(crmrules.CrmRulesError) as caught:
        segment.matches(dee, AS_OF)
    assert caught.value.code == "E0602" and "population" in caught.value.hint
    population = rules.population(prepared, as_of=AS_OF)
    assert segment.matches(dee, AS_OF, population=population)
    ana = next(p for p in prepared if p["id"] == "ana")
    assert not segment.matches(ana, AS_OF, population=population)


def test_every_catalogue_attribute_is_in_the_fixture():
    from crmrules.stdlib.reference import items

    listed = {i.name for i in items() if i.kind == "attribute"}
    assert listed <= set(ATTRIBUTES), listed - set(ATTRIBUTES)
    assert len([i for i in items() if i.kind in ("attribute", "column")]) >= 47
    functions = {i.name.split("(")[0] for i in items() if i.kind == "function" and i.group != "templates"}
    assert functions <= {call.split("(")[0] for call in _functions}
    templates = {i.name for i in items() if i.kind == "template"}
    assert templates == set(EXPECTED["templates"]) and len(templates) >= 12
