"""The rule-file commands: check, fmt, eval, test, run and sql."""

from __future__ import annotations

import json
import sys

import click

from crmrules.api import RuleSet, load
from crmrules.cli.common import (
    EXIT_USER_ERROR,
    as_of_option,
    backend_option,
    cell,
    console,
    data_option,
    dialect_option,
    format_option,
    output_option,
    printable,
    read_json,
    rule_files,
    schema_option,
    show_warnings,
)
from crmrules.context import evaluation_context
from crmrules.errors import DataError, EvaluationError

RANK_HINT = "rank against your customer base: add --data PATH (a data directory, database file or URL)"
optional_data = click.option("--data", "data", default=None,
                             help="A data directory (CSV, Parquet, JSON lines), a DuckDB or SQLite file, "
                                  "or a PostgreSQL URL.")


def checked(files: tuple[str, ...], schema: str | None) -> RuleSet:
    """The rule files loaded and checked, their warnings printed on stderr."""
    rule_set = load(files, schema=schema)
    show_warnings(rule_set.program.warnings)
    return rule_set


def ranking_hint(error: EvaluationError) -> EvaluationError:
    """The error of a rule that ranks customers with no customer base, telling the CLI's way to give one."""
    if error.code == "E0602":
        error.hint = RANK_HINT
    return error


@click.command("check")
@rule_files()
@optional_data
@backend_option()
@schema_option
def check_command(files: tuple[str, ...], data: str | None, backend: str | None, schema: str | None) -> None:
    """Parse and type-check rule files; report every error at once.

    With --data, the values the data holds in open columns (e.g. event types) are known values too."""
    rules = load(files, schema=schema)
    if data is not None:
        warnings: list[str] = []
        rules = rules.learning(data, backend=backend, warnings=warnings)
        show_warnings(warnings)
    show_warnings(rules.program.warnings)
    click.echo(f"ok: {len(rules.segments)} segments, {len(rules.attributes)} attributes, "
               f"{len(rules.campaigns)} campaigns, {sum(len(t.cases) for t in rules.program.tests)} tests")


@click.command("fmt")
@rule_files()
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file is not formatted.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Change nothing; print a unified diff of what would change; exit 1 if a file would change.")
@click.option("--width", type=click.IntRange(40, 1000), default=100, show_default=True,
              help="Break longer lines at `and` / `or`.")
def fmt_command(files: tuple[str, ...], check_only: bool, show_diff: bool, width: int) -> None:
    """Rewrite rule files in the canonical layout, keeping their comments.

    A file is replaced at once (written beside it, then renamed): never left half written."""
    import difflib

    from crmrules.cli.common import decode_utf8, read_bytes, replace_file
    from crmrules.formatter import format_source

    unformatted = []
    for name in files:
        text = decode_utf8(read_bytes(name), name, code="E0001")
        formatted = format_source(text, name, width=width)
        if formatted == text:
            continue
        unformatted.append(name)
        if show_diff:
            click.echo("".join(difflib.unified_diff(text.splitlines(keepends=True),
                                                    formatted.splitlines(keepends=True), name, name)), nl=False)
        elif not check_only:
            replace_file(name, formatted)
            click.echo(f"formatted {name}")
    if (check_only or show_diff) and unformatted:
        if check_only:
            for name in unformatted:
                click.echo(f"would reformat {name}", err=True)
        sys.exit(EXIT_USER_ERROR)


@click.command("eval")
@rule_files()
@click.option("--segment", "segment_name", required=True, help="The segment to evaluate.")
@click.option("--customer", "customer_file", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="A JSON file with one customer (or a list of them), with `orders` and `events`.")
@optional_data
@as_of_option
@click.option("--explain", "show_explanation", is_flag=True,
              help="Also print why: the condition as a tree with each part's value for the customer.")
@schema_option
def eval_command(files: tuple[str, ...], segment_name: str, customer_file: str, data: str | None,
                 as_of: str | None, show_explanation: bool, schema: str | None) -> None:
    """Say whether a customer is in a segment, with the in-memory engine.

    Rules that rank customers (`ntile`, the RFM scores) rank them against the customer base of --data."""
    from crmrules.backends.customer_data import prepare_customer

    rule_set = checked(files, schema)
    segment = rule_set.segment(segment_name)
    ctx = evaluation_context(as_of, rule_set.schema)
    data_of = read_json(customer_file)
    customers = data_of if isinstance(data_of, list) else [data_of]
    prepared = [prepare_customer(c, rule_set.schema) if isinstance(c, dict) else c for c in customers]
    population = rule_set.population(data, ctx.as_of, segments=[segment_name]) if data is not None else None
    for index, customer in enumerate(prepared):
        if not isinstance(customer, dict):
            raise DataError(f"{customer_file}: item {index} is not a customer object")
        try:
            verdict = "true" if segment.matches(customer, ctx.instant, population=population) else "false"
        except EvaluationError as error:
            raise ranking_hint(error) from None
        if isinstance(data_of, list):
            click.echo(f"{printable(customer.get('id', index))}\t{verdict}")
        else:
            click.echo(verdict)
        if show_explanation:
            click.echo(segment.explain(customer, ctx.as_of, population).render())


