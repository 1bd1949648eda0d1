"""The schema: defaults, mapping files in TOML and YAML, and every kind of bad mapping."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

import crmrules
from crmrules import types as t
from crmrules.schema import default_schema, load_schema, schema_from_dict

FIXTURES = Path(__file__).parent / "fixtures" / "schema"


def test_default_schema_has_the_five_tables_of_the_design():
    schema = default_schema()
    assert list(schema.tables) == ["customers", "orders", "order_items", "events", "products"]
    assert schema.column("customers", "tags").type == t.list_of(t.STRING)
    assert schema.column("orders", "total").type == t.DECIMAL
    assert schema.column("events", "at").type == t.TIMESTAMP
    assert schema.column("customers", "birthday").type == t.DATE
    assert schema.table("orders").time_column == "created_at"
    assert schema.timezone == "UTC"
    with pytest.raises(crmrules.UnknownNameError) as caught:
        schema.table("order")
    assert caught.value.hint == "did you mean `orders`?"


@pytest.mark.parametrize("name", ["shop.toml", "shop.yaml"])
def test_mapping_files(name):
    schema = load_schema(FIXTURES / name)
    customers = schema.table("customers")
    assert customers.source == "clients"
    assert schema.column("customers", "id").source == "client_id"
    assert schema.column("customers", "total_spent").type == t.DECIMAL
    assert schema.column("customers", "vip_score").source == "score"
    assert schema.column("orders", "total").source == "amount"
    assert schema.timezone == "Europe/Paris"


def test_toml_and_yaml_give_the_same_schema():
    toml, yaml = load_schema(FIXTURES / "shop.toml"), load_schema(FIXTURES / "shop.yaml")
    assert toml.tables == yaml.tables and toml.timezone == yaml.timezone


def test_mapped_names_work_end_to_end():
    rules = crmrules.load_text("segment s: vip_score > 1 and sum(orders.total) > 5",
                               schema=FIXTURES / "shop.toml")
    customer = {"client_id": "1", "score": 2, "orders": [{"amount": 6}]}
    assert rules.segment("s").matches(customer, date(2026, 1, 1))


def test_store_time_zone_applies_to_aware_timestamps():
    rules = crmrules.load_text("segment s: count(orders where created_at within 1d) == 1",
                               schema={"timezone": "Asia/Tokyo"})
    # 20:00 UTC on June 30th is 05:00 on July 1st in Tokyo: after the end of June 30th there
    customer = {"orders": [{"created_at": "2026-06-30T20:00:00+00:00"}]}
    assert not rules.segment("s").matches(customer, date(2026, 6, 30))
    assert rules.segment("s").matches(customer, date(2026, 7, 1))


@pytest.mark.parametrize(("mapping", "message", "hint"), [
    ({"tables": {"customer": {}}}, "shop.toml: tables.customer: unknown table", "did you mean `customers`?"),
    ({"tables": {"customers": {"colums": {}}}}, "shop.toml: tables.customers.colums: unknown key `colums`",
     "did you mean `columns`?"),
    ({"tables": {"customers": {"columns": {"x": {"type": "decmal"}}}}},
     'shop.toml: tables.customers.columns.x.type: unknown type "decmal"', 'did you mean "decimal"?'),
    ({"tables": {"customers": {"columns": {"points": {"type": "string"}}}}},
     "shop.toml: tables.customers.columns.points.type: `points` is a built-in int column; its type cannot change",
     "map it to a column of that type, or add a new column"),
    ({"tables": {"customers": {"columns": {"x": "their_x"}}}},
     "shop.toml: tables.customers.columns.x: `x` is not a column of customers",
     'to add a column, give its type: x = { type = "int" }'),
    ({"tables": {"customers": {"columns": {"email": "phone"}}}},
     "shop.toml: tables.customers.columns: `email` and `phone` both map to `phone`",
     "map each column to a column of its own"),
    ({"timezone": "Europe/Pari"}, 'shop.toml: timezone: unknown time zone "Europe/Pari"',
     'did you mean "Europe/Paris"?'),
    ({"tabels": {}}, "shop.toml: tabels: unknown key `tabels`", "did you mean `tables`?"),
    ({"tables": {"customers": {"columns": {"x": {"typ": "int"}}}}},
     "shop.toml: tables.customers.columns.x.typ: unknown key `typ`", "did you mean `type`?"),
])
def test_bad_mappings(mapping, message, hint):
    with pytest.raises(crmrules.SchemaError) as caught:
        schema_from_dict(mapping, "shop.toml")
    assert caught.value.code == "E0502"
    assert caught.value.message == message
    assert caught.value.hint == hint


@pytest.mark.parametrize(("name", "message"), [
    ("malformed.toml", "malformed.toml: malformed TOML: "),
    ("malformed.yaml", "malformed.yaml:3:1: malformed YAML: "),
    ("missing.toml", "missing.toml: cannot read the schema file"),
    ("shop.json", "shop.json: unknown schema file type `.json`"),
])
def test_bad_files(name, message):
    with pytest.raises(crmrules.SchemaError) as caught:
        load_schema(FIXTURES / name)
    assert caught.value.message.removeprefix(str(FIXTURES) + "/").startswith(message)


def test_importing_crmrules_does_not_import_pydantic():
    import subprocess
    import sys

    code = "import sys, crmrules; crmrules.load_text('segment s: points > 1'); print('pydantic' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
