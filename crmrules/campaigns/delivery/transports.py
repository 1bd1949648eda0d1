"""The transports: SMTP, a webhook (JSON POST), a JSON-lines file. Each sends one message per call and says
how a failure should be treated: `TemporaryFailure` (worth retrying: SMTP 4xx, HTTP 5xx/408/429, timeouts,
a refused or dropped connection) or `PermanentFailure` (SMTP 5xx, any other HTTP 4xx: retrying cannot help).

`check()` runs before anything is claimed: a server that does not answer stops the delivery at once.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import threading
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlsplit

from crmrules.campaigns.delivery.config import Channel
from crmrules.campaigns.delivery.errors import UNREACHABLE, DeliveryError


class TemporaryFailure(Exception):
    """A failure worth retrying; `retry_after` is what the receiver asked to wait (seconds), if it did."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentFailure(Exception):
    """A failure no retry can mend: the message fails at once."""


def message_id_header(message_id: str) -> str:
    """The email Message-ID of an outbox message: its idempotency key, so a resend is recognisably the same."""
    return f"<{message_id}@crmrules>"


class SmtpTransport:
    """SMTP with one connection per sending thread, opened on first use and after any failure."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.url = channel.smtp
        self._local = threading.local()
        self._opened: list[smtplib.SMTP] = []
        self._lock = threading.Lock()

    def _connect(self) -> smtplib.SMTP:
        url, timeout = self.url, self.channel.timeout
        if url.tls:
            client = smtplib.SMTP_SSL(url.host, url.port, timeout=timeout, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(url.host, url.port, timeout=timeout)
        try:
            client.ehlo()
            if url.starttls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if url.user:
                client.login(url.user, url.password or "")
        except BaseException:
            _close(client)
            raise
        return client

    def check(self) -> None:
        """Connect (STARTTLS and login included) once; DeliveryError in one line when that fails."""
        try:
            client = self._connect()
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(f"the SMTP server {self.url.shown} refused the login of {self.url.user}: "
                                f"{error.smtp_code} {_text(error.smtp_error)}", code=UNREACHABLE) from None
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(f"cannot reach the SMTP server {self.url.shown} of channel `{self.channel.name}`: "
                                f"{_reason(error)}", code=UNREACHABLE) from None
        _close(client)

    def send(self, message: EmailMessage, recipient: str) -> None:
        """Send one email; TemporaryFailure or PermanentFailure with the server's answer."""
        client = getattr(self._local, "client", None)
        try:
            if client is None:
                client = self._local.client = self._connect()
                with self._lock:
                    self._opened.append(client)
            refused = client.send_message(message, from_addr=self.channel.sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as error:
            self._drop()
            code, text = next(iter(error.recipients.values()))
            raise _by_code(code, f"SMTP {code} {_text(text)}") from None
        except smtplib.SMTPResponseException as error:  # sender refused, data refused, a 4xx/5xx answer
            self._drop()
            raise _by_code(error.smtp_code, f"SMTP {error.smtp_code} {_text(error.smtp_error)}") from None
        except (OSError, smtplib.SMTPException) as error:  # refused, timed out, dropped mid-way
            self._drop()
            raise TemporaryFailure(f"SMTP {self.url.shown}: {_reason(error)}") from None
        if refused:  # a server accepting the message for some recipients only; we send to one
            code, text = next(iter(refused.values()))
            raise _by_code(code, f"SMTP {code} {_text(text)}")

    def _drop(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            _close(client)

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for client in opened:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                _close(client)


def build_email(channel: Channel, message_id: str, recipient: str, subject: str, text: str, html: str | None,
                campaign: str) -> EmailMessage:
    """The email of one message: plain text, or multipart/alternative with the HTML part."""
    email = EmailMessage()
    email["From"] = channel.sender
    email["To"] = recipient
    email["Subject"] = subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = message_id_header(message_id)
    email["X-Crmrules-Campaign"] = campaign
    email.set_content(text)
    if html is not None:
        email.add_alternative(html, subtype="html")
    return email


class WebhookTransport:
    """A JSON POST per message, its id in the `Idempotency-Key` header; any 2xx answer is delivered."""

    def __init__(self, channel: Channel):
        self.channel = channel
        parts = urlsplit(channel.url)
        self.host, self.port = parts.hostname, parts.port or (443 if parts.scheme.lower() == "https" else 80)
        self.shown = f"{parts.scheme}://{self.host}:{self.port}{parts.path}"

    def check(self) -> None:
        """Open (and close) a connection to the server; DeliveryError in one line when it does not answer."""
        try:
            socket.create_connection((self.host, self.port), timeout=self.channel.timeout).close()
        except OSError as error:
            raise DeliveryError(f"cannot reach the webhook {self.shown} of channel `{self.channel.name}`: "
                                f"{_reason(error)}", code=UNREACHABLE) from None

    def send(self, payload: dict, key: str) -> None:
        """POST the payload; TemporaryFailure or PermanentFailure with the status and the start of the answer."""
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        request = urllib.request.Request(self.channel.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Idempotency-Key": key, "User-Agent": "crmrules"})
        try:
            with urllib.request.urlopen(request, timeout=self.channel.timeout) as response:
                response.read()
        except urllib.error.HTTPError as error:
            reason = f"HTTP {error.code} {error.reason}"
            detail = _answer(error)
            if detail:
                reason += f": {detail}"
            if error.code in (408, 425, 429) or error.code >= 500:
                raise TemporaryFailure(reason, _retry_after(error.headers.get("Retry-After"))) from None
            raise PermanentFailure(reason) from None
        except (urllib.error.URLError, OSError) as error:  # refused, timed out, reset
            raise TemporaryFailure(f"{self.shown}: {_reason(error)}") from None

    def close(self) -> None:
        """Nothing held open between messages."""


class JsonlTransport:
    """One JSON line per message, appended to a file and synced to disk before the message is marked."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self._lock = threading.Lock()
        self._file = None

    def check(self) -> None:
        """Open the file for appending; DeliveryError when that is impossible."""
        try:
            self._file = open(self.channel.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        except OSError as error:
            raise DeliveryError(f"cannot append to {self.channel.path} (channel `{self.channel.name}`): "
                                f"{error.strerror or error}", code=UNREACHABLE) from None

    def send(self, payload: dict, key: str) -> None:
        """Append the payload as one line, flushed and fsynced."""
        self.send_many([(payload, key)])

    def send_many(self, payloads: list[tuple[dict, str]]) -> None:
        """Append one line per payload, then flush and fsync once: all are on disk when this returns."""
        text = "".join(json.dumps(payload, ensure_ascii=False, sort_keys=True) + "\n" for payload, _ in payloads)
        with self._lock:
            if self._file is None:
                self.check()
            try:
                self._file.write(text)
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as error:
                raise TemporaryFailure(f"cannot append to {self.channel.path}: {error.strerror or error}") from None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


TRANSPORT_CLASSES = {"smtp": SmtpTransport, "webhook": WebhookTransport, "jsonl": JsonlTransport}


def transport_for(channel: Channel):
    """The transport that carries a channel's messages."""
    return TRANSPORT_CLASSES[channel.transport](channel)


def _by_code(code: int, reason: str) -> Exception:
    return TemporaryFailure(reason) if 400 <= int(code) < 500 else PermanentFailure(reason)


def _text(value) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        error = error.reason if isinstance(error.reason, BaseException) else error
    if isinstance(error, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower() if error.strerror[0].isupper() else error.strerror
    return _text(error) or type(error).__name__


def _answer(error) -> str:
    try:
        return " ".join(error.read(200).decode("utf-8", "replace").split())
    except (OSError, ValueError):
        return ""


def _retry_after(value) -> float | None:
    try:
        return min(max(float(value), 0.0), 60.0) if value is not None else None
    except ValueError:
        return None


def _close(client) -> None:
    try:
        client.close()
    except OSError:
        pass
