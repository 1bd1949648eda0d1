"""One error hierarchy: every error carries a stable code, a message, a span and a hint."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, eq=False)
class Source:
    """The text of one rule file (or REPL line) and the name errors show for it."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range of character offsets into a source; line/column are derived."""

    start: int
    end: int
    source: Source | None = field(default=None, compare=False, repr=False)

    def line_col(self) -> tuple[int, int]:
        """1-based line and column of the start offset."""
        text = self.source.text if self.source else ""
        line = text.count("\n", 0, self.start) + 1
        col = self.start - (text.rfind("\n", 0, self.start) + 1) + 1
        return line, col


class CrmRulesError(Exception):
    """Base of every error crmrules raises for a user's mistake or its own bug."""

    code = "E0000"
    severity = "error"

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        if code is not None:
            self.code = code

    def render(self) -> str:
        """`FILE:LINE:COL: error[CODE]: message`, the source line with a caret, the hint."""
        return render_error(self)

    def __str__(self) -> str:
        return self.render()


class RuleSyntaxError(CrmRulesError):
    """The rule text does not follow the grammar."""

    code = "E0101"


class UnknownNameError(CrmRulesError):
    """A name that is not an attribute, segment, function, table or column."""

    code = "E0201"


class RuleTypeError(CrmRulesError):
    """Operands or arguments of the wrong type."""

    code = "E0301"


class UnsupportedFeatureError(CrmRulesError):
    """A construct that a backend or SQL dialect cannot express."""

    code = "E0401"


class DataError(CrmRulesError):
    """Customer data that does not fit the schema (a wrong type, a malformed row)."""

    code = "E0501"


class SchemaError(CrmRulesError):
    """A schema mapping file that is malformed or names unknown tables, columns or types."""

    code = "E0502"


class EvaluationError(CrmRulesError):
    """A rule failed while it was being evaluated."""

    code = "E0601"


class InternalError(CrmRulesError):
    """A bug in crmrules itself, never the user's mistake."""

    code = "E0901"


class ErrorGroup(CrmRulesError):
    """All the errors found in one check, raised together so none is lost."""

    code = "E0000"

    def __init__(self, errors: Iterable[CrmRulesError]):
        self.errors = sorted(errors, key=_position)
        first = self.errors[0]
        super().__init__(first.message, first.span, first.hint, first.code)

    def render(self) -> str:
        """Every error rendered, one block each, in source order."""
        return "\n".join(render_error(e) for e in self.errors)


class RuleWarning(CrmRulesError):
    """Something that is probably a mistake but may be right: reported, never raised by checking."""

    code = "W0000"
    severity = "warning"


def _position(error: CrmRulesError) -> tuple[str, int]:
    span = error.span
    if span is None:
        return ("", -1)
    return (span.source.name if span.source else "", span.start)


def render_error(error: CrmRulesError) -> str:
    """Render one error as the compiler-style block users see."""
    kind = error.severity
    span = error.span
    lines = []
    if span is not None and span.source is not None:
        line, col = span.line_col()
        lines.append(f"{span.source.name}:{line}:{col}: {kind}[{error.code}]: {error.message}")
        text = span.source.text
        begin = text.rfind("\n", 0, span.start) + 1
        stop = text.find("\n", begin)
        stop = len(text) if stop == -1 else stop
        source_line = text[begin:stop].expandtabs(1)
        width = max(1, min(span.end, stop) - span.start)
        gutter = " " * len(str(line))
        lines.append(f"{gutter} |")
        lines.append(f"{line} | {source_line}")
        lines.append(f"{gutter} | {' ' * (col - 1)}{'^' * width}")
    else:
        lines.append(f"{kind}[{error.code}]: {error.message}")
    if error.hint:
        lines.append(f"  = help: {error.hint}")
    return "\n".join(lines)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean `x`?' hint for the closest known name, if any is close."""
    found = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{found[0]}`?" if found else None


def raise_all(errors: list[CrmRulesError]) -> None:
    """Raise nothing, the one error, or an ErrorGroup holding all of them (each distinct error once:
    a function's parameter used twice would otherwise report its argument twice)."""
    seen, distinct = set(), []
    for error in errors:
        key = (error.code, error.message, error.span.start if error.span else None,
               error.span.source.name if error.span and error.span.source else None)
        if key not in seen:
            seen.add(key)
            distinct.append(error)
    errors = distinct
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ErrorGroup(errors)
