"""The campaign clock: the tick grid, schedule instants, anniversaries, quiet windows and holdout buckets.

Every function here is pure: instants are naive wall times in the store's time zone, and
nothing reads the machine's clock, so simulations and tests freeze time by passing it in.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from crmrules import ast
from crmrules.backends.builtins import anniversary_in, bucket_of
from crmrules.errors import CrmRulesError
from crmrules.values import shift

DEFAULT_AT = time(9, 0)  # date and `after` triggers on a date fire at 09:00 unless they say `at`
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# the columns whose dates recur yearly: `on birthday` fires every year, not once
RECURRING = ("birthday", "registered_at")
_EPOCH = datetime(1970, 1, 1)
_DAY = timedelta(days=1)
_TICK = re.compile(r"\s*(\d+)\s*(s|min|h|d|w)\s*")
_TICK_UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ClockError(CrmRulesError):
    """A tick that does not fit the grid, or a clock that moved backwards."""

    code = "E0702"


# ------------------------------------------------------------------------------------ the grid
def parse_tick(tick: str | timedelta) -> timedelta:
    """`15min`, `1h`, `6h`, `1d`, ...: a tick that divides a day, or a whole number of days."""
    if isinstance(tick, timedelta):
        step = tick
    else:
        match = _TICK.fullmatch(str(tick))
        if match is None:
            raise ClockError(f"`{tick}` is not a tick", None, "write e.g. 15min, 1h, 6h or 1d")
        step = timedelta(seconds=int(match[1]) * _TICK_UNITS[match[2]])
    seconds = step.total_seconds()
    if seconds <= 0 or seconds != int(seconds) or (seconds < 86400 and 86400 % seconds) or (
            seconds >= 86400 and seconds % 86400):
        raise ClockError(f"a tick of {tick} does not fit the day", None,
                         "use a tick that divides a day (15min, 1h, 6h) or a whole number of days")
    return step


def grid(start: datetime, end: datetime, tick: timedelta) -> Iterator[datetime]:
    """The grid instants in (start, end]: multiples of `tick` from midnight (days: from 1970-01-01)."""
    k = (start - _EPOCH) // tick + 1
    instant = _EPOCH + k * tick
    while instant <= end:
        yield instant
        instant += tick


def _days(start: datetime, end: datetime, at: time) -> Iterator[datetime]:
    """`at` on every day, within (start, end]."""
    day = start.date()
    while day <= end.date():
        instant = datetime.combine(day, at)
        if start < instant <= end:
            yield instant
        day += _DAY


# ---------------------------------------------------------------------------- schedules
def schedule_instants(trigger: ast.ScheduleTrigger, start: datetime, end: datetime) -> Iterator[datetime]:
    """Every instant of `daily`/`weekly`/`monthly` in (start, end]; `monthly on 31` fires on the month's last
    day when it is shorter."""
    for instant in _days(start, end, trigger.at):
        if trigger.every == "weekly" and WEEKDAYS[instant.weekday()] != trigger.day:
            continue
        if trigger.every == "monthly":
            last = calendar.monthrange(instant.year, instant.month)[1]
            if instant.day != min(int(trigger.day), last):
                continue
        yield instant


def fire_days(start: datetime, end: datetime, at: time | None) -> Iterator[datetime]:
    """The instants a date trigger can fire in (start, end]: `at` (default 09:00) on each day."""
    return _days(start, end, at or DEFAULT_AT)


# ---------------------------------------------------------------------------- anniversaries
def recurring_anchor(anchor: ast.Expr) -> tuple[ast.Column, ast.Duration | None, int] | None:
    """(column, offset, sign) when a date trigger's anchor is a recurring column (`birthday`,
    `registered_at`) optionally plus or minus a literal duration; None for a one-off date."""
    match anchor:
        case ast.Column(table="customers", name=name) if name in RECURRING:
            return anchor, None, 1
        case ast.Arith(op=ast.ArithOp.ADD | ast.ArithOp.SUB as op,
                       left=ast.Column(table="customers", name=name) as column,
                       right=ast.Literal(value=ast.Duration() as offset)) if name in RECURRING:
            return column, offset, 1 if op == ast.ArithOp.ADD else -1
    return None


def recurs_on(base: date | datetime | None, offset: ast.Duration | None, sign: int, day: date) -> bool:
    """Whether a yearly anniversary of `base`, moved by `sign * offset`, falls on `day`
    (`birthday - 3d` of a 1 January birthday falls on 29 December of the year before)."""
    if base is None:
        return False
    base = base.date() if isinstance(base, datetime) else base
    span = 1
    if offset is not None:
        if offset.unit == ast.DurationUnit.YEAR:
            span += offset.amount
        elif offset.unit == ast.DurationUnit.MONTH:
            span += offset.amount // 12 + 1
        else:
            span += offset.amount * _seconds(offset.unit) // (365 * 86400) + 1
    for year in range(max(day.year - span, base.year, 1), min(day.year + span, 9999) + 1):
        moved = anniversary_in(base, year)  # 29 February on 28 February in a common year
        if offset is not None:
            moved = shift(moved, offset, sign)
            moved = moved.date() if isinstance(moved, datetime) else moved
        if moved == day:
            return True
    return False


def _seconds(unit: ast.DurationUnit) -> int:
    return {ast.DurationUnit.SECOND: 1, ast.DurationUnit.MINUTE: 60, ast.DurationUnit.HOUR: 3600,
            ast.DurationUnit.DAY: 86400, ast.DurationUnit.WEEK: 7 * 86400}.get(unit, 0)


def after_instant(value: date | datetime, delay: ast.Duration, at: time | None) -> datetime:
    """When `delay after value` fires: a date's day at 09:00 (or `at`); a timestamp exactly, or on its
    day at `at` when the trigger names one."""
    moved = shift(value, delay, 1)
    if isinstance(moved, datetime) and at is None and isinstance(value, datetime):
        return moved
    day = moved.date() if isinstance(moved, datetime) else moved
    return datetime.combine(day, at or DEFAULT_AT)


# --------------------------------------------------------------------------------- quiet hours
def quiet_shift(instant: datetime, quiet: ast.QuietHours | None) -> datetime:
    """The instant moved out of a daily quiet window [start, end) to its end; the window may wrap midnight."""
    if quiet is None:
        return instant
    moment, start, end = instant.time(), quiet.start, quiet.end
    if start < end:
        inside, next_day = start <= moment < end, False
    else:
        inside, next_day = moment >= start or moment < end, moment >= start
    if not inside:
        return instant
    return datetime.combine(instant.date() + (_DAY if next_day else timedelta()), end)


# ------------------------------------------------------------------------------------- holdout
def holdout_bucket(campaign: str, customer_id: str) -> int:
    """The customer's bucket in 0..9999 for a campaign: `bucket(campaign, 10000)` of the rule language."""
    return bucket_of(campaign, 10000, customer_id)


def held_out(campaign: str, customer_id: str, percent: Decimal | None) -> bool:
    """Whether the customer is in the campaign's holdout group of `percent` %."""
    return percent is not None and holdout_bucket(campaign, customer_id) < percent * 100
