"""The language server behind `crmrules lsp` (pygls): diagnostics from `check`, completion, hover, go to
definition across the open files and into the catalogue, and formatting through `fmt`.

The editor-independent parts are plain functions of text and offsets (`diagnostics`, `completions`,
`hover_text`, `definition`, `formatting`); `build_server` wires them to LSP messages.
Declarations are found with the Pygments lexer, so a file with a syntax error still has its names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from crmrules.errors import CrmRulesError
from crmrules.highlight import (
    AGGREGATES,
    CAMPAIGN_FIELDS,
    CONSTANTS,
    DECLARATIONS,
    KEYWORDS,
    WORD_OPERATORS,
    CrmRulesLexer,
)

SOURCE = "crmrules"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KINDS = {"column": types.CompletionItemKind.Field, "attribute": types.CompletionItemKind.Variable,
          "setting": types.CompletionItemKind.Constant, "function": types.CompletionItemKind.Function,
          "template": types.CompletionItemKind.Class, "segment": types.CompletionItemKind.Class,
          "builtin": types.CompletionItemKind.Function, "table": types.CompletionItemKind.Module,
          "keyword": types.CompletionItemKind.Keyword, "argument": types.CompletionItemKind.Property}


# ------------------------------------------------------------------------------------------ declarations
@dataclass(frozen=True)
class Declared:
    """A segment, attribute or function declared in some text: where its name is and what it says."""

    kind: str  # "segment", "attribute" or "function"
    name: str
    title: str | None
    start: int  # offsets of the declared name
    end: int
    text: str  # the whole declaration, as written
    params: tuple[str, ...] = ()


def declarations(text: str) -> list[Declared]:
    """Every segment, attribute and function declared in `text`, found by the lexer (syntax errors allowed)."""
    from pygments.token import Comment, Keyword, String, Text

    tokens = [tok for tok in CrmRulesLexer().get_tokens_unprocessed(text)
              if tok[1] not in Text and tok[1] not in Comment]
    starts = [i for i, (_, token, _) in enumerate(tokens) if token is Keyword.Declaration]
    found = []
    for n, i in enumerate(starts):
        keyword = tokens[i][2]
        if keyword not in ("segment", "attribute", "function") or i + 1 >= len(tokens):
            continue
        name_at, _, name = tokens[i + 1]
        if not _NAME.fullmatch(name):
            continue
        stop = tokens[starts[n + 1]][0] if n + 1 < len(starts) else len(text)
        own = _trim(text[tokens[i][0]:stop])
        rest = tokens[i + 2:starts[n + 1] if n + 1 < len(starts) else len(tokens)]
        params: tuple[str, ...] = ()
        if keyword == "function":
            header = re.match(rf"function\s+{name}\s*\(([^)]*)\)", own)
            params = tuple(m.group(0) for part in (header.group(1).split(",") if header else [])
                           if (m := _NAME.search(part)))
            depth, skip = 0, 0
            for skip, (_, _, value) in enumerate(rest):
                depth += {"(": 1, ")": -1}.get(value, 0)
                if value == ")" and depth == 0:
                    break
            rest = rest[skip + 1:]
        title = None
        string = "".join(value for _, token, value in _leading_string(rest, String))
        if string:
            title = re.sub(r"\\(.)", r"\1", string[1:-1])
        found.append(Declared(keyword, name, title, name_at, name_at + len(name), own, params))
    return found


def _leading_string(tokens, string_type):
    taken = []
    for item in tokens:
        if item[1] not in string_type:
            break
        taken.append(item)
    return taken


def _trim(text: str) -> str:
    """A declaration's text without the blank and comment lines that follow it."""
    lines = text.rstrip().split("\n")
    while len(lines) > 1 and (not lines[-1].strip() or lines[-1].lstrip().startswith("#")):
        lines.pop()
    return "\n".join(lines).rstrip()


# -------------------------------------------------------------------------------------------- catalogue
@cache
def catalogue_files() -> dict[str, Path]:
    """The catalogue's rule files (crmrules/stdlib/*.crm) by name."""
    from crmrules.stdlib import FILES

    folder = Path(__file__).parent / "stdlib"
    return {name: folder / name for name in FILES}


@cache
def catalogue_declarations() -> tuple[tuple[str, Declared], ...]:
    """(file URI, declaration) for every catalogue declaration."""
    found = []
    for path in catalogue_files().values():
        found += [(path.as_uri(), decl) for decl in declarations(path.read_text(encoding="utf-8"))]
    return tuple(found)


@cache
def catalogue_items() -> dict[str, object]:
    """The catalogue reference entries (crmrules.stdlib.reference.Item) by bare name."""
    from crmrules.stdlib.reference import items

    return {item.name.split("(")[0]: item for item in items()}


@cache
def _schema():
    from crmrules.schema import default_schema

    return default_schema()


def _builtins() -> dict:
    from crmrules.compiler.functions import FUNCTIONS

    return FUNCTIONS


