"""`crmrules lsp`: a pygls client talks to the real command over a pipe; every feature is exercised."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from crmrules import lsp

ROOT = Path(__file__).resolve().parent.parent

SHARED = """\
segment big_spenders "Spent over 500": total_spent > 500

attribute coat_orders "Orders with a coat" = count(orders where any(items where category == "coat"))

function bought_lots(category, at_least: 3) "Bought the category often" = bought(category, at_least: at_least)
"""


class Session:
    """One `crmrules lsp` process and a client, driven from the test thread on a background event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = LanguageClient("crmrules-test", "1")
        self.diagnostics: dict[str, types.PublishDiagnosticsParams] = {}
        self.opened: set[str] = set()
        self.version = 0

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: types.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = params

        self.run(self.client.start_io(sys.executable, "-m", "crmrules", "lsp", cwd=str(ROOT)))
        result = self.run(self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=ROOT.as_uri())))
        self.capabilities = result.capabilities
        self.client.initialized(types.InitializedParams())

    def run(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def open(self, name: str, text: str) -> str:
        uri = (ROOT / "tests" / "lsp-scratch" / name).as_uri()
        self.version += 1
        self.diagnostics.pop(uri, None)
        self.opened.add(uri)
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="crmrules", version=self.version, text=text)))
        return uri

    def change(self, uri: str, text: str) -> None:
        self.version += 1
        self.diagnostics.pop(uri, None)
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    def diagnostics_of(self, uri: str) -> list[types.Diagnostic]:
        async def wait():
            while uri not in self.diagnostics:
                await asyncio.sleep(0.01)
            return self.diagnostics[uri].diagnostics
        return self.run(wait())

    def close_all(self) -> None:
        """Close every open document, so that a test sees only its own files."""
        for uri in self.opened:
            self.client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=doc(uri)))
        self.opened.clear()

    def close(self) -> None:
        self.run(self.client.shutdown_async(None))
        self.client.exit(None)
        self.run(self.client.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def session():
    opened = Session()
    yield opened
    opened.close()


@pytest.fixture(autouse=True)
def fresh(request):
    yield
    if "session" in request.fixturenames:
        request.getfixturevalue("session").close_all()


def at(text: str, needle: str, shift: int = 1) -> types.Position:
    """The position `shift` characters into the first `needle` of `text`."""
    offset = text.index(needle) + shift
    line = text.count("\n", 0, offset)
    return types.Position(line=line, character=offset - (text.rfind("\n", 0, offset) + 1))


def doc(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri)


def test_server_announces_its_features(session):
    caps = session.capabilities
    assert caps.completion_provider is not None and "." in caps.completion_provider.trigger_characters
    assert caps.hover_provider and caps.definition_provider and caps.document_formatting_provider


def test_diagnostics_give_every_error_with_range_code_and_hint(session):
    text = 'segment a: order_cuont > 1\nsegment b: any(orders where status == "payd")\n'
    uri = session.open("errors.crm", text)
    found = sorted(session.diagnostics_of(uri), key=lambda d: (d.range.start.line, d.range.start.character))
    assert [d.code for d in found] == ["E0201", "E0304"]
    assert found[0].range == types.Range(start=at(text, "order_cuont", 0), end=at(text, "order_cuont", 11))
    assert "order_count" in found[0].message  # the did-you-mean hint
    assert found[0].data == {"hint": "did you mean `order_count`?"}
    assert found[1].range.start == at(text, '"payd"', 0) and found[1].range.end == at(text, '"payd"', 6)
    assert all(d.severity == types.DiagnosticSeverity.Error and d.source == "crmrules" for d in found)

    session.change(uri, 'segment a: did("add_to_kart")\n')  # a warning only; the errors are gone
    [warning] = session.diagnostics_of(uri)
    assert warning.code == "W0301" and warning.severity == types.DiagnosticSeverity.Warning
    assert warning.range.start == types.Position(line=0, character=15)

    session.change(uri, "segment a: order_count > 1\n")
    assert list(session.diagnostics_of(uri)) == []


def test_syntax_errors_are_diagnostics(session):
    uri = session.open("syntax.crm", "segment a: order_count >\nsegment b: (\n")
    found = session.diagnostics_of(uri)
    assert len(found) == 2 and all(d.code.startswith("E01") for d in found)
    assert {d.range.start.line for d in found} == {0, 1}


def test_completion_lists_catalogue_declarations_columns_and_named_arguments(session):
    shared = session.open("shared.crm", SHARED)
    text = "segment x: bought_lots(\"coat\", at"
    uri = session.open("completion.crm", text)
    end = types.Position(line=0, character=len(text))
    items = session.run(session.client.text_document_completion_async(
        types.CompletionParams(text_document=doc(uri), position=end))).items
    by_label = {item.label: item for item in items}
    assert by_label["at_least:"].kind == types.CompletionItemKind.Property  # the open call's argument
    assert by_label["big_spenders"].detail == "Spent over 500"  # from another open file
    assert by_label["order_count"].detail == "Paid orders"  # the catalogue, with its title
    assert "count(orders" in by_label["order_count"].documentation.value
    assert by_label["gender"].kind == types.CompletionItemKind.Field  # a profile column
    assert by_label["days_since"].kind == types.CompletionItemKind.Function  # a built-in function
    assert by_label["new_customers"].kind == types.CompletionItemKind.Class  # a template
    assert by_label["segment"].kind == types.CompletionItemKind.Keyword
    assert min(items, key=lambda i: i.sort_text).label in ("category:", "at_least:")
    session.client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=doc(shared)))
    session.opened.discard(shared)

    text = "segment y: sum(orders."
    uri = session.open("columns.crm", text)
    items = session.run(session.client.text_document_completion_async(types.CompletionParams(
        text_document=doc(uri), position=types.Position(line=0, character=len(text))))).items
    assert {"total", "status", "created_at"} <= {item.label for item in items}
    assert "order_count" not in {item.label for item in items}


