"""`deliver`: send the outbox's due `ready` messages through their channels and record each outcome.

The order of a run:

1. read channels.toml and check it; count the due messages per channel (a channel without an entry
   keeps its messages `ready`: they are reported, never failed);
2. compile every template the due email messages name, open the customer data, and reach every server
   once (`check`): any mistake here stops the run before a single message is claimed;
3. per channel, claim a chunk of messages in one transaction (`ready` → `sending`, with who and when),
   send each (rate-limited, `concurrency` threads, retries with exponential backoff for temporary
   failures), and record its outcome (`delivered` or `failed`, attempts, last error) right after;
4. count what is left `ready` per channel.

Exactly once as far as the receiver allows: the message id travels as the email's Message-ID and as the
webhook's Idempotency-Key. A process killed between a send and its record leaves the message `sending`;
a later run takes it over when its claimer is gone (same host, no such process) or when the claim is
older than the lease, and sends it again with the same key.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from crmrules.campaigns.delivery.config import Channel, load_channels
from crmrules.campaigns.delivery.customers import Customers, contact
from crmrules.campaigns.delivery.errors import NEEDS_DATA, DeliveryError
from crmrules.campaigns.delivery.templates import EmailTemplates, MessageFailure
from crmrules.campaigns.delivery.transports import (
    PermanentFailure,
    TemporaryFailure,
    build_email,
    transport_for,
)
from crmrules.campaigns.messages import Message
from crmrules.campaigns.outbox import Outbox, open_outbox
from crmrules.context import instant_of, parse_as_of
from crmrules.schema import Schema, default_schema

LEASE = 900.0  # seconds: a claim older than this is taken over, whoever holds it
_CHUNK = 200  # messages claimed per transaction
_MAX_BACKOFF = 60.0


@dataclass
class ChannelReport:
    """What happened to one channel's messages in a run."""

    transport: str | None
    delivered: int = 0
    failed: int = 0
    left_ready: int = 0


@dataclass
class DeliveryReport:
    """The outcome of a delivery run: per channel, the failures with their reasons, what was left `ready`."""

    now: datetime
    channels: dict[str, ChannelReport] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    unconfigured: dict[str, int] = field(default_factory=dict)  # channel → due messages left for want of an entry
    reclaimed: int = 0  # messages taken over from a claimer that is gone (or past its lease)

    @property
    def delivered(self) -> int:
        return sum(channel.delivered for channel in self.channels.values())

    @property
    def failed(self) -> int:
        return sum(channel.failed for channel in self.channels.values())

    def to_json(self) -> dict:
        """{"now", "channels": {NAME: {"transport", "delivered", "failed", "left_ready"}}, "failures",
        "unconfigured", "reclaimed"}."""
        return {"now": self.now.isoformat(),
                "channels": {name: {"transport": report.transport, "delivered": report.delivered,
                                    "failed": report.failed, "left_ready": report.left_ready}
                             for name, report in sorted(self.channels.items())},
                "failures": self.failures, "unconfigured": dict(sorted(self.unconfigured.items())),
                "reclaimed": self.reclaimed}


def deliver(outbox, channels, now=None, limit: int | None = None, data=None, schema: Schema | None = None,
            backend: str | None = None, lease: float = LEASE, progress=None) -> DeliveryReport:
    """Send the `ready` messages due by `now` (default: the current time in the store's time zone) through
    the transports of `channels` (a channels.toml path, or {name: Channel}); at most `limit` of them.

    `outbox`: an Outbox, a path or a postgresql:// URL. `data` (a data directory, database file or URL, or a
    list of customer dicts) gives the customers' columns: needed for email (the address, the templates'
    `customer`); webhook and JSON-lines payloads carry the contact fields when it is given. `progress`, when
    given, has `start({channel: due})` and `advance(channel, outcome)`."""
    schema = schema or default_schema()
    config = load_channels(channels) if isinstance(channels, (str, Path)) else dict(channels)
    due_by = _instant(now, schema.timezone)
    box = open_outbox(outbox, create=False) if isinstance(outbox, (str, Path)) else outbox
    run = None
    try:
        run = _Run(box, config, due_by, limit, lease)
        run.prepare(data, schema, backend)
        if progress is not None:
            progress.start({name: count for name, count in run.counts.items() if count})
        run.go(progress)
        return run.finish()
    finally:
        if run is not None:
            run.close()
        if box is not outbox:
            box.close()


