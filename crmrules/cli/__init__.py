"""The `crmrules` command line: the group `main` and its commands, one module per family.

`rules` holds check, fmt, eval, test, run and sql; `catalogue` holds attributes,
templates, rfm and profile; `campaigns` the campaign commands; `inspect` explain and
diff; `repl` the REPL; `lsp` the language server; `common` the options and error
reporting they share.
"""

from __future__ import annotations

import click

from crmrules.cli import campaigns, catalogue, delivery, inspect, lsp, repl, report, rules
from crmrules.cli.common import CommandGroup


@click.group(cls=CommandGroup)
@click.version_option(package_name="crmrules")
def main() -> None:
    """crmrules: segments and campaigns for e-commerce customers, in a small rule language."""


campaigns.campaigns_group.add_command(delivery.deliver_command)
campaigns.campaigns_group.add_command(report.report_command)

for _command in (*rules.COMMANDS, *catalogue.COMMANDS, *campaigns.COMMANDS, *inspect.COMMANDS, *repl.COMMANDS,
                 *lsp.COMMANDS):
    main.add_command(_command)

__all__ = ["main"]
