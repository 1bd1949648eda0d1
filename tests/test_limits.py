"""Untrusted rule text cannot make checking or running hang: expansion is bounded, with a clear error."""

from __future__ import annotations

import subprocess
import sys

import pytest

import crmrules
from crmrules.compiler.limits import MAX_EXPANDED_DEPTH, MAX_EXPANDED_NODES


def doubling_functions(n: int) -> str:
    lines = ["function f0(x) = x + 1"] + [f"function f{i}(x) = f{i - 1}(x) + f{i - 1}(x)" for i in range(1, n)]
    return "\n".join(lines) + f"\nsegment s: f{n - 1}(points) > 0\n"


def doubling_attributes(n: int) -> str:
    lines = ["attribute a0 = points"] + [f"attribute a{i} = a{i - 1} + a{i - 1}" for i in range(1, n)]
    return "\n".join(lines) + f"\nsegment s: a{n - 1} > 0\n"


def check_in_a_subprocess(text: str) -> subprocess.CompletedProcess:
    # a regression would hang for minutes: a subprocess with a timeout turns that into a failure
    code = "import sys, crmrules\ntry:\n    crmrules.load_text(sys.stdin.read())\nexcept crmrules.CrmRulesError as e:\n" \
           "    print(e.code)\n"
    return subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True, timeout=60,
                          check=True)


@pytest.mark.parametrize("text", [doubling_functions(40), doubling_attributes(100)])
def test_exponential_expansion_is_refused_quickly(text):
    assert check_in_a_subprocess(text).stdout.split() == ["E0104"]


def test_the_limits_are_named_in_the_error():
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text(doubling_attributes(20))
    assert f"{MAX_EXPANDED_NODES:,}" in caught.value.message and caught.value.span.line_col() == (14, 1)  # a13: the first too large


def test_a_long_chain_is_refused_at_check_time_not_at_run_time():
    chain = "segment s0: points > 0\n" + "".join(f"segment s{i}: s{i - 1} and points > {i}\n" for i in range(1, 80))
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text(chain)
    assert caught.value.code == "E0104" and str(MAX_EXPANDED_DEPTH) in caught.value.message


def test_rules_within_the_limits_are_untouched():
    rules = crmrules.load_text(doubling_attributes(8))
    assert rules.segment("s").matches({"points": 1}, "2026-01-01")


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|aa)+$", "(a*)*b", r"(\\w+)\\1", "(?=coat)c", "(?<!x)y",
                                     r"\\bcoat\\b", r"coat\\Z", "a{300}"])
def test_patterns_that_backtrack_exponentially_or_differ_across_engines_are_refused(pattern):
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text(f'segment s: email matches "{pattern}"')
    assert caught.value.code == "E0303"


def test_the_safe_subset_still_matches():
    rules = crmrules.load_text('segment s: email matches "(?i)^[a-z0-9._]+@(gmail|example)[.]com$"')
    assert rules.segment("s").matches({"email": "Ana.B@Example.com"}, "2026-01-01")
    # a hostile subject string against an accepted pattern returns at once in every engine
    assert not rules.segment("s").matches({"email": "a" * 100_000 + "!"}, "2026-01-01")


@pytest.mark.parametrize("condition", ["seen_at within 2100y", "birthday + 120000mo > today", "points > " + "9" * 5000,
                                       "points > 99999999999999999999", "score > 1." + "1" * 40])
def test_literals_no_engine_can_hold_are_refused(condition):
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text(f"segment s: {condition}", schema=EXTRA)
    assert caught.value.code == "E0103"


def test_decimal_operations_give_exact_answers_not_exceptions():
    from decimal import Decimal

    from crmrules import values

    big = Decimal("12345678901234567890.5")
    assert values.modulo(big, Decimal("0.0000000000001")) == 0
    assert values.round_half_up(big, 100) == big
    assert values.divide(Decimal("1e30"), 3) == Decimal("333333333333333333333333333333.333333")


EXTRA = {"tables": {"customers": {"columns": {"seen_at": {"type": "timestamp"}, "score": {"type": "decimal"}}}}}
