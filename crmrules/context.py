"""The evaluation context: `now`, the store's time zone, the schema and the ranked population.

It is built once at the edge (the API or the CLI) from what the user gave as
`as_of`, and passed down to every engine, which never turns `as_of` into an
instant again. This is the one place that rule lives:

- a bare date means the *end* of that day, so all of that day's data counts;
- an aware timestamp is moved to the store's time zone, then compared as wall time;
- no `as_of` at all means today in the store's time zone (not the machine's).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from crmrules.ast import Duration
from crmrules.errors import CrmRulesError
from crmrules.schema import Schema
from crmrules.values import shift

_END_OF_DAY = time(23, 59, 59, 999999)


@dataclass(frozen=True, eq=False)
class EvaluationContext:
    """Everything an evaluation depends on besides the rules and the data, fixed for a whole run."""

    instant: datetime  # `now`: naive wall time in the store's time zone
    as_of: date | datetime  # what the user asked for, for reports
    schema: Schema
    population: object | None = None  # a backends.population.Population when rules rank customers
    _edges: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def timezone(self) -> str:
        """The store's time zone (IANA name), from the schema."""
        return self.schema.timezone

    def window_start(self, duration: Duration) -> datetime:
        """`now - duration`: the open lower edge of `within duration`, computed once per context."""
        edge = self._edges.get(duration)
        if edge is None:
            edge = self._edges[duration] = shift(self.instant, duration, -1)
        return edge

    def with_population(self, population) -> EvaluationContext:
        """The same context with the customers ranked for the rules' `ntile`s."""
        return replace(self, population=population, _edges=self._edges)


def parse_as_of(value: str | date | datetime) -> date | datetime:
    """An `--as-of` value: a date (meaning the end of that day) or an ISO timestamp."""
    if isinstance(value, (date, datetime)):
        return value
    text = value.strip()
    try:
        return datetime.fromisoformat(text) if ("T" in text or " " in text) else date.fromisoformat(text)
    except ValueError:
        raise CrmRulesError(f"`{value}` is not a date or timestamp", None,
                            "write 2026-01-31 or 2026-01-31T09:00", code="E0002") from None


def today(timezone: str) -> date:
    """Today's date in a time zone."""
    return datetime.now(ZoneInfo(timezone)).date()


def instant_of(as_of: date | datetime, timezone: str) -> datetime:
    """`now` for an as-of value: the end of a date's day; an aware time moved to the store's zone."""
    if isinstance(as_of, datetime):
        if as_of.tzinfo is not None:
            return as_of.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
        return as_of
    return datetime.combine(as_of, _END_OF_DAY)


def evaluation_context(as_of: str | date | datetime | None, schema: Schema,
                       population=None) -> EvaluationContext:
    """The context for one run: `as_of` parsed (default: today in the store's time zone) and fixed."""
    given = today(schema.timezone) if as_of is None else parse_as_of(as_of)
    return EvaluationContext(instant_of(given, schema.timezone), given, schema, population)
