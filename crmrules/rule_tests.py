"""The `test` blocks of rule files: each `given ... expect` case run with the in-memory engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from crmrules import ast
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.memory import memory
from crmrules.compiler.pipeline import Program
from crmrules.context import evaluation_context
from crmrules.errors import CrmRulesError


@dataclass(frozen=True)
class TestResult:
    """The outcome of one `given ... expect` case of a rule-file test."""

    __test__ = False

    segment: str
    case: int
    expected_in: bool
    actual_in: bool
    span: object
    # what the case was evaluated on, so a failure can be explained
    customer: dict | None = field(default=None, compare=False, repr=False)
    now: object = field(default=None, compare=False, repr=False)
    population: object = field(default=None, compare=False, repr=False)

    @property
    def passed(self) -> bool:
        """Whether the segment said what the test expected."""
        return self.expected_in == self.actual_in


def run_tests(program: Program, today: date | None = None,
              ranked: Callable[[date | datetime], object] | None = None) -> list[TestResult]:
    """Run every test case of a checked program; a case without `as of` runs as of `today`
    (default: today in the store's time zone). `ranked(as_of)` gives the population that rules
    ranking customers (`ntile`) rank a test customer against; without it such a rule is an error."""
    results = []
    compiled = {}
    default = None
    for decl in program.tests:
        matches = compiled.get(decl.segment)
        if matches is None:
            matches = compiled[decl.segment] = memory(program, decl.segment).matches
        for index, case in enumerate(decl.cases, start=1):
            if case.as_of is None and default is None:
                default = evaluation_context(today, program.schema)
            ctx = default if case.as_of is None else evaluation_context(case.as_of, program.schema)
            customer = prepare_customer(_test_customer(case), program.schema)
            population = ranked(ctx.as_of) if ranked is not None else None
            results.append(TestResult(decl.segment, index, case.expect_in,
                                      matches(customer, ctx.instant, population=population), case.span,
                                      customer, ctx.as_of, population))
    return results


def _test_customer(case: ast.TestCase) -> dict:
    customer: dict = {}
    for given in case.given:
        value = _plain(given.value)
        if given.table == "customer":
            customer.update(value)
        else:
            customer[given.table] = value
    return customer


def _plain(node: ast.Expr):
    match node:
        case ast.Record(fields=fields):
            return {f.name: _plain(f.value) for f in fields}
        case ast.ListLiteral(items=items):
            return [_plain(i) for i in items]
        case ast.Literal(value=value):
            return value
    raise CrmRulesError("test data must be written as literals", node.span, code="E0103")
