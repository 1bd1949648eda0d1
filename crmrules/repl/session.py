"""A REPL session without a terminal: entries in, text out.

An entry is a condition (its member count and a sample of ids), a value expression (its
distribution), a declaration (it joins the session) or a `:command`. The data stays open for
the whole session, so an entry costs one query; errors are returned as text, never raised.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

from crmrules import ast
from crmrules import types as t
from crmrules.api import RuleSet, check_with_catalogue, load, resolve_schema
from crmrules.context import evaluation_context
from crmrules.errors import CrmRulesError

ENTRY = "_repl"  # the name an entry is checked under; no rule file can declare it (names start with a letter)
SAMPLE = 10
_DECLARATION = re.compile(r"\s*(segment|attribute|function|campaign|test|limit)\b")
_COMMAND = re.compile(r"\s*:([a-z-]+)\s*(.*)", re.DOTALL)

HELP = """\
an entry is a condition (member count and sample ids), a value (its distribution),
or a declaration (`segment x: ...`, `attribute y = ...`, `function f(a) = ...`) that joins the session.
  :sql [DIALECT]      the SQL of the last condition (default duckdb)
  :members [N]        N member ids of the last condition (default 50)
  :explain ID         why customer ID is (not) in the last condition: every node's value
  :profile [vs SEG]   the profile of the last condition's members (or of segment SEG's beside them)
  :as-of DATE         evaluate as of this date (or timestamp)
  :load FILE          add a rule file's declarations to the session
  :save FILE          append the session's declarations to FILE, formatted
  :help               this text
