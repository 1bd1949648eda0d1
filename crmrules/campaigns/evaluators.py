"""What the campaign planner asks of the data, answered by a SQL engine or in memory.

One interface (`Evaluator`): the values of several customer-level expressions as of one instant,
for every existing customer (optionally only those for whom a condition holds) or for a set of ids;
the event rows of a period; the customers. `SqlEvaluator` answers each question with one query for
the whole base (`values_select`), never one query per customer; `MemoryEvaluator` runs generated
code over customer dicts. Both read the rules through the engines segments use, so they agree.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.backends import runtime
from crmrules.backends.customer_data import NESTED, convert, prepare_customer
from crmrules.backends.memory import MemoryBackend, compile_values
from crmrules.campaigns.messages import jsonable
from crmrules.compiler.pipeline import Program
from crmrules.context import evaluation_context

# more ids than this are fetched with the whole base and picked afterwards, not listed in the query
_MAX_LISTED_IDS = 2000

Rows = dict[str, tuple]


class Evaluator(Protocol):
    """The data as the planner sees it."""

    def values(self, instant: datetime, exprs: Sequence[ast.Expr], ids: Collection[str] | None = None,
               where: ast.Expr | None = None) -> Rows:
        """{customer id: (value of each expression)} as of `instant`, for every customer existing then
        (only those in `ids`, only those for whom `where` is true)."""

    def events(self, start: datetime, end: datetime, types: Collection[str] | None = None) -> list[dict]:
        """The event rows with `at` in (start, end] (of these types), by our column names plus
        `customer_id`, ordered by `at`, customer id, row key."""

    def customer_ids(self, instant: datetime) -> list[str]:
        """The ids of the customers existing at `instant`, sorted."""


def row_key(row: dict, schema) -> str:
    """The identity of an event row among a customer's events at one instant: a hash of its columns."""
    shown = [jsonable(row.get(name)) for name in schema.columns("events") if name not in ("customer_id", "at")]
    return hashlib.sha256(json.dumps(shown, separators=(",", ":")).encode()).hexdigest()[:12]


_EVENT_PLANS: dict[int, tuple] = {}


def _event_plan(schema) -> tuple:
    """(schema, [(source, type, label)], [(name, source)]) of the events table, worked out once per schema."""
    plan = _EVENT_PLANS.get(id(schema))
    if plan is None or plan[0] is not schema:
        columns = [(name, schema.column("events", name)) for name in schema.columns("events")]
        plan = _EVENT_PLANS[id(schema)] = (schema, [(c.source, c.type, f"event.{c.source}") for _, c in columns],
                                           [(name, c.source) for name, c in columns])
    return plan


def prepare_event(event: dict, schema) -> dict:
    """An event dict (the schema's source names) with values converted to the schema's types."""
    out = event
    zone = schema.timezone
    for source, kind, label in _event_plan(schema)[1]:
        value = event.get(source)
        if value is not None:
            converted = convert(value, kind, label, zone)
            if converted is not value:
                out = dict(out) if out is event else out
                out[source] = converted
    return out


def event_row(event: dict, schema, customer_id: str) -> dict:
    """A prepared event dict as a row by our column names, with its customer's id."""
    row = {name: event.get(source) for name, source in _event_plan(schema)[2]}
    row["customer_id"] = customer_id
    return row


def event_filter(program: Program, where: ast.Expr | None):
    """`holds(event_dict, ctx) -> bool` for a trigger's `where` over one event (source names), generated once."""
    if where is None:
        return lambda event, ctx: True
    compute = compile_values(program, lambda g: [g.true(where, "c")])
    return lambda event, ctx: compute(event, ctx)[0]


def _ids_condition(ids: Sequence[str]) -> ast.Expr:
    column = ast.Column(table="customers", name="id", type=t.STRING)
    items = tuple(ast.Literal(value=i, type=t.STRING) for i in ids)
    return ast.In(needle=column, haystack=ast.ListLiteral(items=items, type=t.list_of(t.STRING)), type=t.BOOL)


