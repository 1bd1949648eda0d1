"""The runtime of the in-memory engines: what the interpreter calls and the generated code calls.

Aggregates over a customer's rows, three-valued `and`/`or`/`not`, comparisons
with dates widened to timestamps, where a customer's rows of each table are,
who exists at `now`, and how a customer base is ranked for `ntile`. Each is written once here; `backends/interpreter.py`
calls these functions node by node, and `backends/memory.py` generates code
that calls them (or inlines exactly what they do, where noted).
"""

from __future__ import annotations

import operator
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from crmrules import ast
from crmrules import types as t
from crmrules.backends.customer_data import NESTED
from crmrules.compiler.pipeline import Program
from crmrules.compiler.visibility import registered
from crmrules.context import EvaluationContext
from crmrules.errors import DataError, EvaluationError, InternalError
from crmrules.schema import Schema
from crmrules.values import as_timestamp

# `matches`: `\d`, `\w`, `\s` and `\b` are ASCII in every engine (RE2 and Java have them so; SQL
# dialects spell them out, `SqlDialect.ascii_pattern`)
REGEX_FLAGS = re.ASCII

# the sentinel of a memoised value not computed yet in generated code
UNSET = object()


class WrongTypeError(DataError, TypeError):
    """A field holds a value of another Python type than its column's: generated code raises it to take
    the slow path (`prepare_customer` converts the value or names the field)."""


def wrong_type():
    """Raise WrongTypeError: called by the generated code's inline type checks."""
    raise WrongTypeError("customer data of the wrong type for the engine: prepare it with prepare_customer")

COMPARE = {ast.CompareOp.EQ: operator.eq, ast.CompareOp.NE: operator.ne, ast.CompareOp.LT: operator.lt,
           ast.CompareOp.LE: operator.le, ast.CompareOp.GT: operator.gt, ast.CompareOp.GE: operator.ge}
# `not (a op b)` is `a negated-op b`: both are unknown when a or b is null
NEGATED = {ast.CompareOp.EQ: ast.CompareOp.NE, ast.CompareOp.NE: ast.CompareOp.EQ,
           ast.CompareOp.LT: ast.CompareOp.GE, ast.CompareOp.GE: ast.CompareOp.LT,
           ast.CompareOp.GT: ast.CompareOp.LE, ast.CompareOp.LE: ast.CompareOp.GT}
ARITH = {ast.ArithOp.ADD: operator.add, ast.ArithOp.SUB: operator.sub, ast.ArithOp.MUL: operator.mul}


# ------------------------------------------------------------------ three-valued logic
def and3(values) -> bool | None:
    """SQL `and`: false if any operand is false, else unknown if any is unknown, else true."""
    values = list(values)
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def or3(values) -> bool | None:
    """SQL `or`: true if any operand is true, else unknown if any is unknown, else false."""
    values = list(values)
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def not3(value) -> bool | None:
    """SQL `not`: unknown stays unknown."""
    return None if value is None else not value


def compare(op: ast.CompareOp, a, b, widen: bool) -> bool | None:
    """`a op b`, unknown when either is null; `widen` compares a date as midnight of its day."""
    if a is None or b is None:
        return None
    if widen:
        a, b = as_timestamp(a), as_timestamp(b)
    return COMPARE[op](a, b)


def widens(a, b) -> bool:
    """Whether a comparison of types `a` and `b` compares dates as timestamps."""
    return {a, b} == {t.DATE, t.TIMESTAMP}


# --------------------------------------------------------------------------- aggregates
def agg_sum(xs, zero):
    """The sum of the non-null values; `zero` over none."""
    present = [x for x in xs if x is not None]
    return sum(present, zero) if present else zero


def agg_min(xs):
    """The least non-null value, or null."""
    present = [x for x in xs if x is not None]
    return min(present) if present else None


def agg_max(xs):
    """The greatest non-null value, or null."""
    present = [x for x in xs if x is not None]
    return max(present) if present else None


def agg_distinct(xs) -> list:
    """The distinct non-null values, sorted."""
    return sorted({x for x in xs if x is not None})


def agg_top(pairs):
    """The value with the largest summed weight (all-null weights come last), ties to the smallest value."""
    totals: dict = {}
    for value, weight in pairs:
        if value is None:
            continue
        if weight is not None:
            totals[value] = weight if totals.get(value) is None else totals[value] + weight
        else:
            totals.setdefault(value, None)
    if not totals:
        return None
    return min(totals, key=lambda v: (totals[v] is None, -(totals[v] or 0), v))


