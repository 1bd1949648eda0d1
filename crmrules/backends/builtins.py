"""The Python implementation of every built-in function, for the interpreter and the generated code.

`BUILTINS` has one entry per function of `compiler/functions.FUNCTIONS`, checked at
import. An entry's `fn` is the semantics: the interpreter calls it with the
evaluated arguments. The code generator calls the same `fn`, or, where the call
would cost too much in the hot path, pastes the entry's `inline` template: a Python
expression doing exactly what `fn` does, kept beside it so the two cannot drift
apart unnoticed (the differential suite runs both).
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from crmrules import values
from crmrules.backends.runtime import to_date
from crmrules.compiler.functions import FUNCTIONS, month_day
from crmrules.errors import InternalError


@dataclass(frozen=True, slots=True)
class Builtin:
    """One function's Python implementation.

    `fn` takes the argument values (with `now` first when `needs_now`). `inline` is the
    same as generated code: a template over the argument codes `{0}`, `{1}`, ... with
    `{t}` a fresh local and `{now}` the instant, or a function `(codes, fresh) -> code`.
    When `condition` is set, the first argument is a condition: `fn` gets its value
    (true, false or None) and the template gets code that is true exactly when it is true.
    """

    fn: Callable
    inline: str | Callable[[list[str], Callable[[], str]], str] | None = None
    needs_now: bool = False
    condition: bool = False


def _unless_null(method: Callable) -> Callable:
    return lambda value: None if value is None else method(value)


def _coalesce(*args):
    return next((a for a in args if a is not None), None)


def _coalesce_inline(codes: list[str], fresh: Callable[[], str]) -> str:
    # nested so that later arguments are computed only when the earlier ones are null
    expr = codes[-1]
    for code in reversed(codes[:-1]):
        var = fresh()
        expr = f"({var} if ({var} := {code}) is not None else {expr})"
    return expr


def _concat(*args):
    return None if None in args else "".join(args)


def _if(condition, then, otherwise):
    return then if condition is True else otherwise


def _null_or(body: str) -> str:
    return f"(None if ({{t}} := {{0}}) is None else {body})"


# ------------------------------------------------------------- random splits and yearly dates
# The rules below are the only statement of each: `campaigns/clock.py` (holdouts, yearly
# triggers) uses them too, and the SQL dialects compute exactly the same.
def hash32(text: str) -> int:
    """The first 4 bytes of SHA-256 of the text's UTF-8 bytes, as an unsigned big-endian integer."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def bucket_of(salt: str, buckets: int, customer_id) -> int | None:
    """The bucket in 0..buckets-1 of a customer: `hash32(salt + ":" + id)` mod `buckets`; null without an id."""
    return None if customer_id is None else hash32(f"{salt}:{customer_id}") % buckets


def anniversary_in(base: date, year: int) -> date:
    """`base`'s month and day in `year`; 29 February is 28 February in a common year."""
    if base.month == 2 and base.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, base.month, base.day)


def next_anniversary(base: date, today: date) -> date:
    """The first day, today or later, with `base`'s month and day (as `anniversary_in` places them)."""
    this_year = anniversary_in(base, today.year)
    return this_year if this_year >= today else anniversary_in(base, today.year + 1)


def _yearly_base(value) -> date | None:
    return None if value is None else month_day(value) if isinstance(value, str) else to_date(value)


def _anniversary(now, value) -> date | None:
    base = _yearly_base(value)
    return None if base is None else next_anniversary(base, to_date(now))


def _days_until(now, value) -> int | None:
    if value is None:
        return None
    day = _anniversary(now, value) if isinstance(value, str) else to_date(value)
    return (day - to_date(now)).days


BUILTINS: dict[str, Builtin] = {
    "days_since": Builtin(lambda now, value: values.days_between(value, now), "_days({0}, {now})", needs_now=True),
    "days_between": Builtin(values.days_between, "_days({0}, {1})"),
    "date": Builtin(to_date, "_to_date({0})"),
    "year": Builtin(_unless_null(lambda v: v.year), _null_or("{t}.year")),
    "month": Builtin(_unless_null(lambda v: v.month), _null_or("{t}.month")),
    "day": Builtin(_unless_null(lambda v: v.day), _null_or("{t}.day")),
    "lower": Builtin(_unless_null(str.lower), _null_or("{t}.lower()")),
    "upper": Builtin(_unless_null(str.upper), _null_or("{t}.upper()")),
    "trim": Builtin(_unless_null(lambda v: v.strip(" ")), _null_or("{t}.strip(' ')")),
    "length": Builtin(_unless_null(len), _null_or("len({t})")),
    "abs": Builtin(_unless_null(abs), _null_or("abs({t})")),
    "round": Builtin(values.round_half_up, "_round({0}, {1})"),
    "coalesce": Builtin(_coalesce, _coalesce_inline),
    "if": Builtin(_if, "({1} if {0} else {2})", condition=True),
    "text": Builtin(_unless_null(str), _null_or("str({t})")),
    "concat": Builtin(_concat),
    "anniversary": Builtin(_anniversary, needs_now=True),
    "days_until": Builtin(_days_until, needs_now=True),
    # the type checker adds the customer id as a third argument
    "bucket": Builtin(bucket_of),
}


def _check() -> None:
    missing, extra = FUNCTIONS.keys() - BUILTINS.keys(), BUILTINS.keys() - FUNCTIONS.keys()
    if missing or extra:
        raise InternalError(f"backends/builtins.py is out of step with compiler/functions.py: "
                            f"missing {sorted(missing)}, extra {sorted(extra)}")


_check()
