"""`crmrules campaigns deliver`: send the outbox's due `ready` messages through channels.toml's transports."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from typing import Self

import click

from crmrules.cli.common import cell, console, format_option, say, schema_option

_SECONDS = {"s": 1, "min": 60, "m": 60, "h": 3600}


def _lease_seconds(text: str) -> float:
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number):] or "s"
    try:
        value = float(number) * _SECONDS[unit]
    except (KeyError, ValueError):
        raise click.BadParameter(f"`{text}` is not a duration such as 15min or 1h", param_hint="--lease") from None
    if value <= 0:
        raise click.BadParameter("the lease must be positive", param_hint="--lease")
    return value


@click.command("deliver")
@click.option("--outbox", "outbox_target", required=True, help="The outbox: an SQLite file or a PostgreSQL URL.")
@click.option("--channels", "channels", required=True,
              help="channels.toml: the transport of each channel (smtp, webhook, jsonl).")
@click.option("--now", "now", default=None,
              help="Send what is due by this date (its end) or timestamp [default: now, in the store's zone].")
@click.option("--limit", "limit", type=click.IntRange(min=1), default=None, help="Send at most this many messages.")
@click.option("--data", "data", default=None,
              help="The customer data (a directory, database file or URL): email addresses, template `customer`.")
@click.option("--lease", "lease", default="15min", show_default=True,
              help="A claim this old is taken over even when its process may still run.")
@format_option("table", "json")
@schema_option
def deliver_command(outbox_target, channels, now, limit, data, lease, output, schema) -> None:
    """Send the outbox's due `ready` messages and mark each `delivered` or `failed`.

    Exit 0 when every claimed message got its outcome (failed ones included: see the summary) and no due
    message was left for want of a channel; 1 when a due message's channel has no entry in channels.toml.
    """
    from crmrules.api import resolve_schema
    from crmrules.campaigns.delivery import deliver

    seconds = _lease_seconds(lease.strip().lower())
    with _Bars() as bars:
        report = deliver(outbox_target, channels, now=now, limit=limit, data=data, schema=resolve_schema(schema),
                         lease=seconds, progress=bars)
    if output == "json":
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        _summary(report)
    if report.unconfigured:
        shown = ", ".join(f"{name} ({count:,})" for name, count in report.unconfigured.items())
        say(f"warning: due messages left ready, their channel has no entry in {channels}: {shown}")
        sys.exit(1)


def _summary(report) -> None:
    from rich.table import Table

    table = Table(title=f"delivery up to {report.now.isoformat()}")
    for column in ("channel", "transport", "delivered", "failed", "left ready"):
        table.add_column(column, justify="left" if column in ("channel", "transport") else "right")
    for name, channel in sorted(report.channels.items()):
        table.add_row(cell(name), cell(channel.transport), f"{channel.delivered:,}", f"{channel.failed:,}",
                      f"{channel.left_ready:,}")
    for name, count in report.unconfigured.items():
        table.add_row(cell(name), "(no entry)", "0", "0", f"{count:,}")
    console().print(table)
    if report.reclaimed:
        click.echo(f"{report.reclaimed:,} message{'s' if report.reclaimed != 1 else ''} taken over from a "
                   "delivery that stopped before recording them (sent again with the same id)")
    for failure in report.failures[:20]:
        click.echo(f"failed {failure['id']} ({failure['channel']}, {failure['campaign']}, customer "
                   f"{failure['customer_id']}): {failure['error']}")
    if len(report.failures) > 20:
        click.echo(f"... and {len(report.failures) - 20:,} more failures (crmrules campaigns outbox --status failed)")


class _Bars:
    """A progress bar per channel on stderr (crmrules.progress: only when stderr is a terminal)."""

    def __init__(self):
        self.stack = ExitStack()
        self.tasks: dict = {}

    def start(self, totals: dict[str, int]) -> None:
        from crmrules.progress import task

        for name, total in totals.items():
            self.tasks[name] = self.stack.enter_context(task(f"delivering {name}", total=total))

    def advance(self, channel: str, outcome: str) -> None:
        bar = self.tasks.get(channel)
        if bar is not None:
            bar.advance()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stack.close()