Ctrl-C cancels, Ctrl-D exits; Esc Enter inserts a new line."""


@dataclass(frozen=True)
class Outcome:
    """What an entry printed, and whether it went wrong."""

    text: str
    ok: bool = True


class Session:
    """The declarations of rule files and of the session, the data held open, and the last condition."""

    def __init__(self, files=(), data=None, as_of=None, backend: str | None = None, schema=None):
        self._rules: RuleSet = load(files, schema=schema) if files else RuleSet(
            ast.RuleFile(declarations=()), check_with_catalogue(ast.RuleFile(declarations=()), resolve_schema(schema)))
        self.schema = self._rules.schema
        self.loaded: list[ast.Declaration] = list(self._rules.rules.declarations)
        self.declared: list[ast.Declaration] = []  # entered in the session: what :save writes
        self.program = self._rules.program
        self.data, self.backend = data, backend
        self.ctx = evaluation_context(as_of, self.schema)
        self.last: ast.Expr | None = None  # the last condition, for :sql, :members, :explain, :profile
        self._lock = threading.RLock()
        self._stack: ExitStack | None = None
        self._engine = self._handle = None

    # ------------------------------------------------------------------------------------------ data
    def _open(self):
        if self.data is None:
            raise CrmRulesError("no data: start the REPL with --data PATH", code="E0002")
        if self._stack is None:
            from crmrules.backends.dispatch import open_data

            stack = ExitStack()
            self._engine, self._handle = stack.enter_context(open_data(self.program, self.data, self.backend))
            self._stack = stack
        return self._engine, self._handle

    def warm(self) -> None:
        """Open the data and run a first query (DuckDB's first is slower), so the first count is quick;
        an error waits for the first entry to be shown."""
        if self.data is not None:
            self.count("true")

    def close(self) -> None:
        """Close the data; the next entry opens it again."""
        with self._lock:
            if self._stack is not None:
                stack, self._stack = self._stack, None
                with suppress(Exception):  # a dropped connection cannot be closed either
                    stack.close()

    def interrupt(self) -> None:
        """Stop a running query (DuckDB), from another thread."""
        handle = self._handle
        if handle is not None and getattr(handle, "kind", None) == "duckdb":
            with suppress(Exception):  # nothing running: nothing to stop
                handle.connection.interrupt()

    def _query(self, run):
        """`run(engine, handle)` on the open data; a dropped connection is reopened once, then reported."""
        with self._lock:
            engine, handle = self._open()
            try:
                return run(engine, handle)
            except CrmRulesError:
                raise
            except KeyboardInterrupt:
                raise
            except Exception as error:  # noqa: BLE001 - the engine's own (a dropped connection): say it, go on
                self.close()
                raise CrmRulesError(f"the query failed: {str(error).splitlines()[0] if str(error) else error!r}",
                                    None, "the data is opened again for the next entry", code="E0500") from None

    # ------------------------------------------------------------------------------------------ checking
    def _check(self, extra: tuple[ast.Declaration, ...] = (), roots: tuple[str, ...] = ()):
        rules = ast.RuleFile(declarations=(*self.loaded, *self.declared, *extra))
        return rules, check_with_catalogue(rules, self.schema, roots)

    def typed(self, expr: ast.Expr):
        """The program holding `expr` as an attribute, and its type."""
        _, program = self._check((ast.AttributeDecl(name=ENTRY, title=None, body=expr),), (ENTRY,))
        return program, program.attribute_type(ENTRY)

    def condition_program(self, expr: ast.Expr):
        """The rules and program holding `expr` as the segment ENTRY."""
        return self._check((ast.SegmentDecl(name=ENTRY, title=None, body=expr),), (ENTRY,))

    # ------------------------------------------------------------------------------------------ entries
    def run(self, text: str) -> Outcome:
        """Evaluate one entry; an error is rendered as `check` shows it and the session goes on."""
        if not text.strip() or text.lstrip().startswith("#"):
            return Outcome("")
        try:
            command = _COMMAND.match(text)
            if command:
                return Outcome(self.command(command.group(1), command.group(2).strip()))
            if _DECLARATION.match(text):
                return Outcome(self.declare(text))
            return Outcome(self.evaluate(text))
        except CrmRulesError as error:
            return Outcome(error.render(), ok=False)
        except KeyboardInterrupt:
            return Outcome("cancelled", ok=False)

    def declare(self, text: str, name: str = "<repl>") -> str:
        from crmrules.grammar.parser import parse

        new = parse(text, name).declarations
        kept = [d for d in self.declared if getattr(d, "name", None) not in {getattr(n, "name", None) for n in new}]
        rules = ast.RuleFile(declarations=(*self.loaded, *kept, *new))
        program = check_with_catalogue(rules, self.schema)
        self.declared, self.program = [*kept, *new], program
        return "\n".join(f"{type(d).__name__.removesuffix('Decl').lower()} {getattr(d, 'name', '')} declared"
                         for d in new)

    def evaluate(self, text: str) -> str:
        from crmrules.grammar.parser import parse_expression

        expr = parse_expression(text, "<repl>")
        program, type_ = self.typed(expr)
        if type_ == t.BOOL:
            self.last = expr
            ids = self.members(expr)
            sample = ", ".join(ids[:SAMPLE]) + (", ..." if len(ids) > SAMPLE else "")
            return f"{len(ids):,} members" + (f": {sample}" if ids else "")
        values = self._query(lambda engine, handle: engine.values(program, handle, [ENTRY], self.ctx))
        return distribution([row[ENTRY] for row in values.values()], type_)

    def members(self, expr: ast.Expr) -> list[str]:
        """The sorted ids of the customers for whom the condition `expr` holds."""
        _, program = self.condition_program(expr)
        found = self._query(lambda engine, handle: engine.members(program, handle, [ENTRY], self.ctx))
        return sorted(found[ENTRY])

    def count(self, text: str) -> int | None:
        """The member count of `text` when it is a condition that checks; None otherwise (the live toolbar)."""
        from crmrules.grammar.parser import parse_expression

        if not text.strip() or _COMMAND.match(text) or _DECLARATION.match(text):
            return None
        try:
            expr = parse_expression(text, "<repl>")
            _, type_ = self.typed(expr)
            if type_ != t.BOOL:
                return None
            return len(self.members(expr))
        except CrmRulesError:
            return None

    # ------------------------------------------------------------------------------------------ commands
    def command(self, name: str, argument: str) -> str:
        handler = getattr(self, "_cmd_" + name.replace("-", "_"), None)
        if handler is None:
            from crmrules.errors import did_you_mean

            known = [n.removeprefix("_cmd_").replace("_", "-") for n in dir(self) if n.startswith("_cmd_")]
            raise CrmRulesError(f"unknown command `:{name}`", None,
                                did_you_mean(name, known) or "type :help", code="E0002")
        return handler(argument)

    def _cmd_help(self, argument: str) -> str:
        return HELP

    def _last(self) -> ast.Expr:
        if self.last is None:
            raise CrmRulesError("no condition yet: enter one first", code="E0002")
        return self.last

    def _cmd_sql(self, argument: str) -> str:
        from crmrules.backends.sql import segments_query

        _, program = self.condition_program(self._last())
        return segments_query(program, [ENTRY], argument or "duckdb", self.ctx)

    def _cmd_members(self, argument: str) -> str:
        limit = _number(argument, 50)
        ids = self.members(self._last())
        more = f"\n... and {len(ids) - limit:,} more" if len(ids) > limit else ""
        return "\n".join(ids[:limit]) + more

    def _cmd_as_of(self, argument: str) -> str:
        if not argument:
            return f"as of {self.ctx.as_of.isoformat()}"
        self.ctx = evaluation_context(argument, self.schema)
        return f"as of {self.ctx.as_of.isoformat()}"

    def _cmd_load(self, argument: str) -> str:
        from crmrules.cli.common import decode_utf8, read_bytes
        from crmrules.grammar.parser import parse

        name = _path(argument)
        new = parse(decode_utf8(read_bytes(name), name, code="E0001"), name).declarations
        rules = ast.RuleFile(declarations=(*self.loaded, *new, *self.declared))
        self.program = check_with_catalogue(rules, self.schema)
        self.loaded = [*self.loaded, *new]
        return f"loaded {len(new)} declaration{'s' if len(new) != 1 else ''} from {name}"

    def _cmd_save(self, argument: str) -> str:
        from crmrules.formatter import format_rules

        name = _path(argument)
        if not self.declared:
            return "nothing to save: no declaration entered yet"
        text = format_rules(ast.RuleFile(declarations=tuple(self.declared))).rstrip("\n") + "\n"
        path = Path(name)
        try:
            before = path.read_text(encoding="utf-8") if path.exists() else ""
            with path.open("a", encoding="utf-8") as out:
                out.write(("\n" if before and not before.endswith("\n\n") else "") + text)
        except OSError as error:
            raise CrmRulesError(f"cannot write {name}: {error.strerror}", code="E0001") from None
        return f"saved {len(self.declared)} declaration{'s' if len(self.declared) != 1 else ''} to {name}"

    def _cmd_explain(self, argument: str) -> str:
        from crmrules.backends.dispatch import default_backend
        from crmrules.explain import explain_on_data

        if not argument:
            raise CrmRulesError(":explain needs a customer id", None, "e.g. :explain 00042", code="E0002")
        rules, program = self.condition_program(self._last())
        # the same tree as `crmrules explain`: references expanded, each part's value, what would flip it
        explanation = explain_on_data(RuleSet(rules, program), ENTRY, argument, self.data,
                                      self.backend or default_backend(self.data), self.ctx.as_of)
        head, _, tree = explanation.render().partition("\n")
        return head.replace(ENTRY, "the last condition", 1) + "\n" + tree

    def _cmd_profile(self, argument: str) -> str:
        import io

        from rich.console import Console

        from crmrules.profile_table import print_profile

        vs = None
        if argument:
            words = argument.split()
            if len(words) != 2 or words[0] != "vs":
                raise CrmRulesError("usage: :profile [vs SEGMENT]", code="E0002")
            vs = words[1]
        rules, program = self.condition_program(self._last())
        profile = RuleSet(rules, program).profile(self.data, ENTRY, vs, backend=self.backend, as_of=self.ctx.as_of)
        out = io.StringIO()
        print_profile(profile, Console(file=out, width=100, force_terminal=False))
        return out.getvalue().rstrip()


def distribution(values: list, type_: t.Type) -> str:
    """Count, nulls, and min/max (numbers, dates) or the top values (anything else)."""
    present = [v for v in values if v is not None]
    lines = [f"count {len(values):,}, nulls {len(values) - len(present):,}"]
    if not present:
        return lines[0]
    if type_ in t.NUMERIC or type_ in t.TEMPORAL:  # durations (settings) have no order: their top values
        lines.append(f"min {_shown(min(present))}, max {_shown(max(present))}")
        if type_ in t.NUMERIC:
            lines[-1] += f", mean {_shown(round(sum(present) / len(present), 2))}"
        return "\n".join(lines)
    top = Counter(str(v) if isinstance(v, (list, tuple, set, frozenset)) else v for v in present).most_common(5)
    lines.append("top: " + ", ".join(f"{_shown(v)} ({n:,})" for v, n in top))
    return "\n".join(lines)


def _shown(value) -> str:
    from crmrules.cli.common import printable

    if value is True or value is False:
        return str(value).lower()
    if value is None:
        return "unknown"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return printable(value if not isinstance(value, str) else f'"{value}"')


def _number(text: str, default: int) -> int:
    if not text:
        return default
    if not text.isdigit() or int(text) == 0:
        raise CrmRulesError(f"not a positive whole number: `{text}`", code="E0002")
    return int(text)


def _path(text: str) -> str:
    if not text:
        raise CrmRulesError("give a file name", code="E0002")
    return text
