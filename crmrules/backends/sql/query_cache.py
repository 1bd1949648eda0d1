"""Query texts kept by what they are built from, so compiling the same rules again costs a lookup.

A query's text depends only on the checked bodies of the segments it selects and
of every attribute and segment they name (directly or not), on the schema, the
dialect, the instant and time zone of `now`, and the formatting. The key holds
exactly those: each body by its `repr` (every field but spans and types, which
follow from the rest under the same schema; `repr` and not `==`, because
`Literal(1) == Literal(True) == Literal(Decimal(1))` in Python), the schema by
its content. Texts are immutable, so a hit can never be changed by its user;
a query that fails to build (an unsupported construct) is never kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

from crmrules import ast
from crmrules.backends.sql.compile_memo import clear_compile_memo
from crmrules.compiler.catalogue_cache import schema_key
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext

_QUERIES = 512  # texts kept
_BODIES = 4096  # bodies whose repr and names are kept (the catalogue's are the same objects from check to check)

_texts: OrderedDict[Hashable, str] = OrderedDict()
_described: dict[int, tuple[ast.Expr, str, frozenset[str]]] = {}


def describe(body: ast.Expr) -> tuple[str, frozenset[str]]:
    """A body's repr and the attribute and segment names it uses, computed once per body object."""
    found = _described.get(id(body))
    if found is None or found[0] is not body:
        if len(_described) > _BODIES:
            _described.clear()
        names = frozenset(node.name for node in ast.walk(body) if isinstance(node, (ast.AttributeRef, ast.SegmentRef)))
        found = _described[id(body)] = (body, repr(body), names)
    return found[1], found[2]


def _key(program: Program, kind: str, names: Sequence[str], dialect: str, ctx: EvaluationContext,
         pretty: bool) -> Hashable | None:
    """What the query's text depends on; None when it depends on more (a population ranked in memory)."""
    if ctx.population is not None:
        return None
    parts = []
    pending = [(name, program.segments[name].body) for name in names]
    seen = set(names)
    while pending:
        name, body = pending.pop()
        text, uses = describe(body)
        parts.append((name, text))
        for used in sorted(uses - seen):
            seen.add(used)
            decl = program.attributes.get(used) or program.segments.get(used)
            if decl is None:
                return None
            pending.append((used, decl.body))
    return (kind, tuple(names), dialect, ctx.instant, schema_key(ctx.schema), schema_key(program.schema), pretty,
            tuple(sorted(parts)))


def cached_query(program: Program, kind: str, names: Sequence[str], dialect: str, ctx: EvaluationContext,
                 pretty: bool, build: Callable[[], str]) -> str:
    """The text `build()` gives for this query, built only the first time these rules ask for it."""
    key = _key(program, kind, names, dialect, ctx, pretty)
    if key is None:
        return build()
    text = _texts.get(key)
    if text is None:
        text = _texts[key] = build()
        if len(_texts) > _QUERIES:
            _texts.popitem(last=False)
    else:
        _texts.move_to_end(key)
    return text


def clear_query_cache() -> None:
    """Forget every query text and every kept subtree (benchmarks timing a first compile, tests of the cache)."""
    _texts.clear()
    _described.clear()
    clear_compile_memo()
