"""Questions about the shape of a query, answered from the rules alone (no data, no engine).

- Can a customer with no rows at all (no customer row, no orders, no events)
  satisfy a condition? Such a customer's columns are null and its aggregates
  have their empty values (`defaults.empty_value`); `now` and window edges are
  constants. Substituting those and folding gives `false` or `null` when the
  answer is no; anything that does not fold (a ranked `ntile`, a comparison
  folding does not know) counts as "may", which is always safe: the query
  then gathers every id.
- Which table must every member have a counted row in?
- Can a ranked population take a customer with no rows?
"""

from __future__ import annotations

import dataclasses
from collections.abc import MutableMapping

from crmrules import ast
from crmrules.compiler.defaults import empty_value
from crmrules.compiler.fold_constants import fold_constants
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext


def may_hold_without_rows(condition: ast.Expr, program: Program, ctx: EvaluationContext,
                          kept: MutableMapping[str, ast.Expr] | None = None) -> bool:
    """Whether `condition` might be true for a customer who has no rows anywhere. `kept` holds what each
    attribute is without rows, for this program and context, from earlier calls (the SQL compile memo)."""
    return not _is_false_or_null(_without_rows(condition, program, ctx, kept))


def may_rank_without_rows(node: ast.Ntile, program: Program, ctx: EvaluationContext) -> bool:
    """Whether an `ntile`'s population might take (and rank) a customer who has no rows anywhere."""
    return (may_hold_without_rows(node.among, program, ctx)
            and not _is_null(_without_rows(node.value, program, ctx)))


def required_table(body: ast.Expr, attributes: dict | None = None) -> str | None:
    """A table every customer meeting `body` must have a counted row in, read off the condition's top-level
    `and` (looking into the attributes it names when `attributes` is given); None when there is none."""

    def plain(node: ast.Expr) -> ast.Expr:
        if attributes is not None and isinstance(node, ast.AttributeRef):
            return plain(attributes[node.name].body)
        return node

    for part in plain(body).operands if isinstance(plain(body), ast.And) else (plain(body),):
        part = plain(part)
        if isinstance(part, ast.Compare):
            part = dataclasses.replace(part, left=plain(part.left))
        match part:
            case ast.Aggregate(func=ast.AggFunc.ANY, table=table_name):
                return table_name
            case ast.Compare(op=op, left=ast.Aggregate(func=ast.AggFunc.COUNT, table=table_name),
                             right=ast.Literal(value=int() as n)) if (
                    (op == ast.CompareOp.GT and n >= 0) or (op in (ast.CompareOp.GE, ast.CompareOp.EQ) and n >= 1)):
                return table_name
    return None


def _is_null(node: ast.Expr) -> bool:
    return isinstance(node, ast.Literal) and node.value is None


def _is_false_or_null(node: ast.Expr) -> bool:
    return isinstance(node, ast.Literal) and (node.value is None or node.value is False)


def _literal(node: ast.Expr, value) -> ast.Literal:
    return ast.Literal(value=value, span=node.span, type=node.type)


def _without_rows(expr: ast.Expr, program: Program, ctx: EvaluationContext,
                  kept: MutableMapping[str, ast.Expr] | None = None) -> ast.Expr:
    """`expr` for a customer without rows, folded as far as it goes."""

    def step(node: ast.Node) -> ast.Node:
        if kept is not None and isinstance(node, ast.AttributeRef):
            found = kept.get(node.name)
            if found is None:
                found = kept[node.name] = _without_rows(program.attributes[node.name].body, program, ctx, kept)
            return found
        # an aggregate over no rows is its empty value whatever it reads: its children are not looked at
        inner = node if isinstance(node, ast.Aggregate) else ast.map_children(node, step)
        return fold_constants(_step(inner, program, ctx), deep=False)  # its children are folded already

    return step(expr)


def _step(node: ast.Node, program: Program, ctx: EvaluationContext) -> ast.Node:  # noqa: C901 - one case per node kind
    """One node, its children already substituted and folded."""
    match node:
        case ast.Column(table="customers"):
            return _literal(node, None)
        case ast.Aggregate(func=func):
            if func == ast.AggFunc.DISTINCT:
                return ast.ListLiteral(items=(), span=node.span, type=node.type)
            return _literal(node, empty_value(func, node.type))
        case ast.Now():
            return _literal(node, ctx.instant)
        case ast.WindowStart(duration=duration):
            return _literal(node, ctx.window_start(duration))
        case ast.AttributeRef(name=name):
            return _without_rows(program.attributes[name].body, program, ctx)
        case ast.SegmentRef(name=name):
            body = _without_rows(program.segments[name].body, program, ctx)
            # a segment is a membership: unknown is not a member
            return _literal(node, False) if _is_null(body) else body
        case ast.SetOp(op=op, left=ast.Literal(value=a), right=ast.Literal(value=b)):
            a, b = a is True, b is True
            held = {ast.SetOpKind.UNION: a or b, ast.SetOpKind.INTERSECT: a and b}.get(op, a and not b)
            return _literal(node, held)
        case ast.Compare(left=left, right=right) | ast.Arith(left=left, right=right) \
                | ast.TextOp(left=left, right=right) if _is_null(left) or _is_null(right):
            return _literal(node, None)
        case ast.Negate(operand=operand) | ast.Within(value=operand) if _is_null(operand):
            return _literal(node, None)
        case ast.Between(value=value, low=low, high=high) if _is_null(value) or (_is_null(low) and _is_null(high)):
            return _literal(node, None)
        case ast.In(needle=needle, haystack=ast.ListLiteral(items=())):
            # `x in []` is false, and unknown when x is null
            return _literal(node, None if _is_null(needle) else node.negated)
        case ast.In(needle=needle, haystack=haystack) if _is_null(needle) or _is_null(haystack):
            return _literal(node, None)
        case ast.And(operands=ops) | ast.Or(operands=ops) if all(isinstance(o, ast.Literal) for o in ops):
            # what `fold_constants` leaves: only unknowns (and neutral values) remain, so it is unknown
            return _literal(node, None)
        case ast.Call():
            return _call(node)
    return node


def _call(node: ast.Call) -> ast.Expr:
    match node.name:
        case "coalesce":
            rest = [a for a in node.args if not _is_null(a)]
            if not rest:
                return _literal(node, None)
            return _literal(node, rest[0].value) if isinstance(rest[0], ast.Literal) else node
        case "if":
            condition = node.args[0]
            if isinstance(condition, ast.Literal):
                return node.args[1] if condition.value is True else node.args[2]
            return node
    # every other built-in is null when an argument is
    return _literal(node, None) if any(_is_null(a) for a in node.args) else node
