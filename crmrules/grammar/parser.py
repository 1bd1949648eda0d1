"""Parse rule files and expressions into the AST; the only module that imports lark."""

from __future__ import annotations

import hashlib
import re
from functools import cache, lru_cache
from pathlib import Path as FilePath

import lark
from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from crmrules import ast
from crmrules.errors import CrmRulesError, RuleSyntaxError, Source, Span, raise_all
from crmrules.grammar.to_ast import ToAst
from crmrules.private_cache import trusted_file

MAX_DECLARATION_CHARS = 100_000
# rule texts up to this size are kept, parsed, for the next `parse` of the same text (at most 256 of them)
_CACHED_TEXT_CHARS = 200_000

_DECLARATION_START = re.compile(r"^(segment|attribute|function|campaign|limit|test)\b", re.MULTILINE)

# What the user sees instead of a terminal's name.
_WORDS = {
    "NAME": "a name", "STRING": "a string", "INT": "a number", "DECIMAL": "a number",
    "DURATION": "a duration such as `30d`", "DATE": "a date such as `2026-01-31`",
    "DATETIME": "a timestamp such as `2026-01-31T09:00`", "TIME": "a time such as `09:00`",
    "COMPARE_OP": "a comparison", "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`",
    "LBRACE": "`{`", "RBRACE": "`}`", "COLON": "`:`", "COMMA": "`,`", "DOT": "`.`",
    "EQUAL": "`=`", "PLUS": "`+`", "MINUS": "`-`", "STAR": "`*`", "SLASH": "`/`",
    "PERCENT": "`%`", "VBAR": "`|`", "AMPERSAND": "`&`", "$END": "the end of the declaration",
}
_EXPRESSION_STARTS = {"NAME", "STRING", "INT", "DECIMAL", "LPAR", "NOT", "MINUS", "TRUE"}


@cache
def _lark() -> Lark:
    grammar = (FilePath(__file__).parent / "crmrules.lark").read_text(encoding="utf-8")
    # Lark's parse tables are a pickle: kept only in the user's private cache, never the shared temp dir
    key = hashlib.sha256(f"{lark.__version__}\0{grammar}".encode()).hexdigest()[:20]
    cached = trusted_file(f"lark-{key}.cache")
    return Lark(grammar, parser="lalr", start=["start", "expr"], propagate_positions=True,
                maybe_placeholders=True, cache=str(cached) if cached is not None else False)


def parse(text: str, name: str = "<rules>") -> ast.RuleFile:
    """Parse a whole rule file; every declaration's syntax errors are reported together.

    The same text under the same name gives the same (immutable) tree without parsing again: a REPL or an
    app reloading unchanged rules pays nothing; a text with errors is parsed again each time."""
    if len(text) > _CACHED_TEXT_CHARS:
        return _parse_text.__wrapped__(text, name)
    return _parse_text(text, name)


@lru_cache(maxsize=256)
def _parse_text(text: str, name: str) -> ast.RuleFile:
    source = Source(name, text)
    declarations: list[ast.Declaration] = []
    errors: list[CrmRulesError] = []
    for start, end in _declaration_chunks(text, source, errors):
        try:
            declarations.append(_parse_chunk(text[start:end], start, source, "start"))
        except CrmRulesError as error:
            errors.append(error)
    raise_all(errors)
    return ast.RuleFile(declarations=tuple(declarations), span=Span(0, len(text), source))


def clear_parse_cache() -> None:
    """Forget the parsed texts (benchmarks timing a first parse)."""
    _parse_text.cache_clear()


def parse_expression(text: str, name: str = "<expr>") -> ast.Expr:
    """Parse one expression, as the REPL and the API's ad hoc rules do."""
    return _parse_chunk(text, 0, Source(name, text), "expr")


def _declaration_chunks(text: str, source: Source, errors: list[CrmRulesError]):
    starts = [m.start() for m in _DECLARATION_START.finditer(text)]
    preamble = _strip_comments(text[: starts[0] if starts else len(text)])
    if preamble.strip():
        offset = len(preamble) - len(preamble.lstrip())
        stop = text.find("\n", offset)
        stop = len(text) if stop == -1 else stop
        errors.append(RuleSyntaxError(
            "expected a declaration", Span(offset, stop, source),
            "a rule file holds `segment`, `attribute`, `function`, `campaign` and `test` declarations, "
            "each starting at the beginning of a line"))
    for begin, end in zip(starts, starts[1:] + [len(text)]):
        yield begin, end


def _strip_comments(text: str) -> str:
    return re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), text)


