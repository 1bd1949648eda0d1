"""Crash safety and concurrency of `crmrules campaigns run`, with real processes.

A run killed with SIGKILL at arbitrary points (before or after any outbox statement, a commit included,
or after a random delay) and then run again leaves exactly the outbox an uninterrupted run leaves; two
runs over the same period at once create no duplicate and leave the same outbox.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PERIOD = ("--since", "2026-06-20", "--now", "2026-06-30")
# every trigger kind and guard rail, firing often on the demo shop's data: waits and quiet hours leave messages
# scheduled across instants, caps and limits read earlier ones, `when` and `after` keep state
RULES = """
limit email: 3 per 7d

campaign viewed "Still thinking about it?":
    trigger: on view
    wait: 3h
    unless: ordered(within: 3h)
    action: email(template: "viewed", points: points)
    cap: 2 per 1d
    quiet: 22:00-08:00

campaign carted:
    trigger: on add_to_cart
    action: sms(template: "cart")
    holdout: 20%

campaign nudge:
    audience: order_count >= 1
    trigger: daily at 10:00
    action: email(template: "nudge")
    cap: 1 per 3d
    priority: 5

campaign big_spender:
    trigger: when total_spent reaches 300
    action: award_points(points: 100)

campaign follow_up:
    trigger: 2d after last_order_at
    action: email(template: "follow_up", spent: total_spent)
    quiet: 21:00-09:00

campaign anniversary:
    trigger: on registered_at at 12:00
    action: coupon(code: "ANNIV")
"""

# `crmrules` with a SIGKILL planted before the Nth statement the outbox sends (BEGIN and COMMIT count):
# the process dies as `kill -9` kills it, at a point chosen by the test; the count is written at exit
_WRAPPER = """
import atexit, os, signal, sys
from crmrules.campaigns import outbox, outbox_postgres

kill_at = int(os.environ.get("CRASH_AT", "0"))
count_file = os.environ.get("CRASH_COUNT_FILE")
seen = 0

def _counted(method):
    def wrapped(self, *args):
        global seen
        seen += 1
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return method(self, *args)
    return wrapped

for kind in (outbox.SqliteOutbox, outbox_postgres.PostgresOutbox):
    for name in ("_execute", "_executemany", "_commit"):  # SQLite's BEGIN and COMMIT go through _execute
        setattr(kind, name, _counted(getattr(kind, name)))
if count_file:
    atexit.register(lambda: open(count_file, "w").write(str(seen)))

from crmrules.cli import main
sys.argv = ["crmrules", *sys.argv[1:]]
main()
"""



@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The demo shop's data, the wrapper, and the outbox of one uninterrupted run (with its statement count)."""
    base = tmp_path_factory.mktemp("crash")
    sys.path.insert(0, str(ROOT / "examples" / "shop"))
    from generate import generate

    data = base / "shop"
    generate(data, customers=120, seed=11)
    (base / "campaigns.crm").write_text(RULES)
    wrapper = base / "crmrules_crashing.py"
    wrapper.write_text(_WRAPPER)
    reference = base / "reference.db"
    count_file = base / "count"
    result = _run(wrapper, data, reference, CRASH_COUNT_FILE=str(count_file))
    assert result.returncode == 0, result.stderr
    expected = _contents(reference)
    campaigns = {row[1] for row in expected["messages"]}
    statuses = {row[7] for row in expected["messages"]}
    assert campaigns == {"viewed", "carted", "nudge", "big_spender", "follow_up", "anniversary"}, campaigns
    assert {"scheduled", "ready", "capped", "no_consent", "cancelled"} <= statuses, statuses
    return {"base": base, "data": data, "wrapper": wrapper, "expected": expected,
            "statements": int(count_file.read_text())}


def _command(wrapper: Path, data: Path, outbox, *period: str) -> list[str]:
    rules = wrapper.parent / "campaigns.crm"
    return [sys.executable, str(wrapper), "campaigns", "run", str(rules), "--data", str(data), "--outbox",
            str(outbox), *(period or PERIOD)]


