"""The built-in catalogue: attributes, functions and template segments written in the language itself.

`catalogue.crm` holds the attributes and functions, `templates.crm` the ready
segments. Both are parsed once per process; a rule set checks only what it uses.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import crmrules.grammar as grammar_package
from crmrules import ast
from crmrules.grammar import parse
from crmrules.private_cache import trusted_file, write_private

FILES = ("catalogue.crm", "templates.crm")
# the group headings of catalogue.crm, in order
GROUPS = ("profile", "orders", "store behaviour", "product preference", "promotion sensitivity", "customer value")
# columns of the customers table that the catalogue lists as profile attributes as they are
PROFILE_COLUMNS = ("gender", "country", "city", "language", "source", "email_subscribed", "sms_subscribed",
                   "tags", "tier", "points", "birthday", "registered_at")


@dataclass(frozen=True)
class Entry:
    """One catalogue declaration with the group and file it comes from."""

    decl: ast.SegmentDecl | ast.AttributeDecl | ast.FunctionDecl
    group: str
    file: str

    @property
    def is_setting(self) -> bool:
        """Whether it is a parameter meant to be redefined (a constant attribute)."""
        return isinstance(self.decl, ast.AttributeDecl) and (self.decl.title or "").startswith("Settings:")


def source(name: str) -> str:
    """The text of one catalogue file."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def prelude() -> ast.RuleFile:
    """Every catalogue declaration, parsed once per process and kept in the user's cache between
    processes (parsing takes ~40 ms, reading the pickle ~3 ms)."""
    texts = [source(name) for name in FILES]
    # the key covers what the tree depends on: the catalogue, the node classes and the grammar
    digest = hashlib.sha256("\0".join(texts).encode())
    grammar_dir = Path(grammar_package.__file__).parent
    for path in [Path(ast.__file__), *sorted(grammar_dir.glob("*.py")), *sorted(grammar_dir.glob("*.lark"))]:
        digest.update(path.read_bytes())
    cached = trusted_file(f"prelude-{digest.hexdigest()[:20]}.pickle")
    if cached is not None:
        try:
            loaded = pickle.loads(cached.read_bytes())  # noqa: S301 - our own private file, keyed by content
            if isinstance(loaded, ast.RuleFile):
                return loaded
        except (OSError, pickle.PickleError, EOFError, AttributeError, TypeError, ValueError, ImportError):
            pass
    declarations: list[ast.Declaration] = []
    for name, text in zip(FILES, texts):
        declarations.extend(parse(text, f"<stdlib>/{name}").declarations)
    parsed = ast.RuleFile(declarations=tuple(declarations))
    if cached is not None:
        write_private(cached, pickle.dumps(parsed))
    return parsed


@cache
def entries() -> tuple[Entry, ...]:
    """The catalogue's declarations in file order, each with its group (`templates` for templates.crm)."""
    headings = {}
    for name in FILES:
        headings[name] = [(line_no, line.split("group:", 1)[1].strip())
                          for line_no, line in enumerate(source(name).splitlines(), start=1)
                          if line.startswith("# ") and "group:" in line]
    found = []
    for decl in prelude().declarations:
        name = decl.span.source.name.removeprefix("<stdlib>/")
        line = decl.span.line_col()[0]
        groups = [group for start, group in headings[name] if start < line]
        found.append(Entry(decl, groups[-1] if groups else "templates", name))
    return tuple(found)
