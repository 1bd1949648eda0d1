"""The catalogue on every backend: hand-computed values of each attribute, function and template.

Fixture: tests/fixtures/catalogue/people.json (five customers) → expected.json,
as of 2026-06-30 (end of day). Conventions the expectations follow: purchase
attributes count paid orders; rows dated after the as-of instant are invisible
(dee's order of 2026-07-01, bo's view of 2026-07-02); a customer registered after
it (eve) does not exist yet; decimals are exact, divisions rounded to 6 places.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from engines import ENGINES, EngineData

import crmrules
from crmrules.backends.customer_data import prepare_customer
from crmrules.context import evaluation_context

FIXTURES = Path(__file__).parent / "fixtures" / "catalogue"
PEOPLE = json.loads((FIXTURES / "people.json").read_text())
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
AS_OF = date(2026, 6, 30)
_functions = list(EXPECTED["functions"])
# each function call becomes an attribute f0, f1, ... of one rule text, next to a membership of every template
RULES = "\n".join(f"attribute f{i} = {call}" for i, call in enumerate(_functions)) + "\n" + "\n".join(
    f"segment t_{name} = {name}" for name in EXPECTED["templates"]) + "\n"
ATTRIBUTES = list(EXPECTED["attributes"])


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
    return crmrules.load_text(RULES)


@pytest.fixture(scope="module")
def program(rules):
    """The rules with every catalogue attribute and template checked too."""
    return rules.program_for(attributes=ATTRIBUTES)


@pytest.fixture(scope="module")
def prepared():
    schema = crmrules.default_schema()
    return [prepare_customer(p, schema) for p in PEOPLE]


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    """The fixture's people loaded into one engine (interpreter, generated code, DuckDB, SQLite, PostgreSQL, Spark)."""
    data = EngineData(request.param, PEOPLE, crmrules.default_schema(), request)
    yield data
    data.close()


def expected_by_customer(section: str, names: list[str], rename=None) -> dict:
    people = sorted({c for per in EXPECTED[section].values() for c in per})
    return {c: {(rename or {}).get(n, n): EXPECTED[section][n][c] for n in names} for c in people}


def test_attributes(engine, program):
    got = engine.values(program, ATTRIBUTES, evaluation_context(AS_OF, program.schema))
    assert {c: {n: plain(v) for n, v in row.items()} for c, row in got.items()} == \
        expected_by_customer("attributes", ATTRIBUTES)


def test_functions(engine, program):
    calls = {call: f"f{i}" for i, call in enumerate(_functions)}
    got = engine.values(program, list(calls.values()), evaluation_context(AS_OF, program.schema))
    assert {c: {n: plain(v) for n, v in row.items()} for c, row in got.items()} == \
        expected_by_customer("functions", list(calls), calls)


def test_templates(engine, program):
    names = [f"t_{name}" for name in EXPECTED["templates"]]
    members = engine.members(program, names, evaluation_context(AS_OF, program.schema))
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
