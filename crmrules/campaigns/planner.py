"""The one planner of batch runs, simulations and streaming: firings, due checks, state, in time order.

A run covers the period (start, end]. Its *steps* are the instants where something happens: grid
ticks (where `when` and `after` triggers are evaluated), event instants, schedule instants, the days
date triggers fire, `after` instants found earlier, and due instants of scheduled messages. Each
step, in time order, is one transaction: its firings become messages (`scheduled`), then every
message due by then is processed by the checks at its due instant (unless/audience → consent →
cap → channel limit → budget → holdout → `ready`), then `last_run` moves to the step. A run killed at any
point and run again therefore ends exactly as an uninterrupted one, and every write is idempotent
by message id.

Everything one step needs as of one instant is asked of the evaluator at once (`InstantValues`):
for every customer (with a condition that keeps only those who can fire) or for the customers of
that instant's events.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from datetime import datetime, timedelta

from crmrules import ast
from crmrules import types as t
from crmrules.campaigns import clock
from crmrules.campaigns.budget import Budgets
from crmrules.campaigns.evaluators import row_key
from crmrules.campaigns.instants import Campaign, InstantValues, any_of, holds, value_of
from crmrules.campaigns.messages import COUNTED, Message, message_id
from crmrules.compiler.pipeline import Program
from crmrules.progress import task
from crmrules.values import shift

# the outbox state row that marks a `when`/`after` campaign as initialised (its observed_at: the origin)
MARKER = "\x1finitialised"  # no customer id: PostgreSQL text holds no NUL, so a unit separator


class Planner:
    """Turns (start, end] into steps and each step into firings and processed messages."""

    def __init__(self, program: Program, evaluator, outbox, tick: str = "1h"):
        self.program, self.schema = program, program.schema
        self.evaluator, self.outbox = evaluator, outbox
        self.tick = clock.parse_tick(tick)
        self.campaigns = [Campaign(program, decl, index) for index, decl in enumerate(program.campaigns.values())]
        self.by_name = {c.name: c for c in self.campaigns}
        self.kinds: dict[str, list[Campaign]] = defaultdict(list)
        self.by_type: dict[str, list[Campaign]] = defaultdict(list)
        for campaign in self.campaigns:
            self.kinds[campaign.kind].append(campaign)
            if campaign.kind == "event":
                self.by_type[campaign.trigger.event_type].append(campaign)
        self.evaluated = self.kinds["when"] + self.kinds["after"]  # evaluated at every evaluation instant
        self.limits = program.limits
        self.held: dict[str, dict[str, bool]] = {}  # `when`: whether the condition held at the last observation
        self.seen: dict[str, dict[str, object]] = {}  # `after`: the anchor value handled last
        self.origin: dict[str, datetime] = {}
        self.pending: dict[datetime, set[tuple[str, str, object]]] = {}  # `after` firings found before their instant
        self.unknown_events = 0
        self.changed: dict[str, Message] = {}
        self._heap: list[datetime] = []
        self.end: datetime | None = None
        self._order = {c.name: (-c.priority, c.order) for c in self.campaigns}
        self._due_now: list[Message] = []
        self._later: list[Message] = []
        # streaming: {customer: {id: message}} of the customers met so far, read once and kept up to date by
        # every write (the engine is then the outbox's only writer); None: always ask the outbox
        self.hot: dict[str, dict[str, Message]] | None = None
        # a step's message writes, kept until its end (or until the outbox is read): one batch each
        self._inserts: list[Message] = []
        self._updates: list[Message] = []
        self._stepping = False
        self._transaction = None  # the step's transaction (a context manager), entered by `_begin`
        # with `hot`: each customer's scheduled messages by id, and (customer, campaign, channel, due_at) by id
        # of those caps and limits count
        self._waiting: dict[str, dict[str, Message]] = {}
        self._counts: dict[str, dict[str, tuple]] = {}
        self._since: dict[tuple, datetime] = {}  # (due instant, window) -> its start: a few instants, many times
        self._sources = {name: self.schema.column("events", name).source for name in self.schema.columns("events")}
        self._ctx: tuple = (None, None)  # (instant, its evaluation context) for event filters
        self.budgets = Budgets(self.campaigns, outbox, self._flush, lambda: self.hot is not None)

    # ------------------------------------------------------------------------------- state
    def initialise(self, start: datetime) -> None:
        """Load the state of `when`/`after` campaigns; one never run before observes at `start` (no firing)."""
        fresh = [c for c in self.evaluated if c.name not in self.origin]
        if not fresh:
            return
        with self.outbox.transaction():
            for campaign in fresh:
                states = self.outbox.states(campaign.name)
                marker = states.pop(MARKER, None)
                if marker is not None:
                    self.origin[campaign.name] = marker[1]
                    target = self.held if campaign.kind == "when" else self.seen
                    target[campaign.name] = {key: value for key, (value, _) in states.items()}
                    continue
                self.origin[campaign.name] = start
                observations = [(MARKER, True, start)]
                if campaign.kind == "when":
                    held = self.evaluator.values(start, [], where=campaign.condition)
                    self.held[campaign.name] = {key: True for key in held}
                    observations += [(key, True, start) for key in held]
                else:
                    self.seen[campaign.name] = {}
                self.outbox.set_states(campaign.name, observations)

    # ------------------------------------------------------------------------------- runs
    def run(self, start: datetime, end: datetime, events: bool = True) -> list[Message]:
        """Process (start, end] step by step; the messages created or changed, in listing order.
        `events=False` (streaming ticks) leaves events to `on_event`."""
        self.initialise(start)
        self.changed, self.end = {}, end
        schedules, dates = defaultdict(list), defaultdict(list)
        steps = {end}
        for campaign in self.kinds["schedule"]:
            for instant in clock.schedule_instants(campaign.trigger, start, end):
                schedules[instant].append(campaign)
        for campaign in self.kinds["date"]:
            for instant in clock.fire_days(start, end, campaign.trigger.at):
                dates[instant].append(campaign)
        on_grid = set(clock.grid(start, end, self.tick)) if self.evaluated else set()
        rows_at: dict[datetime, list[dict]] = defaultdict(list)
        if events and (self.by_type or self.evaluated):
            types = None if self.evaluated else set(self.by_type)
            for row in self.evaluator.events(start, end, types):
                rows_at[row["at"]].append(row)
            self.evaluator.preload({row["customer_id"] for rows in rows_at.values() for row in rows})
        steps.update(schedules, dates, on_grid, rows_at)
        steps.update(x for x in self.pending if start < x <= end)
        steps.update(m.due_at for m in self.outbox.scheduled(until=end) if m.due_at > start)
        self._heap = sorted(steps)
        last = None
        with task("campaign steps", total=len(self._heap)) as shown:
            while self._heap:
                instant = heapq.heappop(self._heap)
                if instant == last:
                    continue
                last = instant
                self.step(instant, rows_at.get(instant, ()), instant in on_grid, schedules.get(instant, ()),
                          dates.get(instant, ()))
                shown.step(f"{instant:%Y-%m-%d %H:%M}, {len(self.changed):,} messages", remaining=len(self._heap))
        return sorted(self.changed.values(), key=lambda m: (m.due_at, m.campaign, m.customer_id, m.id))

    def on_event(self, row: dict, instant: datetime) -> list[Message]:
        """One event of one customer, streamed: its firings, that customer's `when`/`after` observations,
        and that customer's messages due by then. `last_run` stays where the last tick left it."""
        self.initialise(instant)
        self.changed, self.end = {}, instant
        self._heap = []
        self.step(instant, [row], False, (), (), customer=row["customer_id"])
        return sorted(self.changed.values(), key=lambda m: (m.due_at, m.campaign, m.customer_id, m.id))

    def _push(self, instant: datetime) -> None:
        if self.end is not None and instant <= self.end:
            heapq.heappush(self._heap, instant)

    # ------------------------------------------------------------------------------- a step
    def step(self, p: datetime, rows, on_grid: bool, schedules, dates, customer: str | None = None) -> None:
        """Everything at instant `p`, in one transaction. A streamed event (`customer`, with the planner the
        outbox's only writer) takes that transaction only when it has something to write."""
        values = InstantValues(self.evaluator, p)
        self._due_now, self._later = [], []
        self._inserts, self._updates = [], []
        self._stepping, self._transaction = True, None
        try:
            if customer is None or self.hot is None:
                self._begin()  # a run reads under the write lock: concurrent runs take turns
            self._step(values, p, rows, on_grid, schedules, dates, customer)
            self._flush()
            if customer is None:
                self.outbox.set_last_run(p)
        except BaseException as error:
            transaction, self._transaction, self._stepping = self._transaction, None, False
            if transaction is not None:
                transaction.__exit__(type(error), error, error.__traceback__)  # rolls back
            raise
        transaction, self._transaction, self._stepping = self._transaction, None, False
        if transaction is not None:
            transaction.__exit__(None, None, None)  # commit

    def _begin(self) -> None:
        """Enter the step's transaction (once)."""
        if self._stepping and self._transaction is None:
            transaction = self.outbox.transaction()
            transaction.__enter__()
            self._transaction = transaction

    def _step(self, values: InstantValues, p: datetime, rows, on_grid: bool, schedules, dates,
              customer: str | None) -> None:
        self._prime(values, p, on_grid, schedules, dates)
        matched = self._match_events(values, p, rows)
        for campaign in schedules:
            for key, _ in values.rows_holding(campaign.audience):
                self._fire(campaign, key, p, "schedule:" + p.isoformat(), p)
        for campaign in dates:
            self._dates(campaign, values, p)
        event_ids = list(dict.fromkeys(row["customer_id"] for row in rows))
        observed = [] if on_grid else event_ids
        for campaign in self.kinds["when"]:
            self._crossings(campaign, values, p, on_grid, observed)
        late: list[tuple] = []
        for campaign in self.kinds["after"]:
            found = values.rows.items() if on_grid else values.get(observed, [campaign.anchor]).items()
            for key, row in found:
                anchor = value_of(row, campaign.anchor)
                if row is not None and anchor is not None:
                    self._candidate(campaign, key, anchor, p, late)
        for name, key, anchor in sorted(self.pending.pop(p, ()), key=repr):
            late.append((p, self.by_name[name], key, anchor))
        self._confirm(late, values, p)
        identities: dict[int, str] = {}  # a row matched by several campaigns is hashed once
        for row, campaign in matched:
            identity = identities.get(id(row))
            if identity is None:
                identity = identities[id(row)] = f"event:{p.isoformat()}:{row_key(row, self.schema)}"
            self._fire(campaign, row["customer_id"], p, identity, p)
        self._insert_later()
        self._process(values, p, customer)

    def _prime(self, values: InstantValues, p, on_grid, schedules, dates) -> None:
        """One evaluation for everyone who can fire at `p` on a schedule, a date or a grid tick."""
        exprs: list[ast.Expr] = []
        wheres: list[ast.Expr] = []
        everyone = False
        for campaign in [*schedules, *dates]:
            exprs += campaign.firing_exprs(p)
            if campaign.kind == "date":
                exprs += [e for e in (campaign.anchor, campaign.where) if e is not None]
            if campaign.audience is None:
                everyone = True
            else:
                wheres.append(campaign.audience)
        if on_grid:
            for campaign in self.kinds["when"]:
                exprs += [campaign.condition, *campaign.firing_exprs(p)]
                wheres.append(campaign.condition)
            for campaign in self.kinds["after"]:
                exprs.append(campaign.anchor)
                wheres.append(self._recent(campaign))
        if exprs or wheres or everyone:
            values.prime([*exprs, *wheres], None if everyone else any_of(wheres))

    def _recent(self, campaign: Campaign) -> ast.Expr:
        """A condition true for every anchor whose `after` instant can be past the campaign's origin (and
        for a few more): anchors long before it need not leave the database."""
        floor = shift(self.origin[campaign.name], campaign.trigger.delay, -1) - timedelta(days=2)
        return ast.Compare(op=ast.CompareOp.GT, left=campaign.anchor,
                           right=ast.Literal(value=floor, type=t.TIMESTAMP), type=t.BOOL)

    def _match_events(self, values: InstantValues, p, rows) -> list[tuple[dict, Campaign]]:
        """The (row, campaign) pairs of event rows at `p` whose trigger matches and whose customer is in
        the audience; the values those customers need at `p` are evaluated at once."""
        if not rows:
            return []
        ctx = None
        candidates = []
        for row in rows:
            listening = self.by_type.get(row.get("type"), ())
            if not listening:
                continue
            if ctx is None:
                ctx = self._ctx[1] if self._ctx[0] == p else None
                if ctx is None:
                    from crmrules.context import evaluation_context

                    ctx = evaluation_context(p, self.schema)
                    self._ctx = (p, ctx)
                sources = self._sources
            event = {sources[name]: value for name, value in row.items() if name in sources}
            for campaign in listening:
                if campaign.event_holds(event, ctx):
                    candidates.append((row, campaign))
        exprs = [e for _, c in candidates for e in c.firing_exprs(p)]
        if self.evaluated:
            exprs += [e for c in self.kinds["when"] for e in (c.condition, *c.firing_exprs(p))]
            exprs += [c.anchor for c in self.kinds["after"]]
            ids = [row["customer_id"] for row in rows]
        else:
            ids = [row["customer_id"] for row, _ in candidates]
        if not ids:
            return []
        found = values.get(ids, exprs)
        matched = []
        counted = set()
        for row, campaign in candidates:
            person = found.get(row["customer_id"])
            if person is None:
                if id(row) not in counted:
                    counted.add(id(row))
                    self.unknown_events += 1
            elif holds(person, campaign.audience):
                matched.append((row, campaign))
        return matched

    def _dates(self, campaign: Campaign, values: InstantValues, p: datetime) -> None:
        day = p.date()
        for key, row in values.rows_holding(campaign.audience):
            anchor = value_of(row, campaign.anchor)
            if campaign.recurring is not None:
                _, offset, sign = campaign.recurring
                hit = clock.recurs_on(anchor, offset, sign, day)
            else:
                hit = anchor is not None and (anchor.date() if isinstance(anchor, datetime) else anchor) == day
            if hit and holds(row, campaign.where):
                self._fire(campaign, key, p, "date:" + day.isoformat(), p)

    def _crossings(self, campaign: Campaign, values: InstantValues, p, on_grid: bool, ids: list[str]) -> None:
        held = self.held[campaign.name]
        if on_grid:
            now = {key: row for key, row in values.rows.items() if value_of(row, campaign.condition) is True}
            changes = [(key, False) for key, was in held.items() if was and key not in now]
            candidates = now.items()
        else:
            found = values.get(ids, [campaign.condition, *campaign.firing_exprs(p)])
            candidates = [(key, row) for key, row in found.items()
                          if row is not None and value_of(row, campaign.condition) is True]
            changes = [(key, False) for key, row in found.items()
                       if row is not None and held.get(key) and value_of(row, campaign.condition) is not True]
        for key, row in candidates:
            if not held.get(key):
                changes.append((key, True))
                if holds(row, campaign.audience):
                    self._fire(campaign, key, p, "when:" + p.isoformat(), p)
        for key, now_held in changes:
            held[key] = now_held
        if changes:
            self._begin()
            self.outbox.set_states(campaign.name, [(key, value, p) for key, value in changes])

    def _candidate(self, campaign: Campaign, key: str, anchor, p: datetime, late: list) -> None:
        """An `after` firing seen at `p`: pending until its instant, confirmed now when that has come."""
        if self.seen[campaign.name].get(key) == anchor:
            return
        x = clock.after_instant(anchor, campaign.trigger.delay, campaign.trigger.at)
        if x <= self.origin[campaign.name] or (self.end is not None and x > self.end and x > p):
            return  # before the campaign's first run; or later than this run: found again by the next
        if x > p:
            if (campaign.name, key, anchor) not in self.pending.get(x, ()):
                self.pending.setdefault(x, set()).add((campaign.name, key, anchor))
                self._push(x)
            return
        late.append((x, campaign, key, anchor))

    def _confirm(self, late: list[tuple], values: InstantValues, p: datetime) -> None:
        """Fire each `after` candidate whose anchor is still the same at its instant and whose `where`
        and audience hold then; either way that anchor value is done with."""
        by_instant: dict[datetime, list[tuple]] = defaultdict(list)
        for x, campaign, key, anchor in late:
            by_instant[x].append((campaign, key, anchor))
        for x in sorted(by_instant):
            at_x = values if x == p else InstantValues(self.evaluator, x)
            group = by_instant[x]
            exprs = [e for c, _, _ in group for e in (c.anchor, c.where, *c.firing_exprs(x)) if e is not None]
            found = at_x.get([key for _, key, _ in group], exprs)
            done = defaultdict(list)
            for campaign, key, anchor in group:
                if self.seen[campaign.name].get(key) == anchor:
                    continue
                row = found.get(key)
                if row is not None and value_of(row, campaign.anchor) == anchor and holds(row, campaign.where) \
                        and holds(row, campaign.audience):
                    self._fire(campaign, key, x, "after:" + anchor.isoformat(), p)
                self.seen[campaign.name][key] = anchor
                done[campaign.name].append((key, anchor, x))
            for name, observations in done.items():
                self._begin()
                self.outbox.set_states(name, observations)

    # ------------------------------------------------------------------------------- messages
    def _fire(self, campaign: Campaign, key: str, fired: datetime, identity: str, p: datetime) -> None:
        due = campaign.due_at(fired)
        message = Message(id=message_id(campaign.name, key, identity), campaign=campaign.name, customer_id=key,
                          channel=campaign.channel, args={}, fired_at=fired, due_at=due, status="scheduled",
                          updated_at=fired)
        if due > p:
            self._later.append(message)
        else:
            self._due_now.append(message)

    def _insert_later(self) -> None:
        """Store the messages fired in this step and due later (`scheduled`): one existence check, one batch."""
        later, self._later = self._later, []
        if not later:
            return
        unique = list({m.id: m for m in reversed(later)}.values())[::-1]  # the first of each id
        existing = self._existing(unique)
        added = [m for m in unique if m.id not in existing]
        self._write(added, [])
        for message in added:
            self.changed[message.id] = message
            self._push(message.due_at)

    # ------------------------------------------------------------------------------- the outbox, in batches
    def _cached(self, customer: str) -> dict[str, Message] | None:
        """Streaming keeps each customer's messages in memory once read (`hot`); None when it does not."""
        hot = self.hot
        if hot is None:
            return None
        mine = hot.get(customer)
        if mine is None:
            self._flush()
            mine = hot[customer] = {}
            self._waiting[customer], self._counts[customer] = {}, {}
            for message in self.outbox.customer_messages(customer):
                self._keep(mine, message)
        return mine

    def _keep(self, mine: dict[str, Message], message: Message) -> None:
        """Put a message in its customer's `hot` messages, and in the indexes of the scheduled ones and of
        what caps and limits count."""
        key = message.customer_id
        mine[message.id] = message
        waiting, counts = self._waiting[key], self._counts[key]
        if message.status == "scheduled":
            waiting[message.id] = message
        else:
            waiting.pop(message.id, None)
        if message.status in COUNTED:
            counts[message.id] = (key, message.campaign, message.channel, message.due_at)
        else:
            counts.pop(message.id, None)

    def _existing(self, messages: list[Message]) -> set[str]:
        """The ids among these messages that the outbox holds already."""
        found, asked = set(), []
        for message in messages:
            mine = self._cached(message.customer_id) if self.hot is not None else None
            if mine is None:
                asked.append(message.id)
            elif message.id in mine:
                found.add(message.id)
        if asked:
            self._flush()
            found |= self.outbox.existing_ids(asked)
        return found

    def _counted_rows(self, customers: list[str], since: datetime, until: datetime) -> list[tuple]:
        """(customer, campaign, channel, due_at) of the counted messages of these customers in (since, until]."""
        rows, asked = [], []
        for key in customers:
            mine = self._cached(key) if self.hot is not None else None
            if mine is None:
                asked.append(key)
                continue
            rows += [row for row in self._counts[key].values() if since < row[3] <= until]
        if asked:
            self._flush()
            rows += self.outbox.counted_rows(asked, since, until)
        return rows

    def _write(self, inserts: list[Message], updates: list[Message]) -> None:
        """New messages (ids known absent) and new states of stored ones: written by `_flush`, in memory
        (`hot`) at once."""
        self._inserts += inserts
        self._updates += updates
        hot = self.hot
        if hot is not None:
            for message in (*inserts, *updates):
                mine = hot.get(message.customer_id)
                if mine is not None:
                    self._keep(mine, message)

    def _flush(self) -> None:
        """Write the step's pending messages: a statement batch for the new ones, one for the changed ones.
        Called at the end of the step and before any read of the outbox, which must see them."""
        inserts, updates = self._inserts, self._updates
        if not inserts and not updates:
            return
        self._inserts, self._updates = [], []
        self._begin()
        if inserts and updates:
            self.outbox.put_many([*inserts, *updates])  # one statement batch for both
        elif inserts:
            self.outbox.insert_many(inserts)
        else:
            self.outbox.update_many([(m.id, m.status, m.updated_at, m.args) for m in updates])

    def _scheduled(self, p: datetime, customer: str | None) -> list[Message]:
        mine = self._cached(customer) if customer is not None and self.hot is not None else None
        if mine is None:
            self._flush()
            return self.outbox.scheduled(until=p, customer_id=customer)
        return sorted((m for m in self._waiting[customer].values() if m.due_at <= p),
                      key=lambda m: (m.due_at, m.id))

    def _process(self, values: InstantValues, p: datetime, customer: str | None) -> None:
        """Every message due by `p`, in order: due instant, priority, declaration order, customer. Per due
        instant: one read of what caps and limits count, then the decisions, then one batch of writes."""
        stored = self._scheduled(p, customer)
        known = {m.id for m in stored}
        fresh = [m for m in self._due_now if m.id not in known and not known.add(m.id)]
        if fresh:
            existing = self._existing(fresh)  # a firing met again: its message is there already
            fresh = [m for m in fresh if m.id not in existing]
        batch = [(m, False) for m in stored] + [(m, True) for m in fresh]
        if not batch:
            return
        self.budgets.begin()
        order = self._order
        batch.sort(key=lambda item: (item[0].due_at, *order.get(item[0].campaign, (0, 0)),
                                     item[0].customer_id, item[0].id))
        groups: dict[datetime, list[tuple[Message, bool]]] = defaultdict(list)
        for item in batch:
            groups[item[0].due_at].append(item)
        by_name = self.by_name
        for due, items in groups.items():
            at_due = values if due == p else InstantValues(self.evaluator, due)
            exprs = [e for m, _ in items if m.campaign in by_name for e in by_name[m.campaign].due_exprs]
            rows = at_due.get([m.customer_id for m, _ in items], exprs)
            tally = self._tally(due, [m for m, _ in items])
            inserts, updates = [], []
            for message, new in items:
                campaign = by_name.get(message.campaign)
                if campaign is None:
                    continue  # a campaign no longer in the rules: its messages stay as they are
                key = message.customer_id
                status, args = self.decide(campaign, message, rows.get(key), tally)
                self.budgets.note(campaign.name, status)
                if status in COUNTED:
                    tally[(key, 0, campaign.name)] += 1
                    tally[(key, 1, campaign.channel)] += 1
                done = Message(id=message.id, campaign=message.campaign, customer_id=key, channel=message.channel,
                               args=args, fired_at=message.fired_at, due_at=due, status=status, updated_at=due)
                (inserts if new else updates).append(done)
                self.changed[done.id] = done
            self._write(inserts, updates)

    def _tally(self, due: datetime, messages: list[Message]) -> dict[tuple, int]:
        """{(customer, 0, campaign) | (customer, 1, channel): count} of the counted messages in each cap's
        and each channel limit's window ending at `due`, for these messages' customers (one read)."""
        caps: dict[str, datetime] = {}  # campaign -> start of its cap's window (exclusive)
        limits: dict[str, datetime] = {}  # channel -> start of its limit's window (exclusive)
        by_name = self.by_name
        for message in messages:
            campaign = by_name.get(message.campaign)
            if campaign is None:
                continue
            cap = campaign.decl.cap
            if cap is not None and campaign.name not in caps:
                caps[campaign.name] = self._window(due, cap.per)
            limit = self.limits.get(campaign.channel)
            if limit is not None and campaign.channel not in limits:
                limits[campaign.channel] = self._window(due, limit.per)
        tally: dict[tuple, int] = defaultdict(int)
        if not caps and not limits:
            return tally
        customers = list(dict.fromkeys(m.customer_id for m in messages))
        for key, name, channel, at in self._counted_rows(customers, min([*caps.values(), *limits.values()]), due):
            since = caps.get(name)
            if since is not None and at > since:
                tally[(key, 0, name)] += 1
            since = limits.get(channel)
            if since is not None and at > since:
                tally[(key, 1, channel)] += 1
        return tally

    def _window(self, due: datetime, per) -> datetime:
        """The exclusive start of a cap's or limit's window `per` long ending at `due`."""
        since = self._since.get((due, per))
        if since is None:
            if len(self._since) > 4096:
                self._since.clear()
            since = self._since[(due, per)] = shift(due, per, -1)
        return since

    def decide(self, campaign: Campaign, message: Message, row: dict | None, tally: dict) -> tuple[str, dict]:
        """The status of a message at its due instant, and its action arguments then; `tally` holds the
        counted messages in each cap's and limit's window (`_tally`)."""
        args = {arg.name: value_of(row, arg.value) for arg in campaign.args}
        if (campaign.unless is not None and value_of(row, campaign.unless) is True) or \
                not holds(row, campaign.audience) or row is None:
            return "cancelled", args
        if campaign.consent is not None:
            flag, address = campaign.consent
            if value_of(row, flag) is not True or value_of(row, address) is None:
                return "no_consent", args
        key = message.customer_id
        cap = campaign.decl.cap
        if cap is not None and tally.get((key, 0, campaign.name), 0) >= cap.count:
            return "capped", args
        limit = self.limits.get(campaign.channel)
        if limit is not None and tally.get((key, 1, campaign.channel), 0) >= limit.count:
            return "capped", args
        if self.budgets.over(campaign.name):  # before the holdout draw: both groups stop together
            return "over_budget", args
        if clock.held_out(campaign.name, key, campaign.decl.holdout):
            return "holdout", args
        return "ready", args


__all__ = ["MARKER", "Campaign", "InstantValues", "Planner"]
