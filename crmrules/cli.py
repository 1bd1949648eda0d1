"""The `crmrules` command line: check, fmt, eval, test, run and sql (catalogue commands in cli_catalogue)."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from decimal import Decimal
from pathlib import Path

import click

from crmrules.api import as_of as parse_as_of
from crmrules.api import load
from crmrules.backends.customer_data import prepare_customer
from crmrules.errors import CrmRulesError, DataError, InternalError

EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 3


def _reports_errors(command):
    """Render crmrules errors for people and exit 1; never show a traceback for a user mistake."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InternalError as error:
            _internal(error)
        except CrmRulesError as error:
            click.echo(error.render(), err=True)
            count = len(getattr(error, "errors", [error]))
            click.echo(f"{count} error{'s' if count != 1 else ''}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as error:  # noqa: BLE001 - our bug: say so in one line
            _internal(error)

    return wrapper


def _internal(error: Exception) -> None:
    click.echo(f"internal error: {error} (a bug in crmrules; please report it with the rule file)", err=True)
    if os.environ.get("CRMRULES_DEBUG"):
        traceback.print_exception(error)
    sys.exit(EXIT_INTERNAL_ERROR)


_schema_option = click.option("--schema", "schema", type=click.Path(dir_okay=False),
                              help="A TOML or YAML file mapping your column names onto the schema.")
_rule_files = click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))


@click.group()
@click.version_option(package_name="crmrules")
def main() -> None:
    """crmrules: segments and campaigns for e-commerce customers, in a small rule language."""


@main.command("check")
@_rule_files
@_schema_option
@_reports_errors
def check_command(files: tuple[str, ...], schema: str | None) -> None:
    """Parse and type-check rule files; report every error at once."""
    rules = load(files, schema=schema)
    click.echo(f"ok: {len(rules.segments)} segments, {len(rules.attributes)} attributes, "
               f"{len(rules.campaigns)} campaigns, {sum(len(t.cases) for t in rules.program.tests)} tests")


@main.command("fmt")
@_rule_files
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file is not formatted.")
@_reports_errors
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


@main.command("eval")
@click.argument("rules", type=click.Path(dir_okay=False))
@click.option("--segment", "segment_name", required=True, help="The segment to evaluate.")
@click.option("--customer", "customer_file", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="A JSON file with one customer (or a list of them), with `orders` and `events`.")
@click.option("--as-of", "as_of", required=True, help="The evaluation date (end of that day) or timestamp.")
@_schema_option
@_reports_errors
def eval_command(rules: str, segment_name: str, customer_file: str, as_of: str, schema: str | None) -> None:
    """Say whether a customer is in a segment, with the in-memory engine."""
    rule_set = load(rules, schema=schema)
    segment = rule_set.segment(segment_name)
    now = parse_as_of(as_of)
    data = _read_json(customer_file)
    customers = data if isinstance(data, list) else [data]
    prepared = [prepare_customer(c, rule_set.schema) if isinstance(c, dict) else c for c in customers]
    for index, customer in enumerate(prepared):
        if not isinstance(customer, dict):
            raise DataError(f"{customer_file}: item {index} is not a customer object")
        verdict = "true" if segment.matches(customer, now) else "false"
        if isinstance(data, list):
            click.echo(f"{customer.get('id', index)}\t{verdict}")
        else:
            click.echo(verdict)


@main.command("run")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--data", "data", required=True,
              help="A data directory (CSV, Parquet, JSON lines), a DuckDB or SQLite file, or a PostgreSQL URL.")
@click.option("--backend", type=click.Choice(["duckdb", "sqlite", "postgres", "spark", "memory"]), default=None,
              help="Where to evaluate (default: DuckDB in process; SQLite files on SQLite; URLs on PostgreSQL).")
@click.option("--as-of", "as_of", default=None, help="Evaluate as of this date (end of day) or timestamp; default today.")
@click.option("--segment", "segment_names", multiple=True, help="Only these segments (repeatable).")
@click.option("--format", "output", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option("--members", is_flag=True, help="List member ids (json), not only counts.")
@_schema_option
@_reports_errors
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


@main.command("sql")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--segment", "segment_names", multiple=True, help="The segment (repeat for one fused query).")
@click.option("--dialect", default="duckdb", help="duckdb, postgres, sqlite, spark, bigquery, snowflake, trino, "
                                                  "clickhouse.")
@click.option("--as-of", "as_of", default=None, help="The `now` the query is fixed at; default today.")
@_schema_option
@_reports_errors
def sql_command(files, segment_names, dialect, as_of, schema) -> None:
    """Print the SQL that selects a segment's members (or, for several, one fused query)."""
    from crmrules.api import as_of_or_today
    from crmrules.backends.sql import members_query, segments_query

    rule_set = load(files, schema=schema)
    names = list(segment_names) or [name for name, _ in rule_set.segments]
    for name in names:
        rule_set.segment(name)
    now = as_of_or_today(as_of)
    if len(names) == 1:
        click.echo(members_query(rule_set.program, names[0], dialect, now) + ";")
    else:
        click.echo(segments_query(rule_set.program, names, dialect, now) + ";")


@main.command("test")
@_rule_files
@_schema_option
@_reports_errors
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


def _read_json(name: str):
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(f"cannot read {name}: {error.strerror}") from None
    try:
        # money stays exact: JSON numbers with a fraction become Decimal, not float
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise DataError(f"{name}:{error.lineno}:{error.colno}: malformed JSON: {error.msg}") from None


# the catalogue commands register themselves on `main` (run as `crmrules` or `python -m crmrules`)
from crmrules import cli_catalogue  # noqa: E402,F401
