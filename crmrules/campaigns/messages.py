"""A campaign message: one row of the outbox per firing, its statuses, its id and its JSON shape.

A *firing* is one trigger occurrence for one customer; its message id is a hash of the campaign,
the customer and the firing's identity (an event row, a schedule instant, an anniversary, an anchor
value, a crossing instant), so the same firing can never produce a second message, whichever run
or process meets it again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

STATUSES = ("scheduled", "ready", "sending", "delivered", "failed", "holdout", "capped", "over_budget", "no_consent",
            "cancelled")
# what caps and channel limits count: a holdout stands in for a send
COUNTED = ("ready", "sending", "delivered", "holdout")
_PLAIN = frozenset((str, int, float, bool, type(None)))


def message_id(campaign: str, customer_id: str, identity: str) -> str:
    """The idempotency key of a firing: the first 32 hex digits of SHA-256(campaign, customer, identity)."""
    text = f"{campaign}\x1f{customer_id}\x1f{identity}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def jsonable(value):
    """`value` as JSON can hold it: Decimal → str, date/datetime → ISO text, tuples → lists, keys → str."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):  # datetime first would not matter: both have isoformat
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(item) for item in items]
    return str(value)


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the outbox; times are naive wall times in the store's time zone."""

    id: str
    campaign: str
    customer_id: str
    channel: str
    args: dict = field(hash=False)  # made JSON-able on creation, so a message equals itself read back
    fired_at: datetime
    due_at: datetime
    status: str
    updated_at: datetime

    def __post_init__(self):
        if self.customer_id.__class__ is not str:
            object.__setattr__(self, "customer_id", str(self.customer_id))
        args = self.args or {}
        if args.__class__ is dict and all(value.__class__ in _PLAIN for value in args.values()):
            object.__setattr__(self, "args", dict(args))  # the common case: nothing to convert
        else:
            object.__setattr__(self, "args", jsonable(dict(args)))


def to_json(message: Message, with_id: bool = False) -> dict:
    """The message in the pinned JSON shape (the outbox listing and the simulation print this)."""
    shown = {"campaign": message.campaign, "customer_id": message.customer_id, "channel": message.channel,
             "fired_at": message.fired_at.isoformat(), "due_at": message.due_at.isoformat(),
             "status": message.status, "args": message.args}
    if with_id:
        shown = {"id": message.id, **shown}
    return shown


def sort_key(message: Message) -> tuple:
    """The order every listing uses: due instant, campaign, customer id (then id, for ties)."""
    return (message.due_at, message.campaign, message.customer_id, message.id)
