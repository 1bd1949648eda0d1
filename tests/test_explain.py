"""`crmrules explain` and `Segment.explain`: the condition as a tree of values, the same from every engine."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from datasets import load_people, sqlite_copy, with_unique_ids
from helpers import EXTRA_COLUMNS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rulegen import NOW, conditions, customers

import crmrules
from crmrules.api import resolve_schema
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.interpreter import InterpreterBackend
from crmrules.backends.sql.backend import SqlBackend
from crmrules.backends.sql.runners import SqlHandle
from crmrules.cli import main
from crmrules.context import evaluation_context
from crmrules.explain import explain, explain_on_data

SHOP = "examples/shop/shop.crm"
SCHEMA = resolve_schema(EXTRA_COLUMNS)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    directory = tmp_path_factory.mktemp("shop") / "data"
    subprocess.run([sys.executable, "examples/shop/generate.py", str(directory), "--customers", "500"],
                   check=True, capture_output=True)
    return str(directory)


def cli(*args):
    return CliRunner().invoke(main, list(args))


def explained(shop, segment, customer, backend):
    result = cli("explain", SHOP, "--segment", segment, "--customer", customer, "--data", shop,
                 "--as-of", "2026-06-30", "--backend", backend, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def sources(tree):
    yield tree["source"]
    for child in tree["children"]:
        yield from sources(child)


@pytest.mark.parametrize("segment", ["coat_fans_not_dormant", "loyal_regulars", "vip", "cart_abandoners"])
def test_every_backend_gives_the_same_json(shop, segment):
    trees = [explained(shop, segment, customer, backend) for customer in ("00003", "00010")
             for backend in ("duckdb", "sqlite", "interpreter", "memory")]
    for first, *others in (trees[:4], trees[4:]):
        assert all(other == first for other in others)
    assert set(trees[0]) == {"segment", "customer_id", "as_of", "result", "tree"}
    assert trees[0]["as_of"] == "2026-06-30" and trees[0]["customer_id"] == "00003"


def test_references_are_expanded_under_their_names_catalogue_ones_too(shop):
    out = explained(shop, "coat_fans_not_dormant", "00003", "duckdb")
    tree = out["tree"]
    assert tree["source"] == "(big_coat_buyers | coat_fans) - dormant"
    dormant = tree["children"][1]
    assert dormant["source"] == "dormant" and isinstance(dormant["value"], bool)
    # the catalogue's `dormant`, its `lifecycle` and `days_since_last_order`, opened under their names
    [body] = dormant["children"]
    assert body["source"] == 'lifecycle == "dormant"'
    assert body["children"][0]["source"] == "lifecycle"
    assert "days_since(last_order_at)" in set(sources(tree))
    assert "max(orders.created_at where status == \"paid\")" in set(sources(tree))
    assert out["result"] == (tree["value"] is True)


def test_tree_format_shows_values_and_flips(shop):
    result = cli("explain", SHOP, "--segment", "loyal_regulars", "--customer", "00003", "--data", shop,
                 "--as-of", "2026-06-30")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "loyal_regulars for customer 00003 as of 2026-06-30: false"
    assert any("order_count >= 5" in line and "(needs 4 more)" in line for line in lines)
    assert any("created_at within 90d" in line for line in lines)


def test_unknown_customer_is_a_clear_error(shop):
    for backend in ("duckdb", "interpreter"):
        result = cli("explain", SHOP, "--segment", "vip", "--customer", "nobody-99", "--data", shop,
                     "--backend", backend)
        assert result.exit_code == 1
        assert "no customer `nobody-99`" in result.output


def test_unknown_segment_is_a_clear_error(shop):
    result = cli("explain", SHOP, "--segment", "vipp", "--customer", "00003", "--data", shop)
    assert result.exit_code == 1 and "unknown segment `vipp`" in result.output


# ------------------------------------------------------------------------------------- flips
def one(rule: str, customer: dict, segment: str = "s"):
    rules = crmrules.load_text(rule, schema=SCHEMA)
    return rules.segment(segment).explain(customer, date(2026, 6, 30))


def flips(tree: dict) -> list[str]:
    found = [tree["flip"]] if "flip" in tree else []
    for child in tree["children"]:
        found.extend(flips(child))
    return found


def test_a_number_short_of_its_threshold_says_how_much():
    customer = {"id": "c1", "orders": [{"id": "o1", "total": Decimal("87.49"), "created_at": "2026-06-01T10:00:00"}]}
    explanation = one("segment s: sum(orders.total) >= 100\n", customer)
    assert explanation.result is False
    assert flips(explanation.to_json()["tree"]) == ["needs 12.51 more"]
    assert flips(one("segment s: sum(orders.total) > 100\n", customer).to_json()["tree"]) == \
        ["needs over 12.51 more"]
    assert flips(one("segment s: count(orders) > 3\n", customer).to_json()["tree"]) == ["needs 3 more"]
    assert flips(one("segment s: points <= 10\n", {"id": "c1", "points": 25}).to_json()["tree"]) == \
        ["needs 15 less"]


def test_time_that_will_flip_it_says_when():
    customer = {"id": "c1", "registered_at": "2026-06-04T10:00:00"}
    assert flips(one("segment s: days_since(registered_at) >= 30\n", customer).to_json()["tree"]) == \
        ["in 4 days"]
    assert flips(one("segment s: registered_at > 2026-06-10\n", customer).to_json()["tree"]) == \
        ["needs 6 days later"]


def test_unknown_comparisons_name_the_missing_value():
    explanation = one("segment s: points > 3\n", {"id": "c1"})
    assert explanation.result is None
    assert flips(explanation.to_json()["tree"]) == ["unknown: points has no value"]


def test_true_comparisons_and_text_have_no_flip():
    assert flips(one("segment s: points > 3\n", {"id": "c1", "points": 5}).to_json()["tree"]) == []
    assert flips(one('segment s: country == "PT"\n', {"id": "c1", "country": "ES"}).to_json()["tree"]) == []


def test_python_explain_matches_the_tree_on_data():
    people = json.loads(Path("examples/shop/customers.json").read_text())
    rules = crmrules.load(SHOP)
    for person in people:
        api = rules.segment("big_coat_buyers").explain(person, date(2026, 6, 30)).to_json()
        on_data = explain_on_data(rules, "big_coat_buyers", person["id"], people, backend="interpreter",
                                  as_of="2026-06-30").to_json()
        assert api == on_data
        assert api["customer_id"] == person["id"]


# ------------------------------------------------------------------- engines agree on generated rules
IDS = st.sampled_from(["00001", "00002", "c3", "0042", "x"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(conditions(), min_size=1, max_size=2), st.lists(customers(IDS), min_size=1, max_size=4)
       .map(with_unique_ids))
def test_interpreter_duckdb_and_sqlite_give_identical_json(condition_list, people):
    text = "".join(f"segment s{i}: {c}\n" for i, c in enumerate(condition_list))
    if len(condition_list) == 2:
        text += "attribute a_ = count(orders)\nsegment both_: (s0 | s1) and a_ >= 0\n"
    rules = crmrules.load_text(text, schema=SCHEMA)
    program, ctx = rules.program, evaluation_context(NOW, rules.program.schema)
    prepared = [prepare_customer(p, program.schema) for p in people]
    loaded = load_people(people, SCHEMA)
    engines = [(InterpreterBackend(), prepared), (SqlBackend("duckdb"), SqlHandle("duckdb", loaded.connection)),
               (SqlBackend("sqlite"), SqlHandle("sqlite", sqlite_copy(loaded, SCHEMA)))]
    existing = InterpreterBackend().values(program, prepared, [], ctx)
    for customer in existing:
        for name, _ in rules.segments:
            outputs = []
            for engine, data in engines:
                def values_of(body, engine=engine, data=data, customer=customer):
                    return engine.node_values(program, data, customer, body, ctx)
                outputs.append(json.dumps(explain(program, name, customer, NOW, values_of).to_json()))
            assert outputs[1] == outputs[0]
            assert outputs[2] == outputs[0]


def test_eval_explain_and_test_failures_show_why(tmp_path):
    import json
    import subprocess
    import sys

    rules = tmp_path / "t.crm"
    rules.write_text('segment big: sum(orders.total) > 100 and points >= 10\n'
                     'test big:\n    given customer {id: "c1", points: 3}, orders [{total: 150, status: "paid", '
                     'created_at: 2026-05-01}]\n    as of 2026-06-30\n    expect in\n')
    customer = tmp_path / "c.json"
    customer.write_text(json.dumps({"id": "c1", "points": 3, "orders": [{"total": 50}]}))
    cli = [sys.executable, "-m", "crmrules"]
    shown = subprocess.run([*cli, "eval", str(rules), "--segment", "big", "--customer", str(customer), "--as-of",
                            "2026-06-30", "--explain"], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.startswith("false\nbig for customer c1 as of 2026-06-30: false")
    assert "(needs 7 more)" in shown.stdout and "50  sum(orders.total)" in shown.stdout
    failed = subprocess.run([*cli, "test", str(rules)], capture_output=True, text=True)
    assert failed.returncode == 1
    assert "FAIL big case 1" in failed.stderr and "true  sum(orders.total) > 100" in failed.stderr
    assert "false  points >= 10   (needs 7 more)" in failed.stderr
