"""The errors of delivery, one code per kind of mistake (E0710–E0715), and spans into the files they name."""

from __future__ import annotations

from crmrules.errors import CrmRulesError, Source, Span


class DeliveryError(CrmRulesError):
    """A delivery that cannot start: a bad channels file, URL or template, an unreachable server."""

    code = "E0710"


# the codes, named where they are raised (docs/errors.md lists them)
CHANNELS_FILE = "E0710"  # channels.toml unreadable, not TOML, a channel no action has
SETTING = "E0711"  # an unknown transport, a missing or malformed setting
BAD_URL = "E0712"  # a URL that cannot name a server of its transport
UNREACHABLE = "E0713"  # a server that does not answer (or refuses the login) before anything is sent
TEMPLATE = "E0714"  # a template that does not compile, or a text template without its Subject line
NEEDS_DATA = "E0715"  # email messages to deliver without --data, or data without the column a channel needs


def line_span(name: str, text: str, line: int, column: int = 1) -> Span:
    """The span of `line` (1-based) from `column` to its end, in the file `name` holding `text`."""
    lines = text.split("\n")
    line = max(1, min(line, len(lines)))
    start = sum(len(item) + 1 for item in lines[:line - 1])
    width = len(lines[line - 1])
    column = max(1, min(column, width + 1))
    return Span(start + column - 1, start + max(width, column), Source(name, text))
