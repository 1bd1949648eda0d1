"""Compiled SQL subtrees kept between queries, so a new rule text builds and prints only what is its own.

The SQL a catalogue attribute, a segment, an aggregate or a CTE compiles to is the
same from one rule text to the next: only the rule's own condition differs. A
`MemoSpace` keeps those trees per compile context (dialect, schema content, `now`),
each under a key holding everything else it depends on:

- the node's content (`repr`: every field but spans and types, as `query_cache`)
  and the checked bodies of every attribute and segment it reaches, so a user's
  `total_spent` never meets the catalogue's;
- the state of the query's `Needs` before it (`Needs.state`, one number per
  sequence of recorded needs): an aggregate's column name (`a3`) depends on which
  aggregates the query asked for first. A hit replays the needs recorded with the
  tree, so the query's CTEs are what a fresh compile would have built.

Kept trees are shared, not copied (a copy costs as much as half a build), and
never changed once kept: a tree already placed in this query is copied instead
of appearing twice; a tree being built for the memo gets copies of the kept ones
it holds, so kept trees never overlap; CTEs are built from a copy of the needs
(the planner rewrites some); each thread has its own memo, so nobody else
re-parents a tree between its build and its printing. Each kept tree is marked
(`SHARED` in its meta) and `generate` prints it through a generator keeping
sqlglot's own text of a marked subtree per generator, formatting and
surrounding node kinds: printing it again is a lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.generator import Generator

SHARED = "crmrules_shared"
_CONTEXTS = 4  # compile contexts kept per thread
# what one context keeps before it starts again empty: trees (about 450 bytes a node), needs states
_NODES = 60_000
_ENTRIES = 4096


class Texts:
    """The printed text of one shared tree, by generator, formatting and surrounding node kinds.

    Carried in the tree's meta: a copy of the tree (same content) shares it."""

    __slots__ = ("by_context", "tables")

    def __init__(self) -> None:
        self.by_context: dict[Hashable, str] = {}
        self.tables: frozenset[str] | None = None  # the relations its columns read (`tables_read`)

    def __deepcopy__(self, memo) -> Texts:
        return self

    def __copy__(self) -> Texts:
        return self


class _Marks(dict):
    """A marked node's meta: copied with the node as a plain dict copy (sqlglot deep-copies a node's meta, and
    Python's generic deepcopy of it costs more than copying the node)."""

    def __deepcopy__(self, memo) -> _Marks:
        return _Marks(self)


def mark(tree: exp.Expression) -> exp.Expression:
    """Mark a tree as shared (unchanging), so its text is printed once per context."""
    if tree._meta is None:
        tree._meta = _Marks()
    tree._meta[SHARED] = Texts()
    return tree


def copy_of(tree: exp.Expression | tuple) -> exp.Expression | tuple:
    """A copy of a kept tree (or of each body of a tuple of named CTEs), marks kept: the content is the same."""
    if isinstance(tree, tuple):
        return tuple((name, body.copy()) for name, body in tree)
    return tree.copy()


def unmarked_copy(tree: exp.Expression) -> exp.Expression:
    """A copy of a tree that may be changed: no subtree of it keeps a text printed before."""
    copied = tree.copy()
    for node in copied.walk():
        meta = node._meta
        if meta is not None:
            meta.pop(SHARED, None)
    return copied


def tables_read(trees) -> set[str]:
    """The relation (`table`) of every column in the trees; a kept tree's are found once."""
    found: set[str] = set()
    stack = list(trees)
    while stack:
        node = stack.pop()
        meta = node._meta
        texts = meta.get(SHARED) if meta is not None else None
        if texts is not None:
            if texts.tables is None:
                texts.tables = frozenset(column.table for column in node.find_all(exp.Column))
            found |= texts.tables
        elif isinstance(node, exp.Column):
            found.add(node.table)
        else:
            stack.extend(node.iter_expressions())
    return found


class Entry:
    """One kept tree (or list of CTEs): what it compiled to and the needs it recorded, in order."""

    __slots__ = ("after", "events", "tree")

    def __init__(self, tree, events: tuple = (), after: int = 0) -> None:
        self.tree = tree
        self.events = events
        self.after = after  # the needs state once they are recorded


