"""`crmrules repl`: try conditions, values and declarations against data, with a live count."""

from __future__ import annotations

import sys

import click

from crmrules.cli.common import (
    EXIT_USER_ERROR,
    as_of_option,
    backend_option,
    rule_files,
    schema_option,
)


@click.command("repl")
@rule_files(required=False)
@click.option("--data", "data", default=None,
              help="A data directory (CSV, Parquet, JSON lines), a DuckDB or SQLite file, or a PostgreSQL URL.")
@as_of_option
@backend_option()
@schema_option
def repl_command(files: tuple[str, ...], data: str | None, as_of: str | None, backend: str | None,
                 schema: str | None) -> None:
    """Try conditions (member count and sample ids), values (their distribution) and declarations.

    On a terminal: highlighting, completion, history and a live count of the condition being typed.
    With stdin not a terminal: one entry per line (an indented line continues the one before), results
    on stdout, errors on stderr; exit 1 when an entry failed."""
    from crmrules.progress import silenced
    from crmrules.repl.session import Session

    if not sys.stdin.isatty():
        from crmrules.repl.app import run_piped

        session = Session(files, data=data, as_of=as_of, backend=backend, schema=schema)
        if run_piped(session, sys.stdin):
            sys.exit(EXIT_USER_ERROR)
        return
    from crmrules.repl.app import run_terminal

    with silenced():  # the prompt owns the terminal: no progress bar drawn on it, before it starts or while it runs
        run_terminal(Session(files, data=data, as_of=as_of, backend=backend, schema=schema))


COMMANDS = (repl_command,)