# ------------------------------------------------------------------------------------------ diagnostics
def diagnostics(text: str, name: str) -> list[tuple[CrmRulesError, int, int]]:
    """Every error (or, when there is none, every warning) `check` reports for the text, with the offsets
    it covers in that text (0, 0 when it has no place in it)."""
    from crmrules.api import load_text

    try:
        found = list(load_text(text, name).program.warnings)
    except CrmRulesError as error:
        found = list(getattr(error, "errors", [error]))
    placed = []
    for error in found:
        span = error.span
        if span is None or span.source is None or span.source.name != name:
            placed.append((error, 0, 0))
        else:
            placed.append((error, span.start, max(span.end, span.start)))
    return placed


def to_diagnostic(doc: TextDocument, error: CrmRulesError, start: int, end: int) -> types.Diagnostic:
    """One LSP diagnostic: the error's range, code, message and hint."""
    message = error.message + (f"\nhelp: {error.hint}" if error.hint else "")
    severity = (types.DiagnosticSeverity.Warning if error.severity == "warning"
                else types.DiagnosticSeverity.Error)
    return types.Diagnostic(range=_range(doc, start, end), message=message, severity=severity, code=error.code,
                            source=SOURCE, data={"hint": error.hint} if error.hint else None)


# ------------------------------------------------------------------------------------------- completion
@dataclass(frozen=True)
class Suggestion:
    """One completion: the text inserted, its kind, title and definition."""

    label: str
    kind: str
    title: str = ""
    definition: str = ""
    sort: str = "5"


def completions(text: str, offset: int, others: list[str] = ()) -> list[Suggestion]:
    """What may be typed at `offset`: a table's columns after `table.`, else named arguments of the call
    around the cursor, the file's and the open files' declarations, the catalogue, the built-in functions,
    tables and keywords."""
    before = text[:offset]
    dotted = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z0-9_]*)$", before)
    schema = _schema()
    if dotted:
        table = schema.tables.get(dotted.group(1))
        if table is None:
            return []
        return [Suggestion(name, "column", str(spec.type), f"{table.name}.{name}") for name, spec in
                table.columns.items()]
    found: dict[str, Suggestion] = {}
    declared = [d for source in (text, *others) for d in declarations(source)]
    call = _open_call(before)
    if call:
        params = next((d.params for d in declared if d.kind == "function" and d.name == call), None)
        if params is None:
            params = next((d.params for _, d in catalogue_declarations() if d.kind == "function" and d.name == call),
                          ())
        for param in params:
            found[f"{param}:"] = Suggestion(f"{param}:", "argument", f"argument of {call}", sort="0")
    for decl in declared:
        found.setdefault(decl.name, Suggestion(decl.name, decl.kind, decl.title or "", decl.text, sort="1"))
    for name, item in catalogue_items().items():
        found.setdefault(name, Suggestion(name, item.kind, item.title, item.definition, sort="2"))
    for name, function in _builtins().items():
        found.setdefault(name, Suggestion(name, "builtin", function.doc, f"{name}({', '.join(function.params)})",
                                          sort="3"))
    for name in schema.tables:
        found.setdefault(name, Suggestion(name, "table", f"the {name} table", sort="4"))
    for name in schema.columns("customers") if "customers" in schema.tables else ():
        found.setdefault(name, Suggestion(name, "column", str(schema.column("customers", name).type),
                                          f"customers.{name}", sort="4"))
    for word in (*DECLARATIONS, *CAMPAIGN_FIELDS, *KEYWORDS, *WORD_OPERATORS, *CONSTANTS, *AGGREGATES):
        found.setdefault(word, Suggestion(word, "keyword", sort="6"))
    return list(found.values())


