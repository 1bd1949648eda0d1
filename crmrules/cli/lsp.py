"""The `lsp` command: the crmrules language server for editors, on stdin/stdout."""

from __future__ import annotations

import click


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout (the default and only transport; "
                                            "accepted because editors pass it).")
def lsp_command(stdio: bool) -> None:
    """Run the language server (diagnostics, completion, hover, go to definition, formatting) on stdio.

    Point an editor's LSP client at `crmrules lsp` for `*.crm` files."""
    from crmrules.lsp import build_server

    build_server().start_io()


COMMANDS = (lsp_command,)
