"""The formatter: parse(format(ast)) == ast, canonical fixtures, comments kept, no crash on any text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import expressions, rule_files

from crmrules.errors import CrmRulesError
from crmrules.formatter import format_expr, format_rules, format_source
from crmrules.grammar import parse, parse_expression

FIXTURES = Path(__file__).parent / "fixtures" / "format"
CASES = sorted(p for p in FIXTURES.glob("*.crm") if not p.name.endswith(".expected.crm"))
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(expressions)
def test_expression_round_trip(expr):
    assert parse_expression(format_expr(expr)) == expr


@SETTINGS
@given(rule_files)
def test_rule_file_round_trip(tree):
    text = format_rules(tree)
    assert parse(text) == tree
    assert format_source(text) == text  # canonical text is a fixed point


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_format_fixture(path: Path, update_goldens: bool):
    formatted = format_source(path.read_text(), path.name)
    golden = path.with_name(path.stem + ".expected.crm")
    if update_goldens or not golden.exists():
        golden.write_text(formatted)
    assert formatted == golden.read_text()
    assert format_source(formatted) == formatted


TOKENS = st.sampled_from(["segment", "attribute", "campaign", "test", "a", "b", ":", "=", "==", "(", ")", "[",
                          "]", "{", "}", ",", ".", "and", "or", "not", "in", "is", "null", "between", "within",
                          "count", "orders", "where", "1", "2.5", '"s"', "'t", "30d", "2026-01-31", "09:00", "-",
                          "+", "*", "/", "%", "|", "&", "<", ">=", "!=", "#", "\n", " ", "given", "expect",
                          "trigger", "action", "on", "daily", "at", "%", "true", "\\", "é", "\t"])


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(TOKENS, max_size=25).map(" ".join)))
def test_random_text_raises_only_crmrules_errors(text):
    for parse_one in (parse, parse_expression):
        try:
            parse_one(text)
        except CrmRulesError as error:
            assert error.render()