class MemoSpace:
    """The trees of one compile context: expressions by (node, needs state), CTE lists, fixed conditions."""

    def __init__(self) -> None:
        self.entries: dict[Hashable, Entry] = {}
        self.nodes = 0  # the nodes of the kept trees
        self.facts: dict[Hashable, object] = {}  # what the planner learns of an attribute (`QueryPlanner.rowless`)
        self._states: dict[tuple[int, Hashable], int] = {}

    def state_after(self, state: int, event: Hashable) -> int:
        """The needs state reached from `state` by recording `event` (numbered the first time it is met)."""
        key = (state, event)
        found = self._states.get(key)
        if found is None:
            found = self._states[key] = len(self._states) + 1
        return found

    def kept(self, key: Hashable, build: Callable[[], exp.Expression | tuple]) -> Entry:
        """The entry under `key` for a tree (or a tuple of named CTEs) with no needs of its own, built (and
        marked) the first time."""
        entry = self.entries.get(key)
        if entry is None:
            tree = build()
            for body in ([body for _, body in tree] if isinstance(tree, tuple) else [tree]):
                mark(body)
            entry = self.store(key, Entry(tree))
        return entry

    def store(self, key: Hashable, entry: Entry) -> Entry:
        """Keep an entry (its tree marked), counting its nodes against the context's budget."""
        trees = [body for _, body in entry.tree] if isinstance(entry.tree, tuple) else [entry.tree]
        trees += [item for event in entry.events for item in event if isinstance(item, exp.Expression)]
        self.nodes += sum(1 for tree in trees for _ in tree.walk())
        self.entries[key] = entry
        return entry

    def full(self) -> bool:
        return self.nodes > _NODES or max(len(self.entries), len(self._states), len(self.facts)) > _ENTRIES


_local = threading.local()


def memo_space(key: Hashable) -> MemoSpace:
    """This thread's memo for a compile context (started again when it has grown too large)."""
    spaces: OrderedDict[Hashable, MemoSpace] | None = getattr(_local, "spaces", None)
    if spaces is None:
        spaces = _local.spaces = OrderedDict()
    space = spaces.get(key)
    if space is None or space.full():
        space = spaces[key] = MemoSpace()
        if len(spaces) > _CONTEXTS:
            spaces.popitem(last=False)
    else:
        spaces.move_to_end(key)
    return space


def clear_compile_memo() -> None:
    """Forget every kept tree of this thread (benchmarks timing an uncached compile, tests)."""
    _local.spaces = OrderedDict()


# ---------------------------------------------------------------- printing
_GENERATORS: dict[type[Generator], type[Generator]] = {}


def _surroundings(node: exp.Expression) -> tuple:
    """The kinds of the nodes above `node` up to its SELECT: all that sqlglot's printing of a node looks at
    outside it (a parent's kind, an enclosing window or select)."""
    kinds = []
    parent = node.parent
    key = node.arg_key
    while parent is not None:
        kinds.append((type(parent), key))
        if isinstance(parent, exp.Select):
            break
        key = parent.arg_key
        parent = parent.parent
    return tuple(kinds)


def _memo_generator(base: type[Generator]) -> type[Generator]:
    printing = base.sql

    def sql(self, expression, key=None, comment=True):
        if key is None and isinstance(expression, exp.Expression):
            meta = expression._meta
            if meta is not None:
                texts = meta.get(SHARED)
                if texts is not None:
                    context = (type(self), self.pretty, _surroundings(expression))
                    text = texts.by_context.get(context)
                    if text is None:
                        warned = len(self.unsupported_messages)
                        text = printing(self, expression, key, comment)
                        if len(self.unsupported_messages) == warned:  # a warning is given every time
                            texts.by_context[context] = text
                    return text
        return printing(self, expression, key, comment)

    return type(f"Memo{base.__name__}", (base,), {"__slots__": (), "sql": sql})


def generate(tree: exp.Expression, sqlglot_dialect: str, pretty: bool) -> str:
    """sqlglot's text of a tree we built and own, shared subtrees printed once per context."""
    dialect = Dialect.get_or_raise(sqlglot_dialect)
    base = dialect.generator_class
    generator = _GENERATORS.get(base)
    if generator is None:
        generator = _GENERATORS[base] = _memo_generator(base)
    return generator(dialect=dialect, pretty=pretty, comments=False).generate(tree, copy=False)
