"""channels.toml: which transport carries each channel's messages, and how fast, how hard it retries.

```toml
[email]
transport = "smtp"
url = "smtp+starttls://user:secret@mail.example.com:587"
from = "Shop <news@example.com>"
templates = "templates"          # relative to this file
rate = "50/s"                    # also /min, /h
concurrency = 4
retries = 3
timeout = "10s"

[sms]
transport = "webhook"
url = "https://sms.example.com/send"

[award_points]
transport = "jsonl"
path = "points.jsonl"
```

Each table names a channel (an action: email, sms, popup, coupon, webhook, award_points). Every mistake is
an error naming the file and line, raised before anything is claimed or sent.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from crmrules.campaigns.delivery.errors import (
    BAD_URL,
    CHANNELS_FILE,
    SETTING,
    DeliveryError,
    line_span,
)
from crmrules.compiler.campaigns import ACTIONS
from crmrules.errors import did_you_mean

TRANSPORTS = ("smtp", "webhook", "jsonl")
_COMMON = ("transport", "rate", "concurrency", "retries", "timeout", "backoff")
# each transport's settings: (required, optional)
_SETTINGS = {"smtp": (("url", "from", "templates"), ()), "webhook": (("url",), ("templates",)),
             "jsonl": (("path",), ("templates",))}
_SMTP_SCHEMES = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "m": 60.0, "h": 3600.0,
        "hour": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class SmtpUrl:
    """Where an SMTP server is and how to talk to it: implicit TLS (smtps), STARTTLS, a login."""

    host: str
    port: int
    tls: bool = False
    starttls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The server as messages name it (never the password)."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Channel:
    """One channel's transport and its pace: `rate` messages per second (None: as fast as it goes)."""

    name: str
    transport: str
    url: str | None = None
    smtp: SmtpUrl | None = None
    sender: str | None = None
    templates: Path | None = None
    path: Path | None = None
    rate: float | None = None
    concurrency: int = 1
    retries: int = 3
    timeout: float = 10.0
    backoff: float = 0.5  # the first retry's delay; each next one doubles it


class _File:
    """The channels file being read, for errors that point at a table or a key."""

    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text

    def error(self, message: str, table: str | None = None, key: str | None = None, hint: str | None = None,
              code: str = SETTING) -> DeliveryError:
        return DeliveryError(message, self._span(table, key), hint, code=code)

    def _span(self, table: str | None, key: str | None):
        if table is None:
            return None
        lines = self.text.split("\n")
        header = re.compile(rf"^\s*\[\s*\"?{re.escape(table)}\"?\s*\]")
        start = next((i for i, line in enumerate(lines) if header.match(line)), None)
        if start is None:
            return None
        if key is not None:
            setting = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
            for index in range(start + 1, len(lines)):
                if lines[index].lstrip().startswith("["):
                    break
                if setting.match(lines[index]):
                    return line_span(str(self.path), self.text, index + 1, len(lines[index]) -
                                     len(lines[index].lstrip()) + 1)
        return line_span(str(self.path), self.text, start + 1, lines[start].index("[") + 1)


