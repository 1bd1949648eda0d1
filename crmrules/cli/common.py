"""What every command shares: error reporting and exit codes, and each option defined once.

Exit codes: 0 success, 1 a user error (rules, data, options we check), 2 a usage
error found by click, 3 a bug in crmrules.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
import unicodedata
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
EXIT_CLOSED_PIPE = 141  # what a shell reports for a process ended by SIGPIPE (128 + 13), as `yes | head` gives

# `scheme://user:password@host` and `password=...` (a libpq keyword string): the password is never shown
_PASSWORDS = (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*:/+[^\s:/@]*:)[^\s@/]*@"), re.compile(r"(?i)\b(password=)\S+"))


def mask_passwords(text: str) -> str:
    """`text` with the password of every URL (and libpq `password=`) replaced by `***`."""
    text = _PASSWORDS[0].sub(r"\1***@", text)
    return _PASSWORDS[1].sub(r"\1***", text)


def say(text: str) -> None:
    """One message on stderr, passwords masked."""
    click.echo(mask_passwords(text), err=True)


def show_warnings(warnings) -> None:
    """Print rule warnings (`RuleWarning`, rendered like errors) or data warnings (strings) on stderr."""
    for warning in warnings:
        say(warning.render() if isinstance(warning, CrmRulesError) else f"warning: {warning}")


@contextmanager
def reporting_errors():
    """Render crmrules errors for people and exit 1; never show a traceback for a user mistake."""
    try:
        yield
    except BrokenPipeError:
        _closed_pipe()
    except InternalError as error:
        _internal(error)
    except CrmRulesError as error:
        say(error.render())
        count = len(getattr(error, "errors", [error]))
        say(f"{count} error{'s' if count != 1 else ''}")
        sys.exit(EXIT_USER_ERROR)
    except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
        raise
    except Exception as error:  # noqa: BLE001 - our bug: say so in one line
        _internal(error)


def _closed_pipe() -> None:
    # the reader went away (`crmrules attributes | head -1`): nothing more can be shown, and Python's own
    # flush of stdout at exit would fail again, so stdout points at /dev/null from here on
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_CLOSED_PIPE)


def _internal(error: Exception) -> None:
    say(f"internal error: {error} (a bug in crmrules; please report it with the rule file)")
    if os.environ.get("CRMRULES_DEBUG"):
        traceback.print_exception(error)
    sys.exit(EXIT_INTERNAL_ERROR)


class CommandGroup(click.Group):
    """A click group whose commands, options included, report errors through `reporting_errors`."""

    def invoke(self, ctx: click.Context):
        with reporting_errors():
            return super().invoke(ctx)

    def main(self, *args, **kwargs):
        """click's main, with a pipe closed by the reader (even while help is printed) ending quietly."""
        with reporting_errors():
            return super().main(*args, **kwargs)


# ---------------------------------------------------------------------------------------- terminal output
def printable(text: object) -> str:
    """`text` with control and other invisible characters written as escapes (`\\x1b`): a name or title
    never moves the cursor, rings the bell or colours the terminal."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp") else ch
                   for ch in text)


def cell(text: object):
    """A table cell or title showing `text` as it is: never read as rich markup, control characters escaped."""
    from rich.text import Text

    return Text(printable(text))


def console(**options):
    """A rich Console for stdout; when stdout is not a terminal, wide enough that no name is ever cut."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich's own exits 1; a closed pipe ends every command the same quiet way
            self.quiet = True
            _closed_pipe()

    file = options.get("file") or sys.stdout
    if "width" not in options and not file.isatty():
        options["width"] = 10_000
    return _Console(**options)


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
_data = click.option("--data", "data", required=True,
                     help="A data directory (CSV, Parquet, JSON lines), a DuckDB or SQLite file, "
                          "or a PostgreSQL URL.")


def _limit(field: str) -> Callable:
    """An option callback putting its value into the run's `Resources` (`backends.resources.using`) until
    the command ends: every engine the command opens keeps to it, none of its functions passes it on."""
    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is None:
            return
        from dataclasses import replace

        from crmrules.backends.resources import SIZE, current, using

        if field == "memory_limit" and not SIZE.fullmatch(value):
            raise click.BadParameter(f"{value!r} is not a size such as 4GB or 512MB")
        ctx.with_resource(using(replace(current(), **{field: value})))
    return callback


memory_limit_option = click.option(
    "--memory-limit", "memory_limit", expose_value=False, callback=_limit("memory_limit"), metavar="SIZE",
    help="Memory DuckDB may use, such as 4GB (default: 80% of RAM); beyond it, it spills to disk.")