def _run(wrapper: Path, data: Path, outbox: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(_command(wrapper, data, outbox), capture_output=True, text=True, check=False,
                          env={**os.environ, "NO_COLOR": "1", **env}, timeout=600)


def _contents(path: Path) -> dict:
    """Everything an outbox holds but the wall-clock-ish `updated_at`: messages, trigger state, last run."""
    connection = sqlite3.connect(path)
    try:
        messages = connection.execute("SELECT id, campaign, customer_id, channel, args, fired_at, due_at, status "
                                      "FROM outbox ORDER BY id").fetchall()
        states = connection.execute("SELECT campaign, customer_id, value, observed_at FROM outbox_state "
                                    "ORDER BY campaign, customer_id").fetchall()
        meta = connection.execute("SELECT key, value FROM outbox_meta ORDER BY key").fetchall()
    finally:
        connection.close()
    return {"messages": messages, "states": states, "meta": meta}


def _kill_points(total: int) -> list[int]:
    rng = random.Random(20260601)
    chosen = {1, 2, 3, 4, total // 2, total - 1, total}
    chosen.update(rng.randrange(1, total + 1) for _ in range(8))
    return sorted(point for point in chosen if 1 <= point <= total)


def test_kill_at_any_statement_then_rerun_equals_one_run(setup, tmp_path):
    failures = []
    for point in _kill_points(setup["statements"]):
        outbox = tmp_path / f"killed-{point}.db"
        killed = _run(setup["wrapper"], setup["data"], outbox, CRASH_AT=str(point))
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr)
        rerun = _run(setup["wrapper"], setup["data"], outbox)
        assert rerun.returncode == 0, (point, rerun.stderr)
        if _contents(outbox) != setup["expected"]:
            failures.append(point)
    assert failures == [], f"killed before these statements, the rerun differs: {failures}"


def test_kill_twice_then_rerun_equals_one_run(setup, tmp_path):
    outbox = tmp_path / "twice.db"
    total = setup["statements"]
    for point in (total // 3, total // 4):
        killed = _run(setup["wrapper"], setup["data"], outbox, CRASH_AT=str(point))
        assert killed.returncode in (-signal.SIGKILL, 0), killed.stderr
    assert _run(setup["wrapper"], setup["data"], outbox).returncode == 0
    assert _contents(outbox) == setup["expected"]


def test_kill_after_a_random_delay_then_rerun(setup, tmp_path):
    """`kill -9` from outside at a random moment, as an operator or the OOM killer would."""
    rng = random.Random(7)
    started = time.monotonic()
    assert _run(setup["wrapper"], setup["data"], tmp_path / "timing.db").returncode == 0
    duration = time.monotonic() - started
    for attempt in range(3):
        outbox = tmp_path / f"delay-{attempt}.db"
        process = subprocess.Popen(_command(setup["wrapper"], setup["data"], outbox), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 0.9) * duration)
        process.send_signal(signal.SIGKILL)
        process.wait()
        rerun = _run(setup["wrapper"], setup["data"], outbox)
        assert rerun.returncode == 0, rerun.stderr
        assert _contents(outbox) == setup["expected"], attempt


def test_two_concurrent_runs_make_no_duplicates(setup, tmp_path):
    outbox = tmp_path / "concurrent.db"
    processes = [subprocess.Popen(_command(setup["wrapper"], setup["data"], outbox), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    contents = _contents(outbox)
    ids = [row[0] for row in contents["messages"]]
    assert len(ids) == len(set(ids))
    assert contents == setup["expected"]


def test_two_concurrent_runs_on_an_existing_outbox(setup, tmp_path):
    """The second half of the period run twice at once, after a first half run alone."""
    outbox = tmp_path / "halves.db"
    first = _command(setup["wrapper"], setup["data"], outbox, "--since", PERIOD[1], "--now", "2026-06-25T13:00")
    assert subprocess.run(first, capture_output=True, check=False).returncode == 0
    processes = [subprocess.Popen(_command(setup["wrapper"], setup["data"], outbox), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    assert _contents(outbox) == setup["expected"]


def _postgres_contents(url: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as connection:
        messages = connection.execute("SELECT id, campaign, customer_id, channel, args, fired_at, due_at, status "
                                      "FROM outbox ORDER BY id").fetchall()
    return [(*row[:5], row[5].isoformat(), row[6].isoformat(), row[7]) for row in messages]


def _fresh_schema(postgres_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        connection.execute(f"CREATE SCHEMA {name}")
    return postgres_url + f"?options=-csearch_path%3D{name}"


def test_kill_then_rerun_on_postgres(setup, postgres_url):
    rng = random.Random(5)
    count_file = setup["base"] / "pg-count"
    url = _fresh_schema(postgres_url, "killed_reference")
    result = _run(setup["wrapper"], setup["data"], url, CRASH_COUNT_FILE=str(count_file))
    assert result.returncode == 0, result.stderr
    assert _postgres_contents(url) == setup["expected"]["messages"]
    total = int(count_file.read_text())
    for point in sorted({1, total // 2, total, *(rng.randrange(1, total + 1) for _ in range(3))}):
        url = _fresh_schema(postgres_url, f"killed_{point}")
        killed = _run(setup["wrapper"], setup["data"], url, CRASH_AT=str(point))
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr)
        rerun = _run(setup["wrapper"], setup["data"], url)
        assert rerun.returncode == 0, (point, rerun.stderr)
        assert _postgres_contents(url) == setup["expected"]["messages"], point


def test_two_concurrent_runs_into_postgres(setup, postgres_url):
    """The same on a PostgreSQL outbox: the marker row's lock makes the runs take turns."""
    url = _fresh_schema(postgres_url, "concurrent_runs")
    processes = [subprocess.Popen(_command(setup["wrapper"], setup["data"], url), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    assert _postgres_contents(url) == setup["expected"]["messages"]
