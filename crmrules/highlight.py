"""A Pygments lexer for the crmrules language: the REPL, docs code blocks and error output colour with it.

Its words mirror the keywords of `crmrules/grammar/crmrules.lark` (a test keeps them in step), and
`editors/crmrules.tmLanguage.json` classifies the same spans the same way (a test compares them).
"""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Literal,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

__all__ = [
    "AGGREGATES",
    "CAMPAIGN_FIELDS",
    "CONSTANTS",
    "DECLARATIONS",
    "KEYWORDS",
    "WORD_OPERATORS",
    "CrmRulesLexer",
    "Date",
    "Duration",
    "Time",
]

DECLARATIONS = ("segment", "attribute", "function", "campaign", "limit", "test")
CAMPAIGN_FIELDS = ("audience", "trigger", "wait", "unless", "action", "cap", "quiet", "holdout", "priority",
                   "budget", "cost")
KEYWORDS = ("per", "on", "at", "where", "daily", "weekly", "monthly", "after", "when", "becomes", "reaches",
            "given", "as", "of", "expect", "out", "by")
WORD_OPERATORS = ("and", "or", "not", "in", "is", "between", "contains", "starts_with", "matches", "within")
CONSTANTS = ("true", "false", "null", "ever")
AGGREGATES = ("count", "sum", "avg", "min", "max", "any", "none", "distinct", "top", "first", "last")

Duration = Number.Duration  # 30d, 2h, 6mo: styled as numbers by any Pygments style
Date = Literal.Date  # 2026-06-30 and 2026-06-20T10:00:00
Time = Literal.Date.Time  # 09:00 in campaign triggers and quiet hours

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_END = r"(?![A-Za-z0-9_])"


class CrmRulesLexer(RegexLexer):
    """Rule files (`.crm`): declarations, campaigns, tests and expressions."""

    name = "crmrules"
    aliases = ("crmrules", "crm")
    filenames = ("*.crm",)
    mimetypes = ("text/x-crmrules",)
    url = "https://github.com/crmrules/crmrules"

    tokens: ClassVar[dict] = {
        "root": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"', String.Double, "dq"),
            (r"'", String.Single, "sq"),
            # declaration keyword and the declared name
            (rf"(function)(\s+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (rf"(segment|attribute|campaign|limit|test)(\s+)({_NAME})",
             bygroups(Keyword.Declaration, Whitespace, Name.Variable)),
            # a campaign field (`audience:`); any other `name:` is a named argument, parameter or record field
            (words(CAMPAIGN_FIELDS, suffix=r"(?=\s*:)"), Keyword),
            (rf"{_NAME}(?=\s*:)", Name.Attribute),
            (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?", Date),
            (r"\d{4}-\d{2}-\d{2}", Date),
            (r"\d{1,2}:\d{2}", Time),
            (rf"\d+(?:mo|min|[ywdhs]){_END}", Duration),
            (r"\d+\.\d+", Number.Float),
            (r"\d+", Number.Integer),
            (words(DECLARATIONS, suffix=_END), Keyword.Declaration),
            (words(CONSTANTS, suffix=_END), Keyword.Constant),
            (words(WORD_OPERATORS, suffix=_END), Operator.Word),
            (words(KEYWORDS, suffix=_END), Keyword),
            (words(AGGREGATES, suffix=r"(?=\s*\()"), Name.Builtin),
            (rf"(\.)({_NAME})", bygroups(Punctuation, Name.Attribute)),
            (rf"{_NAME}(?=\s*\()", Name.Function),
            (_NAME, Name),
            (r"==|!=|<=|>=|<|>|=|\+|-|\*|/|%|\||&", Operator),
            (r"[()\[\]{},.:]", Punctuation),
        ],
        "dq": [
            (r'[^"\\\n]+', String.Double),
            (r"\\.", String.Escape),
            (r'"', String.Double, "#pop"),
            (r"\n", Text, "#pop"),  # unterminated: the string ends with the line
        ],
        "sq": [
            (r"[^'\\\n]+", String.Single),
            (r"\\.", String.Escape),
            (r"'", String.Single, "#pop"),
            (r"\n", Text, "#pop"),
        ],
    }
