"""Completion for the REPL: columns, attributes, functions, segments and templates with their titles,
named arguments inside a call, tables after `count(` and the like, and `:commands`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.document import Document

from crmrules import ast

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_0-9]*)?$")
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\(")
COMMANDS = {":sql": "the SQL of the last condition", ":members": "member ids of the last condition",
            ":explain": "every node's value for one customer", ":profile": "the last condition's profile",
            ":as-of": "evaluate as of a date", ":load": "add a rule file", ":save": "append the declarations",
            ":help": "what the REPL does"}


@dataclass(frozen=True)
class Candidate:
    """A name that can be typed, what it is and its title."""

    text: str
    kind: str  # column, table, attribute, segment, template, function, argument, command
    title: str = ""


def candidates(session) -> list[Candidate]:
    """Every name an entry of `session` can use, own declarations first, then the catalogue's."""
    from crmrules.compiler.functions import FUNCTIONS
    from crmrules.stdlib import prelude

    found: dict[str, Candidate] = {}

    def add(candidate: Candidate) -> None:
        found.setdefault(candidate.text, candidate)

    for decl in [*session.loaded, *session.declared]:
        _add_decl(add, decl, own=True)
    for decl in prelude().declarations:
        _add_decl(add, decl, own=False)
    schema = session.schema
    for table in schema.tables:
        if table != "customers":
            add(Candidate(table, "table"))
        for column in schema.columns(table):
            add(Candidate(column if table == "customers" else f"{table}.{column}", "column",
                          str(schema.column(table, column).type)))
    for name, function in FUNCTIONS.items():
        add(Candidate(name, "function", function.doc))
    return list(found.values())


def _add_decl(add, decl: ast.Node, own: bool) -> None:
    title = getattr(decl, "title", None) or ""
    match decl:
        case ast.SegmentDecl():
            add(Candidate(decl.name, "segment" if own else "template", title))
        case ast.AttributeDecl():
            add(Candidate(decl.name, "attribute", title))
        case ast.FunctionDecl():
            add(Candidate(decl.name, "function", title))


def named_arguments(session, function: str) -> list[str]:
    """The optional parameters of a declared function (`within`, `at_least`), as `name:`."""
    from crmrules.stdlib import prelude

    for decl in [*session.declared, *session.loaded, *prelude().declarations]:
        if isinstance(decl, ast.FunctionDecl) and decl.name == function:
            return [param.name for param in decl.params]
    return []


def _open_call(text: str) -> str | None:
    """The function whose parentheses the cursor is inside, if any."""
    depth, name = 0, None
    for match in reversed(list(re.finditer(r"[()]", text))):
        if match.group() == ")":
            depth += 1
        elif depth:
            depth -= 1
        else:
            call = _CALL.search(text[: match.end()][-60:])
            name = call.group(1) if call and call.end() == len(text[: match.end()][-60:]) else None
            break
    return name


def complete(session, text: str) -> Iterator[tuple[str, int, str]]:
    """(completion, start offset from the cursor, what it is) for the text before the cursor."""
    stripped = text.lstrip()
    if stripped.startswith(":") and " " not in stripped:
        for command, meta in COMMANDS.items():
            if command.startswith(stripped):
                yield command, -len(stripped), meta
        return
    match = _WORD.search(text)
    word = match.group() if match else ""
    if not word and not text.endswith(("(", " ", ",")) and text:
        return
    function = _open_call(text)
    if function:
        for param in named_arguments(session, function):
            if param.startswith(word):
                yield f"{param}: ", -len(word), f"argument of {function}"
    lowered = word.lower()
    for candidate in candidates(session):
        if candidate.text.lower().startswith(lowered) and (word or candidate.kind != "column" or "." not in
                                                           candidate.text):
            meta = candidate.kind + (f": {candidate.title}" if candidate.title else "")
            yield candidate.text, -len(word), meta


class SessionCompleter(Completer):
    """prompt_toolkit's view of `complete`, reading the session each time (declarations join it)."""

    def __init__(self, session: Callable[[], object] | object):
        self._session = session

    def get_completions(self, document: Document, complete_event) -> Iterator[Completion]:
        session = self._session() if callable(self._session) else self._session
        for text, start, meta in complete(session, document.text_before_cursor):
            yield Completion(text, start_position=start, display_meta=meta)