def first_last_columns(schema: Schema, table: str) -> tuple[str, str | None]:
    """What `first`/`last` order a table's rows by: its time column, then its `id` as text (None: the table
    has no `id`), then the value itself."""
    return schema.tables[table].time_column, "id" if schema.column(table, "id") is not None else None


def agg_first(rows, latest: bool):
    """The value of the earliest (`latest`: the latest) of `(time, id, value)` rows, ties to the smallest id as
    text, then the smallest value; rows without a time or a value do not count; null without rows."""
    kept = [(when, "" if key is None else str(key), value) for when, key, value in rows
            if when is not None and value is not None]
    if not kept:
        return None
    if latest:
        end = max(when for when, _, _ in kept)
        kept = [row for row in kept if row[0] == end]
    return min(kept)[2]


# --------------------------------------------------------------------------------- rows
def row_path(table: str) -> tuple[tuple[str, str], ...]:
    """How a customer dict holds a table's rows: the (key, table) steps from the customer down.

    `orders` is `(("orders", "orders"),)`; `order_items` is
    `(("orders", "orders"), ("items", "order_items"))`: the items of the customer's orders.
    """
    path = _PATHS.get(table)
    if path is None:
        raise InternalError(f"customer data holds no rows of `{table}`")
    return path


def child_key(parent: str, table: str) -> str | None:
    """The key under which a row of `parent` holds its rows of `table`, or None."""
    for key, child in NESTED.get(parent, ()):
        if child == table:
            return key
    return None


def _paths() -> dict[str, tuple[tuple[str, str], ...]]:
    paths: dict[str, tuple[tuple[str, str], ...]] = {}
    todo = [("customers", ())]
    while todo:
        parent, path = todo.pop()
        for key, child in NESTED.get(parent, ()):
            paths[child] = (*path, (key, child))
            todo.append((child, paths[child]))
    return paths


_PATHS = _paths()


def customer_nodes(expr: ast.Expr):
    """`expr` and its customer-level sub-expressions, parents first (not inside an aggregate's rows)."""
    yield expr
    if isinstance(expr, ast.Aggregate):
        return
    for child in ast.children(expr):
        if isinstance(child, ast.Expr):
            yield from customer_nodes(child)


def to_date(x):
    """The date of a timestamp; a date stays as it is."""
    return x.date() if isinstance(x, datetime) else x


# -------------------------------------------------------------------------------- ntile
def tile(population, node: ast.Ntile, value, ranked: bool, customer_id):
    """The customer's tile in `node`'s ranking; null outside the ranked population."""
    if not ranked or value is None:
        return None
    if population is None:
        raise EvaluationError(
            "this rule ranks customers against the whole customer base (`ntile`, `score`, e.g. the RFM scores)",
            node.span, "pass `population=rules.population(data, as_of=...)`, or run it on a data set",
            code="E0602")
    return population.tile(node, value, str(customer_id))


def ntiles(program: Program) -> list[ast.Ntile]:
    """Every distinct `ntile` the program's segments and attributes use."""
    found: dict[ast.Ntile, None] = {}
    for decl in [*program.attributes.values(), *program.segments.values()]:
        for node in ast.walk(decl.body):
            if isinstance(node, ast.Ntile):
                found.setdefault(node)
    return list(found)


# ------------------------------------------------------------------------ who exists
# `decide(schema, condition, ctx)` -> `holds(person) -> bool`: an engine's way to decide a condition
Decider = Callable[[Schema, ast.Expr, EvaluationContext], Callable[[dict], bool]]



def find_customer(people: Iterable[dict], schema: Schema, customer_id: str) -> dict:
    """The customer dict with this id; DataError when there is none."""
    id_of = schema.column("customers", "id").source
    person = next((p for p in people if str(p.get(id_of)) == str(customer_id)), None)
    if person is None:
        raise DataError(f"no customer `{customer_id}` in the data")
    return person


def existence(schema: Schema) -> tuple[ast.Expr | None, ast.Expr]:
    """The two conditions of existence at `now`: registered by then, and seen in some visible row.

    A customer exists when the first holds and either they have a customer row or
    the second holds. A dict has a customer row unless it holds nothing but the id
    and some rows: that is how people known only from their orders or events look.
    """
    seen = ast.Or(operands=tuple(ast.Aggregate(func=ast.AggFunc.ANY, table=table, type=t.BOOL)
                                 for _, table in NESTED["customers"]), type=t.BOOL)
    return registered(schema), seen


