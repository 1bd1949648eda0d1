"""Real receivers for the delivery tests: an SMTP server (aiosmtpd) and an HTTP server, both on loopback,
recording what they receive and answering failures on demand; and a small outbox of `ready` messages."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from crmrules.campaigns.messages import Message, message_id
from crmrules.campaigns.outbox import open_outbox

DUE = datetime(2026, 6, 1, 9, 0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpRecorder:
    """An aiosmtpd handler: keeps every accepted email; answers 451 to a recipient's first N attempts
    (`temporary[address] = N`) and 550 to those in `rejected`."""

    def __init__(self):
        self.received: list[dict] = []
        self.temporary: dict[str, int] = {}
        self.rejected: set[str] = set()
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.attempts[address] = self.attempts.get(address, 0) + 1
            if address in self.rejected:
                return "550 5.1.1 no such mailbox"
            if self.temporary.get(address, 0) > 0:
                self.temporary[address] -= 1
                return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "message": parsed,
                                  "at": time.monotonic()})
        return "250 Message accepted"


class SmtpServer:
    """aiosmtpd's Controller on a free loopback port."""

    def __init__(self, **smtp_parameters):
        from aiosmtpd.controller import Controller

        self.handler = SmtpRecorder()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **smtp_parameters)
        self.controller.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.controller.stop()


class HttpRecorder:
    """An HTTP server keeping every POST (headers, JSON body, arrival time); `plan[customer_id]` lists the
    status codes to answer that customer's first requests with (then 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.plan: dict[str, list[int]] = {}
        self.delay = 0.0
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with recorder.lock:
                    recorder.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "at": time.monotonic()})
                    codes = recorder.plan.get(body.get("customer_id"), [])
                    code = codes.pop(0) if codes else 200
                if recorder.delay:
                    time.sleep(recorder.delay)
                answer = b'{"ok": true}' if code < 300 else b'{"error": "refused by the test"}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                if code == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True  # closing does not wait for keep-alive connections to time out
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def keys(self) -> list[str]:
        return [request["headers"]["Idempotency-Key"] for request in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


CUSTOMERS = [
    {"id": f"c{n}", "email": f"c{n}@example.com", "phone": f"+351 9100000{n:02d}", "first_name": name,
     "email_subscribed": True}
    for n, name in enumerate(["Ana", "Bo", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal"])
]


def ready_messages(count: int, channel: str = "email", campaign: str = "winback", args: dict | None = None,
                   due: datetime = DUE) -> list[Message]:
    """`count` ready messages of one campaign to customers c0, c1, ... (wrapping around CUSTOMERS)."""
    out = []
    for n in range(count):
        customer = CUSTOMERS[n % len(CUSTOMERS)]["id"]
        out.append(Message(id=message_id(campaign, customer, f"firing {n}"), campaign=campaign, customer_id=customer,
                           channel=channel, args=dict(args or {"template": "winback", "coupon": "BACK15"}),
                           fired_at=due, due_at=due, status="ready", updated_at=due))
    return out


def make_outbox(target, messages: list[Message]) -> None:
    with open_outbox(target) as box:
        box.insert_many(messages)


def statuses(target) -> dict[str, str]:
    with open_outbox(target, create=False) as box:
        return {message.id: message.status for message in box.messages()}


def write_customers_csv(path, customers=CUSTOMERS) -> None:
    path.mkdir(parents=True, exist_ok=True)
    lines = ["id,email,phone,first_name,email_subscribed"]
    lines += [f"{c['id']},{c['email']},{c['phone']},{c['first_name']},true" for c in customers]
    (path / "customers.csv").write_text("\n".join(lines) + "\n")
