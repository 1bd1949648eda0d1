"""Golden error messages: every error of a file, its position, code, message, caret and hint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import crmrules

FIXTURES = Path(__file__).parent / "fixtures" / "errors"
CASES = sorted(FIXTURES.glob("*.crm"))
ANNOTATION = re.compile(r"#\s*expect error:\s*(\d+):(\d+)\s+(E\d{4})")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_errors_match_annotations_and_golden(path: Path, update_goldens: bool, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load(path.name)
    errors = getattr(caught.value, "errors", [caught.value])
    found = sorted((*e.span.line_col(), e.code) for e in errors)
    expected = sorted((int(m[1]), int(m[2]), m[3]) for m in ANNOTATION.finditer(path.read_text()))
    assert found == expected
    rendered = caught.value.render() + "\n"
    golden = path.with_suffix(".expected")
    if update_goldens or not golden.exists():
        golden.write_text(rendered)
    assert rendered == golden.read_text()


def test_every_error_has_a_stable_code_and_renders_without_a_span():
    error = crmrules.UnknownNameError("unknown segment `x`", None, "did you mean `y`?")
    assert error.render() == "error[E0201]: unknown segment `x`\n  = help: did you mean `y`?"
    assert not issubclass(crmrules.RuleSyntaxError, SyntaxError)
    assert not issubclass(crmrules.UnknownNameError, LookupError)


def test_nesting_is_capped_with_a_clear_error():
    # parentheses alone add no depth; nested operators do
    assert crmrules.load_text("segment s: " + "(" * 300 + "true" + ")" * 300).segments == [("s", None)]
    with pytest.raises(crmrules.RuleSyntaxError) as caught:
        crmrules.load_text("segment s: points > " + "(1 + " * 300 + "1" + ")" * 300)
    assert caught.value.code == "E0104"
    with pytest.raises(crmrules.RuleSyntaxError) as caught:
        crmrules.load_text("segment s: " + "not " * 1000 + "true")
    assert caught.value.code == "E0104"


def test_a_rule_file_that_is_not_utf8_is_named_with_the_byte_offset(tmp_path):
    path = tmp_path / "latin1.crm"
    path.write_bytes('segment s: first_name == "José"\n'.encode("latin-1"))
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load(path)
    assert caught.value.code == "E0001" and "byte 29" in caught.value.message and str(path) in caught.value.message
