"""What every command shares: error reporting and exit codes, and each option defined once.

Exit codes: 0 success, 1 a user error (rules, data, options we check), 2 a usage
error found by click, 3 a bug in crmrules.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import click

from crmrules.backends.dispatch import BACKENDS
from crmrules.errors import CrmRulesError, DataError, InternalError

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE_ERROR = 2  # click's own
EXIT_INTERNAL_ERROR = 3


@contextmanager
def reporting_errors():
    """Render crmrules errors for people and exit 1; never show a traceback for a user mistake."""
    try:
        yield
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


def _internal(error: Exception) -> None:
    click.echo(f"internal error: {error} (a bug in crmrules; please report it with the rule file)", err=True)
    if os.environ.get("CRMRULES_DEBUG"):
        traceback.print_exception(error)
    sys.exit(EXIT_INTERNAL_ERROR)


class CommandGroup(click.Group):
    """A click group whose commands, options included, report errors through `reporting_errors`."""

    def invoke(self, ctx: click.Context):
        with reporting_errors():
            return super().invoke(ctx)


class DialectName(click.ParamType):
    """A SQL dialect of `backends.sql.dialects.DIALECTS`; an unknown one is a user error with a suggestion.

    The registry is read only when the option is used or help is shown (it imports sqlglot)."""

    name = "dialect"

    def convert(self, value, param, ctx):
        from crmrules.backends.sql import dialect_named

        dialect_named(value)
        return value

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        from crmrules.backends.sql.dialects import DIALECTS

        return "[" + "|".join(DIALECTS) + "]"


def rule_files(required: bool = True) -> Callable:
    """The rule files a command reads (the catalogue commands run without any)."""
    return click.argument("files", nargs=-1, required=required, type=click.Path(dir_okay=False))


schema_option = click.option("--schema", "schema", type=click.Path(dir_okay=False),
                             help="A TOML or YAML file mapping your column names onto the schema.")
data_option = click.option("--data", "data", required=True,
                           help="A data directory (CSV, Parquet, JSON lines), a DuckDB or SQLite file, "
                                "or a PostgreSQL URL.")
as_of_option = click.option("--as-of", "as_of", default=None,
                            help="Evaluate as of this date (end of day) or timestamp; default today in the "
                                 "store's time zone.")
dialect_option = click.option("--dialect", "dialect", type=DialectName(), default="duckdb", show_default=True,
                              help="The SQL dialect.")


def backend_option(takes: str | None = None) -> Callable:
    """`--backend`, with the engines of the registry (only those taking `takes`: "rows" or "sql")."""
    return click.option("--backend", "backend", type=click.Choice(BACKENDS.names(takes)), default=None,
                        help="Where to evaluate (default: DuckDB in process; SQLite files on SQLite; "
                             "URLs on PostgreSQL).")


def format_option(*choices: str) -> Callable:
    """`--format`, one of `choices`, the first being the default."""
    return click.option("--format", "output", type=click.Choice(choices), default=choices[0], show_default=True)


def read_json(name: str):
    """A JSON file (or stdin for `-`), with numbers that have a fraction read as Decimal."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(f"cannot read {name}: {error.strerror}") from None
    try:
        # money stays exact: JSON numbers with a fraction become Decimal, not float
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise DataError(f"{name}:{error.lineno}:{error.colno}: malformed JSON: {error.msg}") from None