def _parse_chunk(chunk: str, offset: int, source: Source, start: str):
    if len(chunk) > MAX_DECLARATION_CHARS:
        raise RuleSyntaxError(
            f"declaration too long ({len(chunk)} characters, at most {MAX_DECLARATION_CHARS})",
            Span(offset, offset + 1, source), "split it into smaller attributes and segments",
            code="E0104")
    try:
        tree = _lark().parse(chunk, start=start)
    except UnexpectedInput as error:
        raise _syntax_error(error, chunk, offset, source) from None
    try:
        return ToAst(offset, source).transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, CrmRulesError):
            raise error.orig_exc from None
        raise


def _syntax_error(error: UnexpectedInput, chunk: str, offset: int, source: Source) -> RuleSyntaxError:
    position = getattr(error, "pos_in_stream", None)
    if isinstance(error, UnexpectedToken):
        token = error.token
        expected = _acceptable(error)
        if token.type == "$END":
            position = len(_strip_comments(chunk).rstrip())
            return RuleSyntaxError(f"unexpected end of declaration; expected {_expected(expected)}",
                                   Span(offset + max(position - 1, 0), offset + max(position, 1), source),
                                   _hint_for(expected, None, chunk), code="E0102")
        start = token.start_pos if token.start_pos is not None else 0
        end = token.end_pos if token.end_pos is not None else start + 1
        return RuleSyntaxError(f"unexpected {_describe(token)}; expected {_expected(expected)}",
                               Span(offset + start, offset + end, source),
                               _hint_for(expected, token, chunk))
    if isinstance(error, UnexpectedCharacters):
        char = chunk[error.pos_in_stream]
        hint = None
        if char in "\"'":
            hint = "strings end on the same line with the same quote they started with"
        elif char == "=":
            hint = "compare with `==`"
        elif char == "!":
            hint = "write `not x` or `x != y`"
        return RuleSyntaxError(f"unexpected character `{char}`",
                               Span(offset + error.pos_in_stream, offset + error.pos_in_stream + 1, source),
                               hint)
    if isinstance(error, UnexpectedEOF):
        position = len(_strip_comments(chunk).rstrip())
        return RuleSyntaxError(f"unexpected end of declaration; expected {_expected(error.expected)}",
                               Span(offset + max(position - 1, 0), offset + max(position, 1), source),
                               code="E0102")
    return RuleSyntaxError(str(error), Span(offset, offset + 1, source))


def _acceptable(error: UnexpectedToken) -> set[str]:
    # LALR merges states, so `expected` can name tokens that could never come next;
    # asking the interactive parser gives only the ones that really could
    try:
        accepted = error.interactive_parser.accepts()
    except Exception:  # noqa: BLE001 - fall back to Lark's coarser set
        return set(error.expected)
    return accepted or set(error.expected)


def _describe(token: Token) -> str:
    if token.type == "NAME":
        return f"name `{token}`"
    if token.type in {"STRING", "INT", "DECIMAL", "DURATION", "DATE", "DATETIME", "TIME"}:
        return f"{_WORDS[token.type].split(' such')[0].removeprefix('a ')} `{token}`"
    return f"`{token}`"


def _expected(names: set[str]) -> str:
    names = set(names)
    words: list[str] = []
    if {"NAME", "STRING", "INT"} <= names:
        words.append("an expression")
        names -= _EXPRESSION_STARTS | {"FALSE", "NULL", "EVER", "DURATION", "DATE", "DATETIME", "LSQB",
                                       "COUNT", "SUM", "AVG", "MIN", "MAX", "ANY", "NONE", "DISTINCT", "TOP",
                                       "FIRST", "LAST"}
    operator_like = {"COMPARE_OP", "PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "VBAR", "AMPERSAND",
                     "AND", "OR", "IN", "NOT", "BETWEEN", "IS", "CONTAINS", "STARTS_WITH",
                     "MATCHES", "WITHIN"}
    if len(names & operator_like) >= 5:
        words.append("an operator")
        names -= operator_like
    for name in sorted(names):
        word = _WORDS.get(name)
        if word is None:
            word = f"`{name.lower()}`" if name.isalpha() or "_" in name else name
        if word not in words:
            words.append(word)
    if len(words) > 6:
        words = words[:6] + ["..."]
    return " or ".join(words) if len(words) <= 2 else ", ".join(words[:-1]) + " or " + words[-1]


def _hint_for(expected: set[str], token: Token | None, chunk: str) -> str | None:
    if token is not None and token.type == "NAME" and "COLON" in expected:
        return "a declaration's header ends with `:` before its body"
    if token is not None and token.type == "EQUAL":
        return "compare with `==`"
    if token is not None and str(token) in {"&", "|"} and token.start_pos and \
            chunk[token.start_pos - 1] == str(token):
        return "write `and` / `or`; `&` and `|` combine segments"
    if "RPAR" in expected:
        return "is a `)` missing?"
    return None


__all__ = ["clear_parse_cache", "parse", "parse_expression"]
