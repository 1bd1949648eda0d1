"""The outbox in PostgreSQL (psycopg 3): the same tables and queries as SQLite's, instants as TIMESTAMP.

Runs over the same outbox take turns on a row lock of the `format` marker (SQLite's BEGIN IMMEDIATE);
the tables are created under an advisory lock, so two first runs at once do not collide.
"""

from __future__ import annotations

import re
from datetime import datetime

from crmrules.campaigns.outbox_queries import (
    FORMAT,
    TABLES,
    VERSION,
    Outbox,
    OutboxError,
    check_marker,
)
from crmrules.errors import InternalError

_LOCK_KEY = 0x63726D6F  # "crmo": the advisory lock taken while the tables are created

_SCHEMA = (
    "CREATE TABLE outbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ("CREATE TABLE outbox (id TEXT PRIMARY KEY, campaign TEXT NOT NULL, customer_id TEXT NOT NULL, "
    "channel TEXT NOT NULL, args TEXT NOT NULL, fired_at TIMESTAMP NOT NULL, due_at TIMESTAMP NOT NULL, "
    "status TEXT NOT NULL, updated_at TIMESTAMP NOT NULL)"),
    "CREATE INDEX outbox_due ON outbox (status, due_at)",
    "CREATE INDEX outbox_customer ON outbox (customer_id, due_at)",
    ("CREATE TABLE outbox_state (campaign TEXT NOT NULL, customer_id TEXT NOT NULL, value TEXT NOT NULL, "
    "observed_at TIMESTAMP NOT NULL, PRIMARY KEY (campaign, customer_id))"),
)
# version 1 → 2 (see outbox.py): run under the advisory lock, in the transaction that checks the marker
_UPGRADES = {"1": (
    ("CREATE TABLE outbox_delivery (id TEXT PRIMARY KEY, attempts INTEGER NOT NULL DEFAULT 0, claimed_by TEXT, "
     "claimed_at TIMESTAMP, last_error TEXT, sent_at TIMESTAMP)"),
)}


class PostgresOutbox(Outbox):
    """An outbox in a PostgreSQL database (its current schema), through psycopg 3."""

    kind = "postgres"

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        self.shown = mask_passwords(url)
        try:
            import psycopg
        except ImportError:
            raise OutboxError("a PostgreSQL outbox needs psycopg", hint="pip install 'crmrules[postgres]'") from None
        self._psycopg = psycopg
        try:
            self.connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as error:
            reason = _one_line(error)
            raise OutboxError(f"cannot connect to the PostgreSQL outbox {self.shown}: {reason}") from None
        try:
            self._initialise()
        except BaseException:
            self.connection.close()
            raise

    def _initialise(self) -> None:
        connection = self.connection
        try:
            with connection.transaction():
                # two processes creating the same outbox at once would collide on the catalogue
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                tables = {row[0] for row in connection.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                    "AND table_name = ANY(%s)", (list(TABLES),))}
                if not tables:
                    for statement in (*_SCHEMA, *_UPGRADES["1"]):
                        connection.execute(statement)
                    connection.execute("INSERT INTO outbox_meta (key, value) VALUES (%s, %s), (%s, %s)",
                                       ("format", FORMAT, "version", VERSION))
                else:
                    version = check_marker(self.shown, tables, lambda: dict(connection.execute(
                        "SELECT key, value FROM outbox_meta WHERE key IN ('format', 'version')").fetchall()))
                    if version != VERSION:
                        for statement in _UPGRADES[version]:
                            connection.execute(statement)
                        connection.execute("UPDATE outbox_meta SET value = %s WHERE key = 'version'", (VERSION,))
        except self._psycopg.Error as error:
            raise OutboxError(f"cannot use the PostgreSQL outbox {self.shown}: {_one_line(error)}") from None

    def _execute(self, sql: str, params: tuple = ()):
        try:
            return self.connection.execute(sql.replace("?", "%s"), params)
        except self._psycopg.OperationalError as error:
            raise OutboxError(f"the PostgreSQL outbox {self.shown} failed: {_one_line(error)}") from None

    def _executemany(self, sql: str, rows: list[tuple]) -> int:
        try:
            with self.connection.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), rows)
                return cursor.rowcount
        except self._psycopg.OperationalError as error:
            raise OutboxError(f"the PostgreSQL outbox {self.shown} failed: {_one_line(error)}") from None

    def _begin(self) -> None:
        self._transaction = self.connection.transaction()
        self._transaction.__enter__()
        try:
            # runs over the same outbox take turns, as BEGIN IMMEDIATE makes them on SQLite
            self._execute("SELECT value FROM outbox_meta WHERE key = 'format' FOR UPDATE")
        except BaseException:
            self._rollback()
            raise

    def _commit(self) -> None:
        transaction, self._transaction = self._transaction, None
        transaction.__exit__(None, None, None)

    def _rollback(self) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            error = InternalError("rolled back")
            transaction.__exit__(type(error), error, None)

    def _ts(self, instant: datetime) -> datetime:
        return instant

    def _instant(self, stored) -> datetime:
        return stored

    def close(self) -> None:
        self.connection.close()


# `scheme://user:password@host` and libpq's `password=...`: what the CLI masks too (campaigns sit below the CLI)
_PASSWORDS = (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*:/+[^\s:/@]*:)[^\s@/]*@"), re.compile(r"(?i)\b(password=)\S+"))


def mask_passwords(text: str) -> str:
    """`text` with the password of every URL (and libpq `password=`) replaced by `***`."""
    return _PASSWORDS[1].sub(r"\1***", _PASSWORDS[0].sub(r"\1***@", text))


def _one_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return mask_passwords(lines[0] if lines else type(error).__name__)
