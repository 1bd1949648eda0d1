"""Check `test` blocks: the segment exists and the given data names real tables and columns."""

from __future__ import annotations

from crmrules import ast
from crmrules.compiler.resolve import Names
from crmrules.errors import CrmRulesError, RuleTypeError, UnknownNameError, did_you_mean
from crmrules.schema import Schema

GIVEN_TABLES = {"customer": "customers", "orders": "orders", "events": "events"}


def check_test(decl: ast.TestDecl, names: Names, schema: Schema, errors: list[CrmRulesError]) -> bool:
    """Whether the test is well formed; what is wrong is appended to `errors`."""
    before = len(errors)
    if decl.segment not in names.segments:
        errors.append(UnknownNameError(f"unknown segment `{decl.segment}`", decl.span,
                                       did_you_mean(decl.segment, names.segments)))
    for case in decl.cases:
        for given in case.given:
            table = GIVEN_TABLES.get(given.table)
            if table is None:
                errors.append(UnknownNameError(f"cannot give `{given.table}` in a test", given.span,
                                               did_you_mean(given.table, GIVEN_TABLES)
                                               or "give customer {...}, orders [...] or events [...]",
                                               code="E0203"))
                continue
            if table == "customers":
                _check_record(given.value, table, schema, errors)
            elif not isinstance(given.value, ast.ListLiteral):
                errors.append(RuleTypeError(f"`{given.table}` takes a list of records", given.value.span))
            else:
                for item in given.value.items:
                    _check_record(item, table, schema, errors)
    return len(errors) == before


def _check_record(value: ast.Expr, table: str, schema: Schema, errors: list[CrmRulesError]) -> None:
    if not isinstance(value, ast.Record):
        errors.append(RuleTypeError(f"expected a record `{{...}}` of {table}", value.span))
        return
    for item in value.fields:
        if table == "orders" and item.name == "items":
            if not isinstance(item.value, ast.ListLiteral):
                errors.append(RuleTypeError("`items` takes a list of records", item.value.span))
                continue
            for sub in item.value.items:
                _check_record(sub, "order_items", schema, errors)
        elif schema.column(table, item.name) is None:
            errors.append(UnknownNameError(f"unknown column `{item.name}` of {table}", item.span,
                                           did_you_mean(item.name, schema.columns(table)), code="E0203"))
