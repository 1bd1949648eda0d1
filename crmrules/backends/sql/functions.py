"""The built-in functions in SQL: one sqlglot builder per function of `compiler.functions.FUNCTIONS`.

A builder receives the call node, its arguments already compiled and the
dialect; adding a function means its declaration there and one builder here
(checked at import: a missing or extra builder is an InternalError).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.backends.builtins import next_anniversary
from crmrules.backends.sql.dialect import SqlDialect, and_, case_when, number, paren
from crmrules.compiler.functions import FUNCTIONS, month_day
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


def _bucket(c: CallArgs) -> exp.Expression:
    # the type checker added the customer id: `hash32(salt || ':' || id) % n`, hashed as every engine does
    salt, buckets = c.node.args[0].value, c.node.args[1].value
    customer_id = c.args[2] if c.types[2] == t.STRING else c.dialect.text(c.args[2])
    key = paren(exp.DPipe(this=exp.Literal.string(f"{salt}:"), expression=customer_id))
    return exp.Mod(this=c.dialect.hash32(key), expression=number(buckets))


def _yearly_base(c: CallArgs) -> tuple[date | None, exp.Expression | None]:
    """A `"MM-DD"` literal as its day (`month_day`), or the compiled date the month and day come from."""
    if isinstance(c.node.args[0], ast.Literal) and isinstance(c.node.args[0].value, str):
        return month_day(c.node.args[0].value), None
    return None, c.dialect.to_date(c.args[0])


def _anniversary_of(c: CallArgs, value: exp.Expression) -> exp.Expression:
    """The next anniversary of a date, today or later: this year's day if it has not passed, else next year's;
    29 February is 28 February in a common year (the year is known here, so the test is too)."""
    today = c.now.date()

    def day_in(year: int) -> exp.Expression:
        month, day = c.dialect.date_part("month", value.copy()), c.dialect.date_part("day", value.copy())
        if not calendar.isleap(year):
            leap_day = and_(exp.EQ(this=month.copy(), expression=number(2)),
                            exp.EQ(this=day.copy(), expression=number(29)))
            day = case_when(leap_day, number(28), otherwise=day)
        return c.dialect.make_date(number(year), month, day)

    this_year = day_in(today.year)
    passed = exp.LT(this=this_year.copy(), expression=c.dialect.date(today))
    return case_when(passed, day_in(today.year + 1), otherwise=this_year)


def _anniversary(c: CallArgs) -> exp.Expression:
    known, value = _yearly_base(c)
    if value is None:
        return c.dialect.date(next_anniversary(known, c.now.date()))
    return _anniversary_of(c, value)


def _days_until(c: CallArgs) -> exp.Expression:
    known, value = _yearly_base(c)
    today = c.now.date()
    if value is None:
        return number((next_anniversary(known, today) - today).days)
    return c.dialect.days_between(c.dialect.date(today), value)


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
    "anniversary": _anniversary,
    "days_until": _days_until,
    "bucket": _bucket,
}


def _check() -> None:
    missing, extra = FUNCTIONS.keys() - BUILDERS.keys(), BUILDERS.keys() - FUNCTIONS.keys()
    if missing or extra:
        raise InternalError(f"SQL builders out of step with the declared functions: missing {sorted(missing)}, "
                            f"extra {sorted(extra)}")


_check()