@click.command("run")
@rule_files()
@data_option
@backend_option()
@as_of_option
@click.option("--segment", "segment_names", multiple=True, help="Only these segments (repeatable).")
@format_option("table", "json", "csv")
@click.option("--members", is_flag=True, help="List member ids (json; csv always lists them).")
@output_option
@schema_option
def run_command(files, data, backend, as_of, segment_names, output, members, output_path, schema) -> None:
    """Evaluate segments on a whole customer base.

    --format csv: with one --segment, its member ids; otherwise one row per customer and a true/false
    column per segment. --output PATH writes those rows as Parquet instead and prints the counts."""
    from crmrules.progress import progress

    if members and output == "table":
        raise click.UsageError("--members lists ids with --format json or csv; the table shows counts")
    if output_path is not None and (members or output == "csv"):
        raise click.UsageError("--output writes the members to a file: print counts (--format table or json) "
                               "without --members")
    rule_set = checked(files, schema)
    if output_path is not None:
        warnings: list[str] = []
        ctx = evaluation_context(as_of, rule_set.schema)
        with progress("evaluating segments"):
            counts = rule_set.write_parquet(data, output_path, backend=backend, as_of=ctx.as_of,
                                            segments=list(segment_names) or None, warnings=warnings)
        show_warnings(warnings)
        click.echo(f"wrote {printable(output_path)}", err=True)
        _print_counts(rule_set, ctx.as_of, {name: {"count": count} for name, count in counts.items()}, output)
        return
    with progress("evaluating segments"):
        result = rule_set.run(data, backend=backend, as_of=as_of, segments=list(segment_names) or None)
        everyone = None
        if output == "csv" and len(segment_names) != 1:
            # every existing customer, members of no segment included: the ids of any attribute's values
            everyone = sorted(rule_set.values(data, ["order_count"], backend=backend, as_of=result.as_of))
    show_warnings(result.warnings)
    if output == "csv":
        _write_csv(result.members, everyone)
        return
    _print_counts(rule_set, result.as_of, {name: ({"count": len(ids), "members": ids} if members else
                                                  {"count": len(ids)}) for name, ids in result.members.items()},
                  output)


def _print_counts(rule_set: RuleSet, as_of, segments: dict[str, dict], output: str) -> None:
    """Each segment's count (and members, when listed) as JSON or a table."""
    if output == "json":
        click.echo(json.dumps({"as_of": as_of.isoformat(), "segments": segments}, indent=2))
        return
    from rich.table import Table

    table = Table(title=cell(f"segments as of {as_of.isoformat()}"))
    table.add_column("segment")
    table.add_column("title")
    table.add_column("members", justify="right")
    titles = dict(rule_set.segments)
    for name, found in segments.items():
        table.add_row(cell(name), cell(titles.get(name) or ""), f"{found['count']:,}")
    console().print(table)


def _write_csv(members: dict[str, list[str]], everyone: list[str] | None) -> None:
    import csv

    writer = csv.writer(click.get_text_stream("stdout"), lineterminator="\n")
    if everyone is None:
        [ids] = members.values()
        writer.writerow(["customer_id"])
        writer.writerows([customer_id] for customer_id in ids)
        return
    names = list(members)
    sets = [set(members[name]) for name in names]
    writer.writerow(["customer_id", *names])
    for customer_id in everyone:
        writer.writerow([customer_id, *("true" if customer_id in ids else "false" for ids in sets)])


@click.command("sql")
@rule_files()
@click.option("--segment", "segment_names", multiple=True, help="The segment (repeat for one fused query).")
@dialect_option
@as_of_option
@schema_option
def sql_command(files, segment_names, dialect, as_of, schema) -> None:
    """Print the SQL that selects a segment's members (or, for several, one fused query)."""
    from crmrules.backends.sql import members_query, segments_query

    rule_set = checked(files, schema)
    names = list(segment_names) or [name for name, _ in rule_set.segments]
    program = rule_set.program_for(segments=names)
    ctx = evaluation_context(as_of, rule_set.schema)
    if len(names) == 1:
        click.echo(members_query(program, names[0], dialect, ctx) + ";")
    else:
        click.echo(segments_query(program, names, dialect, ctx) + ";")


@click.command("test")
@rule_files()
@optional_data
@schema_option
def test_command(files: tuple[str, ...], data: str | None, schema: str | None) -> None:
    """Run the `test` blocks of rule files (cases without `as of`: today in the store's time zone).

    Rules that rank customers (`ntile`, the RFM scores) rank them against the customer base of --data."""
    rule_set = checked(files, schema)
    try:
        results = rule_set.run_tests(data=data)
    except EvaluationError as error:
        raise ranking_hint(error) from None
    failed = [r for r in results if not r.passed]
    for result in failed:
        where = ""
        if result.span is not None:
            line, col = result.span.line_col()
            where = f"{result.span.source.name}:{line}:{col}: "
        expected = "in" if result.expected_in else "out of"
        click.echo(f"{where}FAIL {result.segment} case {result.case}: expected the customer {expected} "
                   f"the segment, but it was {'in' if result.actual_in else 'out'}", err=True)
        # why: the segment's condition with each part's value for the test's customer
        explanation = rule_set.segment(result.segment).explain(result.customer, result.now, result.population)
        click.echo(_indented(explanation.render()), err=True)
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(EXIT_USER_ERROR)


def _indented(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


COMMANDS = (check_command, fmt_command, eval_command, test_command, run_command, sql_command)
