"""`crmrules campaigns deliver` and `deliver(...)` against real receivers: an SMTP server (aiosmtpd) and an
HTTP server on loopback, JSON-lines files; retries, permanent failures, rate limits, bad input, the
outbox upgrade, the PostgreSQL outbox."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest
from delivery_servers import (
    CUSTOMERS,
    DUE,
    HttpRecorder,
    SmtpServer,
    free_port,
    make_outbox,
    ready_messages,
    statuses,
    write_customers_csv,
)
from test_cli import crmrules

from crmrules.campaigns.delivery import DeliveryError, deliver
from crmrules.campaigns.outbox import open_outbox

NOW = "2026-06-30"


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def http():
    server = HttpRecorder()
    yield server
    server.stop()


def _templates(folder, **files):
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text)
    return folder


WINBACK_TXT = ("Subject: We miss you, {{ customer.first_name }}\n\n"
               "Hello {{ customer.first_name }}, come back with {{ coupon }}.\n")
WINBACK_HTML = "<p>Hello {{ customer.first_name }} &amp; welcome back: <b>{{ coupon }}</b></p>\n"


def _channels(tmp_path, text: str):
    path = tmp_path / "channels.toml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------- SMTP
def test_email_bodies_as_rendered_reach_a_real_smtp_server(tmp_path, smtp):
    _templates(tmp_path / "templates", winback__txt=WINBACK_TXT, winback__html=WINBACK_HTML)
    outbox = tmp_path / "outbox.db"
    messages = ready_messages(3)
    make_outbox(outbox, messages)
    channels = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "{smtp.url}"\n'
                                   'from = "Shop <news@shop.example>"\ntemplates = "templates"\n')
    people = [dict(c) for c in CUSTOMERS]
    people[1]["first_name"] = "<Bo & co>"  # the HTML part escapes what it inserts, the text part does not
    report = deliver(outbox, channels, now=NOW, data=people)
    assert (report.delivered, report.failed) == (3, 0)
    received = {item["to"][0]: item for item in smtp.handler.received}
    assert sorted(received) == ["c0@example.com", "c1@example.com", "c2@example.com"]
    ana = received["c0@example.com"]
    assert ana["from"] == "news@shop.example"
    assert ana["message"]["Subject"] == "We miss you, Ana"
    assert ana["message"]["Message-ID"] == f"<{messages[0].id}@crmrules>"
    assert ana["message"].get_content_type() == "multipart/alternative"
    assert ana["message"].get_body(("plain",)).get_content().replace("\r\n", "\n") == "Hello Ana, come back with BACK15.\n"
    assert ana["message"].get_body(("html",)).get_content().strip() == \
        "<p>Hello Ana &amp; welcome back: <b>BACK15</b></p>"
    bo = received["c1@example.com"]["message"]
    assert bo["Subject"] == "We miss you, <Bo & co>"
    assert "&lt;Bo &amp; co&gt;" in bo.get_body(("html",)).get_content()
    assert set(statuses(outbox).values()) == {"delivered"}
    with open_outbox(outbox, create=False) as box:
        record = box.delivery(messages[0].id)
    assert record["attempts"] == 1 and record["last_error"] is None and record["sent_at"] is not None


def test_smtp_4xx_is_retried_and_5xx_fails_at_once(tmp_path, smtp):
    _templates(tmp_path / "templates", winback__txt=WINBACK_TXT)
    outbox = tmp_path / "outbox.db"
    messages = ready_messages(3)
    make_outbox(outbox, messages)
    smtp.handler.temporary["c0@example.com"] = 2
    smtp.handler.rejected.add("c1@example.com")
    channels = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "{smtp.url}"\nfrom = "news@shop.example"\n'
                                   'templates = "templates"\nretries = 3\nbackoff = "10ms"\n')
    report = deliver(outbox, channels, now=NOW, data=CUSTOMERS)
    assert (report.delivered, report.failed) == (2, 1)
    assert smtp.handler.attempts["c0@example.com"] == 3  # two 451s, then accepted
    assert smtp.handler.attempts["c1@example.com"] == 1  # 550: no retry
    assert [item["to"] for item in smtp.handler.received].count(["c0@example.com"]) == 1
    found = statuses(outbox)
    assert found == {messages[0].id: "delivered", messages[1].id: "failed", messages[2].id: "delivered"}
    with open_outbox(outbox, create=False) as box:
        retried, refused = box.delivery(messages[0].id), box.delivery(messages[1].id)
    assert retried["attempts"] == 3 and retried["last_error"] is None
    assert refused["attempts"] == 1 and refused["last_error"].startswith("SMTP 550 5.1.1 no such mailbox")
    assert report.failures == [{"id": messages[1].id, "channel": "email", "campaign": "winback",
                                "customer_id": "c1", "attempts": 1, "error": refused["last_error"]}]


def test_smtp_4xx_past_the_retries_fails_with_the_last_error(tmp_path, smtp):
    _templates(tmp_path / "templates", winback__txt=WINBACK_TXT)
    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, ready_messages(1))
    smtp.handler.temporary["c0@example.com"] = 10
    channels = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "{smtp.url}"\nfrom = "news@shop.example"\n'
                                   'templates = "templates"\nretries = 2\nbackoff = "5ms"\n')
    report = deliver(outbox, channels, now=NOW, data=CUSTOMERS)
    assert report.failed == 1 and smtp.handler.attempts["c0@example.com"] == 3
    assert report.failures[0]["error"] == "SMTP 451 4.3.0 try again later (after 3 attempts)"


def test_a_missing_template_or_a_rendering_error_fails_that_message_only(tmp_path, smtp):
    _templates(tmp_path / "templates", winback__txt=WINBACK_TXT,
               vip__txt="Subject: Hi\n\nYour tier: {{ customer.no_such_column }}\n")
    outbox = tmp_path / "outbox.db"
    good, = ready_messages(1)
    missing, = ready_messages(1, campaign="other", args={"template": "nope"})
    broken, = ready_messages(1, campaign="vip", args={"template": "vip"})
    no_address, = ready_messages(1, campaign="third")
    make_outbox(outbox, [good, missing, broken, no_address])
    people = [dict(c) for c in CUSTOMERS]
    channels = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "{smtp.url}"\nfrom = "news@shop.example"\n'
                                   'templates = "templates"\n')
    report = deliver(outbox, channels, now=NOW, data=people[:1] + [{"id": "zz"}])
    reasons = {failure["campaign"]: failure["error"] for failure in report.failures}
    assert report.delivered == 2  # winback and third, both to c0
    assert reasons["other"] == f"no template {tmp_path / 'templates' / 'nope.txt'}"
    assert reasons["vip"].startswith("template 'vip' failed: UndefinedError:")
    assert "no_such_column" in reasons["vip"]
    assert len(smtp.handler.received) == 2


def test_email_without_an_address_or_a_customer_fails(tmp_path, smtp):
    _templates(tmp_path / "templates", winback__txt=WINBACK_TXT)
    outbox = tmp_path / "outbox.db"
    messages = ready_messages(2)
    make_outbox(outbox, messages)
    channels = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "{smtp.url}"\nfrom = "news@shop.example"\n'
                                   'templates = "templates"\n')
    report = deliver(outbox, channels, now=NOW, data=[{"id": "c0", "email": None}])
    assert sorted(failure["error"] for failure in report.failures) == [
        "customer c0 has no email address", "customer c1 is not in the customer data"]
    assert smtp.handler.received == []


def test_email_needs_data(tmp_path, smtp):
    _templates(tmp_path / "templates", winback__txt=WINBACK_TXT)
    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, ready_messages(2))
    channels = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "{smtp.url}"\nfrom = "news@shop.example"\n'
                                   'templates = "templates"\n')
    result = crmrules("campaigns", "deliver", "--outbox", str(outbox), "--channels", str(channels), "--now", NOW)
    assert result.returncode == 1
    assert "error[E0715]: 2 `email` messages are due and email needs the customers' addresses" in result.stderr
    assert set(statuses(outbox).values()) == {"ready"}


def test_the_cli_delivers_email_with_a_data_directory(tmp_path, smtp):
    _templates(tmp_path / "templates", winback__txt=WINBACK_TXT)
    write_customers_csv(tmp_path / "data")
    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, ready_messages(4))
    channels = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "{smtp.url}"\nfrom = "news@shop.example"\n'
                                   'templates = "templates"\nconcurrency = 2\n')
    result = crmrules("campaigns", "deliver", "--outbox", str(outbox), "--channels", str(channels), "--now", NOW,
                      "--data", str(tmp_path / "data"), "--format", "json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["channels"] == {"email": {"transport": "smtp", "delivered": 4, "failed": 0, "left_ready": 0}}
    subjects = sorted(item["message"]["Subject"] for item in smtp.handler.received)
    assert subjects == ["We miss you, Ana", "We miss you, Bo", "We miss you, Cy", "We miss you, Dee"]


def test_a_template_syntax_error_stops_before_anything_is_sent(tmp_path, smtp):
    _templates(tmp_path / "templates", winback__txt="Subject: Hi\n\nHello\n{% if customer.first_name %}\nno end\n")
    write_customers_csv(tmp_path / "data")
    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, ready_messages(3))
    channels = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "{smtp.url}"\nfrom = "news@shop.example"\n'
                                   'templates = "templates"\n')
    result = crmrules("campaigns", "deliver", "--outbox", str(outbox), "--channels", str(channels), "--now", NOW,
                      "--data", str(tmp_path / "data"))
    assert result.returncode == 1
    assert f"{tmp_path / 'templates' / 'winback.txt'}:4:1: error[E0714]: template syntax error: Unexpected end of template" in result.stderr
    assert "Traceback" not in result.stderr
    assert smtp.handler.received == [] and set(statuses(outbox).values()) == {"ready"}


def test_a_text_template_needs_its_subject_line(tmp_path, smtp):
    _templates(tmp_path / "templates", winback__txt="Hello {{ coupon }}\n")
    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, ready_messages(1))
    channels = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "{smtp.url}"\nfrom = "news@shop.example"\n'
                                   'templates = "templates"\n')
    with pytest.raises(DeliveryError) as raised:
        deliver(outbox, channels, now=NOW, data=CUSTOMERS)
    assert raised.value.code == "E0714" and "does not start with a `Subject: ...` line" in raised.value.message


# ------------------------------------------------------------------------------------------- webhooks
def test_webhook_posts_json_with_the_idempotency_key_and_retries_5xx(tmp_path, http):
    outbox = tmp_path / "outbox.db"
    messages = ready_messages(4, channel="sms", campaign="cart", args={"template": "cart"})
    make_outbox(outbox, messages)
    http.plan = {"c0": [500, 503], "c1": [400], "c2": [429]}
    channels = _channels(tmp_path, f'[sms]\ntransport = "webhook"\nurl = "{http.url}"\nbackoff = "10ms"\n')
    report = deliver(outbox, channels, now=NOW, data=CUSTOMERS)
    assert (report.delivered, report.failed) == (3, 1)
    by_customer: dict[str, list] = {}
    for request in http.requests:
        by_customer.setdefault(request["body"]["customer_id"], []).append(request)
    assert [len(by_customer[c]) for c in ("c0", "c1", "c2", "c3")] == [3, 1, 2, 1]
    first = by_customer["c0"][0]
    assert first["path"] == "/hook" and first["headers"]["Content-Type"] == "application/json"
    assert {r["headers"]["Idempotency-Key"] for r in by_customer["c0"]} == {messages[0].id}
    assert first["body"] == {"id": messages[0].id, "campaign": "cart", "customer_id": "c0", "channel": "sms",
                             "args": {"template": "cart"}, "due_at": DUE.isoformat(),
                             "customer": {"email": "c0@example.com", "phone": "+351 910000000",
                                          "first_name": "Ana", "last_name": None, "language": None}}
    refused = next(failure for failure in report.failures if failure["customer_id"] == "c1")
    assert refused["attempts"] == 1
    assert refused["error"] == 'HTTP 400 Bad Request: {"error": "refused by the test"}'
    with open_outbox(outbox, create=False) as box:
        assert box.delivery(messages[0].id)["attempts"] == 3


def test_webhook_without_data_carries_no_customer(tmp_path, http):
    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, ready_messages(1, channel="webhook", campaign="hook", args={"url": "x"}))
    channels = _channels(tmp_path, f'[webhook]\ntransport = "webhook"\nurl = "{http.url}"\n')
    assert deliver(outbox, channels, now=NOW).delivered == 1
    assert "customer" not in http.requests[0]["body"]


def test_the_rate_limit_holds_at_the_receiver(tmp_path, http):
    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, ready_messages(30, channel="sms", campaign="cart", args={"template": "cart"}))
    channels = _channels(tmp_path, f'[sms]\ntransport = "webhook"\nurl = "{http.url}"\nrate = "20/s"\n'
                                   'concurrency = 4\n')
    assert deliver(outbox, channels, now=NOW).delivered == 30
    arrivals = sorted(request["at"] for request in http.requests)
    assert arrivals[-1] - arrivals[0] >= 29 / 20 - 0.05
    # no one-second window holds more than 20 (+1 for the edge) requests
    assert max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals) <= 21


# ------------------------------------------------------------------------------------- JSON lines, CLI
def test_jsonl_limit_left_ready_and_a_channel_without_an_entry(tmp_path):
    outbox = tmp_path / "outbox.db"
    emails = ready_messages(5)
    points = ready_messages(2, channel="award_points", campaign="vip", args={"points": 500})
    later = ready_messages(1, campaign="later", due=DUE.replace(month=7))
    make_outbox(outbox, [*emails, *points, *later])
    channels = _channels(tmp_path, '[email]\ntransport = "jsonl"\npath = "out/email.jsonl"\n')
    (tmp_path / "out").mkdir()
    args = ("campaigns", "deliver", "--outbox", str(outbox), "--channels", str(channels), "--now", NOW)
    result = crmrules(*args, "--limit", "3", "--format", "json")
    assert result.returncode == 1  # award_points has no entry
    assert "their channel has no entry in" in result.stderr and "award_points (2)" in result.stderr
    shown = json.loads(result.stdout)
    assert shown["channels"]["email"] == {"transport": "jsonl", "delivered": 3, "failed": 0, "left_ready": 2}
    assert shown["unconfigured"] == {"award_points": 2}
    lines = [json.loads(line) for line in (tmp_path / "out" / "email.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == [m.id for m in emails[:3]]  # oldest first (then as recorded)
    assert all(set(line) == {"id", "campaign", "customer_id", "channel", "args", "due_at"} for line in lines)
    result = crmrules(*args)
    assert result.returncode == 1 and "email" in result.stdout
    found = statuses(outbox)
    assert [found[m.id] for m in emails] == ["delivered"] * 5
    assert [found[m.id] for m in points] == ["ready"] * 2 and found[later[0].id] == "ready"  # due in July
    assert len((tmp_path / "out" / "email.jsonl").read_text().splitlines()) == 5


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("toml", "expected"), [
    ('[emial]\ntransport = "jsonl"\npath = "x.jsonl"\n',
     ("channels.toml:1:1: error[E0710]: unknown channel `emial`", "did you mean `email`?")),
    ('[email]\ntransport = "ftp"\n', ("channels.toml:2:1: error[E0711]: unknown transport `ftp`",)),
    ('[email]\ntransport = "smtp"\nurl = "http://mail:25"\nfrom = "a@b"\ntemplates = "."\n',
     ("channels.toml:3:1: error[E0712]: `http://mail:25` is not an SMTP URL",)),
    ('[sms]\ntransport = "webhook"\nurl = "http://host:99999/x"\n',
     ("error[E0712]: `http://host:99999/x`: the port must be a number",)),
    ('[sms]\ntransport = "webhook"\nurl = "http://127.0.0.1:PORT/x"\n',
     ("error[E0713]: cannot reach the webhook http://127.0.0.1:PORT/x of channel `sms`: connection refused",)),
    ('[email]\ntransport = "smtp"\nurl = "smtp://127.0.0.1:PORT"\nfrom = "a@b"\ntemplates = "."\n',
     ("error[E0713]: cannot reach the SMTP server 127.0.0.1:PORT of channel `email`: connection refused",)),
    ('[sms]\ntransport = "jsonl"\npath = "x.jsonl"\nrate = "fast"\n', ("channels.toml:4:1: error[E0711]: rate `fast`",)),
    ('[sms]\ntransport = "jsonl"\npth = "x.jsonl"\n', ("error[E0711]: unknown setting `pth`", "did you mean `path`?")),
    ('[sms\ntransport = "jsonl"\n', ("channels.toml:1:5: error[E0710]: not valid TOML: Expected ']'",)),
])
def test_bad_channels_are_one_clear_error_and_nothing_is_touched(tmp_path, toml, expected):
    port = str(free_port())
    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, [*ready_messages(2), *ready_messages(2, channel="sms", campaign="c", args={"template": "t"})])
    channels = _channels(tmp_path, toml.replace("PORT", port))
    with pytest.raises(DeliveryError) as raised:
        deliver(outbox, channels, now=NOW, data=CUSTOMERS)
    shown = raised.value.render()
    for text in expected:
        assert text.replace("PORT", port) in shown, shown
    assert set(statuses(outbox).values()) == {"ready"}


def test_bad_input_on_the_command_line_is_one_error_without_a_traceback(tmp_path):
    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, ready_messages(2))
    write_customers_csv(tmp_path / "data")
    port = free_port()
    channels = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "smtp://u:secret@127.0.0.1:{port}"\n'
                                   'from = "a@b"\ntemplates = "."\n')
    result = crmrules("campaigns", "deliver", "--outbox", str(outbox), "--channels", str(channels), "--now", NOW,
                      "--data", str(tmp_path / "data"))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines()[0] == (f"error[E0713]: cannot reach the SMTP server 127.0.0.1:{port} of "
                                             "channel `email`: connection refused")
    assert "secret" not in result.stderr and "Traceback" not in result.stderr
    assert set(statuses(outbox).values()) == {"ready"}


def test_no_outbox_is_an_error(tmp_path):
    channels = _channels(tmp_path, '[email]\ntransport = "jsonl"\npath = "x.jsonl"\n')
    result = crmrules("campaigns", "deliver", "--outbox", str(tmp_path / "none.db"), "--channels", str(channels))
    assert result.returncode == 1 and "error[E0701]: no outbox at" in result.stderr
    assert not (tmp_path / "none.db").exists()


# ------------------------------------------------------------------------------------ outbox upgrade
def test_a_version_1_outbox_is_upgraded_in_place(tmp_path):
    outbox = tmp_path / "outbox.db"
    messages = ready_messages(3)
    make_outbox(outbox, messages)
    connection = sqlite3.connect(outbox)
    connection.execute("DROP TABLE outbox_delivery")
    connection.execute("UPDATE outbox_meta SET value = '1' WHERE key = 'version'")
    connection.commit()
    connection.close()
    channels = _channels(tmp_path, '[email]\ntransport = "jsonl"\npath = "x.jsonl"\n')
    assert deliver(outbox, channels, now=NOW).delivered == 3
    connection = sqlite3.connect(outbox)
    assert connection.execute("SELECT value FROM outbox_meta WHERE key = 'version'").fetchone() == ("2",)
    assert connection.execute("SELECT COUNT(*) FROM outbox_delivery").fetchone() == (3,)
    connection.close()


def test_a_newer_outbox_is_refused(tmp_path):
    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, ready_messages(1))
    connection = sqlite3.connect(outbox)
    connection.execute("UPDATE outbox_meta SET value = '9' WHERE key = 'version'")
    connection.commit()
    connection.close()
    with pytest.raises(Exception, match="format version 9"):
        open_outbox(outbox)


# --------------------------------------------------------------------------------------- PostgreSQL
def test_postgres_outbox_claims_and_records(postgres_url, tmp_path, http):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS delivery_test CASCADE")
        connection.execute("CREATE SCHEMA delivery_test")
    url = postgres_url + "?options=-csearch_path%3Ddelivery_test"
    messages = ready_messages(5, channel="sms", campaign="cart", args={"template": "cart"})
    make_outbox(url, messages[:1])
    with psycopg.connect(url, autocommit=True) as connection:  # made a version-1 outbox: upgraded when opened
        connection.execute("DROP TABLE outbox_delivery")
        connection.execute("UPDATE outbox_meta SET value = '1' WHERE key = 'version'")
    make_outbox(url, messages[1:])
    with psycopg.connect(url, autocommit=True) as connection:
        assert connection.execute("SELECT value FROM outbox_meta WHERE key = 'version'").fetchone() == ("2",)
    http.plan = {"c1": [400]}
    channels = _channels(tmp_path, f'[sms]\ntransport = "webhook"\nurl = "{http.url}"\nconcurrency = 2\n')
    report = deliver(url, channels, now=NOW, data=CUSTOMERS)
    assert (report.delivered, report.failed) == (4, 1)
    assert sorted(http.keys()) == sorted(m.id for m in messages)
    with open_outbox(url, create=False) as box:
        assert {m.status for m in box.messages()} == {"delivered", "failed"}
        refused = box.delivery(messages[1].id)
        assert refused["attempts"] == 1 and refused["last_error"].startswith("HTTP 400")
        # a claim taken by a process that is gone is taken over; one by a live claimer is not
        box.insert_many(ready_messages(2, channel="sms", campaign="again", args={"template": "cart"}))
        gone = box.claim("sms", DUE, "somehost-that-is-not-this-one:1:x", DUE, 1)
        assert len(gone) == 1 and box.claim("sms", DUE, "other:2:y", DUE, 5)[0][0].campaign == "again"
        assert box.claim("sms", DUE, "third:3:z", DUE, 5) == []
        stale = box.claim("sms", DUE, "fourth:4:w", DUE.replace(year=2030), 5, stale_before=DUE.replace(year=2027))
        assert len(stale) == 2 and all(taken_over for _, _, taken_over in stale)


# ------------------------------------------------------------------------------------ the demo shop
def test_the_demo_shops_channels_and_templates_render_every_campaign(tmp_path):
    import dataclasses
    import re
    from pathlib import Path

    from crmrules.campaigns.delivery import load_channels

    shop = Path(__file__).resolve().parent.parent / "examples" / "shop"
    real = load_channels(shop / "channels.toml")
    assert {name: channel.transport for name, channel in real.items()} == \
        {"email": "smtp", "sms": "webhook", "award_points": "jsonl"}
    # the demo's file as `make demo` reads it, its outputs under tmp_path (a fresh clone has no build/demo/)
    text = (shop / "channels-demo.toml").read_text(encoding="utf-8").replace("../../build/demo", str(tmp_path))
    (tmp_path / "channels-demo.toml").write_text(text.replace('"templates"', f'"{shop / "templates"}"'),
                                                 encoding="utf-8")
    demo = load_channels(tmp_path / "channels-demo.toml")
    demo = {name: dataclasses.replace(channel, path=tmp_path / f"{name}.jsonl") for name, channel in demo.items()}
    actions = re.findall(r"action:\s+(\w+)\((.*)\)", (shop / "shop.crm").read_text())
    assert len(actions) == 6
    arguments = {"coupon": "X1", "first_name": "Ana", "category": "skincare", "points": 120}
    messages = []
    for kind, text in actions:
        args = {name: arguments.get(name, value.strip('"'))
                for name, value in re.findall(r"(\w+):\s*(\"[^\"]*\"|\w+)", text)}
        if "points" in args:
            args["points"] = 120
        messages += ready_messages(1, channel=kind, campaign=f"c{len(messages)}", args=args)
    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, messages)
    report = deliver(outbox, demo, now=NOW, data=CUSTOMERS)
    assert (report.delivered, report.failed) == (6, 0), [f["error"] for f in report.failures]
    lines = [json.loads(line) for name in ("email", "sms") for line in (tmp_path / f"{name}.jsonl").open()]
    assert len(lines) == 5 and all(line["text"].strip() for line in lines)
    subjects = sorted(line["subject"] for line in lines if line["subject"])
    assert subjects == ["A birthday gift for you, Ana", "Thank you for your first order",
                        "Time to restock your skincare?", "We miss you, Ana"]
    winback = next(line for line in lines if line["args"].get("template") == "winback")
    assert "<code>X1</code>" in winback["html"]


def test_a_claim_of_a_live_process_is_left_alone_until_it_is_gone(tmp_path):
    import socket
    import subprocess
    import sys

    outbox = tmp_path / "outbox.db"
    messages = ready_messages(3)
    make_outbox(outbox, messages)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open_outbox(outbox, create=False) as box:
            held = box.claim("email", DUE, f"{socket.gethostname()}:{sleeper.pid}:t", _utcnow(), 2)
        channels = _channels(tmp_path, '[email]\ntransport = "jsonl"\npath = "x.jsonl"\n')
        first = deliver(outbox, channels, now=NOW)
        assert (first.delivered, first.reclaimed) == (1, 0)  # the live process keeps its two
        assert Counter(statuses(outbox).values()) == {"sending": 2, "delivered": 1}
    finally:
        sleeper.kill()
        sleeper.wait()
    second = deliver(outbox, channels, now=NOW)
    assert (second.delivered, second.reclaimed) == (2, 2)
    assert sorted(line["id"] for line in map(json.loads, (tmp_path / "x.jsonl").open())) == \
        sorted(m.id for m in messages)
    assert {message.id for message, _, _ in held} <= {m.id for m in messages}
    # a claim past the lease is taken over even from a live claimer (another host: never known gone)
    make_outbox(outbox, ready_messages(1, campaign="late"))
    with open_outbox(outbox, create=False) as box:
        box.claim("email", DUE, "elsewhere:1:t", _utcnow(), 1)
    assert deliver(outbox, channels, now=NOW, lease=3600).delivered == 0
    assert deliver(outbox, channels, now=NOW, lease=0.001).reclaimed == 1


def _utcnow():
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None)


def test_a_terminal_shows_a_bar_per_channel_and_a_pipe_none(tmp_path):
    import os
    import re
    import sys

    import pexpect

    outbox = tmp_path / "outbox.db"
    make_outbox(outbox, [*ready_messages(40), *ready_messages(10, channel="sms", campaign="cart")])
    channels = _channels(tmp_path, '[email]\ntransport = "jsonl"\npath = "e.jsonl"\nrate = "40/s"\n'
                                   '[sms]\ntransport = "jsonl"\npath = "s.jsonl"\n')
    child = pexpect.spawn(sys.executable, ["-m", "crmrules", "campaigns", "deliver", "--outbox", str(outbox),
                                           "--channels", str(channels), "--now", NOW],
                          env={**os.environ, "CRMRULES_PROGRESS_DELAY": "0", "TERM": "xterm"}, encoding="utf-8",
                          dimensions=(40, 160), timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before)
    assert child.exitstatus == 0, shown
    assert re.search(r"delivering email\s+━+.*\d+/40", shown), shown
    assert re.search(r"│ email\s+│ jsonl\s+│\s+40 │", shown)  # the summary after it
    piped = crmrules("campaigns", "deliver", "--outbox", str(outbox), "--channels", str(channels), "--now", NOW)
    assert piped.returncode == 0 and piped.stderr == ""


def test_starttls_and_login_when_the_url_asks(tmp_path, monkeypatch):
    import ssl
    import subprocess

    from aiosmtpd.smtp import AuthResult

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((session.ssl is not None, auth_data.login, auth_data.password))
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"shop", b"p@ss word"), handled=False)

    server = SmtpServer(tls_context=context, require_starttls=True, auth_required=True, authenticator=authenticator)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test's own certificate
    try:
        _templates(tmp_path / "templates", winback__txt=WINBACK_TXT)
        outbox = tmp_path / "outbox.db"
        make_outbox(outbox, ready_messages(2))
        url = f"smtp+starttls://shop:p%40ss%20word@127.0.0.1:{server.port}"
        channels = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "{url}"\nfrom = "news@shop.example"\n'
                                       'templates = "templates"\n')
        assert deliver(outbox, channels, now=NOW, data=CUSTOMERS).delivered == 2
        assert len(server.handler.received) == 2 and logins[0] == (True, b"shop", b"p@ss word")
        make_outbox(outbox, ready_messages(1, campaign="more"))
        wrong = _channels(tmp_path, f'[email]\ntransport = "smtp"\nurl = "{url.replace("word", "ward")}"\n'
                                    'from = "news@shop.example"\ntemplates = "templates"\n')
        with pytest.raises(DeliveryError) as raised:
            deliver(outbox, wrong, now=NOW, data=CUSTOMERS)
        assert raised.value.code == "E0713" and "refused the login of shop: 535" in raised.value.message
        assert "ward" not in raised.value.render()
    finally:
        server.stop()


def test_a_timeout_is_retried_then_fails(tmp_path, http):
    http.delay = 0.5
    outbox = tmp_path / "outbox.db"
    messages = ready_messages(1, channel="sms", campaign="cart", args={"template": "cart"})
    make_outbox(outbox, messages)
    channels = _channels(tmp_path, f'[sms]\ntransport = "webhook"\nurl = "{http.url}"\ntimeout = "100ms"\n'
                                   'retries = 1\nbackoff = "10ms"\n')
    report = deliver(outbox, channels, now=NOW)
    assert report.failed == 1
    assert report.failures[0]["error"].endswith(": timed out (after 2 attempts)")
    assert http.keys() == [messages[0].id, messages[0].id]  # the receiver saw both, with one key