def test_hover_shows_title_and_definition(session):
    text = SHARED + ('segment y: big_spenders and spent_once > 10 and days_since(registered_at) < 9'
                     ' and orders.total > 1\n')
    uri = session.open("hover.crm", text)

    def hover(needle: str, shift: int = 1) -> str | None:
        found = session.run(session.client.text_document_hover_async(types.HoverParams(
            text_document=doc(uri), position=at(text, needle, shift))))
        return found.contents.value if found else None

    assert "Largest single paid order total" in hover("spent_once")
    assert 'max(orders.total where status == "paid")' in hover("spent_once")
    mine = hover("big_spenders and")
    assert "Spent over 500" in mine and "total_spent > 500" in mine
    assert "Calendar days from the date" in hover("days_since(")
    assert "orders.total" in hover("total > 1") and "decimal" in hover("total > 1")
    assert hover("< 9", 0) is None


def test_definition_in_the_file_in_other_open_files_and_in_the_catalogue(session):
    session.open("defs.crm", SHARED)
    text = ('segment z: big_spenders and coat_orders > 1 and bought_lots("x") and dormant and prefers("coat")'
            ' and dormant_days > 1\n')
    uri = session.open("uses.crm", text)
    shared_uri = (ROOT / "tests" / "lsp-scratch" / "defs.crm").as_uri()

    def where(needle: str) -> types.Location:
        found = session.run(session.client.text_document_definition_async(types.DefinitionParams(
            text_document=doc(uri), position=at(text, needle))))
        return found

    for name in ("big_spenders", "coat_orders", "bought_lots"):
        location = where(name)
        assert location.uri == shared_uri
        assert location.range == types.Range(start=at(SHARED, f" {name}"), end=at(SHARED, f" {name}", 1 + len(name)))
    for name, keyword, file in (("prefers", "function", "catalogue.crm"),
                                ("dormant_days", "attribute", "catalogue.crm"),
                                ("dormant", "segment", "templates.crm")):
        location = where(name)
        source = (ROOT / "crmrules" / "stdlib" / file).read_text(encoding="utf-8")
        assert location.uri == (ROOT / "crmrules" / "stdlib" / file).as_uri()
        declared = f"\n{keyword} {name}"
        assert location.range == types.Range(start=at(source, declared, len(keyword) + 2),
                                             end=at(source, declared, len(keyword) + 2 + len(name)))
    assert where("> 1") is None  # not a name
    # in the file itself: a name declared here is found here first
    own = "segment dormant: order_count == 0\nsegment w: dormant\n"
    own_uri = session.open("own.crm", own)
    found = session.run(session.client.text_document_definition_async(types.DefinitionParams(
        text_document=doc(own_uri), position=at(own, "w: dormant", 4))))
    assert found.uri == own_uri and found.range.start == types.Position(line=0, character=8)


def test_formatting_is_fmt(session):
    text = 'segment   a   "A":order_count>1   and gender=="female"  # kept\n'
    uri = session.open("fmt.crm", text)
    edits = session.run(session.client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=doc(uri), options=types.FormattingOptions(tab_size=4, insert_spaces=True))))
    from crmrules.formatter import format_source

    assert len(edits) == 1 and edits[0].new_text == format_source(text) != text
    assert edits[0].range.start == types.Position(line=0, character=0)
    assert edits[0].range.end == types.Position(line=1, character=0)

    session.change(uri, format_source(text))
    assert tuple(session.run(session.client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=doc(uri), options=types.FormattingOptions(tab_size=4, insert_spaces=True))))) == ()
    session.change(uri, "segment a: (\n")
    assert session.run(session.client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=doc(uri), options=types.FormattingOptions(tab_size=4, insert_spaces=True)))) is None


# ------------------------------------------------------------------------------- the functions behind them
def test_declarations_survive_syntax_errors():
    found = lsp.declarations('segment a "A": (\nfunction f(x, y: 2) "F" = x + y\nattribute b = \n')
    assert [(d.kind, d.name, d.title, d.params) for d in found] == [
        ("segment", "a", "A", ()), ("function", "f", "F", ("x", "y")), ("attribute", "b", None, ())]


def test_every_catalogue_entry_can_be_found():
    names = {decl.name for _, decl in lsp.catalogue_declarations()}
    missing = {name for name, item in lsp.catalogue_items().items() if item.kind != "column"} - names
    assert missing == set()


def test_positions_count_utf16_units():
    from pygls.workspace import TextDocument

    text = 'segment a "café 🎉": order_cuont > 1\n'
    document = TextDocument("file:///x.crm", source=text)
    [(error, start, end)] = lsp.diagnostics(text, "/x.crm")
    diagnostic = lsp.to_diagnostic(document, error, start, end)
    assert diagnostic.range.start.character == text.index("order_cuont") + 1  # the emoji is two units


def test_the_server_ends_when_the_editor_goes_away():
    import subprocess

    done = subprocess.run([sys.executable, "-m", "crmrules", "lsp", "--stdio"], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=30, cwd=ROOT, check=False)
    assert done.returncode == 0 and done.stdout == b""
