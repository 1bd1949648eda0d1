"""The three ways to run campaigns, over one planner: a batch run, a simulation, a streaming engine.

- `run_batch` processes every step from the outbox's last run (or `since`, or `now`: then it only
  initialises) to `now`, on a SQL engine by default: audiences and conditions for the whole base at once.
- `simulate` replays a period into a throwaway in-memory outbox and returns every message (the
  pinned JSON shape).
- `CampaignEngine` is for apps: `on_event(event, customer)` as events happen and `tick(now, customers)`
  for the time-based triggers, evaluated in memory by generated code.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

from crmrules.backends.customer_data import prepare_customer
from crmrules.campaigns.clock import ClockError
from crmrules.campaigns.evaluators import (
    MemoryEvaluator,
    SqlEvaluator,
    event_row,
    prepare_event,
)
from crmrules.campaigns.messages import Message, to_json
from crmrules.campaigns.outbox import Outbox, open_outbox
from crmrules.campaigns.planner import Planner
from crmrules.compiler.pipeline import Program
from crmrules.context import instant_of, parse_as_of
from crmrules.errors import CrmRulesError


def _program(rules) -> Program:
    return getattr(rules, "program", rules)


def instant(value, program: Program) -> datetime:
    """An instant given as a date (the end of that day), a timestamp or their ISO text."""
    return instant_of(parse_as_of(value), program.schema.timezone)


def _start_of(value, program: Program) -> datetime:
    """The start of a period given as a date (its day included) or a timestamp."""
    given = parse_as_of(value)
    if isinstance(given, datetime):
        return instant_of(given, program.schema.timezone)
    return instant_of(given - timedelta(days=1), program.schema.timezone)


def evaluator_for(program: Program, engine, opened):
    """The evaluator over opened data: SQL for an `SqlHandle`, generated code for customer dicts."""
    if engine.takes == "sql":
        return SqlEvaluator(program, opened, engine.name)
    return MemoryEvaluator(program, opened)


def summary(program: Program, messages) -> dict[str, dict[str, int]]:
    """{campaign: {status: count}} for every campaign of the rules (and any other with messages)."""
    counts: dict[str, Counter] = {name: Counter() for name in program.campaigns}
    for message in messages:
        counts.setdefault(message.campaign, Counter())[message.status] += 1
    return {name: dict(sorted(counter.items())) for name, counter in counts.items()}


class OpenedData:
    """Data opened once for many runs (`opened_data`): a scheduler's daily ticks need not reopen and
    re-check the database each time."""

    def __init__(self, engine, opened):
        self.engine, self.opened = engine, opened


@contextmanager
def opened_data(program, data, backend: str | None = None):
    """Open `data` once; pass what this yields as `data` to `run_batch` for every run while it is open."""
    from crmrules.backends.dispatch import open_data

    with open_data(_program(program), data, backend) as (engine, opened):
        yield OpenedData(engine, opened)


@contextmanager
def _data(program: Program, data, backend: str | None):
    if isinstance(data, OpenedData):
        yield data.engine, data.opened
        return
    from crmrules.backends.dispatch import open_data

    with open_data(program, data, backend) as pair:
        yield pair


def run_batch(program, data, outbox, now, since=None, tick: str = "1h", backend: str | None = None) -> dict:
    """Process every step from the last run (or `since`, or `now`) to `now`; the messages created or
    changed: {"from", "to", "initialised", "messages": [...], "summary", "unknown_events"}."""
    program = _program(program)
    end = instant(now, program)
    box = open_outbox(outbox) if isinstance(outbox, (str, Path)) else outbox
    try:
        last = box.last_run()
        if last is not None and end < last:
            raise ClockError(f"the clock moved backwards: --now {end:%Y-%m-%d %H:%M:%S} is before the last run "
                             f"({last:%Y-%m-%d %H:%M:%S})", None, "give a --now at or after the last run")
        # a date `since` starts the period at that day's first instant, as `simulate`'s start and the CLI do
        start = last if last is not None else (_start_of(since, program) if since is not None else end)
        if start > end:
            raise CrmRulesError("--since is after --now", None, "give a --since at or before --now", code="E0002")
        with _data(program, data, backend) as (engine, opened):
            planner = Planner(program, evaluator_for(program, engine, opened), box, tick)
            changed = planner.run(start, end)
        return {"from": start.isoformat(), "to": end.isoformat(), "initialised": last is None,
                "messages": [to_json(m, with_id=True) for m in changed], "summary": summary(program, changed),
                "unknown_events": planner.unknown_events}
    finally:
        if box is not outbox:
            box.close()


def simulate(program, data, start, end, tick: str = "1h", backend: str | None = None) -> dict:
    """Replay (start, end] into a throwaway outbox: every message, sorted by due instant, campaign,
    customer id, and {campaign: {status: count}}. A date `start` includes its day."""
    from crmrules.backends.dispatch import open_data

    program = _program(program)
    begin, finish = _start_of(start, program), instant(end, program)
    if begin > finish:
        raise CrmRulesError("--from is after --to", None, "give a --from at or before --to", code="E0002")
    box = open_outbox(":memory:")
    try:
        with open_data(program, data, backend) as (engine, opened):
            planner = Planner(program, evaluator_for(program, engine, opened), box, tick)
            planner.run(begin, finish)
        messages = box.messages()
    finally:
        box.close()
    shown = [to_json(m) for m in messages]
    return {"from": _shown(start), "to": _shown(end), "messages": shown, "summary": summary(program, messages),
            "unknown_events": planner.unknown_events}


def _shown(value) -> str:
    given = parse_as_of(value)
    return given.isoformat() if isinstance(given, (date, datetime)) else str(given)


class CampaignEngine:
    """Campaigns for an app, in memory: `on_event` as events happen, `tick` for time-based triggers.

    Events of a type no campaign listens to cost a dictionary lookup (unless a `when` or `after`
    campaign makes every event an evaluation instant). An event of an unknown customer is counted in
    `unknown_events`, never an error.

    Each customer's messages are read from the outbox once, when the customer is first met, and kept
    up to date by the engine's own writes: while an engine runs it must be its outbox's only writer.
    """

    def __init__(self, program, outbox: Outbox | str | Path = ":memory:", tick: str = "1h"):
        self.program = _program(program)
        self.schema = self.program.schema
        self.outbox = open_outbox(outbox) if isinstance(outbox, (str, Path)) else outbox
        self.evaluator = MemoryEvaluator(self.program)
        self.planner = Planner(self.program, self.evaluator, self.outbox, tick)
        self.planner.hot = {}  # each customer's messages read once, then kept in memory (we are the only writer)
        self.listened = frozenset(self.planner.by_type)
        self.every_event = bool(self.planner.evaluated)
        self._type = self.schema.column("events", "type").source
        self._at = self.schema.column("events", "at").source
        self._id = self.schema.column("customers", "id").source
        self._unknown = 0

    @property
    def unknown_events(self) -> int:
        """How many events named a customer that does not exist (none given, or not registered yet)."""
        return self._unknown + self.planner.unknown_events

    def on_event(self, event: dict, customer: dict | None) -> list[Message]:
        """The messages this event created or changed (its customer's due messages included)."""
        if not self.every_event and event.get(self._type) not in self.listened:
            return []
        if not customer or customer.get(self._id) is None:
            self._unknown += 1
            return []
        event = prepare_event(event, self.schema)
        customer = prepare_customer(customer, self.schema)
        at = event.get(self._at)
        if at is None:
            return []
        events = customer.get("events") or []
        if not any(e is event or e == event for e in events):
            customer = {**customer, "events": [*events, event]}
        key = str(customer[self._id])
        self.evaluator.use_one(customer, key)
        return self.planner.on_event(event_row(event, self.schema, key), at)

    def tick(self, now, customers) -> list[Message]:
        """Process the time-based triggers and due messages up to `now` (the first call only initialises)."""
        end = instant(now, self.program)
        self.evaluator.use([prepare_customer(person, self.schema) for person in customers])
        last = self.outbox.last_run()
        if last is None:
            self.planner.initialise(end)
            self.outbox.set_last_run(end)
            return []
        if end < last:
            raise ClockError(f"the clock moved backwards: {end:%Y-%m-%d %H:%M:%S} is before the last tick "
                             f"({last:%Y-%m-%d %H:%M:%S})")
        return self.planner.run(last, end, events=False)

    def close(self) -> None:
        """Close the outbox."""
        self.outbox.close()


__all__ = ["CampaignEngine", "OpenedData", "opened_data", "run_batch", "simulate", "summary"]
