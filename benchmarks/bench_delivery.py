"""Delivery throughput (`crmrules campaigns deliver`), each against a baseline timed in the same run.

    python benchmarks/bench_delivery.py [--messages 20000] [--webhook-messages 4000] [--concurrency 8]
                                        [--only jsonl|webhook]

1. JSON lines: `--messages` ready messages delivered to a `jsonl` channel (claimed 200 per transaction,
   written and fsynced once per chunk, marked `delivered` in one transaction), against a plain loop that
   reads the same ready rows from the outbox, writes the same JSON lines and fsyncs once per 200 lines:
   the ratio is the cost of claiming and marking. Both files are checked to hold the same lines.
2. webhook: `--webhook-messages` messages POSTed (JSON, `Idempotency-Key`) to a local http.server
   receiver by a channel with `concurrency = 8`, against plain urllib POSTs of the same payloads on 8
   threads to the same receiver: the ratio is the cost of the outbox around each request. The receiver
   counts the requests of each side.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from crmrules.campaigns.delivery import deliver
from crmrules.campaigns.messages import Message, message_id
from crmrules.campaigns.outbox import open_outbox

NOW = datetime(2026, 6, 30, 12, 0)
CHUNK = 200  # the baseline's lines per fsync: what the deliverer writes per claimed chunk


def ready_outbox(path: Path, count: int, channel: str, seed: int) -> None:
    """An outbox of `count` ready messages of `channel`, due over the past month, to 10,000 customers."""
    rng = random.Random(seed)
    start = NOW - timedelta(days=30)
    messages = []
    for n in range(count):
        customer = f"{rng.randrange(10_000):05d}"
        due = start + timedelta(minutes=rng.randrange(30 * 24 * 60))
        campaign = rng.choice(["winback", "birthday", "replenish"])
        args = {"template": campaign, "coupon": f"C{rng.randrange(100):02d}"}
        messages.append(Message(id=message_id(campaign, customer, f"firing {n}"), campaign=campaign,
                                customer_id=customer, channel=channel, args=args, fired_at=due, due_at=due,
                                status="ready", updated_at=due))
    with open_outbox(path) as box, box.transaction():
        box.insert_many(messages)


def ready_payloads(path: Path, channel: str) -> list[dict]:
    """What a deliverer sends of each ready message (its `_payload` without --data), read with plain sqlite3."""
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT id, campaign, customer_id, channel, args, due_at FROM outbox "
                                  "WHERE status = 'ready' AND channel = ? AND due_at <= ? ORDER BY due_at",
                                  (channel, NOW.isoformat())).fetchall()
    finally:
        connection.close()
    return [{"id": id, "campaign": campaign, "customer_id": customer, "channel": channel, "args": json.loads(args),
             "due_at": due} for id, campaign, customer, channel, args, due in rows]


def bench_jsonl(count: int, scratch: Path) -> None:
    ready_outbox(scratch / "jsonl.db", count, "email", seed=1)
    ready_outbox(scratch / "baseline.db", count, "email", seed=1)  # the same messages, for the baseline to read
    (scratch / "jsonl.toml").write_text('[email]\ntransport = "jsonl"\npath = "delivered.jsonl"\n')
    began = time.perf_counter()
    report = deliver(scratch / "jsonl.db", scratch / "jsonl.toml", now=NOW)
    delivering = time.perf_counter() - began
    assert report.delivered == count and report.failed == 0, report.to_json()

    began = time.perf_counter()
    payloads = ready_payloads(scratch / "baseline.db", "email")
    reading = time.perf_counter() - began
    began = time.perf_counter()
    with open(scratch / "baseline.jsonl", "a", encoding="utf-8") as out:
        for start in range(0, len(payloads), CHUNK):
            out.write("".join(json.dumps(payload, ensure_ascii=False, sort_keys=True) + "\n"
                              for payload in payloads[start:start + CHUNK]))
            out.flush()
            os.fsync(out.fileno())
    writing = time.perf_counter() - began
    baseline = reading + writing

    same = sorted((scratch / "delivered.jsonl").read_text().splitlines()) == \
        sorted((scratch / "baseline.jsonl").read_text().splitlines())
    print(f"jsonl delivery: {count:,} messages in {delivering:.2f} s = {count / delivering:,.0f} messages/s; "
          f"plain read + write + fsync per {CHUNK} {baseline:.2f} s = {count / baseline:,.0f} lines/s "
          f"(read {reading:.2f} s, write {writing:.2f} s): {delivering / baseline:.1f}× "
          f"(claims and marking); same lines: {'yes' if same else 'NO'}")


class Receiver:
    """A local http.server answering 200 to every POST, counting requests and distinct idempotency keys."""

    def __init__(self):
        self.count = 0
        self.keys: set[str] = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # headers and body go out without waiting for the client's ACK

            def do_POST(self):
                json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.count += 1
                    receiver.keys.add(self.headers.get("Idempotency-Key", ""))
                answer = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            # http.server's backlog of 5 drops the SYNs of 8 senders connecting at once (a second's retransmit
            # each): a real webhook server listens with a longer queue
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def reset(self) -> None:
        with self.lock:
            self.count = 0
            self.keys = set()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def bench_webhook(count: int, concurrency: int, scratch: Path) -> None:
    ready_outbox(scratch / "webhook.db", count, "sms", seed=2)
    payloads = ready_payloads(scratch / "webhook.db", "sms")
    receiver = Receiver()
    try:
        (scratch / "webhook.toml").write_text(
            f'[sms]\ntransport = "webhook"\nurl = "{receiver.url}"\nconcurrency = {concurrency}\n')
        began = time.perf_counter()
        report = deliver(scratch / "webhook.db", scratch / "webhook.toml", now=NOW)
        delivering = time.perf_counter() - began
        assert report.delivered == count and report.failed == 0, report.to_json()
        received = (receiver.count, len(receiver.keys))
        receiver.reset()

        def post(payload: dict) -> None:
            body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
            request = urllib.request.Request(receiver.url, data=body, method="POST", headers={
                "Content-Type": "application/json", "Idempotency-Key": payload["id"]})
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(post, payloads))
        baseline = time.perf_counter() - began
        plain = (receiver.count, len(receiver.keys))
    finally:
        receiver.stop()
    print(f"webhook delivery, concurrency {concurrency}: {count:,} messages in {delivering:.2f} s = "
          f"{count / delivering:,.0f} messages/s; plain urllib POSTs on {concurrency} threads {baseline:.2f} s = "
          f"{count / baseline:,.0f}/s: {delivering / baseline:.2f}×; received {received[0]:,} requests, "
          f"{received[1]:,} keys (plain: {plain[0]:,}, {plain[1]:,})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000, help="messages delivered to a JSON-lines file")
    parser.add_argument("--webhook-messages", type=int, default=4_000, help="messages POSTed to the webhook")
    parser.add_argument("--concurrency", type=int, default=8, help="the webhook channel's concurrency")
    parser.add_argument("--only", choices=("jsonl", "webhook"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        if args.only in (None, "jsonl"):
            bench_jsonl(args.messages, Path(scratch))
        if args.only in (None, "webhook"):
            bench_webhook(args.webhook_messages, args.concurrency, Path(scratch))


if __name__ == "__main__":
    main()
