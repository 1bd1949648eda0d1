"""Delivery: the outbox's `ready` messages sent through real channels (SMTP, webhooks, JSON-lines files).

`deliver(outbox, channels, now=..., limit=..., data=...) -> DeliveryReport` (deliver.py) reads
channels.toml (config.py), renders email templates (templates.py) with the customers' columns
(customers.py) and sends through the transports (transports.py), recording each outcome in the outbox.
"""

from crmrules.campaigns.delivery.config import Channel, load_channels
from crmrules.campaigns.delivery.deliver import ChannelReport, DeliveryReport, deliver
from crmrules.campaigns.delivery.errors import DeliveryError

__all__ = ["Channel", "ChannelReport", "DeliveryError", "DeliveryReport", "deliver", "load_channels"]