class _Run:
    """One delivery run over one outbox: the shared state of its channel threads."""

    def __init__(self, box: Outbox, config: dict[str, Channel], due_by: datetime, limit: int | None, lease: float):
        self.box, self.config, self.due_by, self.lease = box, config, due_by, lease
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.lock = threading.RLock()  # one outbox connection, shared by every thread
        self.stop = threading.Event()
        self.budget = limit
        self.report = DeliveryReport(now=due_by)
        self.transports: dict = {}
        self.templates: dict[str, EmailTemplates] = {}
        self.customers: Customers | None = None
        self.stale_before = _utcnow() - timedelta(seconds=lease)
        self.reclaim = [owner for owner in box.claims() if owner and owner_gone(owner)]
        self.counts: dict[str, int] = {}
        self.errors: list[BaseException] = []

    def prepare(self, data, schema: Schema, backend: str | None) -> None:
        """Everything that can go wrong before a message is claimed: templates, data, servers."""
        due = self.box.due_counts(self.due_by)
        self.report.unconfigured = {name: count for name, count in due.items() if name not in self.config}
        names: dict[str, set] = {}
        for name, channel in self.config.items():
            seen = names.setdefault(name, set())
            count = 0
            for args in self.box.due_arguments(name, self.due_by, self.reclaim, self.stale_before):
                count += 1
                if channel.templates is not None:
                    seen.add(args.get("template"))
            self.counts[name] = count
            self.report.channels[name] = ChannelReport(channel.transport)
        active = [name for name, count in self.counts.items() if count]
        emails = [name for name in active if self.config[name].transport == "smtp"]
        rendered = [name for name in active if self.config[name].templates is not None]
        for name in rendered:
            templates = self.templates[name] = EmailTemplates(self.config[name].templates, name in emails)
            templates.prepare(value for value in names[name] if isinstance(value, str))
        if rendered and data is None:
            name = rendered[0]
            why = "email needs the customers' addresses" if name in emails else "its templates see `customer`"
            raise DeliveryError(f"{self.counts[name]:,} `{name}` messages are due and {why}",
                                hint="give --data (and --schema if yours maps names)", code=NEEDS_DATA)
        if data is not None and active:
            self.customers = Customers(data, schema, backend)
            if emails:
                self.customers.require("email", "email delivery")
        for name in active:
            transport = self.transports[name] = transport_for(self.config[name])
            transport.check()

    def go(self, progress) -> None:
        """One thread per channel claims and sends; Ctrl-C stops them and gives back what was not sent."""
        threads = [threading.Thread(target=self._guarded, args=(name, progress), daemon=True,
                                    name=f"deliver-{name}") for name in self.transports]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
        except BaseException:
            self.stop.set()
            for thread in threads:
                thread.join()
            raise
        if self.errors:
            raise self.errors[0]

    def _guarded(self, name: str, progress) -> None:
        try:
            _ChannelRun(self, self.config[name], self.transports[name], self.templates.get(name), progress).drive()
        except BaseException as error:  # noqa: BLE001 - raised again in the main thread
            self.errors.append(error)
            self.stop.set()

    def take(self, wanted: int) -> int:
        """How many messages a channel may claim now, within --limit."""
        with self.lock:
            if self.budget is None:
                return wanted
            granted = min(wanted, self.budget)
            self.budget -= granted
            return granted

    def give_back(self, count: int) -> None:
        with self.lock:
            if self.budget is not None:
                self.budget += count

    def finish(self) -> DeliveryReport:
        left = self.box.due_counts(self.due_by)
        for name, report in self.report.channels.items():
            report.left_ready = left.get(name, 0)
        self.report.unconfigured = {name: count for name, count in left.items() if name not in self.config}
        self.report.failures.sort(key=lambda failure: (failure["channel"], failure["id"]))
        return self.report

    def close(self) -> None:
        for transport in self.transports.values():
            transport.close()
        if self.customers is not None:
            self.customers.close()


