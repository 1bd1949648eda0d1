"""The outbox: messages, trigger state and the last run's instant, in one transactional database.

`open_outbox(target)` takes a path (an SQLite file, created when absent), `":memory:"`, or a
`postgresql://` URL (psycopg 3). Three tables, the same in both:

- `outbox` — one row per message; `id` (the firing's idempotency key) is the primary key, so a
  rerun or a concurrent run can never add a second message for the same firing;
- `outbox_state` — the last observation of each `when` trigger per customer;
- `outbox_delivery` — what `campaigns deliver` recorded of a message: its claim (who, when), attempts,
  last error, when it was sent (version 2; a version-1 outbox is upgraded in place when opened);
- `outbox_meta` — `format` (marks the database as an outbox), `version`, `last_run`.

The PostgreSQL outbox is in `outbox_postgres.py`.

A file or database that exists but is not an outbox is refused (`OutboxError`) and never altered.
Every write happens inside `transaction()`; on SQLite that is `BEGIN IMMEDIATE` (on PostgreSQL a
row lock on the marker), so concurrent runs take turns, and a run killed mid-way leaves the state of
its last commit. A write called outside a transaction gets a transaction of its own.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from pathlib import Path

from crmrules.campaigns.outbox_queries import (
    FORMAT,
    VERSION,
    Outbox,
    OutboxError,
    check_marker,
)

_SQLITE_HEADER = b"SQLite format 3\x00"


def open_outbox(target: str | Path, create: bool = True) -> Outbox:
    """The outbox at `target`: an SQLite path (created when absent, unless `create` is false), ":memory:",
    or a postgresql:// URL."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from crmrules.campaigns.outbox_postgres import PostgresOutbox

        return PostgresOutbox(text)
    if not create and text != ":memory:" and not Path(text).exists():
        raise OutboxError(f"no outbox at {text}", hint="`crmrules campaigns run --outbox FILE` creates one")
    return SqliteOutbox(text)


# ------------------------------------------------------------------------------------------- SQLite
_SQLITE_SCHEMA = (
    "CREATE TABLE outbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ("CREATE TABLE outbox (id TEXT PRIMARY KEY, campaign TEXT NOT NULL, customer_id TEXT NOT NULL, "
    "channel TEXT NOT NULL, args TEXT NOT NULL, fired_at TEXT NOT NULL, due_at TEXT NOT NULL, "
    "status TEXT NOT NULL, updated_at TEXT NOT NULL)"),
    "CREATE INDEX outbox_due ON outbox (status, due_at)",
    "CREATE INDEX outbox_customer ON outbox (customer_id, due_at)",
    ("CREATE TABLE outbox_state (campaign TEXT NOT NULL, customer_id TEXT NOT NULL, value TEXT NOT NULL, "
    "observed_at TEXT NOT NULL, PRIMARY KEY (campaign, customer_id))"),
)
# version 1 → 2: what delivery records (`campaigns deliver`); an older outbox gets it when opened, in the
# transaction that checks its marker, so the upgrade happens whole or not at all
_SQLITE_UPGRADES = {"1": (
    ("CREATE TABLE outbox_delivery (id TEXT PRIMARY KEY, attempts INTEGER NOT NULL DEFAULT 0, claimed_by TEXT, "
     "claimed_at TEXT, last_error TEXT, sent_at TEXT)"),
)}


