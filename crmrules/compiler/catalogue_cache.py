"""Checked catalogue declarations kept between checks, so a rule using `clv` does not check it again.

A catalogue declaration's checked form depends only on its own text, on the
catalogue declarations it uses (directly or not), on the schema and on the
values learned from data. So it is reused when none of the names it reaches is
the rule file's own (a user's `total_spent` makes every catalogue declaration
reaching it be checked again), keyed by the schema's content (two schemas
with the same tables and columns share entries; any other difference does
not), the learned values and the checking options. Only declarations checked
without an error are kept; the cached form is the same frozen AST a fresh
check builds, so nothing can change it afterwards.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Hashable
from dataclasses import dataclass

from crmrules import ast
from crmrules import types as t
from crmrules.compiler.dependencies import used_names
from crmrules.errors import CrmRulesError
from crmrules.schema import Schema

# how many (schema, learned values, options) combinations are kept; each holds the declarations checked under it
_CONTEXTS = 16
# the content key of the schemas met recently, by identity (the schema is held, so its id is not reused)
_SCHEMA_KEYS: OrderedDict[int, tuple[Schema, Hashable, int]] = OrderedDict()


@dataclass(frozen=True, slots=True)
class Checked:
    """One catalogue declaration as a successful check left it, with what the check recorded about it."""

    source: ast.Declaration  # the catalogue's declaration it was checked from (compared by identity)
    checked: ast.Declaration
    value_type: t.Type | None  # an attribute's type
    values: frozenset[str] | None  # the string literals an attribute can take (`known_values`)
    expanded: tuple[int, int] | None  # (nodes, depth) with every reference written out
    warnings: tuple[CrmRulesError, ...]


def schema_key(schema: Schema) -> Hashable:
    """Everything of a schema a check reads, as a hashable value (computed once per schema object)."""
    return _schema_keys(schema)[1]


def schema_number(schema: Schema) -> int:
    """A number standing for `schema_key(schema)`: equal for equal keys, but hashed at no cost."""
    return _schema_keys(schema)[2]


_NUMBERS: dict[Hashable, int] = {}


def _schema_keys(schema: Schema) -> tuple[Schema, Hashable, int]:
    found = _SCHEMA_KEYS.get(id(schema))
    if found is not None and found[0] is schema:
        _SCHEMA_KEYS.move_to_end(id(schema))
        return found
    key = (schema.timezone, tuple((name, spec.source, spec.time_column, tuple(spec.columns.items()))
                                  for name, spec in schema.tables.items()))
    number = _NUMBERS.setdefault(key, len(_NUMBERS))  # never forgotten: one small entry per schema content
    found = _SCHEMA_KEYS[id(schema)] = (schema, key, number)
    if len(_SCHEMA_KEYS) > 64:
        _SCHEMA_KEYS.popitem(last=False)
    return found


class CatalogueCache:
    """Checked catalogue declarations by (schema content, learned values, options), then by name."""

    def __init__(self) -> None:
        self._contexts: OrderedDict[Hashable, dict[str, Checked]] = OrderedDict()
        self._used: dict[int, tuple[ast.Node, frozenset[str]]] = {}
        self._available: OrderedDict[Hashable, tuple[ast.RuleFile, dict[str, ast.Node]]] = OrderedDict()

    def entries(self, schema: Schema, learned: dict | None, *options: bool) -> dict[str, Checked]:
        """The declarations checked under this schema, learned values and options (filled as checks go)."""
        key = (schema_number(schema), frozenset(learned.items()) if learned else None, options)
        found = self._contexts.get(key)
        if found is None:
            found = self._contexts[key] = {}
            if len(self._contexts) > _CONTEXTS:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(key)
        return found

    def used(self, decl: ast.Node, uses: ast.Expr) -> frozenset[str]:
        """`used_names` of a catalogue declaration, computed once (the catalogue is parsed once a process)."""
        found = self._used.get(id(decl))
        if found is None or found[0] is not decl:
            if len(self._used) > 4096:
                self._used.clear()
            found = self._used[id(decl)] = (decl, frozenset(used_names(uses)))
        return found[1]

    def available(self, prelude: ast.RuleFile, schema: Schema, customer_columns: Collection[str]) -> dict[str, ast.Node]:
        """The catalogue's segments, attributes and functions by name, but those a customers column of the
        schema replaces (`customer_columns`); not to be changed by the caller."""
        key = (id(prelude), schema_number(schema))
        found = self._available.get(key)
        if found is None or found[0] is not prelude:
            named = {d.name: d for d in prelude.declarations
                     if isinstance(d, (ast.SegmentDecl, ast.AttributeDecl, ast.FunctionDecl))
                     and d.name not in customer_columns}
            found = self._available[key] = (prelude, named)
            if len(self._available) > _CONTEXTS:
                self._available.popitem(last=False)
        return found[1]

    def clear(self) -> None:
        """Forget everything (tests of the cache itself)."""
        self._contexts.clear()
        self._used.clear()
        self._available.clear()
        _SCHEMA_KEYS.clear()


CATALOGUE_CACHE = CatalogueCache()