class SqlEvaluator:
    """Questions answered by one query each on an `SqlHandle`."""

    def __init__(self, program: Program, handle, kind: str):
        from crmrules.backends.sql import dialect_named

        self.program = program
        self.handle = handle
        self.dialect = dialect_named(kind)
        self.queries = 0
        # customers loaded as dicts (`preload`): questions about a few of them at one instant are then
        # answered in memory, not by a query per instant; rankings (`ntile`) need the whole base in SQL
        self._loaded = MemoryEvaluator(program)

    def preload(self, ids: Collection[str]) -> None:
        """Load these customers' rows once (a few queries for all of them), for questions about them."""
        wanted = sorted({str(i) for i in ids} - set(self._loaded.by_id))
        people = []
        for index in range(0, len(wanted), _MAX_LISTED_IDS):
            people += self._people(wanted[index:index + _MAX_LISTED_IDS])
        if people:
            self._loaded.use([*self._loaded.people, *people])

    def _people(self, ids: list[str]) -> list[dict]:
        """Customer dicts (with orders, their items, and events) of these ids, prepared."""
        from crmrules.backends.sql.dialect import col, table

        schema = self.program.schema
        read = self.dialect.read

        def rows(name: str, key: str, values: list) -> list[dict]:
            spec = schema.table(name)
            names = [c.source for c in spec.columns.values()]
            kinds = [c.type for c in spec.columns.values()]
            literals = [exp.convert(v) for v in values]
            if not literals:
                return []
            # decimal columns are read as the expression compiler reads them (SQLite: scaled, checked)
            columns = [self.dialect.decimal_column(col(n, "t"), f"{name}.{c.name}") if c.type == t.DECIMAL
                       else col(n, "t") for n, c in zip(names, spec.columns.values())]
            select = exp.select(*columns).from_(table(spec.source, "t")).where(
                exp.In(this=col(schema.column(name, key).source, "t"), expressions=literals))
            return [dict(zip(names, (read(v, k) for v, k in zip(row, kinds)))) for row in self._fetch(select)]

        id_of = schema.column("customers", "id").source
        people = {str(p[id_of]): p for p in rows("customers", "id", ids) if p.get(id_of) is not None}
        orders = rows("orders", "customer_id", ids)
        order_id = schema.column("orders", "id").source
        items = defaultdict(list)
        for item in rows("order_items", "order_id", [o[order_id] for o in orders if o.get(order_id) is not None]):
            items[item[schema.column("order_items", "order_id").source]].append(item)
        owner = schema.column("orders", "customer_id").source
        for order in orders:
            order["items"] = items.get(order.get(order_id), [])
            people.setdefault(str(order[owner]), {id_of: str(order[owner])}).setdefault("orders", []).append(order)
        owner = schema.column("events", "customer_id").source
        for event in rows("events", "customer_id", ids):
            people.setdefault(str(event[owner]), {id_of: str(event[owner])}).setdefault("events", []).append(event)
        return [prepare_customer(person, schema) for person in people.values()]

    def _fetch(self, tree) -> list[tuple]:
        from crmrules.backends.sql import render
        from crmrules.backends.sql.runners import fetch

        self.queries += 1
        return fetch(self.handle.kind, self.handle.connection, render(tree, self.dialect, pretty=False))

    def values(self, instant, exprs, ids=None, where=None) -> Rows:
        from crmrules.backends.sql.planner import values_select

        ctx = evaluation_context(instant, self.program.schema)
        wanted = None
        if ids is not None:
            ids = sorted({str(i) for i in ids})
            if not ids:
                return {}
            if all(i in self._loaded.by_id for i in ids) and not self._loaded.reads_ntile(
                    tuple(exprs) + ((where,) if where is not None else ())):
                return self._loaded.values(instant, exprs, ids, where)
            if len(ids) <= _MAX_LISTED_IDS:
                listed = _ids_condition(ids)
                where = listed if where is None else ast.And(operands=(where, listed), type=t.BOOL)
            else:
                wanted = set(ids)
        columns = [(f"v{index}", expr) for index, expr in enumerate(exprs)]
        rows = self._fetch(values_select(self.program, columns, self.dialect, ctx, where=where))
        read = self.dialect.read
        types = [expr.type for expr in exprs]
        out = {}
        for row in rows:
            key = str(row[0])
            if wanted is None or key in wanted:
                out[key] = tuple(read(value, kind) for value, kind in zip(row[1:], types))
        return out

    def events(self, start, end, types=None) -> list[dict]:
        from crmrules.backends.sql.dialect import table
        from crmrules.backends.sql.expressions import ROW_ALIAS, ExpressionCompiler

        schema = self.program.schema
        ctx = evaluation_context(end, schema)
        compiler = ExpressionCompiler(self.program, self.dialect, ctx)
        names = schema.columns("events")
        columns = [compiler.row_column("events", name) for name in names]
        at = ast.Column(table="events", name="at", type=t.TIMESTAMP)
        conditions = [ast.Compare(op=ast.CompareOp.GT, left=at, right=ast.Literal(value=start, type=t.TIMESTAMP),
                                  type=t.BOOL),
                      ast.Compare(op=ast.CompareOp.LE, left=at, right=ast.Literal(value=end, type=t.TIMESTAMP),
                                  type=t.BOOL)]
        if types is not None:
            kind = ast.Column(table="events", name="type", type=t.STRING)
            items = tuple(ast.Literal(value=v, type=t.STRING) for v in sorted(types))
            if not items:
                return []
            conditions.append(ast.In(needle=kind, haystack=ast.ListLiteral(items=items, type=t.list_of(t.STRING)),
                                     type=t.BOOL))
        where = compiler.expr(ast.And(operands=tuple(conditions), type=t.BOOL), "events")
        select = exp.select(*columns).from_(table(schema.table("events").source, ROW_ALIAS["events"])).where(where)
        read = self.dialect.read
        kinds = [schema.column("events", name).type for name in names]
        rows = [dict(zip(names, (read(v, k) for v, k in zip(row, kinds)))) for row in self._fetch(select)]
        rows = [row for row in rows if row.get("customer_id") is not None]
        for row in rows:
            row["customer_id"] = str(row["customer_id"])
        rows.sort(key=lambda row: (row["at"], row["customer_id"], row_key(row, schema)))
        return rows

    def customer_ids(self, instant) -> list[str]:
        return sorted(self.values(instant, []))


