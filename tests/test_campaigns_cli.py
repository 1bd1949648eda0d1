"""`crmrules campaigns run|simulate|outbox|list` end to end, on the demo shop and on hand-filled outboxes."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_cli import crmrules

from crmrules.campaigns.messages import Message, message_id
from crmrules.campaigns.outbox import open_outbox

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop" / "shop.crm"
T0 = datetime(2026, 6, 1, 9, 0)



@pytest.fixture(scope="module")
def shop_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    sys.path.insert(0, str(ROOT / "examples" / "shop"))
    from generate import generate

    generate(out, customers=150, seed=5)
    return out


def _message(campaign, customer, identity, due, status="ready", channel="email", args=None):
    return Message(id=message_id(campaign, customer, identity), campaign=campaign, customer_id=customer,
                   channel=channel, args=args or {"template": campaign}, fired_at=due - timedelta(hours=2),
                   due_at=due, status=status, updated_at=due)


@pytest.fixture
def filled(tmp_path):
    path = tmp_path / "outbox.db"
    with open_outbox(path) as box, box.transaction():
        box.insert_many([
            _message("winback", "c2", "a", T0, args={"coupon": "BACK15", "note": 'say "hi", ok'}),
            _message("winback", "c1", "b", T0, status="holdout"),
            _message("cart", "c1", "c", T0 + timedelta(hours=1), status="scheduled", channel="sms"),
            _message("birthday", "c3", "d", T0 - timedelta(days=1), status="capped"),
        ])
        box.set_last_run(T0 + timedelta(hours=1))
    return path


# ------------------------------------------------------------------------------------------- outbox
def test_the_cli_knows_every_status():
    from crmrules.campaigns.messages import STATUSES
    from crmrules.cli import campaigns

    assert campaigns.STATUSES == STATUSES


def test_outbox_json_in_the_simulation_shape(filled):
    result = crmrules("campaigns", "outbox", "--outbox", str(filled), "--format", "json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [(m["campaign"], m["customer_id"], m["status"]) for m in listed["messages"]] == [
        ("birthday", "c3", "capped"), ("winback", "c1", "holdout"), ("winback", "c2", "ready"),
        ("cart", "c1", "scheduled")]
    first = listed["messages"][2]
    assert first == {"id": message_id("winback", "c2", "a"), "campaign": "winback", "customer_id": "c2",
                     "channel": "email", "fired_at": "2026-06-01T07:00:00", "due_at": "2026-06-01T09:00:00",
                     "status": "ready", "args": {"coupon": "BACK15", "note": 'say "hi", ok'}}
    assert listed["summary"] == {"birthday": {"capped": 1}, "cart": {"scheduled": 1},
                                 "winback": {"ready": 1, "holdout": 1}}


def test_outbox_filters(filled):
    result = crmrules("campaigns", "outbox", "--outbox", str(filled), "--format", "json", "--campaign", "winback",
                      "--status", "holdout")
    assert [m["customer_id"] for m in json.loads(result.stdout)["messages"]] == ["c1"]
    result = crmrules("campaigns", "outbox", "--outbox", str(filled), "--format", "json", "--status", "delivered")
    assert json.loads(result.stdout) == {"messages": [], "summary": {}}
    result = crmrules("campaigns", "outbox", "--outbox", str(filled), "--status", "sent")
    assert result.returncode == 2 and "sent" in result.stderr


def test_outbox_csv(filled):
    result = crmrules("campaigns", "outbox", "--outbox", str(filled), "--format", "csv", "--campaign", "winback")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["id", "campaign", "customer_id", "channel", "fired_at", "due_at", "status", "args"]
    assert [r["customer_id"] for r in rows] == ["c1", "c2"]
    assert json.loads(rows[1]["args"]) == {"coupon": "BACK15", "note": 'say "hi", ok'}


def test_outbox_table(filled):
    result = crmrules("campaigns", "outbox", "--outbox", str(filled))
    assert result.returncode == 0, result.stderr
    assert "winback" in result.stdout and "holdout" in result.stdout and "summary" in result.stdout


def test_outbox_missing_file_is_an_error_and_not_created(tmp_path):
    path = tmp_path / "nothing.db"
    result = crmrules("campaigns", "outbox", "--outbox", str(path))
    assert result.returncode == 1 and "no outbox" in result.stderr and "E0701" in result.stderr
    assert not path.exists()


@pytest.mark.parametrize("command", ["outbox", "run"])
def test_a_file_that_is_not_an_outbox_is_left_unchanged(tmp_path, shop_data, command):
    path = tmp_path / "shop.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE customers (id TEXT)")
    connection.commit()
    connection.close()
    before = path.read_bytes()
    args = (["outbox", "--outbox", str(path)] if command == "outbox" else
            ["run", str(SHOP), "--data", str(shop_data), "--outbox", str(path), "--now", "2026-06-02"])
    result = crmrules("campaigns", *args)
    assert result.returncode == 1, result.stderr
    assert "is not an outbox" in result.stderr and "Traceback" not in result.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize("command", ["run", "simulate", "list"])
def test_unreachable_postgres_data_is_one_line(tmp_path, command):
    url = "postgresql://someone:hunter2@127.0.0.1:1/shop"
    args = {"run": ["--outbox", str(tmp_path / "o.db"), "--now", "2026-06-02"],
            "simulate": ["--from", "2026-06-01", "--to", "2026-06-02"], "list": []}[command]
    result = crmrules("campaigns", command, str(SHOP), "--data", url, *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "cannot connect" in lines[0] and lines[1] == "1 error", result.stderr
    assert "hunter2" not in result.stderr


def test_unreachable_postgres_outbox_is_one_line(shop_data):
    url = "postgresql://someone:hunter2@127.0.0.1:1/outbox"
    for args in (["outbox", "--outbox", url],
                 ["run", str(SHOP), "--data", str(shop_data), "--outbox", url, "--now", "2026-06-02"]):
        result = crmrules("campaigns", *args)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2 and "cannot connect" in lines[0] and lines[1] == "1 error", result.stderr
        assert "hunter2" not in result.stderr


# --------------------------------------------------------------------------------------------- list
def test_list_shows_each_campaign(tmp_path):
    result = crmrules("campaigns", "list", str(SHOP), "--format", "json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    names = [c["campaign"] for c in listed["campaigns"]]
    assert names == ["winback", "cart_reminder", "birthday", "replenish", "first_order_thanks", "vip_welcome"]
    winback = listed["campaigns"][0]
    assert winback["trigger"] == "daily at 09:00" and winback["audience"] == "dormant and email_subscribed"
    assert winback["action"] == 'email(template: "winback", coupon: "BACK15")'
    assert winback["guard_rails"] == {"cap": "1 per 30d", "holdout": "10%", "budget": "1", "cost": "0.002",
                                      "limit": "email: 2 per 7d"}
    assert "audience_size" not in winback
    assert listed["limits"] == {"email": "2 per 7d"}
    table = crmrules("campaigns", "list", str(SHOP))
    assert table.returncode == 0 and "cart_reminder" in table.stdout and "size" not in table.stdout


@pytest.mark.parametrize("backend", ["duckdb", "memory"])
def test_list_audience_sizes_match_segments(shop_data, backend):
    import crmrules as api

    result = crmrules("campaigns", "list", str(SHOP), "--data", str(shop_data), "--as-of", "2026-06-30",
                      "--backend", backend, "--format", "json")
    assert result.returncode == 0, result.stderr
    sizes = {c["campaign"]: c["audience_size"] for c in json.loads(result.stdout)["campaigns"]}
    rules = api.load(SHOP)
    members = rules.run(str(shop_data), as_of="2026-06-30", segments=["reachable"]).members
    customers = len((shop_data / "customers.csv").read_text().splitlines()) - 1
    assert sizes["birthday"] == len(members["reachable"])  # audience: reachable
    assert sizes["cart_reminder"] == customers  # no audience: everyone registered by then
    assert 0 < sizes["winback"] < customers


# ------------------------------------------------------------------------------------ usage errors
def test_simulate_from_after_to_is_a_usage_error(shop_data):
    result = crmrules("campaigns", "simulate", str(SHOP), "--data", str(shop_data), "--from", "2026-06-10",
                      "--to", "2026-06-09")
    assert result.returncode == 2 and "--from" in result.stderr


def test_run_needs_now_and_since_before_now(shop_data, tmp_path):
    outbox = tmp_path / "o.db"
    result = crmrules("campaigns", "run", str(SHOP), "--data", str(shop_data), "--outbox", str(outbox))
    assert result.returncode == 2 and "--now" in result.stderr
    result = crmrules("campaigns", "run", str(SHOP), "--data", str(shop_data), "--outbox", str(outbox),
                      "--since", "2026-06-10", "--now", "2026-06-09")
    assert result.returncode == 2 and "--since" in result.stderr
    result = crmrules("campaigns", "run", str(SHOP), "--data", str(shop_data), "--outbox", str(outbox),
                      "--now", "June")
    assert result.returncode == 1 and "not a date" in result.stderr
    assert not outbox.exists()


# ------------------------------------------------------------------------------- with the engine
def test_simulate_json_shape_and_order(shop_data):
    result = crmrules("campaigns", "simulate", str(SHOP), "--data", str(shop_data), "--from", "2026-06-01",
                      "--to", "2026-06-14", "--format", "json")
    assert result.returncode == 0, result.stderr
    simulated = json.loads(result.stdout)
    assert list(simulated) == ["from", "to", "messages", "summary"]
    assert simulated["from"].startswith("2026-06-01") and simulated["to"].startswith("2026-06-14")
    messages = simulated["messages"]
    assert messages, "a fortnight of the demo campaigns sends something"
    for message in messages:
        assert {"campaign", "customer_id", "channel", "fired_at", "due_at", "status", "args"} <= set(message)
    keys = [(m["due_at"], m["campaign"], m["customer_id"]) for m in messages]
    assert keys == sorted(keys)
    counted: dict = {}
    for message in messages:
        by = counted.setdefault(message["campaign"], {})
        by[message["status"]] = by.get(message["status"], 0) + 1
    assert {name: by for name, by in simulated["summary"].items() if by} == counted
    table = crmrules("campaigns", "simulate", str(SHOP), "--data", str(shop_data), "--from", "2026-06-01",
                     "--to", "2026-06-14")
    assert table.returncode == 0 and "summary" in table.stdout


def test_run_then_list_equals_simulation(shop_data, tmp_path):
    """A run over a period writes the messages a simulation of the same period prints."""
    outbox = tmp_path / "o.db"
    result = crmrules("campaigns", "run", str(SHOP), "--data", str(shop_data), "--outbox", str(outbox),
                      "--since", "2026-06-01", "--now", "2026-06-14")
    assert result.returncode == 0, result.stderr
    assert "new message" in result.stdout
    listed = json.loads(crmrules("campaigns", "outbox", "--outbox", str(outbox), "--format", "json").stdout)
    simulated = json.loads(crmrules("campaigns", "simulate", str(SHOP), "--data", str(shop_data), "--from",
                                    "2026-06-01", "--to", "2026-06-14", "--format", "json").stdout)
    assert [{k: v for k, v in m.items() if k != "id"} for m in listed["messages"]] == simulated["messages"]
    assert listed["summary"] == {name: by for name, by in simulated["summary"].items() if by}


def test_run_clock_backwards_writes_nothing(shop_data, tmp_path):
    outbox = tmp_path / "o.db"
    common = [str(SHOP), "--data", str(shop_data), "--outbox", str(outbox)]
    assert crmrules("campaigns", "run", *common, "--since", "2026-06-01", "--now", "2026-06-03").returncode == 0
    before = outbox.read_bytes()
    result = crmrules("campaigns", "run", *common, "--now", "2026-06-02")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert outbox.read_bytes() == before
    with open_outbox(outbox) as box:
        assert box.last_run() == datetime(2026, 6, 3, 23, 59, 59, 999999)


def test_run_into_a_postgres_outbox(shop_data, tmp_path, postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS cli_run CASCADE")
        connection.execute("CREATE SCHEMA cli_run")
    url = postgres_url + "?options=-csearch_path%3Dcli_run"
    common = [str(SHOP), "--data", str(shop_data), "--since", "2026-06-01", "--now", "2026-06-07"]
    result = crmrules("campaigns", "run", *common, "--outbox", url)
    assert result.returncode == 0, result.stderr
    assert crmrules("campaigns", "run", *common, "--outbox", str(tmp_path / "o.db")).returncode == 0
    on_postgres = json.loads(crmrules("campaigns", "outbox", "--outbox", url, "--format", "json").stdout)
    on_sqlite = json.loads(crmrules("campaigns", "outbox", "--outbox", str(tmp_path / "o.db"),
                                    "--format", "json").stdout)
    assert on_postgres == on_sqlite and on_postgres["messages"]


def test_run_gives_the_same_outbox_on_every_backend(shop_data, tmp_path):
    listings = {}
    for backend in ("duckdb", "sqlite", "memory"):
        outbox = tmp_path / f"{backend}.db"
        result = crmrules("campaigns", "run", str(SHOP), "--data", str(shop_data), "--outbox", str(outbox),
                          "--since", "2026-06-10", "--now", "2026-06-16", "--backend", backend)
        assert result.returncode == 0, result.stderr
        listings[backend] = crmrules("campaigns", "outbox", "--outbox", str(outbox), "--format", "csv").stdout
    assert listings["duckdb"].count("\n") > 1
    assert listings["sqlite"] == listings["duckdb"] == listings["memory"]
