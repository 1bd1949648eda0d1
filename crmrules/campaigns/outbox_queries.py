"""What every outbox database shares: the queries (written once, `?` placeholders), the error, the
encoding of trigger state. `outbox.py` opens an outbox (SQLite there, PostgreSQL in `outbox_postgres.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Self

from crmrules.campaigns.messages import COUNTED, STATUSES, Message, jsonable
from crmrules.errors import CrmRulesError, InternalError

FORMAT = "crmrules-outbox"
VERSION = "2"  # 2 added `outbox_delivery`; a version-1 outbox is upgraded in place when opened (`UPGRADES`)
READABLE = ("1", VERSION)
TABLES = ("outbox", "outbox_state", "outbox_meta", "outbox_delivery")
_COLUMNS = "id, campaign, customer_id, channel, args, fired_at, due_at, status, updated_at"


class OutboxError(CrmRulesError):
    """An outbox that cannot be opened or used: not an outbox, unreachable, a newer format."""

    code = "E0701"


# ------------------------------------------------------------------------------------- state values
def _encode_state(value) -> str:
    """A `when` observation as JSON, with its Python type kept (a Decimal stays a Decimal)."""
    return _ENCODE(_tag(value))


# one encoder, made once: json.dumps with options builds a new one per call, a third of an insert's cost
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _args_text(args: dict, cache: dict) -> str:
    """A message's arguments as JSON text; the same arguments (a campaign's constant ones) encoded once."""
    try:
        key = tuple(args.items())
        text = cache.get(key)
    except TypeError:  # a list among the values: not hashable, encode it every time
        return _ENCODE(args)
    if text is None:
        if len(cache) > 10_000:
            cache.clear()
        text = cache[key] = _ENCODE(args)
    return text


def _tag(value):
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, (list, tuple)):
        return [_tag(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _tag(item) for key, item in value.items()}
    return value


def _untag(value):
    if isinstance(value, list):
        return [_untag(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (key, item), = value.items()
            if key == "$decimal":
                return Decimal(item)
            if key == "$datetime":
                return datetime.fromisoformat(item)
            if key == "$date":
                return date.fromisoformat(item)
        return {key: _untag(item) for key, item in value.items()}
    return value


def _naive(instant: datetime, what: str) -> datetime:
    if not isinstance(instant, datetime) or instant.tzinfo is not None:
        raise InternalError(f"outbox {what} must be a naive datetime in the store's zone, not {instant!r}")
    return instant


# ------------------------------------------------------------------------------------------- the base
class Outbox:
    """What both databases share: the queries, written once with `?` placeholders."""

    kind = "outbox"

    def __init__(self):
        self._depth = 0
        self._texts: dict = {}  # arguments already encoded

    # -- what each database does its own way
    def _execute(self, sql: str, params: tuple = ()):
        raise NotImplementedError

    def _executemany(self, sql: str, rows: list[tuple]) -> int:
        raise NotImplementedError

    def _begin(self) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError

    def _ts(self, instant: datetime):
        """An instant as the database stores it."""
        raise NotImplementedError

    def _instant(self, stored) -> datetime:
        """An instant as the database gave it back."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- transactions
    @contextmanager
    def transaction(self) -> Iterator[Outbox]:
        """One atomic unit of writes; concurrent runs wait for each other. Nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield self
            self._depth = 0
            self._commit()
        except BaseException:
            self._depth = 0
            self._rollback()  # also when the commit itself failed: the connection stays usable
            raise

    @contextmanager
    def _writing(self) -> Iterator[None]:
        if self._depth:
            yield
        else:
            with self.transaction():
                yield

    # -- last run
    def last_run(self) -> datetime | None:
        """The end of the last committed run, or None before the first."""
        row = self._execute("SELECT value FROM outbox_meta WHERE key = 'last_run'").fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    def set_last_run(self, instant: datetime) -> None:
        """Record the end of the period processed (in the same transaction as its messages)."""
        text = _naive(instant, "last run").isoformat()
        with self._writing():
            self._execute("INSERT INTO outbox_meta (key, value) VALUES ('last_run', ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (text,))

    # -- messages
    def _row(self, message: Message) -> tuple:
        if message.status not in _KNOWN:
            _status(message.status)
        return (message.id, message.campaign, message.customer_id, message.channel,
                _args_text(message.args, self._texts), self._ts(_naive(message.fired_at, "fired_at")),
                self._ts(_naive(message.due_at, "due_at")), message.status,
                self._ts(_naive(message.updated_at, "updated_at")))

    def _message(self, row) -> Message:
        return Message(id=row[0], campaign=row[1], customer_id=row[2], channel=row[3], args=json.loads(row[4]),
                       fired_at=self._instant(row[5]), due_at=self._instant(row[6]), status=row[7],
                       updated_at=self._instant(row[8]))

    def insert(self, message: Message) -> bool:
        """Add a message unless one with its id exists; True when it was added."""
        with self._writing():
            cursor = self._execute(f"INSERT INTO outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                   "ON CONFLICT (id) DO NOTHING", self._row(message))
            return cursor.rowcount == 1

    def insert_many(self, messages: Iterable[Message]) -> int:
        """Add every message whose id is absent, in one statement batch; how many were added."""
        rows = [self._row(message) for message in messages]
        if not rows:
            return 0
        with self._writing():
            return self._executemany(f"INSERT INTO outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                     "ON CONFLICT (id) DO NOTHING", rows)

    def update(self, id: str, status: str, updated_at: datetime, args: dict | None = None) -> None:
        """Set a message's status (and, when given, its evaluated action arguments)."""
        stamp = self._ts(_naive(updated_at, "updated_at"))
        with self._writing():
            if args is None:
                self._execute("UPDATE outbox SET status = ?, updated_at = ? WHERE id = ?",
                              (_status(status), stamp, id))
            else:
                text = _ENCODE(jsonable(dict(args)))
                self._execute("UPDATE outbox SET status = ?, updated_at = ?, args = ? WHERE id = ?",
                              (_status(status), stamp, text, id))

    def get(self, id: str) -> Message | None:
        """The message with this id, or None."""
        row = self._execute(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (id,)).fetchone()
        return self._message(row) if row else None

    def scheduled(self, until: datetime, customer_id: str | None = None) -> list[Message]:
        """Messages still `scheduled` and due at or before `until`, by due instant then id."""
        sql = f"SELECT {_COLUMNS} FROM outbox WHERE status = 'scheduled' AND due_at <= ?"
        params: tuple = (self._ts(_naive(until, "until")),)
        if customer_id is not None:
            sql += " AND customer_id = ?"
            params += (str(customer_id),)
        rows = self._execute(sql + " ORDER BY due_at, id", params).fetchall()
        return [self._message(row) for row in rows]

    def counted(self, customer_id: str, since_exclusive: datetime, until_inclusive: datetime,
                campaign: str | None = None, channel: str | None = None) -> int:
        """How many of a customer's messages count for caps (ready, delivered, holdout) with due_at in
        (since, until], of one campaign or one channel when given."""
        sql = (f"SELECT COUNT(*) FROM outbox WHERE customer_id = ? AND status IN ({', '.join('?' * len(COUNTED))})"
               " AND due_at > ? AND due_at <= ?")
        params: tuple = (str(customer_id), *COUNTED, self._ts(_naive(since_exclusive, "since")),
                         self._ts(_naive(until_inclusive, "until")))
        if campaign is not None:
            sql += " AND campaign = ?"
            params += (campaign,)
        if channel is not None:
            sql += " AND channel = ?"
            params += (channel,)
        return int(self._execute(sql, params).fetchone()[0])

    def messages(self, status: str | None = None, campaign: str | None = None) -> list[Message]:
        """Every message (of one status, of one campaign), by due instant, campaign, customer id."""
        sql, params = f"SELECT {_COLUMNS} FROM outbox WHERE 1 = 1", ()
        if status is not None:
            sql += " AND status = ?"
            params += (status,)
        if campaign is not None:
            sql += " AND campaign = ?"
            params += (campaign,)
        rows = self._execute(sql + " ORDER BY due_at, campaign, customer_id, id", params).fetchall()
        return [self._message(row) for row in rows]

    def summary(self, status: str | None = None, campaign: str | None = None) -> dict[str, dict[str, int]]:
        """How many messages each campaign has in each status: {campaign: {status: count}}, sorted by name."""
        sql, params = "SELECT campaign, status, COUNT(*) FROM outbox WHERE 1 = 1", ()
        if status is not None:
            sql += " AND status = ?"
            params += (status,)
        if campaign is not None:
            sql += " AND campaign = ?"
            params += (campaign,)
        counts: dict[str, dict[str, int]] = {}
        for name, state, count in self._execute(sql + " GROUP BY campaign, status ORDER BY campaign", params):
            counts.setdefault(name, {})[state] = int(count)
        order = {state: index for index, state in enumerate(STATUSES)}
        return {name: dict(sorted(by.items(), key=lambda item: order.get(item[0], 99)))
                for name, by in counts.items()}

    # -- trigger state
    def state(self, campaign: str, customer_id: str) -> tuple[object, datetime] | None:
        """The last observation of a `when` trigger for a customer: (value, observed_at), or None."""
        row = self._execute("SELECT value, observed_at FROM outbox_state WHERE campaign = ? AND customer_id = ?",
                            (campaign, str(customer_id))).fetchone()
        return (_untag(json.loads(row[0])), self._instant(row[1])) if row else None

    def set_state(self, campaign: str, customer_id: str, value, observed_at: datetime) -> None:
        """Record an observation of a `when` trigger (its type survives: Decimal, date, datetime)."""
        with self._writing():
            self._execute("INSERT INTO outbox_state (campaign, customer_id, value, observed_at) VALUES (?, ?, ?, ?) "
                          "ON CONFLICT (campaign, customer_id) DO UPDATE SET value = excluded.value, "
                          "observed_at = excluded.observed_at",
                          (campaign, str(customer_id), _encode_state(value),
                           self._ts(_naive(observed_at, "observed_at"))))

    def states(self, campaign: str) -> dict[str, tuple[object, datetime]]:
        """Every customer's last observation of one `when` trigger (one query for a whole base)."""
        rows = self._execute("SELECT customer_id, value, observed_at FROM outbox_state WHERE campaign = ?",
                             (campaign,)).fetchall()
        return {row[0]: (_untag(json.loads(row[1])), self._instant(row[2])) for row in rows}

    def set_states(self, campaign: str, observations: Iterable[tuple[str, object, datetime]]) -> None:
        """Record many observations of one `when` trigger: (customer_id, value, observed_at) each."""
        rows = [(campaign, str(customer), _encode_state(value), self._ts(_naive(at, "observed_at")))
                for customer, value, at in observations]
        if rows:
            with self._writing():
                self._executemany("INSERT INTO outbox_state (campaign, customer_id, value, observed_at) "
                                  "VALUES (?, ?, ?, ?) ON CONFLICT (campaign, customer_id) DO UPDATE SET "
                                  "value = excluded.value, observed_at = excluded.observed_at", rows)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- batches for the planner (added by the ENGINE helper): a few statements for many messages
    _CHUNK = 500  # ids listed per statement

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of these message ids are in the outbox already."""
        ids = list(dict.fromkeys(ids))
        found: set[str] = set()
        for index in range(0, len(ids), self._CHUNK):
            chunk = ids[index:index + self._CHUNK]
            rows = self._execute(f"SELECT id FROM outbox WHERE id IN ({', '.join('?' * len(chunk))})", tuple(chunk))
            found.update(row[0] for row in rows.fetchall())
        return found

    _COUNTED_ROWS = "SELECT customer_id, campaign, channel, due_at FROM outbox"

    def counted_rows(self, customer_ids: Iterable[str], since_exclusive: datetime,
                     until_inclusive: datetime) -> list[tuple[str, str, str, datetime]]:
        """(customer_id, campaign, channel, due_at) of these customers' messages that count for caps and
        limits (ready, delivered, holdout) with due_at in (since, until]: what `counted` counts, for many."""
        ids = list(dict.fromkeys(str(i) for i in customer_ids))
        since = self._ts(_naive(since_exclusive, "since"))
        until = self._ts(_naive(until_inclusive, "until"))
        out = []
        for index in range(0, len(ids), self._CHUNK):
            chunk = ids[index:index + self._CHUNK]
            rows = self._execute(f"{self._COUNTED_ROWS} WHERE customer_id IN ({', '.join('?' * len(chunk))}) "
                                 f"AND status IN ({', '.join('?' * len(COUNTED))}) AND due_at > ? AND due_at <= ?",
                                 (*chunk, *COUNTED, since, until)).fetchall()
            out += [(row[0], row[1], row[2], self._instant(row[3])) for row in rows]
        return out

    def update_many(self, changes: Iterable[tuple[str, str, datetime, dict]]) -> None:
        """`update(id, status, updated_at, args)` for many messages, in one statement batch."""
        rows = [(_status(status), self._ts(_naive(updated_at, "updated_at")), _ENCODE(jsonable(dict(args))), id)
                for id, status, updated_at, args in changes]
        if rows:
            with self._writing():
                self._executemany("UPDATE outbox SET status = ?, updated_at = ?, args = ? WHERE id = ?", rows)

    def customer_messages(self, customer_id: str) -> list[Message]:
        """Every message of one customer (any status), by due instant then id."""
        rows = self._execute(f"SELECT {_COLUMNS} FROM outbox WHERE customer_id = ? ORDER BY due_at, id",
                             (str(customer_id),)).fetchall()
        return [self._message(row) for row in rows]

    def put_many(self, messages: Iterable[Message]) -> None:
        """New messages and new states of scheduled ones, in one statement batch (added by the ENGINE helper
        for streaming's one write per event): a message whose id is absent is inserted; a stored one still
        `scheduled` takes the given status, updated_at and args (as `update_many`); any other is left alone."""
        rows = [self._row(message) for message in messages]
        if rows:
            with self._writing():
                self._executemany(f"INSERT INTO outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                  "ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = "
                                  "excluded.updated_at, args = excluded.args WHERE outbox.status = 'scheduled'", rows)


    # -- delivery (`campaigns deliver`): claims, outcomes, attempts; `outbox_delivery` holds one row per
    # message ever claimed: who claimed it and when (UTC wall clock), attempts, the last error, when it was sent
    def due_counts(self, due_by: datetime) -> dict[str, int]:
        """How many `ready` messages are due by `due_by`, per channel."""
        rows = self._execute("SELECT channel, COUNT(*) FROM outbox WHERE status = 'ready' AND due_at <= ? "
                             "GROUP BY channel ORDER BY channel", (self._ts(_naive(due_by, "due_by")),))
        return {row[0]: int(row[1]) for row in rows.fetchall()}

    def due_arguments(self, channel: str, due_by: datetime, reclaim: Iterable[str] = (),
                      stale_before: datetime | None = None) -> Iterator[dict]:
        """The arguments of what a deliverer of `channel` may claim (see `claim`), one dict per message."""
        for sql, params in self._claimable(channel, due_by, reclaim, stale_before):
            for row in self._execute(f"SELECT o.args FROM outbox o {sql}", params).fetchall():
                yield json.loads(row[0])

    def _claimable(self, channel: str, due_by: datetime, reclaim: Iterable[str],
                   stale_before: datetime | None) -> list[tuple[str, tuple]]:
        """What a deliverer may claim, as two queries (each walks an index on its own; one with OR would scan the
        outbox): `sending` under a claim given up — by an owner named in `reclaim` (a process known to be gone),
        older than `stale_before` (a lease run out), or with no claim recorded — and `ready` ones due by `due_by`."""
        owners = list(reclaim)
        stale = ["d.id IS NULL"]
        params: list = [channel]
        if owners:
            stale.append(f"d.claimed_by IN ({', '.join('?' * len(owners))})")
            params += owners
        if stale_before is not None:
            stale.append("d.claimed_at < ?")
            params.append(self._ts(_naive(stale_before, "stale_before")))
        join = "LEFT JOIN outbox_delivery d ON d.id = o.id"
        return [(f"{join} WHERE o.status = 'sending' AND o.channel = ? AND ({' OR '.join(stale)})", tuple(params)),
                (f"{join} WHERE o.status = 'ready' AND o.due_at <= ? AND o.channel = ?",
                 (self._ts(_naive(due_by, "due_by")), channel))]

    def claims(self) -> dict[str, int]:
        """Who holds messages in `sending`: {claimed_by: how many} (an empty owner for a claim unrecorded)."""
        rows = self._execute("SELECT COALESCE(d.claimed_by, ''), COUNT(*) FROM outbox o LEFT JOIN outbox_delivery d "
                             "ON d.id = o.id WHERE o.status = 'sending' GROUP BY COALESCE(d.claimed_by, '')")
        return {row[0]: int(row[1]) for row in rows.fetchall()}

    def claim(self, channel: str, due_by: datetime, owner: str, claimed_at: datetime, limit: int,
              reclaim: Iterable[str] = (), stale_before: datetime | None = None) -> list[tuple[Message, int, bool]]:
        """Claim up to `limit` messages of `channel` for delivery, in one transaction: due `ready` ones and
        `sending` ones whose claim was given up (see `_claimable`); they become `sending` under `owner`.
        (message, attempts so far, taken over from another claim?) each, oldest first. Two deliverers never
        claim the same one."""
        columns = ", ".join(f"o.{name}" for name in _COLUMNS.split(", "))
        stamp = self._ts(_naive(claimed_at, "claimed_at"))
        with self._writing():
            rows: list = []
            # taken-over claims first (they are the oldest); then by due instant: the (status, due_at) index's
            # order, so a chunk reads only its own rows (messages due at the same instant: in insertion order)
            for sql, params in self._claimable(channel, due_by, reclaim, stale_before):
                if len(rows) < limit:
                    rows += self._execute(f"SELECT {columns}, COALESCE(d.attempts, 0) FROM outbox o {sql} "
                                          "ORDER BY o.due_at LIMIT ?", (*params, int(limit) - len(rows))).fetchall()
            if not rows:
                return []
            ids = [(row[0],) for row in rows]
            self._executemany("UPDATE outbox SET status = 'sending' WHERE id = ?", ids)
            self._executemany("INSERT INTO outbox_delivery (id, attempts, claimed_by, claimed_at) VALUES (?, 0, ?, ?) "
                              "ON CONFLICT (id) DO UPDATE SET claimed_by = excluded.claimed_by, "
                              "claimed_at = excluded.claimed_at", [(id, owner, stamp) for (id,) in ids])
        return [(replace(self._message(row[:9]), status="sending"), int(row[9]), row[7] == "sending") for row in rows]

    def finish_delivery(self, id: str, owner: str, status: str, updated_at: datetime, attempts: int,
                        error: str | None, sent_at: datetime | None) -> bool:
        """Record a claimed message's outcome (`delivered` or `failed`), its attempts and last error; False
        when it was no longer `sending` under `owner` (another deliverer took it over: its outcome stands)."""
        return bool(self.finish_deliveries(owner, updated_at, [(id, status, attempts, error, sent_at)]))

    def finish_deliveries(self, owner: str, updated_at: datetime,
                          outcomes: Iterable[tuple[str, str, int, str | None, datetime | None]]) -> set[str]:
        """`finish_delivery` for many messages, (id, status, attempts, error, sent_at) each, in one
        transaction; the ids recorded."""
        outcomes = list(outcomes)
        stamp = self._ts(_naive(updated_at, "updated_at"))
        recorded: set[str] = set()
        with self._writing():
            for start in range(0, len(outcomes), self._CHUNK):
                chunk = outcomes[start:start + self._CHUNK]
                rows = self._execute("SELECT o.id FROM outbox o JOIN outbox_delivery d ON d.id = o.id WHERE "
                                     f"o.id IN ({', '.join('?' * len(chunk))}) AND o.status = 'sending' AND "
                                     "d.claimed_by = ?", (*(item[0] for item in chunk), owner)).fetchall()
                held = {row[0] for row in rows}
                mine = [item for item in chunk if item[0] in held]
                for _, status, _, _, _ in mine:
                    if status not in ("delivered", "failed"):
                        raise InternalError(f"a delivery ends delivered or failed, not {status}")
                if mine:
                    self._executemany("UPDATE outbox SET status = ?, updated_at = ? WHERE id = ?",
                                      [(status, stamp, id) for id, status, _, _, _ in mine])
                    self._executemany("UPDATE outbox_delivery SET attempts = attempts + ?, last_error = ?, "
                                      "sent_at = ? WHERE id = ?",
                                      [(int(attempts), error, None if sent is None else
                                        self._ts(_naive(sent, "sent_at")), id)
                                       for id, _, attempts, error, sent in mine])
                recorded.update(held)
        return recorded

    def release(self, ids: Iterable[str], owner: str) -> int:
        """Give claimed messages not yet sent back (`ready`); how many were released."""
        rows = [(id, owner) for id in ids]
        if not rows:
            return 0
        with self._writing():
            return self._executemany("UPDATE outbox SET status = 'ready' WHERE id = ? AND status = 'sending' AND "
                                     "EXISTS (SELECT 1 FROM outbox_delivery d WHERE d.id = outbox.id AND "
                                     "d.claimed_by = ?)", rows)

    def delivery(self, id: str) -> dict | None:
        """What delivery recorded of a message: attempts, last_error, claimed_by, claimed_at, sent_at."""
        row = self._execute("SELECT attempts, last_error, claimed_by, claimed_at, sent_at FROM outbox_delivery "
                            "WHERE id = ?", (id,)).fetchone()
        if row is None:
            return None
        return {"attempts": int(row[0]), "last_error": row[1], "claimed_by": row[2],
                "claimed_at": None if row[3] is None else self._instant(row[3]),
                "sent_at": None if row[4] is None else self._instant(row[4])}


_KNOWN = frozenset(STATUSES)


def _status(status: str) -> str:
    if status not in STATUSES:
        raise InternalError(f"unknown message status `{status}`")
    return status


def check_marker(where: str, tables: set[str], read_meta) -> str:
    """The version of the outbox at `where`; OutboxError for anything that is not an outbox this crmrules reads."""
    if "outbox_meta" not in tables:
        raise OutboxError(f"{where} is not an outbox (a database without crmrules' outbox tables); "
                          "it was left unchanged",
                          hint="give --outbox a new file name, or an outbox written by `crmrules campaigns run`")
    meta = read_meta()
    if meta.get("format") != FORMAT:
        raise OutboxError(f"{where} is not an outbox (its outbox_meta table is not crmrules'); "
                          "it was left unchanged")
    if meta.get("version") not in READABLE:
        raise OutboxError(f"{where} is an outbox of format version {meta.get('version')}, which this crmrules "
                          f"does not read (it reads versions {', '.join(READABLE)})", hint="upgrade crmrules")
    return meta["version"]
