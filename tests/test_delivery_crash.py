"""Delivery with real processes: one killed (SIGKILL) between a send and its record, then run again; two
deliverers at once on one outbox. The receivers count what arrives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from delivery_servers import (
    HttpRecorder,
    SmtpServer,
    make_outbox,
    ready_messages,
    statuses,
    write_customers_csv,
)

from crmrules.campaigns.outbox import open_outbox

# `crmrules` whose transports kill the process right after the Nth send succeeded, before it is recorded
_WRAPPER = """
import os, signal, sys
from crmrules.campaigns.delivery import transports

kill_after = int(os.environ.get("KILL_AFTER_SEND", "0"))
sent = 0

def _counted(method):
    def wrapped(self, *args):
        global sent
        result = method(self, *args)
        sent += 1
        if sent == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped

for kind in (transports.SmtpTransport, transports.WebhookTransport):
    kind.send = _counted(kind.send)

from crmrules.cli import main
sys.argv = ["crmrules", *sys.argv[1:]]
main()
"""


@pytest.fixture
def wrapper(tmp_path):
    path = tmp_path / "crmrules_killed.py"
    path.write_text(_WRAPPER)
    return path


def _deliver(wrapper, outbox, channels, data=None, **env) -> subprocess.Popen:
    command = [sys.executable, str(wrapper), "campaigns", "deliver", "--outbox", str(outbox), "--channels",
               str(channels), "--now", "2026-06-30", "--format", "json"]
    if data is not None:
        command += ["--data", str(data)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1", **env})


def _finished(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


@pytest.mark.parametrize("kill_after", [1, 7])
def test_a_webhook_delivery_killed_between_send_and_record_resends_with_the_same_key(tmp_path, wrapper,
                                                                                      kill_after):
    receiver = HttpRecorder()
    try:
        outbox = tmp_path / "outbox.db"
        messages = ready_messages(12, channel="sms", campaign="cart", args={"template": "cart"})
        make_outbox(outbox, messages)
        channels = tmp_path / "channels.toml"
        channels.write_text(f'[sms]\ntransport = "webhook"\nurl = "{receiver.url}"\n')
        code, _, err = _finished(_deliver(wrapper, outbox, channels, KILL_AFTER_SEND=str(kill_after)))
        assert code == -9, err
        assert len(receiver.requests) == kill_after
        crashed = Counter(statuses(outbox).values())
        assert crashed["delivered"] == kill_after - 1 and crashed["sending"] == 12 - (kill_after - 1)
        code, out, err = _finished(_deliver(wrapper, outbox, channels))
        assert code == 0, err
        report = json.loads(out)
        assert report["channels"]["sms"]["delivered"] == 12 - (kill_after - 1)
        assert report["reclaimed"] == 12 - (kill_after - 1)
        keys = Counter(receiver.keys())
        assert set(keys) == {m.id for m in messages}
        # the one message sent but not recorded arrives twice, with the same key; no other is repeated
        assert {key: count for key, count in keys.items() if count > 1} == {messages[kill_after - 1].id: 2}
        assert set(statuses(outbox).values()) == {"delivered"}
    finally:
        receiver.stop()


def test_an_email_delivery_killed_between_send_and_record_resends_the_same_message_id(tmp_path, wrapper):
    server = SmtpServer()
    try:
        (tmp_path / "templates").mkdir()
        (tmp_path / "templates" / "winback.txt").write_text("Subject: Hi {{ customer.first_name }}\n\nCome back\n")
        write_customers_csv(tmp_path / "data")
        outbox = tmp_path / "outbox.db"
        messages = ready_messages(6)
        make_outbox(outbox, messages)
        channels = tmp_path / "channels.toml"
        channels.write_text(f'[email]\ntransport = "smtp"\nurl = "{server.url}"\nfrom = "news@shop.example"\n'
                            'templates = "templates"\n')
        code, _, err = _finished(_deliver(wrapper, outbox, channels, tmp_path / "data", KILL_AFTER_SEND="3"))
        assert code == -9, err
        code, _, err = _finished(_deliver(wrapper, outbox, channels, tmp_path / "data"))
        assert code == 0, err
        ids = Counter(item["message"]["Message-ID"] for item in server.handler.received)
        third = messages[2].id  # sent in the order the outbox recorded them
        assert ids == {**{f"<{m.id}@crmrules>": 1 for m in messages}, f"<{third}@crmrules>": 2}
        assert set(statuses(outbox).values()) == {"delivered"}
        with open_outbox(outbox, create=False) as box:
            assert box.delivery(third)["attempts"] == 1  # the send before the crash was never recorded
    finally:
        server.stop()


def test_two_deliverers_at_once_send_each_message_once(tmp_path, wrapper):
    receiver = HttpRecorder()
    receiver.delay = 0.01  # long enough for the two processes to overlap whatever their start-up times
    try:
        outbox = tmp_path / "outbox.db"
        messages = ready_messages(500, channel="sms", campaign="cart", args={"template": "cart"})
        make_outbox(outbox, messages)
        channels = tmp_path / "channels.toml"
        channels.write_text(f'[sms]\ntransport = "webhook"\nurl = "{receiver.url}"\nconcurrency = 3\n')
        runs = [_deliver(wrapper, outbox, channels) for _ in range(2)]
        results = [_finished(run) for run in runs]
        assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
        delivered = [json.loads(out)["channels"]["sms"]["delivered"] for _, out, _ in results]
        assert sum(delivered) == 500 and min(delivered) > 0, delivered  # both worked, neither twice
        assert Counter(receiver.keys()) == {m.id: 1 for m in messages}
        assert set(statuses(outbox).values()) == {"delivered"}
    finally:
        receiver.stop()
