"""Optimiser passes: fixtures of input => expected, and properties: idempotent and meaning-preserving."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import with_unique_ids
from helpers import EXTRA_COLUMNS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rulegen import NOW, conditions, customers

import crmrules
from crmrules import ast
from crmrules import types
from crmrules.api import resolve_schema
from crmrules.compiler.fold_constants import fold_constants
from crmrules.compiler.lower import lower
from crmrules.compiler.pipeline import check, optimise
from crmrules.compiler.simplify import simplify
from crmrules.grammar import parse
from crmrules.context import instant_of

FIXTURES = Path(__file__).parent / "fixtures" / "passes"
SCHEMA = resolve_schema(EXTRA_COLUMNS)
PASSES = {"fold_constants": fold_constants, "simplify": simplify, "lower": lambda expr: lower(expr, SCHEMA)}


def checked(condition: str) -> ast.Expr:
    """The resolved, typed, unoptimised body of `segment s: condition`."""
    # `null_decimal` stands for a typed null in expected outputs
    rules = parse(f"attribute null_decimal = 1.0 / 0\nsegment s: {condition}\n")
    body = check(rules, SCHEMA, optimize=False, lowered=False).segments["s"].body
    return ast.transform(body, lambda n: ast.Literal(value=None) if n == ast.AttributeRef(name="null_decimal")
                         else n)


def fixture_cases():
    for name in PASSES:
        for number, line in enumerate((FIXTURES / f"{name}.txt").read_text().splitlines(), start=1):
            if line.strip() and not line.startswith("#"):
                source, expected = (part.strip() for part in line.split("=>"))
                yield pytest.param(name, source, expected, id=f"{name}:{number}")


@pytest.mark.parametrize(("name", "source", "expected"), list(fixture_cases()))
def test_pass_fixture(name, source, expected):
    result = PASSES[name](checked(source))
    assert result == checked(expected)
    assert PASSES[name](result) == result


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions())
def test_optimise_is_idempotent(condition):
    once = optimise(checked(condition))
    assert optimise(once) == once


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions(), st.lists(customers(), min_size=1, max_size=4).map(with_unique_ids))
def test_optimise_preserves_membership(condition, people):
    text = f"segment s: {condition}\n"
    raw_rules = crmrules.RuleSet(parse(text), check(parse(text), SCHEMA, optimize=False))
    optimised_rules = crmrules.RuleSet(parse(text), check(parse(text), SCHEMA))
    # rules ranking customers (`ntile`) are evaluated against the ranking of these people
    raw_ranked, optimised_ranked = (rules.population(people, as_of=NOW) for rules in (raw_rules, optimised_rules))
    raw, optimised = raw_rules.segment("s"), optimised_rules.segment("s")
    for person in people:
        assert raw.matches(person, NOW, population=raw_ranked) == \
            optimised.matches(person, NOW, population=optimised_ranked)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions(), st.lists(customers(), min_size=1, max_size=4).map(with_unique_ids))
def test_p_not_p_and_p_is_null_partition_the_customers(condition, people):
    rules = crmrules.load_text(f"segment p: {condition}\nsegment not_p: not ({condition})\n"
                               f"segment unknown_p: ({condition}) is null\n", schema=SCHEMA)
    segments = [rules.segment(name) for name in ("p", "not_p", "unknown_p")]
    ranked = rules.population(people, as_of=NOW)
    for person in people:
        exists = person["registered_at"] is None or person["registered_at"] <= instant_of(NOW, "UTC")
        assert sum(s.matches(person, NOW, population=ranked) for s in segments) == (1 if exists else 0)


def test_lower_writes_a_window_with_explicit_edges():
    lowered = lower(checked("seen_at within 30d"), SCHEMA)
    seen_at = ast.Column(table="customers", name="seen_at")
    duration = ast.Duration(amount=30, unit=ast.DurationUnit.DAY)
    assert lowered == ast.And(operands=(
        ast.Compare(op=ast.CompareOp.GT, left=seen_at, right=ast.WindowStart(duration=duration)),
        ast.Compare(op=ast.CompareOp.LE, left=seen_at, right=ast.Now())))
    assert lowered.operands[0].right.type == lowered.operands[1].right.type == types.TIMESTAMP


def test_lowered_trees_hold_no_sugar():
    rules = crmrules.load_text("segment s: age between 1 and 9 and seen_at within 7d and avg(orders.total) > 1\n",
                               schema=SCHEMA)
    kinds = {type(node) for node in ast.walk(rules.program.segments["s"].body)}
    assert not kinds & {ast.Between, ast.Within}
    assert all(node.func != ast.AggFunc.AVG for node in ast.walk(rules.program.segments["s"].body)
               if isinstance(node, ast.Aggregate))
    assert all(node.type is not None for node in ast.walk(rules.program.segments["s"].body)
               if isinstance(node, ast.Expr))
