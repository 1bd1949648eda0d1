"""The reference interpreter against the generated code, node by node; memoisation; the builtins registry.

The interpreter is the oracle: on generated rules and people, every customer-level
node's value must be what the generated code computes for it, and segment members
must agree. Each attribute, aggregate and `ntile` is computed once per evaluation
by both engines however often a rule uses it.
"""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from datasets import with_unique_ids
from helpers import EXTRA_COLUMNS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rulegen import NOW, conditions, customers

import crmrules
from crmrules import ast
from crmrules.api import resolve_schema
from crmrules.backends import builtins, memory
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.interpreter import Interpreter, InterpreterBackend, evaluate
from crmrules.backends.memory import MemoryBackend
from crmrules.backends.runtime import customer_nodes
from crmrules.compiler.functions import FUNCTIONS
from crmrules.context import evaluation_context
from crmrules.errors import InternalError

SCHEMA = resolve_schema(EXTRA_COLUMNS)
IDS = st.sampled_from(["00001", "00002", "c3", "0042", "x"])
people_sets = st.lists(customers(IDS), min_size=1, max_size=4).map(with_unique_ids)
SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def rule_text(condition_list):
    lines = [f"segment s{i}: {c}" for i, c in enumerate(condition_list)]
    if len(condition_list) >= 2:
        lines += ["segment union_ = s0 | s1", "segment diff_ = s0 - s1",
                  "segment both_ = s0 & s1 and not (s1 and s0 is null)"]
    return "\n".join(lines) + "\n"


def prepared(rules, people):
    return [prepare_customer(p, rules.program.schema) for p in people]


def plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value


@SETTINGS
@given(st.lists(conditions(), min_size=1, max_size=3), people_sets)
def test_interpreter_and_generated_code_agree_on_members(condition_list, people):
    rules = crmrules.load_text(rule_text(condition_list), schema=SCHEMA)
    names = [name for name, _ in rules.segments]
    data, ctx = prepared(rules, people), evaluation_context(NOW, rules.schema)
    assert MemoryBackend().members(rules.program, data, names, ctx) == \
        InterpreterBackend().members(rules.program, data, names, ctx)


@SETTINGS
@given(conditions(), people_sets)
def test_every_node_has_the_value_the_generated_code_computes(condition, people):
    rules = crmrules.load_text(f"segment s: {condition}\n", schema=SCHEMA)
    program, data = rules.program, prepared(rules, people)
    ctx = evaluation_context(NOW, rules.schema)
    body = program.segments["s"].body
    ctx = ctx.with_population(MemoryBackend().population(program, data, ctx))
    for person in data:
        evaluation = evaluate(program, person, body, ctx)
        compiled = MemoryBackend().node_values(program, data, person["id"], body, ctx)
        for node in customer_nodes(body):
            assert node in evaluation, node
            got, want = plain(evaluation.value(node)), plain(compiled[node])
            if want is None or isinstance(want, bool):
                assert got is want, (node, got, want)
            else:
                assert got == want, (node, got, want)


def test_evaluation_lists_each_node_with_its_span_and_value():
    rules = crmrules.load_text("segment s: points > 10 and count(orders) >= 1\n", schema=SCHEMA)
    body = rules.program.segments["s"].body
    person = prepare_customer({"id": "c1", "points": 20, "orders": [{"id": "o1", "total": 5}]}, rules.schema)
    evaluation = evaluate(rules.program, person, body, evaluation_context(NOW, rules.schema))
    seen = {node: (span, value) for node, span, value in evaluation}
    assert seen[body] == (body.span, True)
    points, count = body.operands
    assert evaluation.value(points) is True and evaluation.value(points.left) == 20
    assert evaluation.value(count.left) == 1
    assert all(span is node.span for node, span, _ in evaluation)


TRUTH = [True, False, None]


@pytest.mark.parametrize(("p", "q"), list(itertools.product(TRUTH, TRUTH)))
def test_and_or_not_follow_the_three_valued_truth_tables(p, q):
    rules = crmrules.load_text("segment a: vip and email_subscribed\nsegment o: vip or email_subscribed\n"
                               "segment n: not vip\n", schema=SCHEMA)
    person = prepare_customer({"id": "c1", "vip": p, "email_subscribed": q}, rules.schema)
    interpreter = Interpreter(rules.program, person, evaluation_context(NOW, rules.schema))
    both = interpreter.value(rules.program.segments["a"].body)
    either = interpreter.value(rules.program.segments["o"].body)
    negated = interpreter.value(rules.program.segments["n"].body)
    assert both is (False if False in (p, q) else None if None in (p, q) else True)
    assert either is (True if True in (p, q) else None if None in (p, q) else False)
    assert negated is (None if p is None else not p)
    # a segment is two-valued: in (true) or out (false), never unknown
    assert interpreter.member("a") is (both is True)


