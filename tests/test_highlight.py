"""The Pygments lexer (crmrules/highlight.py) and the TextMate grammar (editors/) colour the same way."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Literal,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
)

from crmrules.highlight import (
    AGGREGATES,
    CAMPAIGN_FIELDS,
    CONSTANTS,
    DECLARATIONS,
    KEYWORDS,
    WORD_OPERATORS,
    CrmRulesLexer,
    Date,
    Duration,
    Time,
)

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR = json.loads((ROOT / "editors" / "crmrules.tmLanguage.json").read_text(encoding="utf-8"))
FILES = sorted([*ROOT.glob("examples/**/*.crm"), *ROOT.glob("crmrules/stdlib/*.crm")])

# every kind of token, including what the examples may lack: each keyword, escapes, an unterminated string
SAMPLE = "\n".join([
    "# a comment",
    " ".join(KEYWORDS + WORD_OPERATORS + CONSTANTS + DECLARATIONS),
    " ".join(f"{word}(" for word in AGGREGATES) + " count orders.total event.type",
    " ".join(f"{field}: x" for field in CAMPAIGN_FIELDS),
    'segment s "a \\"quoted\\" title": f(within: 6mo, at_least: 2) and x >= 1.5 or y != -3 % 2',
    "attribute a = 'single \\' quote' + 5min * 2y / 3w - 4h + 30s + 1d",
    "campaign c: quiet: 22:00-08:00 trigger: daily at 9:30 cap: 1 per 7d",
    "test t: given customer {id: \"c1\", at: 2026-06-20T10:00:00.123456} as of 2026-06-30 expect in",
    'function g(x, y: [1, 2]) = (x | y) & z == "unterminated',
    "limit email: 2 per 7d  # trailing comment with \"quotes\"",
    "30days 5and x1 order_count or_else _private",
])
TEXTS = {**{str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in FILES}, "<sample>": SAMPLE}


# ----------------------------------------------------------------------------------- the Pygments lexer
def pygments_classes(text: str) -> list[str | None]:
    """One class per character: comment, string, keyword, number, date, name, operator, punctuation or None."""
    classes: list[str | None] = [None] * len(text)
    for start, token, value in CrmRulesLexer().get_tokens_unprocessed(text):
        kind = _pygments_class(token)
        for i in range(start, start + len(value)):
            classes[i] = kind
    return classes


def _pygments_class(token) -> str | None:
    for parent, kind in ((Comment, "comment"), (String, "string"), (Keyword, "keyword"), (Operator.Word, "keyword"),
                         (Number, "number"), (Literal.Date, "date"), (Name.Builtin, "builtin"), (Name, "name"),
                         (Operator, "operator"), (Punctuation, "punctuation"), (Error, "error")):
        if token in parent:
            return kind
    return None


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_lexer_covers_every_character_without_errors(name):
    text = TEXTS[name]
    tokens = list(CrmRulesLexer().get_tokens_unprocessed(text))
    assert "".join(value for _, _, value in tokens) == text
    assert [value for _, token, value in tokens if token in Error] == []


def test_lexer_knows_every_keyword_of_the_grammar():
    grammar = (ROOT / "crmrules" / "grammar" / "crmrules.lark").read_text(encoding="utf-8")
    words = set(re.findall(r'"([a-z_]+)"', grammar))
    ours = {*DECLARATIONS, *CAMPAIGN_FIELDS, *KEYWORDS, *WORD_OPERATORS, *CONSTANTS, *AGGREGATES}
    assert words == ours
    for word in ours - set(AGGREGATES) - set(CAMPAIGN_FIELDS):
        assert _pygments_class(next(CrmRulesLexer().get_tokens(word))[0]) == "keyword", word


@pytest.mark.parametrize(("text", "expected"), [
    ("30d 2h 6mo 5min 1y 2w 10s", [(Duration, "30d"), (Duration, "2h"), (Duration, "6mo"), (Duration, "5min"),
                                  (Duration, "1y"), (Duration, "2w"), (Duration, "10s")]),
    ("2026-06-30 2026-06-20T10:00:00 09:00", [(Date, "2026-06-30"), (Date, "2026-06-20T10:00:00"), (Time, "09:00")]),
    ("12 1.5 30days", [(Number.Integer, "12"), (Number.Float, "1.5"), (Number.Integer, "30"), (Name, "days")]),
    ('"a\\"b" # c', [(String.Double, '"'), (String.Double, "a"), (String.Escape, '\\"'), (String.Double, "b"),
                     (String.Double, '"'), (Comment.Single, "# c")]),
    ("segment vip: count(orders) >= 2 and not x in tags",
     [(Keyword.Declaration, "segment"), (Name.Variable, "vip"), (Punctuation, ":"), (Name.Builtin, "count"),
      (Punctuation, "("), (Name, "orders"), (Punctuation, ")"), (Operator, ">="), (Number.Integer, "2"),
      (Operator.Word, "and"), (Operator.Word, "not"), (Name, "x"), (Operator.Word, "in"), (Name, "tags")]),
    ("audience: ordered(within: 30d) and orders.total", [
        (Keyword, "audience"), (Punctuation, ":"), (Name.Function, "ordered"), (Punctuation, "("),
        (Name.Attribute, "within"), (Punctuation, ":"), (Duration, "30d"), (Punctuation, ")"),
        (Operator.Word, "and"), (Name, "orders"), (Punctuation, "."), (Name.Attribute, "total")]),
    ("order_count count", [(Name, "order_count"), (Name, "count")]),
])
def test_lexer_tokens(text, expected):
    assert [(token, value) for token, value in CrmRulesLexer().get_tokens(text) if value.strip()] == expected


def test_lexer_is_a_pygments_plugin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    target = project["entry-points"]["pygments.lexers"]["crmrules"]
    module, _, attribute = target.partition(":")
    assert getattr(__import__(module, fromlist=[attribute]), attribute) is CrmRulesLexer
    assert "*.crm" in CrmRulesLexer.filenames and "crmrules" in CrmRulesLexer.aliases


# -------------------------------------------------------------------------------- the TextMate grammar
def _rules(patterns: list[dict]) -> list[dict]:
    """The patterns with every `include` of the repository replaced by what it includes."""
    flat = []
    for pattern in patterns:
        if "include" in pattern:
            flat += _rules([GRAMMAR["repository"][pattern["include"].removeprefix("#")]])
        elif "patterns" in pattern and "begin" not in pattern:
            flat += _rules(pattern["patterns"])
        else:
            flat.append(pattern)
    return flat


def textmate_scopes(text: str) -> list[str | None]:
    """The outermost scope of every character, by a small TextMate engine: line by line, the earliest match
    wins (ties to the first pattern); `begin`/`end` rules continue over their inner patterns. The grammar's
    regexes are written in the part of Oniguruma's syntax that Python's `re` shares."""
    top = _rules(GRAMMAR["patterns"])
    scopes: list[str | None] = [None] * len(text)
    offset = 0
    inside: dict | None = None  # the begin/end rule left open by the previous line
    for line in text.split("\n"):
        position = 0
        while position <= len(line):
            if inside is not None:
                end = re.compile(inside["end"]).search(line, position)
                inner = [(m, p) for p in _rules(inside.get("patterns", []))
                         if (m := re.compile(p["match"]).search(line, position))]
                stop = end.end() if end else len(line)
                first = min(inner, key=lambda item: item[0].start(), default=None)
                if first is not None and end is not None and first[0].start() < end.start():
                    stop = first[0].end()
                for i in range(position, stop):
                    scopes[offset + i] = inside["name"]
                if end is not None and (first is None or end.start() <= first[0].start()):
                    inside = None
                position = max(stop, position + 1) if stop == position else stop
                continue
            found = None
            for pattern in top:
                regex = re.compile(pattern.get("match") or pattern["begin"])
                match = regex.search(line, position)
                if match and (found is None or match.start() < found[0].start()):
                    found = (match, pattern)
            if found is None or found[0].end() == found[0].start() == len(line):
                break
            match, pattern = found
            if "begin" in pattern:
                for i in range(match.start(), match.end()):
                    scopes[offset + i] = pattern["name"]
                inside, position = pattern, match.end()
                continue
            for i in range(match.start(), match.end()):
                scopes[offset + i] = pattern.get("name")
            for group, capture in pattern.get("captures", {}).items():
                if match.group(int(group)) is not None:
                    for i in range(match.start(int(group)), match.end(int(group))):
                        scopes[offset + i] = capture["name"]
            position = match.end() if match.end() > position else position + 1
        if inside is not None and re.compile(inside["end"]).search(line, len(line)):
            inside = None  # an unterminated string ends with its line, as the grammar's `$` says
        offset += len(line) + 1
    return scopes


_SCOPE_CLASSES = (("comment.", "comment"), ("string.", "string"), ("keyword.operator.word.", "keyword"),
                  ("keyword.operator.", "operator"), ("keyword.", "keyword"), ("constant.language.", "keyword"),
                  ("constant.numeric.", "number"), ("constant.other.date.", "date"), ("constant.other.time.", "date"),
                  ("support.function.", "builtin"), ("entity.name.", "name"), ("variable.", "name"),
                  ("punctuation.", "punctuation"))


def _scope_class(scope: str | None) -> str | None:
    if scope is None:
        return None
    return next(kind for prefix, kind in _SCOPE_CLASSES if scope.startswith(prefix))


def test_grammar_regexes_compile_with_python_re():
    for pattern in _rules(GRAMMAR["patterns"]) + _rules([GRAMMAR["repository"]["strings"]["patterns"][0]]):
        for key in ("match", "begin", "end"):
            if key in pattern:
                re.compile(pattern[key])
    assert GRAMMAR["scopeName"] == "source.crmrules" and GRAMMAR["fileTypes"] == ["crm"]


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_textmate_grammar_classifies_like_the_lexer(name):
    text = TEXTS[name]
    ours = pygments_classes(text)
    theirs = [_scope_class(scope) for scope in textmate_scopes(text)]
    differences = [(i, text[max(0, i - 20):i + 20], ours[i], theirs[i]) for i in range(len(text))
                   if ours[i] != theirs[i] and not text[i].isspace()]
    assert differences == []
    classes = set(ours)
    if name == "<sample>":
        assert {"comment", "string", "keyword", "number", "date", "builtin", "name", "operator",
                "punctuation"} <= classes


def test_the_comparison_can_tell_a_difference():
    text = 'segment a: x > 30d # c'
    theirs = [_scope_class(scope) for scope in textmate_scopes(text)]
    assert theirs == pygments_classes(text)
    theirs[text.index("30d")] = "name"
    assert theirs != pygments_classes(text)
    assert _scope_class("keyword.operator.word.crmrules") == "keyword"
    assert _scope_class("keyword.operator.crmrules") == "operator"
