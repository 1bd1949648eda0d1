"""The built-in functions in SQL: one sqlglot builder per function of `compiler.functions.FUNCTIONS`.

A builder receives the call node, its arguments already compiled and the
dialect; adding a function means its declaration there and one builder here
(checked at import: a missing or extra builder is an InternalError).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.backends.sql.dialect import SqlDialect, case_when, paren
from crmrules.compiler.functions import FUNCTIONS
from crmrules.errors import InternalError


@dataclass(frozen=True, slots=True)
class CallArgs:
    """What a builder reads: the call, its compiled arguments, their types, the dialect and `now`."""

    node: ast.Call
    args: list[exp.Expression]
    types: list[t.Type]
    dialect: SqlDialect
    now: datetime


def _decimal(dialect: SqlDialect, value: exp.Expression, value_type: t.Type) -> exp.Expression:
    # an int where the result is a decimal is converted (SQLite scales it)
    return dialect.int_as_decimal(value) if value_type == t.INT else value


def _days_since(c: CallArgs) -> exp.Expression:
    return c.dialect.days_between(c.dialect.to_date(c.args[0]), c.dialect.date(c.now.date()))


def _date(c: CallArgs) -> exp.Expression:
    if isinstance(c.node.args[0], ast.Now):
        return c.dialect.date(c.now.date())
    return c.dialect.to_date(c.args[0])


def _part(c: CallArgs) -> exp.Expression:
    return c.dialect.date_part(c.node.name, c.args[0])


def _length(c: CallArgs) -> exp.Expression:
    return c.dialect.list_length(c.args[0]) if c.types[0].is_list else c.dialect.text_length(c.args[0])


def _coalesce(c: CallArgs) -> exp.Expression:
    args = c.args
    if c.node.type == t.DECIMAL:
        args = [_decimal(c.dialect, a, ty) for a, ty in zip(args, c.types)]
    return exp.Coalesce(this=args[0], expressions=args[1:])


def _if(c: CallArgs) -> exp.Expression:
    then, otherwise = c.args[1], c.args[2]
    if c.node.type == t.DECIMAL:
        then, otherwise = _decimal(c.dialect, then, c.types[1]), _decimal(c.dialect, otherwise, c.types[2])
    return case_when(c.args[0], then, otherwise=otherwise)


def _concat(c: CallArgs) -> exp.Expression:
    joined = c.args[0]
    for arg in c.args[1:]:
        joined = exp.DPipe(this=joined, expression=arg)
    return paren(joined)


BUILDERS: dict[str, Callable[[CallArgs], exp.Expression]] = {
    "days_since": _days_since,
    "days_between": lambda c: c.dialect.days_between(c.dialect.to_date(c.args[0]), c.dialect.to_date(c.args[1])),
    "date": _date,
    "year": _part,
    "month": _part,
    "day": _part,
    "lower": lambda c: c.dialect.change_case(c.args[0], upper=False),
    "upper": lambda c: c.dialect.change_case(c.args[0], upper=True),
    "trim": lambda c: exp.Trim(this=c.args[0]),
    "length": _length,
    "abs": lambda c: exp.Abs(this=c.args[0]),
    "round": lambda c: c.dialect.round(c.args[0], c.args[1], c.types[0]),
    "coalesce": _coalesce,
    "if": _if,
    "text": lambda c: c.dialect.text(c.args[0]),
    "concat": _concat,
}


def _check() -> None:
    missing, extra = FUNCTIONS.keys() - BUILDERS.keys(), BUILDERS.keys() - FUNCTIONS.keys()
    if missing or extra:
        raise InternalError(f"SQL builders out of step with the declared functions: missing {sorted(missing)}, "
                            f"extra {sorted(extra)}")


_check()