def test_segment_references_and_set_operators_are_two_valued():
    rules = crmrules.load_text("segment u: vip\nsegment r: u or not u\nsegment d = u - u\n", schema=SCHEMA)
    person = prepare_customer({"id": "c1", "vip": None}, rules.schema)
    evaluation = evaluate(rules.program, person, rules.program.segments["r"].body,
                          evaluation_context(NOW, rules.schema))
    assert evaluation.value(rules.program.segments["r"].body) is True  # `not u` is true: u is false, not unknown


# ------------------------------------------------------------ computed once per evaluation
RULES_ONCE = """
attribute label = concat(country, "!")
attribute spent = sum(orders.total)
segment s: (label == "PT!" or label == "x!" or length(label) > 3) and (spent > 10 or spent < 0 or spent == 5)
"""


def _counting(monkeypatch, table: dict, key: str) -> list:
    calls = []
    original = table[key]

    def counted(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setitem(table, key, counted)
    return calls


def _people():
    return [prepare_customer(p, SCHEMA) for p in [
        {"id": "a", "country": "PT", "orders": [{"id": "o1", "total": 3}]},
        {"id": "b", "country": "ES", "orders": [{"id": "o2", "total": 50}]},
        {"id": "c", "country": None, "orders": []}]]


def test_generated_code_computes_each_attribute_and_aggregate_once(monkeypatch):
    concat = _counting(monkeypatch, memory._RUNTIME, "_fn_concat")
    sums = _counting(monkeypatch, memory._RUNTIME, "_sum")
    rules = crmrules.load_text(RULES_ONCE, schema=SCHEMA)
    matches = memory.memory(rules.program, "s").matches
    for person in _people():
        concat.clear(), sums.clear()
        matches(person, NOW)
        assert len(concat) == 1
        assert len(sums) <= 1  # not at all when the label settles it


def test_interpreter_computes_each_attribute_once(monkeypatch):
    calls = []
    original = builtins.BUILTINS["concat"]
    monkeypatch.setitem(builtins.BUILTINS, "concat", builtins.Builtin(lambda *a: calls.append(a) or original.fn(*a)))
    rules = crmrules.load_text(RULES_ONCE, schema=SCHEMA)
    ctx = evaluation_context(NOW, rules.schema)
    for person in _people():
        calls.clear()
        Interpreter(rules.program, person, ctx).member("s")
        assert len(calls) == 1


def test_rfm_class_ranks_each_ntile_once(monkeypatch):
    tiles = _counting(monkeypatch, memory._RUNTIME, "_tile")
    rules = crmrules.load_text("segment keep: rfm_important_keep\n")
    people = [prepare_customer({"id": f"c{i}", "orders": [
        {"id": f"o{i}", "status": "paid", "total": 10 * i, "created_at": f"2026-0{1 + i % 5}-01T00:00:00"}]},
        rules.schema) for i in range(8)]
    program = rules.program
    ctx = evaluation_context(NOW, rules.schema)
    ctx = ctx.with_population(MemoryBackend().population(program, people, ctx))
    matches = memory.memory(program, "keep").matches
    distinct = {n for d in program.attributes.values() for n in ast.walk(d.body) if isinstance(n, ast.Ntile)}
    for person in people:
        tiles.clear()
        matches(person, ctx)
        assert len(tiles) <= len(distinct) == 3
    assert MemoryBackend().members(program, people, ["keep"], ctx) == \
        InterpreterBackend().members(program, people, ["keep"], ctx)


# ------------------------------------------------------------------------ the registry
def test_every_function_has_one_python_implementation():
    assert builtins.BUILTINS.keys() == FUNCTIONS.keys()


def test_the_registry_check_names_a_missing_or_extra_function(monkeypatch):
    monkeypatch.delitem(builtins.BUILTINS, "concat")
    with pytest.raises(InternalError, match="missing \\['concat'\\]"):
        builtins._check()
    monkeypatch.setitem(builtins.BUILTINS, "concat", builtins.Builtin(lambda *a: None))
    monkeypatch.setitem(builtins.BUILTINS, "shout", builtins.Builtin(str.upper))
    with pytest.raises(InternalError, match="extra \\['shout'\\]"):
        builtins._check()


def test_matches_takes_a_date_or_a_context():
    rules = crmrules.load_text("segment s: registered_at within 30d\n", schema=SCHEMA)
    segment = rules.segment("s")
    person = {"id": "c1", "registered_at": date(2026, 6, 15)}
    assert segment.matches(person, NOW) and segment.matches(person, evaluation_context(NOW, rules.schema))
    assert not segment.matches(person, date(2026, 8, 1))
