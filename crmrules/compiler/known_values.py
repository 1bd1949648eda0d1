"""Literals compared with a column or attribute whose values are known: a typo is caught at check time.

The schema may list a string column's values (`orders.status`: closed, exactly
paid, pending, cancelled, refunded; `events.type`: open, the common event
types, extendable in a mapping file). A string attribute whose definition can
only give literals (`lifecycle`, `rfm_class`, `promo_sensitivity`) has a closed
set of values read off that definition. A literal compared with one of them
(`==`, `!=`, `in`, also through a function's argument, which resolution has
put in place) that is not a known value is an error for a closed set and a
warning for an open one, with the closest known value as a hint.
"""

from __future__ import annotations

from collections.abc import Mapping

from crmrules import ast
from crmrules.errors import CrmRulesError, RuleTypeError, RuleWarning, did_you_mean
from crmrules.schema import Schema


def known_values(body: ast.Expr, schema: Schema, attribute_values: Mapping[str, frozenset[str]],
                 learned: Mapping[tuple[str, str], frozenset[str]] | None = None) -> list[CrmRulesError]:
    """Errors (closed sets) and warnings (open sets) for literals that are not known values;
    `learned` adds the values seen in the data to open columns (`check --data`)."""
    found: list[CrmRulesError] = []
    for node in ast.walk(body):
        match node:
            case ast.Compare(op=ast.CompareOp.EQ | ast.CompareOp.NE, left=left, right=right):
                for subject, other in ((left, right), (right, left)):
                    if _is_text(other):
                        _check(subject, [other], schema, attribute_values, learned or {}, found)
            case ast.In(needle=subject, haystack=ast.ListLiteral(items=items)):
                _check(subject, [i for i in items if _is_text(i)], schema, attribute_values, learned or {}, found)
    return found


def literal_strings(body: ast.Expr, attribute_values: Mapping[str, frozenset[str]]) -> frozenset[str] | None:
    """The values a string expression can take when its definition gives only literals (or null), else None."""
    match body:
        case ast.Literal(value=str() as value):
            return frozenset({value})
        case ast.Literal(value=None):
            return frozenset()
        case ast.Call(name="if", args=(_, then, otherwise)):
            branches = [literal_strings(then, attribute_values), literal_strings(otherwise, attribute_values)]
        case ast.Call(name="coalesce", args=args):
            branches = [literal_strings(a, attribute_values) for a in args]
        case ast.AttributeRef(name=name):
            return attribute_values.get(name)
        case _:
            return None
    if any(b is None for b in branches):
        return None
    return frozenset().union(*branches)


def _is_text(node: ast.Expr) -> bool:
    return isinstance(node, ast.Literal) and isinstance(node.value, str)


def _check(subject: ast.Expr, literals: list[ast.Literal], schema: Schema,
           attribute_values: Mapping[str, frozenset[str]], learned, found: list[CrmRulesError]) -> None:
    match subject:
        case ast.Column(table=table, name=name):
            column = schema.column(table, name)
            if column is None or not column.values:
                return
            values, closed, what = column.values, column.closed, f"{table}.{name}"
            if not closed:
                values = values | learned.get((table, name), frozenset())
        case ast.AttributeRef(name=name) if attribute_values.get(name):
            values, closed, what = attribute_values[name], True, f"`{name}`"
        case _:
            return
    for literal in literals:
        if literal.value in values:
            continue
        hint = did_you_mean(literal.value, values) or f"known values: {', '.join(sorted(values))}"
        if closed:
            found.append(RuleTypeError(f'"{literal.value}" is not a value of {what}', literal.span, hint,
                                       code="E0304"))
        else:
            found.append(RuleWarning(f'"{literal.value}" is not a known value of {what}', literal.span,
                                     hint + " (add it to the column's `values` in a schema mapping if it is right)",
                                     code="W0301"))
