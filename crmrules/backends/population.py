"""The population pass: where each `ntile` of a rule set cuts a customer base, for the memory backend.

SQL ranks the whole base with `NTILE(n) OVER (ORDER BY value, id)`. One customer
evaluated in memory cannot see the others, so the base is ranked once per run and
each tile is remembered by its last `(value, id)`; a customer's tile is then the
first tile whose last entry is not below the customer's own `(value, id)`. For a
customer of the ranked base this is exactly the tile NTILE gives, ties included.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from crmrules import ast
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.memory import population_inputs
from crmrules.compiler.pipeline import Program
from crmrules.errors import EvaluationError
from crmrules.schema import Schema
from crmrules.values import evaluation_instant


@dataclass(frozen=True)
class Cut:
    """One ranking: how many customers it holds and the last `(value, id)` of each tile."""

    buckets: int
    size: int
    last: tuple[tuple, ...]

    def tile(self, value, customer_id: str) -> int | None:
        """The tile of a customer ranked by `value`; None when nobody was ranked."""
        if not self.last:
            return None
        return min(bisect_left(self.last, (value, customer_id)) + 1, len(self.last))


@dataclass(frozen=True)
class Population:
    """The cuts of every `ntile` of a rule set over one customer base, as of one instant."""

    as_of: datetime
    cuts: dict[ast.Ntile, Cut]

    def tile(self, node: ast.Ntile, value, customer_id: str) -> int | None:
        """The tile `node` gives a customer ranked by `value`."""
        cut = self.cuts.get(node)
        if cut is None:
            raise EvaluationError("this population was computed for other rules", node.span,
                                  "compute it with the same rule set: `rules.population(data)`", code="E0602")
        return cut.tile(value, customer_id)


def ntiles(program: Program) -> list[ast.Ntile]:
    """Every distinct `ntile` the program's segments and attributes use."""
    found: dict[ast.Ntile, None] = {}
    for decl in [*program.attributes.values(), *program.segments.values()]:
        for node in ast.walk(decl.body):
            if isinstance(node, ast.Ntile):
                found.setdefault(node)
    return list(found)


def population(program: Program, people: Iterable[dict], now: date | datetime) -> Population:
    """Rank `people` (customer dicts with their orders and events) for every `ntile` of the program."""
    schema = program.schema
    instant = evaluation_instant(now, schema.timezone)
    id_of = schema.column("customers", "id").source
    existing = [p for p in map(lambda person: prepare_customer(person, schema), people)
                if exists(p, schema, instant)]
    cuts = {}
    for node in ntiles(program):
        inputs = population_inputs(program, node)
        ranked = []
        for person in existing:
            inside, value = inputs(person, instant)
            if inside:
                ranked.append((value, str(person[id_of])))
        ranked.sort()
        cuts[node] = Cut(node.buckets, len(ranked), tuple(ranked[i] for i in _last_indexes(len(ranked), node.buckets)))
    return Population(instant, cuts)


def _last_indexes(size: int, buckets: int) -> list[int]:
    """Where each NTILE tile ends: the first `size % buckets` tiles hold one row more."""
    small, extra = divmod(size, buckets)
    ends, end = [], -1
    for k in range(min(buckets, size)):
        end += small + (1 if k < extra else 0)
        ends.append(end)
    return ends


def exists(person: dict, schema: Schema, instant: datetime) -> bool:
    """Whether a customer exists at `instant`: registered by then (or undated), or seen in a visible row."""
    registered = schema.column("customers", "registered_at")
    if registered is not None and (at := person.get(registered.source)) is not None:
        if isinstance(at, datetime) and at > instant:
            return False
    if _in_customers(person, schema):
        return True
    for key, table, column in (("orders", "orders", "created_at"), ("events", "events", "at")):
        source = schema.column(table, column).source
        if any(row.get(source) is None or row[source] <= instant for row in person.get(key) or ()):
            return True
    return False


def _in_customers(person: dict, schema: Schema) -> bool:
    # people built only from orders or events carry nothing but the id and those lists
    return any(k not in ("orders", "events", schema.column("customers", "id").source) for k in person)
