"""`crmrules campaigns report`: each campaign against its holdout, from an outbox and the data."""

from __future__ import annotations

import json
from pathlib import Path

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
    schema_option,
    show_warnings,
)


def _window(value: str) -> str:
    """--window: checked here, so a bad one is a usage error (exit 2) before anything is read."""
    from crmrules.campaigns.report import parse_window
    from crmrules.errors import CrmRulesError

    try:
        return str(parse_window(value))
    except CrmRulesError as error:
        raise click.BadParameter(f"{error.message} ({error.hint})") from None


@click.command("report")
@rule_files()
@data_option
@click.option("--outbox", "outbox_target", required=True, help="The outbox: an SQLite file or a PostgreSQL URL.")
@as_of_option
@click.option("--window", "window", default="14d", show_default=True,
              callback=lambda ctx, param, value: _window(value),
              help="A message converts with a paid order within this long after it is due (14d, 48h, 1mo).")
@click.option("--cost", "cost", default=None,
              help="The cost of one message per channel, e.g. email=0.002,sms=0.04,coupon=5 (a campaign's own "
                   "`cost:` comes first).")
@backend_option("sql")
@format_option("table", "json", "html")
@click.option("-o", "--output-file", "output_file", type=click.Path(dir_okay=False), default=None,
              help="Write the report here instead of printing it.")
@schema_option
def report_command(files, data, outbox_target, as_of, window, cost, backend, output, output_file, schema) -> None:
    """Each campaign's sent messages against its holdout: conversions within --window, uplift with a 95%
    interval, revenue per message, incremental revenue, cost and ROI, counted in SQL on --data."""
    from crmrules.campaigns.report import parse_costs

    parse_costs(cost)  # a malformed --cost before the data is opened
    rule_set = load(files, schema=schema)
    warnings: list[str] = []
    report = rule_set.campaign_report(data, outbox_target, as_of=as_of, window=window, cost=cost, backend=backend,
                                      warnings=warnings)
    show_warnings(warnings)
    if output == "json":
        _emit(json.dumps(report, indent=2, ensure_ascii=False) + "\n", output_file)
    elif output == "html":
        from crmrules.campaigns.report_html import render_report_html

        _emit(render_report_html(report, {n: d.title for n, d in rule_set.campaigns.items()}), output_file)
    elif output_file is not None:
        from rich.console import Console

        with Path(output_file).open("w", encoding="utf-8") as handle:
            _table(report, Console(file=handle, width=160, color_system=None))
    else:
        _table(report, console())


def _emit(text: str, output_file: str | None) -> None:
    if output_file is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output_file).write_text(text, encoding="utf-8")
    except OSError as error:
        from crmrules.errors import CrmRulesError

        raise CrmRulesError(f"cannot write {output_file}: {error.strerror}", code="E0001") from None


def _percent(value: str | None) -> str:
    from decimal import Decimal

    return "—" if value is None else f"{Decimal(value) * 100:.2f}%"


def _money(value: str | None) -> str:
    from decimal import Decimal

    return "—" if value is None else f"{Decimal(value):,.2f}"


def _table(report: dict, out) -> None:
    from rich.table import Table

    table = Table(title=cell(f"campaigns as of {report['as_of']}, conversions within {report['window']}"))
    for column in ("campaign", "sent", "holdout", "conv. sent", "conv. holdout", "uplift", "95% interval",
                   "rev./msg sent", "rev./msg holdout", "incremental", "cost", "ROI"):
        table.add_column(column, justify="left" if column == "campaign" else "right")
    for name, row in report["campaigns"].items():
        interval = row["uplift_ci"]
        shown = "—" if interval is None else f"{_percent(interval[0])} … {_percent(interval[1])}"
        roi = "—" if row["roi"] is None else f"{float(row['roi']):,.2f}×"
        table.add_row(cell(name), f"{row['sent']:,}", f"{row['holdout']:,}", _percent(row["conversion_sent"]),
                      _percent(row["conversion_holdout"]), _percent(row["uplift"]), shown,
                      _money(row["revenue_sent"]), _money(row["revenue_holdout"]),
                      _money(row["incremental_revenue"]), _money(row["cost"]), roi)
    out.print(table)
    statuses = Table(title="messages by status")
    used = list(dict.fromkeys(s for row in report["campaigns"].values() for s in row["statuses"]))
    statuses.add_column("campaign")
    for status in used:
        statuses.add_column(status.replace("_", " "), justify="right")
    for name, row in report["campaigns"].items():
        statuses.add_row(cell(name), *(f"{row['statuses'].get(s, 0):,}" for s in used))
    out.print(statuses)
