"""The rule-file commands: check, fmt, eval, test, run and sql."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from crmrules.api import load
from crmrules.cli.common import (
    EXIT_USER_ERROR,
    as_of_option,
    backend_option,
    data_option,
    dialect_option,
    format_option,
    read_json,
    rule_files,
    schema_option,
)
from crmrules.context import evaluation_context
from crmrules.errors import CrmRulesError, DataError


@click.command("check")
@rule_files()
@schema_option
def check_command(files: tuple[str, ...], schema: str | None) -> None:
    """Parse and type-check rule files; report every error at once."""
    rules = load(files, schema=schema)
    click.echo(f"ok: {len(rules.segments)} segments, {len(rules.attributes)} attributes, "
               f"{len(rules.campaigns)} campaigns, {sum(len(t.cases) for t in rules.program.tests)} tests")


@click.command("fmt")
@rule_files()
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file is not formatted.")
def fmt_command(files: tuple[str, ...], check_only: bool) -> None:
    """Rewrite rule files in the canonical layout, keeping their comments."""
    from crmrules.formatter import format_source

    unformatted = []
    for name in files:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except OSError as error:
            raise CrmRulesError(f"cannot read {name}: {error.strerror}", code="E0001") from None
        formatted = format_source(text, name)
        if formatted != text:
            unformatted.append(name)
            if not check_only:
                Path(name).write_text(formatted, encoding="utf-8")
                click.echo(f"formatted {name}")
    if check_only and unformatted:
        for name in unformatted:
            click.echo(f"would reformat {name}", err=True)
        sys.exit(EXIT_USER_ERROR)


@click.command("eval")
@click.argument("rules", type=click.Path(dir_okay=False))
@click.option("--segment", "segment_name", required=True, help="The segment to evaluate.")
@click.option("--customer", "customer_file", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="A JSON file with one customer (or a list of them), with `orders` and `events`.")
@as_of_option
@schema_option
def eval_command(rules: str, segment_name: str, customer_file: str, as_of: str | None, schema: str | None) -> None:
    """Say whether a customer is in a segment, with the in-memory engine."""
    from crmrules.backends.customer_data import prepare_customer

    rule_set = load(rules, schema=schema)
    segment = rule_set.segment(segment_name)
    ctx = evaluation_context(as_of, rule_set.schema)
    data = read_json(customer_file)
    customers = data if isinstance(data, list) else [data]
    prepared = [prepare_customer(c, rule_set.schema) if isinstance(c, dict) else c for c in customers]
    for index, customer in enumerate(prepared):
        if not isinstance(customer, dict):
            raise DataError(f"{customer_file}: item {index} is not a customer object")
        verdict = "true" if segment.matches(customer, ctx.instant) else "false"
        if isinstance(data, list):
            click.echo(f"{customer.get('id', index)}\t{verdict}")
        else:
            click.echo(verdict)


@click.command("run")
@rule_files()
@data_option
@backend_option()
@as_of_option
@click.option("--segment", "segment_names", multiple=True, help="Only these segments (repeatable).")
@format_option("table", "json", "csv")
@click.option("--members", is_flag=True, help="List member ids (json), not only counts.")
@schema_option
def run_command(files, data, backend, as_of, segment_names, output, members, schema) -> None:
    """Evaluate segments on a whole customer base."""
    from crmrules.progress import progress

    rule_set = load(files, schema=schema)
    if output == "csv" and len(segment_names) != 1:
        raise click.UsageError("--format csv lists the members of exactly one --segment")
    with progress("evaluating segments"):
        result = rule_set.run(data, backend=backend, as_of=as_of, segments=list(segment_names) or None)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if output == "json":
        segments = {name: ({"count": len(ids), "members": ids} if members else {"count": len(ids)})
                    for name, ids in result.members.items()}
        click.echo(json.dumps({"as_of": result.as_of.isoformat(), "segments": segments}, indent=2))
    elif output == "csv":
        click.echo("customer_id")
        for customer_id in result.members[segment_names[0]]:
            click.echo(customer_id)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"segments as of {result.as_of.isoformat()}")
        table.add_column("segment")
        table.add_column("title")
        table.add_column("members", justify="right")
        titles = dict(rule_set.segments)
        for name, ids in result.members.items():
            table.add_row(name, titles.get(name) or "", f"{len(ids):,}")
        Console().print(table)


@click.command("sql")
@rule_files()
@click.option("--segment", "segment_names", multiple=True, help="The segment (repeat for one fused query).")
@dialect_option
@as_of_option
@schema_option
def sql_command(files, segment_names, dialect, as_of, schema) -> None:
    """Print the SQL that selects a segment's members (or, for several, one fused query)."""
    from crmrules.backends.sql import members_query, segments_query

    rule_set = load(files, schema=schema)
    names = list(segment_names) or [name for name, _ in rule_set.segments]
    program = rule_set.program_for(segments=names)
    ctx = evaluation_context(as_of, rule_set.schema)
    if len(names) == 1:
        click.echo(members_query(program, names[0], dialect, ctx) + ";")
    else:
        click.echo(segments_query(program, names, dialect, ctx) + ";")


@click.command("test")
@rule_files()
@schema_option
def test_command(files: tuple[str, ...], schema: str | None) -> None:
    """Run the `test` blocks of rule files."""
    rule_set = load(files, schema=schema)
    results = rule_set.run_tests()
    failed = [r for r in results if not r.passed]
    for result in failed:
        where = ""
        if result.span is not None:
            line, col = result.span.line_col()
            where = f"{result.span.source.name}:{line}:{col}: "
        expected = "in" if result.expected_in else "out of"
        click.echo(f"{where}FAIL {result.segment} case {result.case}: expected the customer {expected} "
                   f"the segment, but it was {'in' if result.actual_in else 'out'}", err=True)
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(EXIT_USER_ERROR)


COMMANDS = (check_command, fmt_command, eval_command, test_command, run_command, sql_command)
