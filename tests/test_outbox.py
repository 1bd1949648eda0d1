"""The outbox: messages by idempotency key, trigger state, last run; SQLite and PostgreSQL; foreign files refused."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from crmrules.campaigns.messages import COUNTED, STATUSES, Message, message_id, to_json
from crmrules.campaigns.outbox import OutboxError, open_outbox
from crmrules.errors import CrmRulesError

T0 = datetime(2026, 3, 1, 9, 0)


def make(campaign="winback", customer="c1", identity="schedule:2026-03-01T09:00:00", due=T0, status="scheduled",
         channel="email", args=None, fired=None) -> Message:
    return Message(id=message_id(campaign, customer, identity), campaign=campaign, customer_id=customer,
                   channel=channel, args=args if args is not None else {"template": "hello"},
                   fired_at=fired or due, due_at=due, status=status, updated_at=due)


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def outbox(request, tmp_path):
    if request.param == "sqlite":
        box = open_outbox(tmp_path / "outbox.db")
    elif request.param == "memory":
        box = open_outbox(":memory:")
    else:
        url = request.getfixturevalue("postgres_url")
        box = open_outbox(url)
        with box.transaction():
            for table in ("outbox", "outbox_state"):
                box._execute(f"DELETE FROM {table}")
            box._execute("DELETE FROM outbox_meta WHERE key = 'last_run'")
    yield box
    box.close()


# ------------------------------------------------------------------------------------------ messages
def test_message_id_is_the_pinned_hash():
    expected = hashlib.sha256("vip\x1f42\x1fevent:2026-01-01T10:00:00:7".encode()).hexdigest()[:32]
    assert message_id("vip", "42", "event:2026-01-01T10:00:00:7") == expected
    assert len(expected) == 32
    assert message_id("vip", "42", "a") != message_id("vip", "43", "a") != message_id("vap", "42", "a")


def test_statuses_and_counted():
    assert STATUSES == ("scheduled", "ready", "sending", "delivered", "failed", "holdout", "capped", "over_budget",
                        "no_consent", "cancelled")
    assert COUNTED == ("ready", "sending", "delivered", "holdout")


def test_args_become_json_values_and_the_json_shape_is_pinned():
    message = make(customer=7, args={"points": Decimal("12.50"), "birthday": date(1990, 2, 28),
                                     "at": datetime(2026, 1, 1, 9, 30), "n": 3, "ok": True, "none": None})
    assert message.customer_id == "7"
    assert message.args == {"points": "12.50", "birthday": "1990-02-28", "at": "2026-01-01T09:30:00", "n": 3,
                            "ok": True, "none": None}
    shown = to_json(message)
    assert list(shown) == ["campaign", "customer_id", "channel", "fired_at", "due_at", "status", "args"]
    assert shown["fired_at"] == "2026-03-01T09:00:00" and shown["customer_id"] == "7"
    assert list(to_json(message, with_id=True))[0] == "id"


# ------------------------------------------------------------------------------------------- outbox
def test_insert_is_idempotent_by_id(outbox):
    message = make(args={"points": Decimal("3.10")})
    with outbox.transaction():
        assert outbox.insert(message) is True
        assert outbox.insert(message) is False
        assert outbox.insert(make(status="ready")) is False  # same firing, whatever its status now
    assert outbox.get(message.id) == message
    assert outbox.get("nope") is None
    assert outbox.messages() == [message]


def test_insert_many_skips_present_ids(outbox):
    first = [make(customer=f"c{i}") for i in range(5)]
    assert outbox.insert_many(first[:3]) == 3
    assert outbox.insert_many(first) == 2
    assert outbox.insert_many([]) == 0
    assert len(outbox.messages()) == 5


def test_update_keeps_or_replaces_args(outbox):
    message = make()
    outbox.insert(message)
    later = T0 + timedelta(hours=1)
    outbox.update(message.id, "ready", later)
    got = outbox.get(message.id)
    assert (got.status, got.updated_at, got.args) == ("ready", later, {"template": "hello"})
    outbox.update(message.id, "delivered", later, args={"tier": "gold", "points": Decimal("5")})
    assert outbox.get(message.id).args == {"tier": "gold", "points": "5"}
    with pytest.raises(CrmRulesError):
        outbox.update(message.id, "sent", later)


def test_scheduled_is_due_messages_in_order(outbox):
    a = make(customer="a", identity="1", due=T0 + timedelta(hours=2))
    b = make(customer="b", identity="2", due=T0)
    c = make(customer="c", identity="3", due=T0 + timedelta(days=1))
    d = make(customer="d", identity="4", due=T0, status="ready")
    with outbox.transaction():
        for message in (a, b, c, d):
            outbox.insert(message)
    assert outbox.scheduled(T0 + timedelta(hours=2)) == [b, a]
    assert outbox.scheduled(T0 - timedelta(microseconds=1)) == []
    assert outbox.scheduled(T0 + timedelta(days=2), customer_id="c") == [c]


def test_counted_is_a_half_open_window_over_counted_statuses(outbox):
    rows = [("e1", T0, "ready", "email", "winback"), ("e2", T0 + timedelta(days=1), "holdout", "email", "winback"),
            ("e3", T0 + timedelta(days=2), "delivered", "email", "vip"),
            ("e4", T0 + timedelta(days=2), "capped", "email", "winback"),
            ("e5", T0 + timedelta(days=3), "cancelled", "email", "winback"),
            ("s1", T0 + timedelta(days=1), "ready", "sms", "winback")]
    for identity, due, status, channel, campaign in rows:
        outbox.insert(make(identity=identity, due=due, status=status, channel=channel, campaign=campaign))
    outbox.insert(make(customer="other", identity="x", due=T0 + timedelta(days=1), status="ready"))
    end = T0 + timedelta(days=7)
    assert outbox.counted("c1", T0 - timedelta(days=1), end) == 4
    assert outbox.counted("c1", T0, end) == 3  # exactly `per` earlier is outside
    assert outbox.counted("c1", T0 - timedelta(days=1), T0) == 1  # the upper edge is inside
    assert outbox.counted("c1", T0 - timedelta(days=1), end, campaign="winback") == 3
    assert outbox.counted("c1", T0 - timedelta(days=1), end, channel="email") == 3
    assert outbox.counted("c1", T0 - timedelta(days=1), end, campaign="winback", channel="sms") == 1


def test_messages_sorted_and_filtered(outbox):
    made = [make(campaign="b", customer="2", identity="1", due=T0), make(campaign="a", customer="9", identity="2",
                                                                         due=T0),
            make(campaign="a", customer="1", identity="3", due=T0 + timedelta(minutes=1), status="ready"),
            make(campaign="a", customer="10", identity="4", due=T0)]
    outbox.insert_many(made)
    listed = outbox.messages()
    assert [(m.campaign, m.customer_id) for m in listed] == [("a", "10"), ("a", "9"), ("b", "2"), ("a", "1")]
    assert [m.customer_id for m in outbox.messages(status="ready")] == ["1"]
    assert [m.customer_id for m in outbox.messages(campaign="a", status="scheduled")] == ["10", "9"]


def test_trigger_state_keeps_value_types(outbox):
    assert outbox.state("vip", "c1") is None
    values = [True, None, 3, Decimal("1000.50"), "gold", date(2026, 1, 2), datetime(2026, 1, 2, 3, 4, 5),
              ["a", Decimal("2")], {"$decimal": "x", "k": 1}]
    for value in values:
        outbox.set_state("vip", "c1", value, T0)
        assert outbox.state("vip", "c1") == (value, T0)
        assert type(outbox.state("vip", "c1")[0]) is type(value)
    outbox.set_states("tier", [("c1", "gold", T0), ("c2", None, T0)])
    outbox.set_states("tier", [("c2", "silver", T0 + timedelta(hours=1))])
    assert outbox.states("tier") == {"c1": ("gold", T0), "c2": ("silver", T0 + timedelta(hours=1))}


def test_last_run(outbox):
    assert outbox.last_run() is None
    outbox.set_last_run(T0)
    outbox.set_last_run(T0 + timedelta(hours=1, microseconds=5))
    assert outbox.last_run() == T0 + timedelta(hours=1, microseconds=5)


def test_a_failed_transaction_writes_nothing(outbox):
    with pytest.raises(RuntimeError), outbox.transaction():
        outbox.insert(make())
        outbox.set_state("vip", "c1", 1, T0)
        with outbox.transaction():  # a nested one joins the outer one
            outbox.set_last_run(T0)
        raise RuntimeError("killed")
    assert outbox.messages() == [] and outbox.last_run() is None and outbox.state("vip", "c1") is None
    with outbox.transaction():
        outbox.insert(make())
    assert len(outbox.messages()) == 1


def test_naive_instants_only(outbox):
    from zoneinfo import ZoneInfo

    with pytest.raises(CrmRulesError):
        outbox.set_last_run(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")))


# ---------------------------------------------------------------------------------- files on disk
def test_a_fresh_path_becomes_an_outbox_that_reopens(tmp_path):
    path = tmp_path / "new.db"
    with open_outbox(path) as box:
        box.insert(make())
        box.set_last_run(T0)
        box.set_state("vip", "c1", "gold", T0)
    with open_outbox(str(path)) as box:
        assert box.last_run() == T0 and len(box.messages()) == 1 and box.state("vip", "c1") == ("gold", T0)
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")  # `touch`ed or made by mktemp: nothing to protect
    with open_outbox(empty) as box:
        assert box.messages() == []


def _other_sqlite(path):
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE customers (id TEXT, name TEXT)")
        connection.execute("INSERT INTO customers VALUES ('1', 'Ann')")
    connection.close()


def _fake_outbox(path):
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE outbox_meta (key TEXT PRIMARY KEY, value TEXT)")
        connection.execute("INSERT INTO outbox_meta VALUES ('format', 'something-else')")
    connection.close()


def _duckdb(path):
    import duckdb

    connection = duckdb.connect(str(path))
    connection.execute("CREATE TABLE t AS SELECT 1 AS x")
    connection.close()


@pytest.mark.parametrize("make_file", [
    _other_sqlite, _fake_outbox, _duckdb,
    lambda path: path.write_text("customer_id,email\n1,a@example.com\n"),
    lambda path: path.write_bytes(bytes(range(256)) * 8),
], ids=["sqlite", "foreign-meta", "duckdb", "text", "binary"])
def test_a_file_that_is_not_an_outbox_is_refused_and_unchanged(tmp_path, make_file):
    path = tmp_path / "data.db"
    make_file(path)
    before = path.read_bytes()
    listing = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(OutboxError) as raised:
        open_outbox(path)
    assert raised.value.code == "E0701"
    assert "is not an outbox" in raised.value.message and "\n" not in raised.value.message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no journal or WAL file left behind


def test_a_newer_outbox_version_is_refused(tmp_path):
    path = tmp_path / "outbox.db"
    open_outbox(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE outbox_meta SET value = '99' WHERE key = 'version'")
    connection.close()
    with pytest.raises(OutboxError, match="version 99"):
        open_outbox(path)


def test_a_directory_or_a_missing_parent_is_refused(tmp_path):
    with pytest.raises(OutboxError, match="directory"):
        open_outbox(tmp_path)
    with pytest.raises(OutboxError, match="no directory"):
        open_outbox(tmp_path / "missing" / "outbox.db")


def test_concurrent_writers_take_turns(tmp_path):
    """Two connections inserting the same firings at once: each message once, no lock error."""
    path = tmp_path / "outbox.db"
    open_outbox(path).close()
    errors = []

    def writer(offset):
        try:
            with open_outbox(path) as box:
                for index in range(200):
                    k = (index + offset) % 200
                    with box.transaction():
                        box.insert(make(customer=f"c{k}", identity=str(k)))
                        box.set_last_run(T0 + timedelta(seconds=k))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in (0, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_outbox(path) as box:
        assert len(box.messages()) == 200


def test_switching_to_wal_waits_for_another_connection(tmp_path):
    """A second run opening a just-created outbox: SQLite refuses the switch to WAL at once while anyone
    holds a lock (it calls no busy handler for it); opening waits for the lock instead of failing."""
    path = tmp_path / "outbox.db"
    open_outbox(path).close()
    plain = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    plain.execute("PRAGMA journal_mode=DELETE")  # as the file is between its creation and the switch
    plain.execute("BEGIN")
    plain.execute("SELECT count(*) FROM outbox").fetchone()  # a shared lock, as a reading run holds
    release = threading.Timer(0.3, lambda: plain.execute("COMMIT"))
    release.start()
    try:
        with open_outbox(path) as box:
            assert box.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        release.join()
        plain.close()


def test_an_outbox_locked_too_long_is_an_outbox_error(tmp_path):
    from crmrules.campaigns.outbox import SqliteOutbox

    path = tmp_path / "outbox.db"
    holder = open_outbox(path)
    waiter = SqliteOutbox(str(path), timeout=0.05)
    try:
        with holder.transaction():
            holder.insert(make())
            with pytest.raises(OutboxError, match="locked"), waiter.transaction():
                waiter.insert(make(customer="c2"))
        with waiter.transaction():  # usable again once the other run committed
            assert waiter.insert(make(customer="c2"))
    finally:
        holder.close()
        waiter.close()


# --------------------------------------------------------------------------------------- PostgreSQL
def test_postgres_unreachable_is_one_line(tmp_path):
    with pytest.raises(OutboxError) as raised:
        open_outbox("postgresql://someone:secret@127.0.0.1:1/nothing")
    message = raised.value.message
    assert "\n" not in message and "secret" not in message and "cannot connect" in message


def test_postgres_database_with_a_foreign_outbox_table_is_refused(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS foreign_tables CASCADE")
        connection.execute("CREATE SCHEMA foreign_tables")
        connection.execute("CREATE TABLE foreign_tables.outbox (id int)")
    url = postgres_url + "?options=-csearch_path%3Dforeign_tables"
    with pytest.raises(OutboxError, match="is not an outbox"):
        open_outbox(url)
    with psycopg.connect(url, autocommit=True) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'foreign_tables'")]
    assert tables == ["outbox"]


def test_postgres_outbox_is_shared_by_connections(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS shared CASCADE")
        connection.execute("CREATE SCHEMA shared")
    url = postgres_url + "?options=-csearch_path%3Dshared"
    one, two = open_outbox(url), open_outbox(url)
    try:
        with one.transaction():
            assert one.insert(make())
            one.set_last_run(T0)
        assert two.insert(make()) is False
        assert two.last_run() == T0 and two.messages() == one.messages()
    finally:
        one.close()
        two.close()
