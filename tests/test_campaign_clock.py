"""The campaign clock, by hand-computed cases: grid, schedules, anniversaries, `after`, quiet hours, holdout."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from crmrules import ast
from crmrules.backends.builtins import anniversary_in
from crmrules.campaigns import clock

D = ast.DurationUnit


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("tick", "start", "end", "expected"), [
    ("1h", "2026-06-01T09:30", "2026-06-01T12:00", ["2026-06-01T10:00", "2026-06-01T11:00", "2026-06-01T12:00"]),
    ("6h", "2026-06-01T00:00", "2026-06-01T23:59", ["2026-06-01T06:00", "2026-06-01T12:00", "2026-06-01T18:00"]),
    ("15min", "2026-06-01T23:50", "2026-06-02T00:20", ["2026-06-02T00:00", "2026-06-02T00:15"]),
    # whole days count from 1970-01-01: day 20605 (2026-06-01) is odd, so the 2-day grid falls on 06-02, 06-04
    ("2d", "2026-06-01T00:00", "2026-06-05T00:00", ["2026-06-02T00:00", "2026-06-04T00:00"]),
])
def test_the_grid_is_multiples_of_the_tick_from_midnight(tick, start, end, expected):
    assert [i.isoformat(timespec="minutes") for i in clock.grid(dt(start), dt(end), clock.parse_tick(tick))] == \
        expected


@pytest.mark.parametrize("tick", ["7min", "5h", "36h", "0h", "hourly"])
def test_a_tick_that_does_not_fit_the_day_is_refused(tick):
    with pytest.raises(clock.ClockError):
        clock.parse_tick(tick)


def test_schedules_daily_weekly_and_monthly_past_the_months_end():
    daily = ast.ScheduleTrigger(every="daily", at=time(9))
    assert list(clock.schedule_instants(daily, dt("2026-06-01T09:00"), dt("2026-06-03T08:59"))) == [
        dt("2026-06-02T09:00")]  # (start, end]: 06-01 09:00 is the start itself, 06-03 09:00 is after the end
    weekly = ast.ScheduleTrigger(every="weekly", day="monday", at=time(8, 30))
    assert list(clock.schedule_instants(weekly, dt("2026-06-01T00:00"), dt("2026-06-30T23:59"))) == [
        dt("2026-06-01T08:30"), dt("2026-06-08T08:30"), dt("2026-06-15T08:30"), dt("2026-06-22T08:30"),
        dt("2026-06-29T08:30")]
    monthly = ast.ScheduleTrigger(every="monthly", day="31", at=time(10))
    assert list(clock.schedule_instants(monthly, dt("2026-01-01T00:00"), dt("2026-04-30T23:59"))) == [
        dt("2026-01-31T10:00"), dt("2026-02-28T10:00"), dt("2026-03-31T10:00"), dt("2026-04-30T10:00")]
    leap = list(clock.schedule_instants(monthly, dt("2028-02-01T00:00"), dt("2028-02-29T23:59")))
    assert leap == [dt("2028-02-29T10:00")]


def test_anniversaries_29_february_and_offsets_crossing_the_year():
    assert anniversary_in(date(2000, 2, 29), 2027) == date(2027, 2, 28)
    assert anniversary_in(date(2000, 2, 29), 2028) == date(2028, 2, 29)
    three_days = ast.Duration(3, D.DAY)
    # birthday - 3d of a 1 January birthday: 29 December of the year before
    assert clock.recurs_on(date(1990, 1, 1), three_days, -1, date(2026, 12, 29))
    assert not clock.recurs_on(date(1990, 1, 1), three_days, -1, date(2026, 1, 1))
    # 29 February in a common year is 28 February, so birthday - 3d is 25 February
    assert clock.recurs_on(date(1992, 2, 29), three_days, -1, date(2027, 2, 25))
    assert clock.recurs_on(date(1992, 2, 29), three_days, -1, date(2028, 2, 26))
    assert not clock.recurs_on(date(1992, 2, 29), three_days, -1, date(2028, 2, 25))
    # + a week from 28 December lands in January of the next year
    assert clock.recurs_on(date(1990, 12, 28), ast.Duration(1, D.WEEK), 1, date(2027, 1, 4))
    assert clock.recurs_on(datetime(2024, 3, 5, 15, 0), None, 1, date(2026, 3, 5))  # registered_at: its date
    assert not clock.recurs_on(None, None, 1, date(2026, 3, 5))


def test_which_anchors_recur():
    birthday = ast.Column(table="customers", name="birthday")
    assert clock.recurring_anchor(birthday) == (birthday, None, 1)
    minus = ast.Arith(op=ast.ArithOp.SUB, left=birthday, right=ast.Literal(value=ast.Duration(3, D.DAY)))
    assert clock.recurring_anchor(minus) == (birthday, ast.Duration(3, D.DAY), -1)
    assert clock.recurring_anchor(ast.AttributeRef(name="last_order_at")) is None


def test_after_instants():
    assert clock.after_instant(date(2026, 5, 1), ast.Duration(30, D.DAY), None) == dt("2026-05-31T09:00")
    assert clock.after_instant(date(2026, 5, 1), ast.Duration(30, D.DAY), time(11)) == dt("2026-05-31T11:00")
    assert clock.after_instant(dt("2026-05-01T14:25"), ast.Duration(2, D.HOUR), None) == dt("2026-05-01T16:25")
    assert clock.after_instant(dt("2026-05-01T14:25"), ast.Duration(3, D.DAY), time(11)) == dt("2026-05-04T11:00")
    assert clock.after_instant(date(2026, 1, 31), ast.Duration(1, D.MONTH), None) == dt("2026-02-28T09:00")


@pytest.mark.parametrize(("due", "window", "expected"), [
    ("2026-06-01T23:30", (22, 8), "2026-06-02T08:00"),  # wraps midnight: to the next morning
    ("2026-06-02T03:00", (22, 8), "2026-06-02T08:00"),
    ("2026-06-02T22:00", (22, 8), "2026-06-03T08:00"),  # the start is inside
    ("2026-06-02T08:00", (22, 8), "2026-06-02T08:00"),  # the end is not
    ("2026-06-02T12:00", (22, 8), "2026-06-02T12:00"),
    ("2026-06-02T13:15", (13, 14), "2026-06-02T14:00"),  # a window within the day
    ("2026-06-02T12:59", (13, 14), "2026-06-02T12:59"),
])
def test_quiet_hours_move_a_due_instant_to_the_windows_end(due, window, expected):
    quiet = ast.QuietHours(start=time(window[0]), end=time(window[1]))
    assert clock.quiet_shift(dt(due), quiet) == dt(expected)
    assert clock.quiet_shift(dt(due), None) == dt(due)


def test_the_holdout_bucket_is_the_pinned_hash():
    digest = hashlib.sha256(b"winback:c1").digest()
    assert clock.holdout_bucket("winback", "c1") == int.from_bytes(digest[:4], "big") % 10000
    bucket = clock.holdout_bucket("winback", "c1")
    assert clock.held_out("winback", "c1", Decimal(bucket + 1) / 100)
    assert not clock.held_out("winback", "c1", Decimal(bucket) / 100)
    assert not clock.held_out("winback", "c1", None)


def test_holdout_share_within_one_percent_on_100k_ids_and_stable():
    ids = [f"c{i}" for i in range(100_000)]
    held = [i for i in ids if clock.held_out("winback", i, Decimal(10))]
    assert abs(len(held) / len(ids) - 0.10) <= 0.01
    assert held == [i for i in ids if clock.held_out("winback", i, Decimal("10.0"))]
    assert len([i for i in ids if clock.held_out("vip", i, Decimal("2.5"))]) / len(ids) == pytest.approx(0.025, abs=0.01)


def test_day_spacing_is_exact():
    assert clock.parse_tick("1d") == timedelta(days=1)