class SqliteOutbox(Outbox):
    """An outbox in an SQLite file (or in memory); instants stored as ISO text, which sorts as time."""

    kind = "sqlite"

    def __init__(self, path: str, timeout: float = 600.0):
        super().__init__()
        self.path = path
        self.timeout = timeout
        self._stamps: dict[datetime, str] = {}  # a run writes the same few instants many times
        if path != ":memory:":
            _refuse_foreign_file(Path(path))
        try:
            self.connection = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                              check_same_thread=False)
        except sqlite3.Error as error:
            raise OutboxError(f"cannot open the outbox {path}: {error}") from None
        try:
            self._initialise()
        except BaseException:
            self.connection.close()
            raise
        # a run inserts keys in hash order all over the primary key's tree: keep more of it in memory
        self.connection.execute("PRAGMA cache_size = -65536")
        self.connection.execute("PRAGMA synchronous = NORMAL")  # with WAL: a commit survives a killed process

    def _initialise(self) -> None:
        connection = self.connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            tables = {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
            created = not tables
            if created:
                for statement in (*_SQLITE_SCHEMA, *_SQLITE_UPGRADES["1"]):
                    connection.execute(statement)
                connection.executemany("INSERT INTO outbox_meta (key, value) VALUES (?, ?)",
                                       [("format", FORMAT), ("version", VERSION)])
            else:
                version = check_marker(self.path, tables, lambda: dict(connection.execute(
                    "SELECT key, value FROM outbox_meta WHERE key IN ('format', 'version')")))
                if version != VERSION:
                    for statement in _SQLITE_UPGRADES[version]:
                        connection.execute(statement)
                    connection.execute("UPDATE outbox_meta SET value = ? WHERE key = 'version'", (VERSION,))
            connection.execute("COMMIT")
        except sqlite3.OperationalError as error:  # read-only, locked past the timeout
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise OutboxError(f"cannot open the outbox {self.path}: {error}") from None
        except sqlite3.DatabaseError as error:  # a damaged file
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise OutboxError(f"{self.path} is not an outbox: {error}") from None
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        if self.path != ":memory:":
            self._use_wal()

    def _use_wal(self) -> None:
        """Readers never wait for a run's writes; the mode is kept in the file.

        Switching a file to WAL needs it to itself, and SQLite does not wait for that (no busy handler):
        a second run opening a new outbox at the same moment retries until the deadline. Once the file
        is in WAL mode the statement only reads the mode back."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise OutboxError(f"cannot open the outbox {self.path}: {error}") from None
                time.sleep(0.02)

    def _execute(self, sql: str, params: tuple = ()):
        try:
            return self.connection.execute(sql, params)
        except sqlite3.OperationalError as error:  # locked past the timeout, disk full, file removed
            raise OutboxError(f"the outbox {self.path} failed: {error}") from None

    def _executemany(self, sql: str, rows: list[tuple]) -> int:
        before = self.connection.total_changes
        try:
            self.connection.executemany(sql, rows)
        except sqlite3.OperationalError as error:
            raise OutboxError(f"the outbox {self.path} failed: {error}") from None
        return self.connection.total_changes - before

    def _begin(self) -> None:
        # IMMEDIATE: take the write lock now, so two runs take turns instead of failing at their first write
        self._execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        self._execute("COMMIT")

    def _rollback(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    def _ts(self, instant: datetime) -> str:
        text = self._stamps.get(instant)
        if text is None:
            if len(self._stamps) > 10_000:
                self._stamps.clear()
            text = self._stamps[instant] = instant.isoformat()
        return text

    def _instant(self, stored) -> datetime:
        return datetime.fromisoformat(stored)

    def close(self) -> None:
        self.connection.close()

    # the customer index, not the (status, due_at) one whose range holds every customer's recent messages
    _COUNTED_ROWS = "SELECT customer_id, campaign, channel, due_at FROM outbox INDEXED BY outbox_customer"


def _refuse_foreign_file(path: Path) -> None:
    """OutboxError, before anything is opened for writing, for a path holding something else."""
    if path.is_dir():
        raise OutboxError(f"{path} is a directory, not an outbox file")
    if not path.exists():
        if not path.parent.is_dir():
            raise OutboxError(f"cannot create the outbox {path}: no directory {path.parent}")
        return
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as error:
        raise OutboxError(f"cannot read the outbox {path}: {error.strerror}") from None
    if header and header != _SQLITE_HEADER:
        raise OutboxError(f"{path} is not an outbox (not an SQLite database); it was left unchanged",
                          hint="give --outbox a new file name, or an outbox written by `crmrules campaigns run`")


__all__ = ["Outbox", "OutboxError", "SqliteOutbox", "open_outbox"]