class _ChannelRun:
    """One channel's claims and sends."""

    def __init__(self, run: _Run, channel: Channel, transport, templates: EmailTemplates | None, progress):
        self.run, self.channel, self.transport, self.templates = run, channel, transport, templates
        self.progress = progress
        self.limiter = RateLimiter(channel.rate)
        self.report = run.report.channels[channel.name]
        rate_chunk = int(channel.rate * run.lease / 2) if channel.rate else _CHUNK
        self.chunk = max(1, min(_CHUNK, rate_chunk))  # a chunk is sent well within the lease
        self.batched = channel.transport == "jsonl" and not channel.rate

    def drive(self) -> None:
        run = self.run
        with ThreadPoolExecutor(max_workers=self.channel.concurrency,
                                thread_name_prefix=f"deliver-{self.channel.name}") as pool:
            while not run.stop.is_set():
                wanted = run.take(self.chunk)
                if not wanted:
                    return
                with run.lock:
                    claimed = run.box.claim(self.channel.name, run.due_by, run.owner, _utcnow(), wanted,
                                            run.reclaim, run.stale_before)
                run.give_back(wanted - len(claimed))
                if not claimed:
                    return
                with run.lock:
                    run.report.reclaimed += sum(1 for _, _, taken_over in claimed if taken_over)
                messages = [message for message, _, _ in claimed]
                try:
                    people = run.customers.fetch(m.customer_id for m in messages) if run.customers else {}
                    if self.batched:
                        self.send_batch(messages, people)
                        continue
                    futures = [pool.submit(self.send_one, message, people.get(message.customer_id))
                               for message in messages]
                    wait(futures)
                    for future in futures:
                        future.result()
                except BaseException:
                    # what this chunk did not record goes back to `ready` (recorded ones are no longer ours)
                    with run.lock:
                        run.box.release([message.id for message in messages], run.owner)
                    raise

    def send_batch(self, messages: list[Message], people: dict) -> None:
        """A file transport without a rate: the chunk's lines written and synced once, recorded in one
        transaction (a sync per line would cost more than everything else together)."""
        run, outcomes, lines = self.run, [], []
        for message in messages:
            try:
                lines.append((self._payload(message, people.get(message.customer_id)), message.id))
            except MessageFailure as failure:
                outcomes.append((message.id, "failed", 0, str(failure), None))
        if lines:
            try:
                self.transport.send_many(lines)
                sent = _utcnow()
                outcomes += [(key, "delivered", 1, None, sent) for _, key in lines]
            except TemporaryFailure as failure:
                outcomes += [(key, "failed", 1, str(failure), None) for _, key in lines]
        by_id = {message.id: message for message in messages}
        with run.lock:
            recorded = run.box.finish_deliveries(run.owner, run.due_by, outcomes)
            for id, status, attempts, error, _ in outcomes:
                if id in recorded:
                    self._count(by_id[id], status, attempts, error)
        if self.progress is not None:
            for id, status, *_ in outcomes:
                self.progress.advance(self.channel.name, status)

    def send_one(self, message: Message, customer: dict | None) -> None:
        """Build, send (with retries) and record one message; give it back unsent when the run stops."""
        if self.run.stop.is_set():
            self._release(message)
            return
        try:
            send = self._sender(message, customer)
        except MessageFailure as failure:
            self._finish(message, "failed", 0, str(failure))
            return
        attempts, last = 0, None
        for attempt in range(self.channel.retries + 1):
            self.limiter.wait(self.run.stop)
            if self.run.stop.is_set():
                self._release(message)
                return
            attempts += 1
            try:
                send()
            except TemporaryFailure as failure:
                last = str(failure)
                if attempt == self.channel.retries:
                    break
                delay = min(self.channel.backoff * (2 ** attempt), _MAX_BACKOFF)
                if failure.retry_after is not None:
                    delay = max(delay, failure.retry_after)
                if self.run.stop.wait(delay):
                    self._release(message)
                    return
                continue
            except PermanentFailure as failure:
                self._finish(message, "failed", attempts, str(failure))
                return
            self._finish(message, "delivered", attempts, None)
            return
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        self._finish(message, "failed", attempts, f"{last} ({tries})")

    def _sender(self, message: Message, customer: dict | None):
        """A function sending this message once; MessageFailure when it cannot even be built."""
        channel = self.channel
        if channel.transport == "smtp":
            if customer is None:
                raise MessageFailure(f"customer {message.customer_id} is not in the customer data")
            address = customer.get("email")
            if not address or not isinstance(address, str):
                raise MessageFailure(f"customer {message.customer_id} has no email address")
            rendered = self.templates.render(message.args.get("template"), customer, message.args)
            email = build_email(channel, message.id, address, rendered.subject, rendered.text, rendered.html,
                                message.campaign)
            return lambda: self.transport.send(email, address)
        payload = self._payload(message, customer)
        return lambda: self.transport.send(payload, message.id)

    def _payload(self, message: Message, customer: dict | None) -> dict:
        """What a webhook or a JSON-lines file receives of a message (with --data: the customer's contact)."""
        payload = {"id": message.id, "campaign": message.campaign, "customer_id": message.customer_id,
                   "channel": message.channel, "args": message.args, "due_at": message.due_at.isoformat()}
        if self.run.customers is not None:
            payload["customer"] = contact(customer)
        if self.templates is not None:
            if customer is None:
                raise MessageFailure(f"customer {message.customer_id} is not in the customer data")
            made = self.templates.render(message.args.get("template"), customer, message.args)
            payload.update({"subject": made.subject, "text": made.text, "html": made.html})
        return payload

    def _finish(self, message: Message, status: str, attempts: int, error: str | None) -> None:
        run = self.run
        with run.lock:
            recorded = run.box.finish_delivery(message.id, run.owner, status, run.due_by, attempts, error,
                                               _utcnow() if status == "delivered" else None)
            if recorded:
                self._count(message, status, attempts, error)
        if self.progress is not None:
            self.progress.advance(message.channel, status)

    def _count(self, message: Message, status: str, attempts: int, error: str | None) -> None:
        if status == "delivered":
            self.report.delivered += 1
            return
        self.report.failed += 1
        self.run.report.failures.append({"id": message.id, "channel": message.channel, "campaign": message.campaign,
                                         "customer_id": message.customer_id, "attempts": attempts, "error": error})

    def _release(self, message: Message) -> None:
        with self.run.lock:
            self.run.box.release([message.id], self.run.owner)


class RateLimiter:
    """At most `rate` sends per second for a channel, spaced evenly, across its threads."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self, stop: threading.Event) -> None:
        """Block until this thread's slot comes (or the run stops)."""
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next)
            self.next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            stop.wait(delay)


def owner_gone(owner: str) -> bool:
    """Whether the process that made a claim is known to be gone: on this host, no process of that id (or
    this very process, from an earlier run). A claimer on another host is never known gone: the lease applies."""
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # an earlier run in this process: its claims outlived it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False


def _instant(now, timezone: str) -> datetime:
    if now is None:
        return datetime.now(ZoneInfo(timezone)).replace(tzinfo=None, microsecond=0)
    if isinstance(now, (str, date)):
        return instant_of(parse_as_of(now), timezone)
    raise TypeError(f"now must be a date, datetime or ISO text, not {type(now).__name__}")


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
