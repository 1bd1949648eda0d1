"""The Python implementation of every built-in function, for the interpreter and the generated code.

`BUILTINS` has one entry per function of `compiler/functions.FUNCTIONS`, checked at
import. An entry's `fn` is the semantics: the interpreter calls it with the
evaluated arguments. The code generator calls the same `fn`, or, where the call
would cost too much in the hot path, pastes the entry's `inline` template: a Python
expression doing exactly what `fn` does, kept beside it so the two cannot drift
apart unnoticed (the differential suite runs both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crmrules import values
from crmrules.backends.runtime import to_date
from crmrules.compiler.functions import FUNCTIONS
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
}


def _check() -> None:
    missing, extra = FUNCTIONS.keys() - BUILTINS.keys(), BUILTINS.keys() - FUNCTIONS.keys()
    if missing or extra:
        raise InternalError(f"backends/builtins.py is out of step with compiler/functions.py: "
                            f"missing {sorted(missing)}, extra {sorted(extra)}")


_check()