def _open_call(before: str) -> str | None:
    """The name of the innermost call whose `(` is still open before the cursor."""
    depth = 0
    stripped = re.sub(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*', lambda m: " " * len(m.group()), before)
    for i in range(len(stripped) - 1, -1, -1):
        char = stripped[i]
        if char == ")":
            depth += 1
        elif char == "(":
            if depth == 0:
                name = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", stripped[:i])
                return name.group(1) if name else None
            depth -= 1
    return None


def to_completion(suggestion: Suggestion) -> types.CompletionItem:
    """The LSP completion item of a suggestion: title as detail, definition as documentation."""
    documentation = None
    if suggestion.definition:
        documentation = types.MarkupContent(kind=types.MarkupKind.Markdown,
                                            value=f"```crmrules\n{suggestion.definition}\n```")
    return types.CompletionItem(label=suggestion.label, kind=_KINDS[suggestion.kind],
                                detail=suggestion.title or None, documentation=documentation,
                                sort_text=f"{suggestion.sort}{suggestion.label}")


# ------------------------------------------------------------------------------------ hover, definition
def word_at(text: str, offset: int) -> tuple[str, int, int, str | None] | None:
    """The name at `offset`, its offsets, and the table before it when it is `table.name`."""
    for match in _NAME.finditer(text, max(0, offset - 200), offset + 200):
        if match.start() <= offset <= match.end():
            base = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\.$", text[:match.start()])
            return match.group(), match.start(), match.end(), base.group(1) if base else None
    return None


def hover_text(text: str, offset: int, others: list[str] = ()) -> str | None:
    """Markdown for the name at `offset`: a declaration's title and source (the file's and open files'
    first, then the catalogue's), a built-in function's doc, or a column's type."""
    found = word_at(text, offset)
    if found is None:
        return None
    name, _, _, base = found
    schema = _schema()
    if base is not None:
        column = schema.column(base, name)
        return f"**{base}.{name}** : {column.type} *(column)*" if column else None
    for decl in (d for source in (text, *others) for d in declarations(source)):
        if decl.name == name:
            title = f"\n\n{decl.title}" if decl.title else ""
            return f"**{name}** *({decl.kind})*{title}\n\n```crmrules\n{decl.text}\n```"
    item = catalogue_items().get(name)
    if item is not None:
        typed = f" : {item.type}" if item.type else ""
        title = f"\n\n{item.title}" if item.title else ""
        return f"**{item.name}**{typed} *({item.kind})*{title}\n\n```crmrules\n{item.definition}\n```"
    function = _builtins().get(name)
    if function is not None:
        return f"**{name}({', '.join(function.params)})** *(built-in function)*\n\n{function.doc}"
    if name in schema.tables:
        return f"**{name}** *(table)*: {', '.join(schema.columns(name))}"
    return None


def definition(uri: str, text: str, offset: int, others: dict[str, str]) -> tuple[str, str, int, int] | None:
    """Where the segment, attribute or function named at `offset` is declared: (URI, text, start, end) of
    its name in this file, another open file, or the catalogue."""
    found = word_at(text, offset)
    if found is None or found[3] is not None:
        return None
    name = found[0]
    for where, source in ((uri, text), *((u, t) for u, t in others.items() if u != uri)):
        for decl in declarations(source):
            if decl.name == name:
                return where, source, decl.start, decl.end
    for where, decl in catalogue_declarations():
        if decl.name == name:
            return where, _read(where), decl.start, decl.end
    return None


@cache
def _read(uri: str) -> str:
    return Path(unquote(urlparse(uri).path)).read_text(encoding="utf-8")


def formatting(text: str, name: str) -> str | None:
    """The text as `crmrules fmt` lays it out, or None when it does not parse."""
    from crmrules.formatter import format_source

    try:
        return format_source(text, name)
    except CrmRulesError:
        return None


# --------------------------------------------------------------------------------------------- the server
def _range(doc: TextDocument, start: int, end: int) -> types.Range:
    return types.Range(start=_position(doc, start), end=_position(doc, end))


def _position(doc: TextDocument, offset: int) -> types.Position:
    text = doc.source
    offset = min(max(offset, 0), len(text))
    line = text.count("\n", 0, offset)
    begin = text.rfind("\n", 0, offset) + 1
    return types.Position(line=line, character=doc.position_codec.client_num_units(text[begin:offset]))


def _name(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def build_server() -> LanguageServer:
    """A new crmrules language server; `build_server().start_io()` serves an editor on stdio."""
    from crmrules import __version__

    server = LanguageServer(SOURCE, __version__)

    def others(ls: LanguageServer) -> dict[str, str]:
        return {uri: doc.source for uri, doc in ls.workspace.text_documents.items()}

    def publish(ls: LanguageServer, uri: str) -> None:
        doc = ls.workspace.get_text_document(uri)
        found = [to_diagnostic(doc, *item) for item in diagnostics(doc.source, _name(uri))]
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=found,
                                                                            version=doc.version))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        publish(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        publish(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: LanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        publish(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                            diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "("]))
    def completion(ls: LanguageServer, params: types.CompletionParams) -> types.CompletionList:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        offset = doc.offset_at_position(params.position)
        rest = [text for uri, text in others(ls).items() if uri != doc.uri]
        return types.CompletionList(is_incomplete=False,
                                    items=[to_completion(s) for s in completions(doc.source, offset, rest)])

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: LanguageServer, params: types.HoverParams) -> types.Hover | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        offset = doc.offset_at_position(params.position)
        rest = [text for uri, text in others(ls).items() if uri != doc.uri]
        value = hover_text(doc.source, offset, rest)
        if value is None:
            return None
        _, start, end, _ = word_at(doc.source, offset)
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=value),
                           range=_range(doc, start, end))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def goto_definition(ls: LanguageServer, params: types.DefinitionParams) -> types.Location | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        found = definition(doc.uri, doc.source, doc.offset_at_position(params.position), others(ls))
        if found is None:
            return None
        uri, text, start, end = found
        target = ls.workspace.text_documents.get(uri) or TextDocument(uri, source=text)
        return types.Location(uri=uri, range=_range(target, start, end))

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def format_document(ls: LanguageServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        formatted = formatting(doc.source, _name(doc.uri))
        if formatted is None:
            return None
        if formatted == doc.source:
            return []
        return [types.TextEdit(range=_range(doc, 0, len(doc.source)), new_text=formatted)]

    return server
