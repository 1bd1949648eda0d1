"""The inspection commands: explain (why a customer is in a segment or not) and diff (who enters and leaves)."""

from __future__ import annotations

import json

import click

from crmrules.cli.common import (
    as_of_option,
    backend_option,
    cell,
    console,
    data_option,
    format_option,
    printable,
    schema_option,
    show_warnings,
)


@click.command("explain")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--segment", "segment_name", required=True, help="The segment to explain (own or a template).")
@click.option("--customer", "customer_id", required=True, help="The customer's id in the data.")
@data_option
@as_of_option
@backend_option()
@format_option("tree", "json")
@schema_option
def explain_command(files, segment_name, customer_id, data, as_of, backend, output, schema) -> None:
    """Show why a customer is in a segment or not: the condition as a tree, every part with its value.

    Segments and attributes are expanded under their names (the catalogue's too); a false or unknown
    comparison of numbers or dates says what would flip it."""
    from crmrules.cli.rules import checked
    from crmrules.explain import explain_on_data

    rule_set = checked(files, schema)
    explanation = explain_on_data(rule_set, segment_name, customer_id, data, backend=backend, as_of=as_of)
    if output == "json":
        click.echo(json.dumps(explanation.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(printable_lines(explanation.render()))


def printable_lines(text: str) -> str:
    """Each line of `text` with control characters escaped (a name or value never drives the terminal)."""
    return "\n".join(printable(line) for line in text.split("\n"))


@click.command("diff")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@data_option
@click.option("--as-of", "as_ofs", multiple=True,
              help="Evaluate as of this date (end of day) or timestamp; twice with one rule file: compare "
                   "the two dates. Default today in the store's time zone.")
@backend_option()
@click.option("--segment", "segment_names", multiple=True, help="Only these segments (repeatable).")
@format_option("table", "json")
@click.option("--members", is_flag=True, help="List the ids who entered and left (the table; json always does).")
@schema_option
def diff_command(files, data, as_ofs, backend, segment_names, output, members, schema) -> None:
    """Compare segments: OLD.crm NEW.crm on the same data, or one rule file --as-of A --as-of B.

    Per segment: members before and after, who entered and who left (one query per side)."""
    from crmrules.cli.rules import checked
    from crmrules.diff import diff_dates, diff_rules

    if len(files) == 2:
        if len(as_ofs) > 1:
            raise click.UsageError("two rule files are compared at one date: give --as-of once at most")
        old, new = checked(files[:1], schema), checked(files[1:], schema)
        report, warnings = diff_rules(old, new, data, backend=backend, as_of=as_ofs[0] if as_ofs else None,
                                      segments=list(segment_names) or None)
        sides = (files[0], files[1])
    elif len(files) == 1:
        if len(as_ofs) != 2:
            raise click.UsageError("one rule file is compared at two dates: give --as-of twice "
                                   "(or give two rule files)")
        rules = checked(files, schema)
        report, warnings = diff_dates(rules, data, as_ofs[0], as_ofs[1], backend=backend,
                                      segments=list(segment_names) or None)
        sides = (f"as of {as_ofs[0]}", f"as of {as_ofs[1]}")
    else:
        raise click.UsageError("give OLD.crm NEW.crm, or one rule file with --as-of twice")
    show_warnings(warnings)
    if output == "json":
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    _diff_table(report, sides, members)


def _diff_table(report: dict, sides: tuple[str, str], members: bool) -> None:
    from rich.table import Table

    def count(n):
        return "-" if n is None else f"{n:,}"

    table = Table(title=cell(f"{sides[0]} → {sides[1]}"))
    for name, justify in (("segment", "left"), ("before", "right"), ("after", "right"), ("change", "right"),
                          ("entered", "right"), ("left", "right")):
        table.add_column(name, justify=justify)
    for name, row in report["segments"].items():
        before, after = row["before"], row["after"]
        change = "" if before is None or after is None else f"{after - before:+,}"
        table.add_row(cell(name), count(before), count(after), change, f"{len(row['entered']):,}",
                      f"{len(row['left']):,}")
    out = console()
    out.print(table)
    if members:
        for name, row in report["segments"].items():
            for what in ("entered", "left"):
                if row[what]:
                    out.print(cell(f"{name} {what}: {', '.join(row[what])}"))


COMMANDS = (explain_command, diff_command)