spill_dir_option = click.option(
    "--spill-dir", "spill_dir", expose_value=False, callback=_limit("spill_dir"),
    type=click.Path(file_okay=False), help="Where DuckDB spills what does not fit in memory (default: the "
                                           "system's temporary directory); removed afterwards.")


def resources_options(command: Callable) -> Callable:
    """`--memory-limit` and `--spill-dir`, for a command that reads data."""
    return memory_limit_option(spill_dir_option(command))


def data_option(command: Callable) -> Callable:
    """`--data` (required), with `--memory-limit` and `--spill-dir` for reading it."""
    return _data(resources_options(command))
as_of_option = click.option("--as-of", "as_of", default=None,
                            help="Evaluate as of this date (end of day) or timestamp; default today in the "
                                 "store's time zone.")
dialect_option = click.option("--dialect", "dialect", type=DialectName(), default="duckdb", show_default=True,
                              help="The SQL dialect.")


def backend_option(takes: str | None = None) -> Callable:
    """`--backend`, with the engines of the registry (only those taking `takes`: "rows" or "sql"), and
    `--spark` (`spark_option`)."""
    choice = click.option("--backend", "backend", type=click.Choice(BACKENDS.names(takes)), default=None,
                          help="Where to evaluate (default: DuckDB in process; SQLite files on SQLite; "
                               "URLs on PostgreSQL; catalog:DB on Spark).")

    def decorate(function: Callable) -> Callable:
        return choice(spark_option(function)) if "spark" in BACKENDS.names(takes) else choice(function)
    return decorate


def spark_option(function: Callable) -> Callable:
    """`--spark URL` on a command taking `data` and `backend`: implies `--backend spark`, and `data` becomes
    what Spark reads itself on that cluster (`backends.spark_source.SparkData`)."""
    import functools

    @functools.wraps(function)
    def run(*args, spark_url: str | None = None, **kwargs):
        if spark_url is not None:
            if kwargs.get("backend") not in (None, "spark"):
                raise click.UsageError(f"--spark runs on Spark: leave out --backend {kwargs['backend']}")
            if not kwargs.get("data"):
                raise click.UsageError("--spark reads --data: catalog:DATABASE or a directory of data files")
            from crmrules.backends.spark_source import SparkData

            kwargs["backend"], kwargs["data"] = "spark", SparkData(kwargs["data"], spark_url)
        return function(*args, **kwargs)

    return click.option("--spark", "spark_url", default=None, metavar="URL",
                        help="Run on this Spark (implies --backend spark): sc://host:15002 (Spark Connect), "
                             "spark://host:7077, yarn or local[N]; --data is then catalog:DATABASE or a "
                             "directory Spark reads (any path its file systems take).")(run)


def output_option(function: Callable) -> Callable:
    """`--output PATH`: write one row per customer as Parquet there instead of collecting them."""
    return click.option("--output", "output_path", default=None, metavar="PATH",
                        help="Write one row per customer (customer_id, a true/false column per segment) as "
                             "Parquet to PATH (on Spark: by the cluster, any path it writes); print counts.")(function)


def format_option(*choices: str) -> Callable:
    """`--format`, one of `choices`, the first being the default."""
    return click.option("--format", "output", type=click.Choice(choices), default=choices[0], show_default=True)


def read_json(name: str):
    """A JSON file (or stdin for `-`), with numbers that have a fraction read as Decimal."""
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {name}: {error.strerror}") from None
    text = decode_utf8(raw, name)
    try:
        # money stays exact: JSON numbers with a fraction become Decimal, not float
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise DataError(f"{name}:{error.lineno}:{error.colno}: malformed JSON: {error.msg}") from None


def decode_utf8(raw: bytes, name: str, code: str | None = None) -> str:
    """The text of a file's bytes; DataError naming the file and the first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{name}: not UTF-8 text (byte {error.start}: {raw[error.start]:#04x})", None,
                        "save the file as UTF-8", code=code) from None


def read_bytes(name: str) -> bytes:
    """A file's bytes; a CrmRulesError naming it when it cannot be read."""
    try:
        return Path(name).read_bytes()
    except OSError as error:
        raise CrmRulesError(f"cannot read {name}: {error.strerror}", code="E0001") from None


def replace_file(name: str, text: str) -> None:
    """Replace a file's content at once: written to a temporary file beside it (same permissions), then
    renamed over it, so a failure leaves the old file whole and no temporary file behind."""
    import stat
    import tempfile

    target = Path(os.path.realpath(name))  # through a symbolic link: the link stays a link
    data = text.encode("utf-8")
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise CrmRulesError(f"cannot write {name}: {error.strerror}", code="E0001") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise CrmRulesError(f"cannot write {name}: {error.strerror}", code="E0001") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
