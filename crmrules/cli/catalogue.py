"""The catalogue commands: attributes, templates, rfm and profile."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import click

from crmrules import ast
from crmrules.api import RuleSet, load, load_text
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
from crmrules.errors import CrmRulesError, UnknownNameError, did_you_mean


def _rules(files: tuple[str, ...], schema: str | None) -> RuleSet:
    rules = load(files, schema=schema) if files else load_text("", "<catalogue>", schema=schema)
    show_warnings(rules.program.warnings)
    return rules


@click.command("attributes")
@click.option("--group", default=None, help="Only this group (profile, orders, ...).")
@format_option("table", "json", "markdown")
def attributes_command(group: str | None, output: str) -> None:
    """List the built-in attributes, functions and settings with their definitions."""
    from crmrules.stdlib import GROUPS
    from crmrules.stdlib.reference import items, markdown

    if output == "markdown":
        click.echo(markdown(), nl=False)
        return
    if group is not None and group not in GROUPS:
        raise UnknownNameError(f"unknown group `{group}`", None, did_you_mean(group, GROUPS)
                               or f"groups: {', '.join(GROUPS)}")
    listed = [i for i in items() if i.group != "templates" and (group is None or i.group == group)]
    _print_items(listed, output, "built-in attributes")


@click.command("templates")
@format_option("table", "json")
def templates_command(output: str) -> None:
    """List the ready segments (and the functions behind them) usable by name in any rule file."""
    from crmrules.stdlib.reference import items

    _print_items([i for i in items() if i.group == "templates"], output, "templates")


def _print_items(listed, output: str, title: str) -> None:
    if output == "json":
        click.echo(json.dumps([dataclasses.asdict(i) for i in listed], indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table(title=cell(f"{title} ({len(listed)})"))
    for column in ("name", "kind", "group", "type", "meaning"):
        table.add_column(column)
    for item in listed:
        table.add_row(*(cell(text) for text in (item.name, item.kind, item.group, item.type, item.title)))
    console().print(table)


@click.command("rfm")
@rule_files(required=False)
@data_option
@backend_option()
@as_of_option
@format_option("table", "json")
@schema_option
def rfm_command(files, data, backend, as_of, output, schema) -> None:
    """Print the RFM cut points (value range and size of each score) and the size of each class.

    Rule files given here may redefine the catalogue's RFM attributes and settings (e.g. `attribute rfm_high = 4`,
    `attribute rfm_period = 365d`, or the values ranked: rfm_recency, rfm_frequency, rfm_monetary)."""
    from crmrules.progress import progress

    rules = _rules(files, schema)
    names = ["rfm_r", "rfm_f", "rfm_m", "rfm_class", *(value for _, value in RFM_VALUES.values())]
    with progress("scoring customers"):
        values = rules.values(data, names, backend=backend, as_of=as_of)
    report = rfm_report(values.values())
    period = rules.program_for(attributes=["rfm_period"]).attributes["rfm_period"].body
    report["period"] = str(period.value) if isinstance(period, ast.Literal) else None
    if output == "json":
        click.echo(json.dumps(report, indent=2, default=str))
        return
    from rich.table import Table

    out = console()
    out.print(cell(f"RFM over {report['scored']:,} customers with a paid order ({report['customers']:,} in all)"))
    scores = Table(title="cut points: the values each score covers (customers)")
    scores.add_column("score", justify="right")
    spend = "M: paid spend" + (f" within {report['period']}" if report["period"] not in (None, "100y") else "")
    for label in ("R: days since last order", "F: paid orders", spend):
        scores.add_column(cell(label), justify="right")
    for score in range(5, 0, -1):
        cells = []
        for key in ("r", "f", "m"):
            cut = report["scores"][key].get(str(score))
            cells.append(f"{_plain(cut['min'])}–{_plain(cut['max'])} ({cut['customers']:,})" if cut else "—")
        scores.add_row(str(score), *cells)
    out.print(scores)
    classes = Table(title="classes")
    classes.add_column("class")
    classes.add_column("customers", justify="right")
    for name, count in report["classes"].items():
        classes.add_row(cell(name), f"{count:,}")
    out.print(classes)


def _plain(value) -> str:
    # money as 12.50, not 12.500000
    if isinstance(value, Decimal):
        cents = value.quantize(Decimal("0.01"))
        return f"{cents:f}" if cents == value else f"{value.normalize():f}"
    return str(value)


# each score and the attribute it ranks, as the catalogue (or a rule file's redefinition) computes it
RFM_VALUES = {"r": ("rfm_r", "rfm_recency"), "f": ("rfm_f", "rfm_frequency"), "m": ("rfm_m", "rfm_monetary")}


def rfm_report(rows) -> dict:
    """Per score, the range of the underlying value and the number of customers; the size of each class."""
    sources = RFM_VALUES
    scores: dict[str, dict[str, dict]] = {key: {} for key in sources}
    classes: Counter = Counter()
    customers = scored = 0
    for row in rows:
        customers += 1
        if row["rfm_class"] is None:
            continue
        scored += 1
        classes[row["rfm_class"]] += 1
        for key, (score_name, value_name) in sources.items():
            cut = scores[key].setdefault(str(row[score_name]), {"min": None, "max": None, "customers": 0})
            value = row[value_name]
            cut["min"] = value if cut["min"] is None or value < cut["min"] else cut["min"]
            cut["max"] = value if cut["max"] is None or value > cut["max"] else cut["max"]
            cut["customers"] += 1
    return {"customers": customers, "scored": scored,
            "scores": {k: dict(sorted(v.items())) for k, v in scores.items()},
            "classes": dict(sorted(classes.items(), key=lambda kv: (-kv[1], kv[0])))}


@click.command("profile")
@rule_files(required=False)
@click.option("--segment", "segment", required=True, help="The segment to profile (own or a template).")
@click.option("--vs", "vs", default=None, help="A second segment, shown side by side with the differences.")
@click.option("--period", "period", default=None,
              help="Also the figures of the paid orders placed within this period ending at --as-of (30d, 12w, 6mo).")
@click.option("--by", "by", multiple=True,
              help="Also the distribution of this attribute or customers column (repeatable).")
@data_option
@backend_option()
@as_of_option
@format_option("table", "json", "html")
@click.option("-o", "--output-file", "output_file", type=click.Path(dir_okay=False), default=None,
              help="Write the report here instead of printing it (html needs it unless printed).")
@schema_option
def profile_command(files, segment, vs, period, by, data, backend, as_of, output, output_file, schema) -> None:
    """Profile a segment (画像): counts, AOV, repurchase, and who its customers are."""
    from crmrules.progress import progress

    rules = _rules(files, schema)
    warnings: list[str] = []
    with progress("profiling"):
        profile = rules.profile(data, segment, vs=vs, backend=backend, as_of=as_of, warnings=warnings,
                                period=period, by=by)
    show_warnings(warnings)
    if output == "json":
        text = json.dumps(profile, indent=2, ensure_ascii=False) + "\n"
    elif output == "html":
        from crmrules.profile_html import render_html

        text = render_html(profile)
    else:
        from crmrules.profile_table import print_profile

        if output_file is None:
            print_profile(profile)
            return
        with Path(output_file).open("w", encoding="utf-8") as handle:
            print_profile(profile, console(file=handle, width=120))
        return
    if output_file is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output_file).write_text(text, encoding="utf-8")
    except OSError as error:
        raise CrmRulesError(f"cannot write {output_file}: {error.strerror}", code="E0001") from None
    click.echo(f"wrote {output_file}", err=True)


COMMANDS = (attributes_command, templates_command, rfm_command, profile_command)
