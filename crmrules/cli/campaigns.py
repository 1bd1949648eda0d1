"""The campaign commands: `campaigns run`, `simulate`, `outbox` and `list`."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from datetime import date, datetime, time, timedelta

import click

from crmrules.api import load
from crmrules.cli.common import (
    as_of_option,
    backend_option,
    cell,
    console,
    data_option,
    format_option,
    rule_files,
    say,
    schema_option,
)
from crmrules.context import evaluation_context, instant_of, parse_as_of

# campaigns.messages.STATUSES, spelled out: importing crmrules.campaigns loads the engines (and sqlglot), which
# `crmrules --help` must not wait for (tests/test_campaigns_cli.py checks the two agree)
STATUSES = ("scheduled", "ready", "sending", "delivered", "failed", "holdout", "capped", "over_budget", "no_consent",
            "cancelled")
_tick_option = click.option("--tick", "tick", default="1h", show_default=True,
                            help="The evaluation grid: a divisor of a day (15min, 1h, 6h) or whole days.")


@click.group("campaigns")
def campaigns_group() -> None:
    """Run campaigns into an outbox, simulate a period, list an outbox's messages."""


# ---------------------------------------------------------------------------------------------- run
@campaigns_group.command("run")
@rule_files()
@data_option
@click.option("--outbox", "outbox_target", required=True,
              help="The outbox: an SQLite file (created when absent) or a PostgreSQL URL.")
@click.option("--since", "since", default=None,
              help="Start here when the outbox has no last run (a date: from the start of that day).")
@click.option("--now", "now", required=True, help="Process up to this date (its end) or timestamp.")
@backend_option()
@_tick_option
@schema_option
def run_command(files, data, outbox_target, since, now, backend, tick, schema) -> None:
    """Process every tick from the outbox's last run (or --since, default --now) to --now."""
    from crmrules.campaigns.outbox import open_outbox
    from crmrules.progress import progress

    rule_set = load(files, schema=schema)
    timezone = rule_set.schema.timezone
    end = instant_of(parse_as_of(now), timezone)
    start = None
    if since is not None:
        given = parse_as_of(since)
        start = _period_start(given, timezone)
        if (given if isinstance(given, datetime) else datetime.combine(given, time())) > end:
            raise click.UsageError(f"--since {since} is after --now {now}")
    with open_outbox(outbox_target) as outbox:
        from crmrules.campaigns.engine import run_batch

        before = outbox.summary()
        with progress("running campaigns"):
            result = run_batch(rule_set.program, data, outbox, end, since=start, tick=tick, backend=backend)
        after = outbox.summary()
    _show_result_warnings(result)
    if result["initialised"] and result["from"] == result["to"]:
        click.echo(f"initialised the outbox at {result['to']}: the next run processes the period from there "
                   "(give --since to process one now)")
        return
    created, changed = _total(after) - _total(before), len(result["messages"])
    click.echo(f"processed {result['from']} → {result['to']} (tick {tick}): "
               f"{created:,} new message{'s' if created != 1 else ''}, {changed:,} created or changed")
    if after:
        _summary_table(after, "outbox")


def _period_start(value: date | datetime, timezone: str) -> datetime:
    """`--since`: a timestamp as given; a date D starts the period at D's first instant, i.e. right after
    the end of the day before (where a run with `--now D-1` ended), so D's midnight tick is inside."""
    if isinstance(value, datetime):
        return instant_of(value, timezone)
    return instant_of(value - timedelta(days=1), timezone)


def _total(summary: dict[str, dict[str, int]]) -> int:
    return sum(sum(by.values()) for by in summary.values())


def _show_result_warnings(result: dict) -> None:
    unknown = result.get("unknown_events") or 0
    if unknown:
        say(f"warning: {unknown:,} event{'s' if unknown != 1 else ''} of customers not in the data "
            f"{'were' if unknown != 1 else 'was'} skipped")


# ----------------------------------------------------------------------------------------- simulate
@campaigns_group.command("simulate")
@rule_files()
@data_option
@click.option("--from", "start", required=True, help="The first day (or instant) of the period.")
@click.option("--to", "end", required=True, help="The last day of the period (its end) or an instant.")
@backend_option()
@_tick_option
@format_option("table", "json", "summary")
@schema_option
def simulate_command(files, data, start, end, backend, tick, output, schema) -> None:
    """Replay a period into a throwaway outbox and print every message (`--format summary`: only the
    count of messages per campaign and status)."""
    from crmrules.progress import progress

    begin, finish = parse_as_of(start), parse_as_of(end)
    rule_set = load(files, schema=schema)
    timezone = rule_set.schema.timezone
    if _period_start(begin, timezone) >= instant_of(finish, timezone):
        raise click.UsageError(f"--from {start} is after --to {end}")
    from crmrules.campaigns.engine import simulate

    with progress("simulating campaigns"):
        result = simulate(rule_set.program, data, begin, finish, tick=tick, backend=backend)
    _show_result_warnings(result)
    if output == "json":
        click.echo(json.dumps({key: result[key] for key in ("from", "to", "messages", "summary")}, indent=2,
                              ensure_ascii=False))
        return
    if output == "table":
        _messages_table(result["messages"], f"messages from {result['from']} to {result['to']}")
    _summary_table(result["summary"], f"messages from {result['from']} to {result['to']}, by campaign and status"
                   if output == "summary" else "summary")


