"""Dates marketers use: `anniversary`, `days_until`, `days_until_birthday`, `birthday_within(...)`.

Customers are born on every day of a leap year (29 February included) and on the
last days of a common one; they are evaluated as of every day of a leap year (2028)
and of a common year (2027) on the in-memory engines and DuckDB, as of the days
around the year end and the end of February on every engine. The expectation is an
independent computation: walk forward day by day from today until the month and day
match (a 29 February birthday is met on 28 February in a common year).
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from functools import cache

import pytest
from engines import ENGINES, EngineData

import crmrules
from crmrules.backends.builtins import BUILTINS, anniversary_in
from crmrules.campaigns import clock
from crmrules.context import evaluation_context

RULES = crmrules.load_text("""
attribute until = days_until_birthday
attribute within7 = birthday_within(7d)
attribute within1 = birthday_within(1d)
attribute next_one = anniversary(birthday)
attribute anniversary_days = days_until(anniversary(registered_at))
attribute to_autumn = days_until("09-01")
attribute to_leap_day = days_until("02-29")
attribute singles_day = 2026-11-11
attribute to_singles_day = days_until(singles_day)
segment season_change: days_until("09-01") <= 7
""")
NAMES = ["until", "within7", "within1", "next_one", "anniversary_days", "to_autumn", "to_leap_day", "to_singles_day"]
BIRTHDAYS = [date(1996, 1, 1) + timedelta(days=k) for k in range(366)] + [date(1991, 12, 31), date(1991, 2, 28)]
PEOPLE = [{"id": f"p{k:03}", "birthday": b.isoformat(), "registered_at": f"{b.replace(year=2020).isoformat()}T23:30:00"
           if (b.month, b.day) != (2, 29) else "2020-02-29T08:00:00"} for k, b in enumerate(BIRTHDAYS)]
PEOPLE.append({"id": "nobody"})  # no birthday, no registration: every value null
FULL_YEARS = [date(2027, 1, 1) + timedelta(days=k) for k in range(365 + 366)]  # 2027 (common) and 2028 (leap)
AROUND = [date(2026, 12, 30), date(2026, 12, 31), date(2027, 1, 1), date(2027, 2, 28), date(2027, 3, 1),
          date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1)]
# every day goes through the functions themselves (below); each engine runs a sample of the days
AS_OF = {"interpreter": FULL_YEARS[::29] + AROUND, "memory": FULL_YEARS[::9] + AROUND,
         "duckdb": FULL_YEARS[::23] + AROUND, "sqlite": FULL_YEARS[::23] + AROUND,
         "postgres": FULL_YEARS[::23] + AROUND, "spark": [AROUND[0], AROUND[6]]}


@cache
def ahead(today: date) -> dict[tuple[int, int], int]:
    """Independent of the engine: walk forward from today; the first time each month and day comes round
    (29 February is met on 28 February of a common year)."""
    found: dict[tuple[int, int], int] = {}
    for k in range(400):
        current = today + timedelta(days=k)
        found.setdefault((current.month, current.day), k)
        if (current.month, current.day) == (2, 28) and not calendar.isleap(current.year):
            found.setdefault((2, 29), k)
    return found


def days_to(month: int, day: int, today: date) -> int:
    return ahead(today)[(month, day)]


def expected(person: dict, today: date) -> dict:
    autumn, leap_day = days_to(9, 1, today), days_to(2, 29, today)
    singles = (date(2026, 11, 11) - today).days
    if "birthday" not in person:
        return {"until": None, "within7": None, "within1": None, "next_one": None, "anniversary_days": None,
                "to_autumn": autumn, "to_leap_day": leap_day, "to_singles_day": singles}
    born = date.fromisoformat(person["birthday"])
    registered = datetime.fromisoformat(person["registered_at"]).date()
    until = days_to(born.month, born.day, today)
    return {"until": until, "within7": until < 7, "within1": until == 0, "next_one": today + timedelta(days=until),
            "anniversary_days": days_to(registered.month, registered.day, today),
            "to_autumn": autumn, "to_leap_day": leap_day, "to_singles_day": singles}


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    data = EngineData(request.param, PEOPLE, crmrules.default_schema(), request)
    yield request.param, data
    data.close()


def test_birthday_helpers_on_every_day_of_a_common_and_a_leap_year(engine):
    name, data = engine
    program = RULES.program_for(attributes=NAMES, segments=["season_change"])
    for today in AS_OF[name]:
        ctx = evaluation_context(today, program.schema)
        got = data.values(program, NAMES, ctx)
        wrong = {p["id"]: (got[p["id"]], expected(p, today)) for p in PEOPLE if got[p["id"]] != expected(p, today)}
        assert not wrong, (today, list(wrong.items())[:3])
        if name != "spark" and (name in ("memory", "duckdb") or today in AROUND):
            members = data.members(program, ["season_change"], ctx)["season_change"]
            assert members == (sorted(p["id"] for p in PEOPLE) if days_to(9, 1, today) <= 7 else [])


def test_the_functions_on_every_day_of_a_common_and_a_leap_year():
    # the Python rule every in-memory engine calls, for each birthday of a leap year on each day of 2027-2028
    anniversary, days_until = BUILTINS["anniversary"].fn, BUILTINS["days_until"].fn
    for today in FULL_YEARS:
        now = datetime.combine(today, time(23, 59))
        for born in BIRTHDAYS[:366]:
            until = days_to(born.month, born.day, today)
            assert anniversary(now, born) == today + timedelta(days=until), (today, born)
            assert days_until(now, f"{born.month:02}-{born.day:02}") == until, (today, born)
            assert days_until(now, anniversary(now, born)) == until


def test_the_year_end_wraps_and_the_leap_day_moves():
    program = RULES.program_for(attributes=NAMES)
    people = [{"id": "jan2", "birthday": "1990-01-02"}, {"id": "leap", "birthday": "2000-02-29"}]
    from crmrules.backends.customer_data import prepare_customer
    from crmrules.backends.dispatch import BACKENDS

    prepared = [prepare_customer(p, program.schema) for p in people]
    got = BACKENDS["memory"].values(program, prepared, ["within7", "until", "next_one"],
                                    evaluation_context(date(2026, 12, 30), program.schema))
    assert got["jan2"] == {"within7": True, "until": 3, "next_one": date(2027, 1, 2)}
    assert got["leap"]["next_one"] == date(2027, 2, 28)


def test_campaigns_use_the_same_anniversary_rule():
    for year in (2027, 2028):
        assert anniversary_in(date(2000, 2, 29), year) == date(year, 2, 28 + calendar.isleap(year))
    assert clock.recurs_on(date(2000, 2, 29), None, 1, date(2027, 2, 28))


@pytest.mark.parametrize("text", ['days_until("9-1")', 'days_until("13-01")', 'days_until("02-30")',
                                  'anniversary(email)', 'days_until("tomorrow")'])
def test_a_month_and_day_must_be_written_out(text):
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text(f"attribute x = {text}\n").program_for(attributes=["x"])
    assert caught.value.code == "E0218" and "MM-DD" in caught.value.message


def test_days_until_a_date_counts_down_and_goes_negative():
    program = crmrules.load_text('attribute x = days_until(2026-07-05)\n').program_for(attributes=["x"])
    from crmrules.backends.dispatch import BACKENDS

    got = BACKENDS["memory"].values(program, [{"id": "a"}], ["x"], evaluation_context(date(2026, 7, 8),
                                                                                      program.schema))
    assert got == {"a": {"x": -3}}