def existing(schema: Schema, people: Iterable[dict], ctx: EvaluationContext, decide: Decider) -> Iterator[dict]:
    """The prepared customers of `people` that exist at `ctx.instant`, by the engine of `decide`."""
    registered, seen = existence(schema)
    registered_by_now = decide(schema, registered, ctx) if registered is not None else None
    seen_by_now = decide(schema, seen, ctx)
    lists = [key for key, _ in NESTED["customers"]]
    outside = {*lists, schema.column("customers", "id").source}
    for person in people:
        if registered_by_now is not None and not registered_by_now(person):
            continue
        in_customers = any(k not in outside for k in person) or not any(person.get(k) for k in lists)
        if in_customers or seen_by_now(person):
            yield person


# --------------------------------------------------------------------------- ranking
# SQL ranks the whole base with `NTILE(n) OVER (ORDER BY value, id)`. One customer
# evaluated in memory cannot see the others, so the base is ranked once per run and
# each tile is remembered by its last `(value, id)`; a customer's tile is then the
# first tile whose last entry is not below the customer's own `(value, id)`. For a
# customer of the ranked base this is exactly the tile NTILE gives, ties included.
# `score` (ties=True) keeps every ranked value instead, sorted: `bisect_left` counts the
# values strictly below a customer's, which is `RANK() - 1` in SQL, so equal values share a tile.
# `inputs(node)` -> `ranking(person) -> (ranked, value)`: whether a customer is in the node's
# population and the value it is ranked by, as one engine computes them
Ranking = Callable[[ast.Ntile], Callable[[dict], tuple[bool, object]]]


@dataclass(frozen=True)
class Cut:
    """One ranking: how many customers it holds and the last `(value, id)` of each tile (`ntile`),
    or every ranked value in order (`score`)."""

    buckets: int
    size: int
    last: tuple[tuple, ...]
    values: tuple | None = None

    def tile(self, value, customer_id: str) -> int | None:
        """The tile of a customer ranked by `value`; None when nobody was ranked."""
        if self.values is not None:
            # a customer outside the ranked base may have a value above all of them: still the top tile
            below = bisect_left(self.values, value)
            return min(1 + self.buckets * below // self.size, self.buckets) if self.size else None
        if not self.last:
            return None
        return min(bisect_left(self.last, (value, customer_id)) + 1, len(self.last))


@dataclass(frozen=True)
class Population:
    """The cuts of every `ntile` of a rule set over one customer base, as of one instant."""

    as_of: datetime
    cuts: dict[ast.Ntile, Cut]
    # id(node) -> (node, cut): generated code passes the same node object for every customer, and hashing
    # a node walks its whole tree
    _seen: dict[int, tuple[ast.Ntile, Cut]] = field(default_factory=dict, compare=False, repr=False)

    def tile(self, node: ast.Ntile, value, customer_id: str) -> int | None:
        """The tile `node` gives a customer ranked by `value`."""
        known = self._seen.get(id(node))
        if known is None or known[0] is not node:
            cut = self.cuts.get(node)
            if cut is None:
                raise EvaluationError("this population was computed for other rules", node.span,
                                      "compute it with the same rule set: `rules.population(data)`", code="E0602")
            known = self._seen[id(node)] = (node, cut)
        return known[1].tile(value, customer_id)


def rank(program: Program, people: Iterable[dict], ctx: EvaluationContext, inputs: Ranking) -> Population:
    """Rank the existing, prepared `people` for every `ntile` of the program, each by `inputs(node)`."""
    id_of = program.schema.column("customers", "id").source
    people = list(people)
    ranked = {}
    for node in ntiles(program):
        ranking = inputs(node)
        ranked[node] = found = []
        for person in people:
            inside, value = ranking(person)
            if inside:
                found.append((value, str(person[id_of])))
    return cut(ranked, ctx)


def cut(ranked: dict[ast.Ntile, list[tuple]], ctx: EvaluationContext) -> Population:
    """The population of the ranked `(value, id)` of each `ntile` (in any order: sorted here; runs
    already sorted, as those of several partitions, merge in one pass)."""
    cuts = {}
    for node, found in ranked.items():
        found.sort()
        if node.ties:
            cuts[node] = Cut(node.buckets, len(found), (), tuple(value for value, _ in found))
        else:
            last = tuple(found[i] for i in _last_indexes(len(found), node.buckets))
            cuts[node] = Cut(node.buckets, len(found), last)
    return Population(ctx.instant, cuts)


def _last_indexes(size: int, buckets: int) -> list[int]:
    """Where each NTILE tile ends: the first `size % buckets` tiles hold one row more."""
    small, extra = divmod(size, buckets)
    ends, end = [], -1
    for k in range(min(buckets, size)):
        end += small + (1 if k < extra else 0)
        ends.append(end)
    return ends