class MemoryEvaluator:
    """Questions answered by generated code over prepared customer dicts (compiled once per question)."""

    def __init__(self, program: Program, people: Sequence[dict] = ()):
        self.program = program
        self.schema = program.schema
        self.id_of = self.schema.column("customers", "id").source
        self._compiled: dict[tuple, object] = {}
        self._by_ids: dict[tuple, object] = {}
        self._kept: list[tuple] = []
        self._contexts: dict[datetime, object] = {}  # the contexts of the last few instants asked about
        self._ranks = bool(runtime.ntiles(program))
        registered, seen = runtime.existence(self.schema)
        self._existence = (registered, seen)
        lists = [key for key, _ in NESTED["customers"]]
        self._lists = lists
        self._outside = {*lists, self.id_of}
        self.use(people)

    def preload(self, ids: Collection[str]) -> None:
        """Nothing to load: every customer is in memory already."""

    def use(self, people: Sequence[dict]) -> None:
        """Answer from these customers (prepared dicts) from now on."""
        self.people = list(people)
        self.by_id = {str(person.get(self.id_of)): person for person in self.people}

    def use_one(self, person: dict, key: str) -> None:
        """`use([person])` for a person whose id (as text) is `key`: streaming does this for every event."""
        self.people = [person]
        self.by_id = {key: person}

    def _function(self, exprs: tuple, where: ast.Expr | None):
        # by the expressions' identities: hashing expression trees on every call is slow (the trees are
        # kept alive by `_kept`, so an identity is never reused while its entry exists)
        fast = (*map(id, exprs), id(where))
        compiled = self._by_ids.get(fast)
        if compiled is None:
            compiled = self._by_ids[fast] = self._function_of(exprs, where)
            self._kept.append((exprs, where))
        return compiled

    def _function_of(self, exprs: tuple, where: ast.Expr | None):
        key = (exprs, where)
        compiled = self._compiled.get(key)
        if compiled is None:
            registered, seen = self._existence

            def codes(g):
                return [g.true(registered, "c") if registered is not None else "True", g.true(seen, "c"),
                        g.true(where, "c") if where is not None else "True", *(g.value(e, "c") for e in exprs)]

            compiled = self._compiled[key] = compile_values(self.program, codes)
        return compiled

    def reads_ntile(self, exprs: tuple) -> bool:
        """Whether these expressions read an `ntile` (through attributes and segments too)."""
        if not self._ranks:
            return False
        key = ("ranked", exprs)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = self._ranks and any(_reads_ntile(self.program, e, set()) for e in exprs)
        return found

    def _context(self, instant: datetime, ranked: bool = True):
        ctx = self._contexts.get(instant)
        if ctx is None:
            if len(self._contexts) > 64:
                self._contexts.clear()
            ctx = self._contexts[instant] = evaluation_context(instant, self.schema)
        if ranked and self._ranks:
            people = [p for p in self.people if self._exists(p, ctx)]
            ctx = ctx.with_population(MemoryBackend().population(self.program, people, ctx))
        return ctx

    def _exists(self, person: dict, ctx) -> bool:
        registered, seen, *_ = self._function((), None)(person, ctx)
        return registered and (self._in_customers(person) or seen)

    def _in_customers(self, person: dict) -> bool:
        # a dict that holds only an id and rows is someone known from their orders or events alone
        return any(k not in self._outside for k in person) or not any(person.get(k) for k in self._lists)

    def values(self, instant, exprs, ids=None, where=None) -> Rows:
        exprs = tuple(exprs)
        compute = self._function(exprs, where)
        ranked = self._ranks and self.reads_ntile(exprs + ((where,) if where is not None else ()))
        ctx = self._context(instant, ranked)
        by_id = self.by_id
        if ids is None:
            people = self.people
        elif len(ids) == 1:  # streaming asks about one customer at a time
            person = by_id.get(str(next(iter(ids))))
            people = () if person is None else (person,)
        else:
            people = [by_id[i] for i in {str(i) for i in ids} if i in by_id]
        out = {}
        id_of = self.id_of
        for person in people:
            registered, seen, holds, *found = compute(person, ctx)
            if registered and holds and (seen or self._in_customers(person)):
                out[str(person.get(id_of))] = tuple(found)
        return out

    def events(self, start, end, types=None) -> list[dict]:
        rows = []
        at_of = self.schema.column("events", "at").source
        type_of = self.schema.column("events", "type").source
        for person in self.people:
            for event in person.get("events") or ():
                at = event.get(at_of)
                if at is not None and start < at <= end and (types is None or event.get(type_of) in types):
                    rows.append(event_row(event, self.schema, str(person.get(self.id_of))))
        rows.sort(key=lambda row: (row["at"], row["customer_id"], row_key(row, self.schema)))
        return rows

    def customer_ids(self, instant) -> list[str]:
        return sorted(self.values(instant, []))


def _reads_ntile(program: Program, expr: ast.Expr, visited: set) -> bool:
    for node in ast.walk(expr):
        if isinstance(node, ast.Ntile):
            return True
        if isinstance(node, (ast.AttributeRef, ast.SegmentRef)) and node.name not in visited:
            visited.add(node.name)
            decls = program.attributes if isinstance(node, ast.AttributeRef) else program.segments
            if _reads_ntile(program, decls[node.name].body, visited):
                return True
    return False


def prepared(program: Program, people: Sequence[dict]) -> list[dict]:
    """Customer dicts converted to the schema's types (the same objects when they already are)."""
    return [prepare_customer(person, program.schema) for person in people]
