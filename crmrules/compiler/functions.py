"""The built-in scalar functions: their parameters and result types.

Each backend implements every function listed here; the differential tests make
sure they agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from crmrules import types as t


@dataclass(frozen=True, slots=True)
class Function:
    """A built-in function's parameter names and how its result type follows from its arguments."""

    name: str
    params: tuple[str, ...]
    result: Callable[[list[t.Type]], t.Type | str]  # a Type, or a message saying what is wrong
    variadic: bool = False
    doc: str = ""


def _temporal_to(result: t.Type) -> Callable[[list[t.Type]], t.Type | str]:
    def rule(args: list[t.Type]) -> t.Type | str:
        if all(a in t.TEMPORAL or a == t.NULL for a in args):
            return result
        return f"expects a date or timestamp, got {', '.join(map(str, args))}"
    return rule


def _strings(args: list[t.Type]) -> t.Type | str:
    return t.STRING if args[0] in (t.STRING, t.NULL) else f"expects a string, got {args[0]}"


def _length(args: list[t.Type]) -> t.Type | str:
    arg = args[0]
    return t.INT if arg in (t.STRING, t.NULL) or arg.is_list else f"expects a string or a list, got {arg}"


def _numeric_same(args: list[t.Type]) -> t.Type | str:
    arg = args[0]
    return arg if arg in t.NUMERIC else (t.INT if arg == t.NULL else f"expects a number, got {arg}")


def _round(args: list[t.Type]) -> t.Type | str:
    if args[0] not in t.NUMERIC | {t.NULL}:
        return f"expects a number, got {args[0]}"
    if len(args) > 1 and args[1] != t.INT:
        return f"expects a whole number of decimal places, got {args[1]}"
    return t.DECIMAL if args[0] == t.DECIMAL else t.INT


def _coalesce(args: list[t.Type]) -> t.Type | str:
    result = t.NULL
    for arg in args:
        unified = t.unify(result, arg)
        if unified is None:
            return f"cannot combine {result} with {arg}"
        result = unified
    return result


def _if(args: list[t.Type]) -> t.Type | str:
    if args[0] not in (t.BOOL, t.NULL):
        return f"expects a condition (bool) first, got {args[0]}"
    unified = t.unify(args[1], args[2])
    return unified if unified is not None else f"cannot combine {args[1]} with {args[2]}"


def _text(args: list[t.Type]) -> t.Type | str:
    return t.STRING if args[0] in (t.INT, t.STRING, t.NULL) else f"expects a whole number or a string, got {args[0]}"


def _concat(args: list[t.Type]) -> t.Type | str:
    wrong = [a for a in args if a not in (t.STRING, t.NULL)]
    return f"expects strings, got {wrong[0]}" if wrong else t.STRING


def _yearly_to(result: t.Type) -> Callable[[list[t.Type]], t.Type | str]:
    # a date, a timestamp, or a "MM-DD" text (the type checker makes sure that one is a literal)
    def rule(args: list[t.Type]) -> t.Type | str:
        if args[0] in t.TEMPORAL or args[0] in (t.STRING, t.NULL):
            return result
        return f"expects a date, a timestamp or a \"MM-DD\" text, got {args[0]}"
    return rule


MONTH_DAY = re.compile(r"(\d\d)-(\d\d)")


def month_day(text: str) -> date | None:
    """A `"MM-DD"` text as that day of the leap year 2000 (so `"02-29"` is one); None when it is no day."""
    match = MONTH_DAY.fullmatch(text)
    if match is None:
        return None
    try:
        return date(2000, int(match[1]), int(match[2]))
    except ValueError:
        return None


def _bucket(args: list[t.Type]) -> t.Type | str:
    # the literals themselves are checked by the type checker (E0216, E0217), which adds the customer id
    return t.INT if args[0] == t.STRING else f"expects a salt (text) first, got {args[0]}"


FUNCTIONS: dict[str, Function] = {f.name: f for f in [
    Function("days_since", ("value",), _temporal_to(t.INT),
             doc="Calendar days from the date of `value` to the date of `now` (store time zone)."),
    Function("days_between", ("start", "end"), _temporal_to(t.INT),
             doc="Calendar days from the date of `start` to the date of `end`."),
    Function("date", ("value",), _temporal_to(t.DATE), doc="The calendar date of a timestamp."),
    Function("year", ("value",), _temporal_to(t.INT), doc="The year of a date or timestamp."),
    Function("month", ("value",), _temporal_to(t.INT), doc="The month (1-12) of a date or timestamp."),
    Function("day", ("value",), _temporal_to(t.INT), doc="The day of the month of a date or timestamp."),
    Function("lower", ("value",), _strings, doc="The string in lower case."),
    Function("upper", ("value",), _strings, doc="The string in upper case."),
    Function("trim", ("value",), _strings, doc="The string without leading and trailing spaces."),
    Function("length", ("value",), _length, doc="Characters in a string, or items in a list."),
    Function("abs", ("value",), _numeric_same, doc="The absolute value of a number."),
    Function("round", ("value", "digits"), _round,
             doc="A number rounded half away from zero to `digits` places (default 0)."),
    Function("coalesce", ("values",), _coalesce, variadic=True,
             doc="The first argument that is not null."),
    Function("if", ("condition", "then", "else"), _if,
             doc="`then` when the condition is true, `else` when it is false or unknown."),
    Function("text", ("value",), _text, doc="A whole number or a string as text (`text(5)` is `\"5\"`)."),
    Function("concat", ("values",), _concat, variadic=True,
             doc="Strings joined end to end; null when any of them is null."),
    Function("anniversary", ("value",), _yearly_to(t.DATE),
             doc="The next date, today or later, with the month and day of a date, a timestamp or a "
                 "`\"MM-DD\"` text; 29 February is 28 February in a common year."),
    Function("days_until", ("value",), _yearly_to(t.INT),
             doc="Calendar days from today to a date (negative when it has passed), or to the next "
                 "`\"MM-DD\"` (0 on the day)."),
    Function("bucket", ("salt", "n"), _bucket,
             doc="The customer's bucket 0..n-1: the first 4 bytes of SHA-256(salt + \":\" + id), big-endian, "
                 "mod n; the rule of campaign holdouts."),
]}

OPTIONAL_DEFAULTS = {("round", "digits"): 0}