def load_channels(path: str | Path) -> dict[str, Channel]:
    """The channels of a channels.toml file, checked: {channel name: Channel}."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DeliveryError(f"cannot read the channels file {path}: {error.strerror or error}",
                            code=CHANNELS_FILE) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DeliveryError(f"{path} is not UTF-8 text", code=CHANNELS_FILE) from None
    source = _File(path, text)
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        where = re.search(r"\(at line (\d+), column (\d+)\)", str(error))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error)) or "malformed TOML"
        span = line_span(str(path), text, int(where[1]), int(where[2])) if where else None
        raise DeliveryError(f"not valid TOML: {message}" if span else f"{path} is not valid TOML: {message}", span,
                            code=CHANNELS_FILE) from None
    if not tables:
        raise DeliveryError(f"{path} names no channel", hint='add a table per channel: [email] transport = "smtp"',
                            code=CHANNELS_FILE)
    return {name: _channel(source, name, settings) for name, settings in tables.items()}


def _channel(source: _File, name: str, settings) -> Channel:
    if name not in ACTIONS:
        raise source.error(f"unknown channel `{name}`", name, None,
                           did_you_mean(name, ACTIONS) or f"channels: {', '.join(ACTIONS)}", code=CHANNELS_FILE)
    if not isinstance(settings, dict):
        raise source.error(f"`{name}` must be a table of settings", None,
                           hint=f'[{name}]\ntransport = "jsonl"', code=CHANNELS_FILE)
    transport = settings.get("transport")
    if transport is None:
        raise source.error(f"channel `{name}` has no transport", name, hint=f"transports: {', '.join(TRANSPORTS)}")
    if transport not in TRANSPORTS:
        raise source.error(f"unknown transport `{transport}` for channel `{name}`", name, "transport",
                           did_you_mean(str(transport), TRANSPORTS) or f"transports: {', '.join(TRANSPORTS)}")
    required, optional = _SETTINGS[transport]
    known = (*_COMMON, *required, *optional)
    for key in settings:
        if key not in known:
            raise source.error(f"unknown setting `{key}` for a {transport} channel", name, key,
                               did_you_mean(key, known) or f"settings: {', '.join(known)}")
    for key in required:
        if key not in settings:
            raise source.error(f"channel `{name}` ({transport}) needs `{key}`", name)
    for key in ("url", "from", "templates", "path"):
        if key in settings and (not isinstance(settings[key], str) or not settings[key].strip()):
            raise source.error(f"`{key}` of channel `{name}` must be a non-empty string", name, key)
    base = source.path.parent
    values: dict = {"name": name, "transport": transport}
    if "url" in settings:
        values["url"] = settings["url"]
        if transport == "smtp":
            values["smtp"] = smtp_url(settings["url"], lambda message: source.error(message, name, "url",
                                                                                   code=BAD_URL))
        else:
            _check_http_url(settings["url"], lambda message: source.error(message, name, "url", code=BAD_URL))
    if "from" in settings:
        values["sender"] = settings["from"]
    if "templates" in settings:
        folder = base / settings["templates"]
        if not folder.is_dir():
            raise source.error(f"no templates directory {folder}", name, "templates")
        values["templates"] = folder
    if "path" in settings:
        target = base / settings["path"]
        if not target.parent.is_dir():
            raise source.error(f"no directory {target.parent} for {target.name}", name, "path")
        values["path"] = target
    if "rate" in settings:
        values["rate"] = _rate(settings["rate"], lambda message: source.error(message, name, "rate"))
    for key, low in (("concurrency", 1), ("retries", 0)):
        if key in settings:
            value = settings[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < low or value > 1000:
                raise source.error(f"`{key}` of channel `{name}` must be a whole number from {low} to 1000, "
                                   f"not {value!r}", name, key)
            values[key] = value
    for key in ("timeout", "backoff"):
        if key in settings:
            values[key] = _duration(settings[key], lambda message, key=key: source.error(message, name, key))
    return Channel(**values)


def smtp_url(url: str, fail) -> SmtpUrl:
    """An smtp://, smtps:// or smtp+starttls:// URL (`?starttls=true` also asks for STARTTLS), checked."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SMTP_SCHEMES:
        raise fail(f"`{_masked(url)}` is not an SMTP URL (smtp://, smtps://, smtp+starttls://HOST:PORT)")
    try:
        port = parts.port or _SMTP_SCHEMES[scheme]
    except ValueError:
        raise fail(f"`{_masked(url)}`: the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise fail(f"`{_masked(url)}` names no host")
    if parts.path not in ("", "/"):
        raise fail(f"`{_masked(url)}`: an SMTP URL has no path")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"starttls"}
    if unknown:
        raise fail(f"`{_masked(url)}`: unknown parameter `{min(unknown)}` (only starttls=true|false)")
    flag = query.get("starttls", [""])[-1].lower()
    if flag not in ("", "true", "false", "1", "0", "yes", "no"):
        raise fail(f"`{_masked(url)}`: starttls must be true or false")
    starttls = scheme == "smtp+starttls" or flag in ("true", "1", "yes")
    if starttls and scheme == "smtps":
        raise fail(f"`{_masked(url)}`: smtps is TLS from the start; STARTTLS is for smtp://")
    from urllib.parse import unquote

    return SmtpUrl(host=parts.hostname, port=port, tls=scheme == "smtps", starttls=starttls,
                   user=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)


def _check_http_url(url: str, fail) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise fail(f"`{_masked(url)}` is not an http:// or https:// URL")
    if not parts.hostname:
        raise fail(f"`{_masked(url)}` names no host")
    try:
        _ = parts.port  # urlsplit checks the port only when asked
    except ValueError:
        raise fail(f"`{_masked(url)}`: the port must be a number from 1 to 65535") from None


def _masked(url: str) -> str:
    from crmrules.campaigns.outbox_postgres import mask_passwords

    return mask_passwords(url)


def _rate(value, fail) -> float:
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None or match[2] not in _PER or float(match[1]) <= 0:
        raise fail(f"rate `{value}` is not a positive count per second, minute or hour (such as \"50/s\", "
                   "\"600/min\", \"1000/h\")")
    return float(match[1]) / _PER[match[2]]


def _duration(value, fail) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or float(match[1]) <= 0:
        raise fail(f"`{value}` is not a positive duration (such as \"10s\", \"500ms\", \"2min\")")
    unit = match[2] or "s"
    return float(match[1]) * {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}[unit]