# ------------------------------------------------------------------------------------------- outbox
@campaigns_group.command("outbox")
@click.option("--outbox", "outbox_target", required=True, help="The outbox: an SQLite file or a PostgreSQL URL.")
@click.option("--status", "status", type=click.Choice(STATUSES), default=None, help="Only messages in this status.")
@click.option("--campaign", "campaign", default=None, help="Only this campaign's messages.")
@format_option("table", "json", "csv")
def outbox_command(outbox_target, status, campaign, output) -> None:
    """List an outbox's messages, by due instant, campaign and customer id."""
    from crmrules.campaigns.messages import to_json
    from crmrules.campaigns.outbox import open_outbox

    with open_outbox(outbox_target, create=False) as outbox:
        messages = [to_json(message, with_id=True) for message in outbox.messages(status=status, campaign=campaign)]
        summary = outbox.summary(status=status, campaign=campaign)
    if output == "json":
        click.echo(json.dumps({"messages": messages, "summary": summary}, indent=2, ensure_ascii=False))
    elif output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        columns = ("id", "campaign", "customer_id", "channel", "fired_at", "due_at", "status", "args")
        writer.writerow(columns)
        for message in messages:
            writer.writerow([_args_text(message[c]) if c == "args" else message[c] for c in columns])
    elif not messages:
        click.echo("no messages")
    else:
        _messages_table(messages, f"outbox {outbox_target}" if "://" not in outbox_target else "outbox")
        _summary_table(summary, "summary")


def _args_text(args: dict) -> str:
    return json.dumps(args, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------- list
@campaigns_group.command("list")
@rule_files()
@click.option("--data", "data", default=None,
              help="A data directory, a DuckDB or SQLite file, or a PostgreSQL URL: show each audience's size.")
@backend_option()
@as_of_option
@format_option("table", "json")
@schema_option
def list_command(files, data, backend, as_of, output, schema) -> None:
    """Each campaign's trigger, audience (and its size now, with --data), action and guard rails."""
    from crmrules import ast
    from crmrules.formatter import format_rules

    rule_set = load(files, schema=schema)
    program = rule_set.program
    written = {decl.name: decl for decl in rule_set.rules.declarations
               if isinstance(decl, ast.CampaignDecl)}
    rows = []
    for name, decl in program.campaigns.items():
        # the campaign as written (not as lowered), one line per field
        lines = format_rules(written.get(name, decl), width=1_000_000).splitlines()[1:]
        fields = dict(line.strip().partition(": ")[::2] for line in lines)
        rows.append({"campaign": name, "title": decl.title, "trigger": fields.get("trigger"),
                     "audience": fields.get("audience"), "action": fields.get("action"),
                     "guard_rails": {key: fields[key] for key in ("wait", "unless", "cap", "quiet", "holdout",
                                                                  "priority", "budget", "cost") if key in fields}})
    limits = {channel: f"{limit.count} per {limit.per}" for channel, limit in program.limits.items()}
    sizes = _audience_sizes(program, data, backend, evaluation_context(as_of, rule_set.schema)) if data else None
    for row in rows:
        if sizes is not None:
            row["audience_size"] = sizes[row["campaign"]]
        channel = row["action"].partition("(")[0] if row["action"] else None
        if channel in limits:
            row["guard_rails"]["limit"] = f"{channel}: {limits[channel]}"
    if output == "json":
        click.echo(json.dumps({"campaigns": rows, "limits": limits}, indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table(title="campaigns")
    for column in ("campaign", "trigger", "audience", *(("size",) if sizes is not None else ()), "action",
                   "guard rails"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for row in rows:
        rails = "; ".join(f"{key}: {value}" for key, value in row["guard_rails"].items())
        size = (f"{row['audience_size']:,}",) if sizes is not None else ()
        table.add_row(cell(row["campaign"]), cell(row["trigger"] or ""), cell(row["audience"] or "everyone"),
                      *size, cell(row["action"] or ""), cell(rails))
    console().print(table)


def _audience_sizes(program, data, backend, ctx) -> dict[str, int]:
    """How many existing customers are in each campaign's audience now (everyone without one), in one run
    of the segments engine: each audience becomes a segment of a derived program."""
    from crmrules import ast
    from crmrules import types as t
    from crmrules.backends.dispatch import open_data

    segments = dict(program.segments)
    keys = {}
    for name, decl in program.campaigns.items():
        key = keys[name] = f"campaign audience {name}"  # a space: no rule can name it
        body = decl.audience if decl.audience is not None else ast.Literal(value=True, type=t.BOOL)
        segments[key] = ast.SegmentDecl(name=key, title=None, body=body)
    derived = dataclasses.replace(program, segments=segments)
    with open_data(derived, data, backend) as (engine, opened):
        members = engine.members(derived, opened, list(keys.values()), ctx)
    return {name: len(members[key]) for name, key in keys.items()}


# ------------------------------------------------------------------------------------------- tables
def _messages_table(messages: list[dict], title: str) -> None:
    from rich.table import Table

    table = Table(title=cell(title))
    for column in ("due_at", "campaign", "customer_id", "channel", "status", "fired_at", "args"):
        table.add_column(column.replace("_", " "))
    for message in messages:
        table.add_row(*(cell(message[c]) for c in ("due_at", "campaign", "customer_id", "channel", "status",
                                                   "fired_at")), cell(_args_text(message["args"])))
    console().print(table)


def _summary_table(summary: dict[str, dict[str, int]], title: str) -> None:
    from rich.table import Table

    used = [status for status in STATUSES if any(status in by for by in summary.values())]
    table = Table(title=title)
    table.add_column("campaign")
    for status in used:
        table.add_column(status.replace("_", " "), justify="right")
    table.add_column("total", justify="right")
    for name, by in summary.items():
        table.add_row(cell(name), *(f"{by.get(status, 0):,}" for status in used), f"{sum(by.values()):,}")
    console().print(table)


COMMANDS = (campaigns_group,)
