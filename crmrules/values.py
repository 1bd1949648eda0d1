"""Value semantics shared by the optimiser and the in-memory backend (SQL mirrors them).

Division and averages round half away from zero to `SCALE` places, so every
backend gets the same digits; dividing by zero gives null, as does any
arithmetic on null.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from enum import StrEnum


class DurationUnit(StrEnum):
    """Units of duration literals, spelled as in the source."""

    SECOND = "s"
    MINUTE = "min"
    HOUR = "h"
    DAY = "d"
    WEEK = "w"
    MONTH = "mo"
    YEAR = "y"


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration value such as `30d` or `6mo`; months and years are calendar units."""

    amount: int
    unit: DurationUnit

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


SCALE = 6
_QUANTUM = Decimal(1).scaleb(-SCALE)
_FIXED = {DurationUnit.SECOND: 1, DurationUnit.MINUTE: 60, DurationUnit.HOUR: 3600,
          DurationUnit.DAY: 86400, DurationUnit.WEEK: 7 * 86400}


# Exact arithmetic with room for any DECIMAL(38, s) operand and result: Python's default 28 digits
# would fail (or round) where SQL engines give an exact answer
EXACT = Context(prec=80, rounding=ROUND_HALF_UP, Emax=999_999, Emin=-999_999)
MAX_ROUND_DIGITS = 38


def divide(a, b):
    """`a / b` as a decimal rounded to SCALE places; null when b is zero or either is null."""
    if a is None or b is None or b == 0:
        return None
    return EXACT.quantize(EXACT.divide(Decimal(a), Decimal(b)), _QUANTUM)


def modulo(a, b):
    """`a % b` with the sign of `a`, as SQL engines do; null when b is zero."""
    if a is None or b is None or b == 0:
        return None
    if isinstance(a, int) and isinstance(b, int):
        result = abs(a) % abs(b)
        return -result if a < 0 else result
    return EXACT.remainder(Decimal(a), Decimal(b))


def round_half_up(value, digits: int = 0):
    """Round half away from zero, as SQL's ROUND does for exact numbers; digits past ±38 change nothing
    (positive) or give 0 (negative), as no DECIMAL(38) value has more."""
    if value is None or digits is None:
        return None
    digits = max(-MAX_ROUND_DIGITS - 1, min(MAX_ROUND_DIGITS, digits))
    if isinstance(value, int):
        if digits >= 0:
            return value
        return int(EXACT.quantize(Decimal(value), Decimal(1).scaleb(-digits)))
    return EXACT.quantize(value, Decimal(1).scaleb(-digits))


def add_months(moment, months: int):
    """Shift a date or timestamp by calendar months, clamping to the month's last day."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def shift(moment, duration: Duration, sign: int = 1):
    """`moment + duration` (or minus, with sign -1); calendar units move by months."""
    if moment is None:
        return None
    if duration.unit == DurationUnit.MONTH:
        return add_months(moment, sign * duration.amount)
    if duration.unit == DurationUnit.YEAR:
        return add_months(moment, sign * 12 * duration.amount)
    seconds = _FIXED[duration.unit] * duration.amount
    if isinstance(moment, datetime) or seconds % 86400:
        if not isinstance(moment, datetime):
            moment = datetime.combine(moment, time())
        return moment + sign * timedelta(seconds=seconds)
    return moment + sign * timedelta(days=seconds // 86400)


def as_timestamp(value):
    """A date taken as midnight, so dates and timestamps compare."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, time())


def days_between(start, end) -> int | None:
    """Calendar days from the date of `start` to the date of `end`."""
    if start is None or end is None:
        return None
    start = start.date() if isinstance(start, datetime) else start
    end = end.date() if isinstance(end, datetime) else end
    return (end - start).days
