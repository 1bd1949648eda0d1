"""Fixture-driven parse tests: each `fixtures/parse/NAME.crm` against the AST in `NAME.ast`."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmrules.grammar import parse, parse_expression

FIXTURES = Path(__file__).parent / "fixtures" / "parse"
CASES = sorted(FIXTURES.glob("*.crm"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_parse_fixture(path: Path, update_goldens: bool):
    tree = parse(path.read_text(), path.name)
    rendered = "\n".join(repr(decl) for decl in tree.declarations) + "\n"
    golden = path.with_suffix(".ast")
    if update_goldens or not golden.exists():
        golden.write_text(rendered)
    assert rendered == golden.read_text()


def test_spans_point_into_the_file():
    text = "# comment\nsegment a:\n    points > 100\n"
    decl = parse(text, "f.crm").declarations[0]
    assert decl.body.span.line_col() == (3, 5)
    assert text[decl.body.span.start:decl.body.span.end] == "points > 100"
    assert decl.body.right.span.line_col() == (3, 14)


def test_expression_parser_for_the_repl():
    expr = parse_expression('total_spent > 100 and "coat" in tags')
    assert type(expr).__name__ == "And"
    assert expr.operands[0].span.start == 0
