"""Compile checked segments into one SQL query, as sqlglot expression trees.

Shape of the query (all identifiers quoted):

    WITH vo AS (visible orders), ve AS (visible events),
         oi_agg AS (item aggregates per order, for conditions inside `orders where ...`),
         o_agg / i_agg / e_agg AS (each table's aggregates per customer, computed once and
                                   shared by every clause and segment that uses them; rows
                                   that no aggregate counts are filtered out first),
         others AS (every id in orders and events; only when a segment can take a
                    customer who has no rows at all)
    SELECT COALESCE(c.id, o_agg.customer_id, ...) AS customer_id, COALESCE(<segment>, FALSE) ...
    FROM customers c FULL JOIN o_agg ... FULL JOIN e_agg ... FULL JOIN others ...

SQL's own three-valued logic is the language's, so conditions translate one to
one; a segment is true for a customer only when its condition is true.
Time windows become comparisons with timestamp literals computed from `now`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules import values
from crmrules.backends.sql.dialect import SqlDialect, and_, case_when, number, or_, paren
from crmrules.compiler.never_null import never_null
from crmrules.compiler.pipeline import Program
from crmrules.errors import EvaluationError, InternalError

# aliases of the relations rows come from, by the table in scope
_ROW_ALIAS = {"customers": "c", "orders": "o", "order_items": "i", "events": "e"}
_AGG_CTE = {"orders": "o_agg", "order_items": "i_agg", "events": "e_agg"}


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: column names such as `at` are reserved words in some engines."""
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted, optionally qualified column."""
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def table(name: str, alias: str | None = None) -> exp.Table:
    """A quoted table, optionally aliased."""
    node = exp.Table(this=ident(name))
    return node.as_(ident(alias)) if alias else node


def _not_null(value: exp.Expression) -> exp.Expression:
    return exp.Not(this=exp.Is(this=value, expression=exp.Null()))


@dataclass
class _Aggregates:
    """The aggregates one CTE computes, deduplicated: the same aggregate written twice is computed once."""

    alias: str
    columns: dict[ast.Aggregate, str] = field(default_factory=dict)
    expressions: list[exp.Expression] = field(default_factory=list)
    filters: list[exp.Expression | None] = field(default_factory=list)

    def add(self, node: ast.Aggregate, build, row_filter) -> str:
        name = self.columns.get(node)
        if name is None:
            name = self.columns[node] = f"a{len(self.columns)}"
            self.expressions.append(exp.alias_(build(), ident(name), copy=False))
            self.filters.append(row_filter())
        return name


@dataclass
class _Population:
    """The customers one `among` condition selects, and the tiles ranked over them (one CTE)."""

    alias: str
    among: exp.Expression
    driver: str | None = None  # a table every customer of the population has rows in
    tiles: dict[ast.Ntile, str] = field(default_factory=dict)
    # (buckets, value, column, whether the value is never null)
    values: list[tuple[int, exp.Expression, str, bool]] = field(default_factory=list)


class SqlGenerator:
    """Builds the query for a set of segments of one checked program, for one dialect and `now`."""

    def __init__(self, program: Program, dialect: SqlDialect, now: datetime):
        self.program = program
        self.schema = program.schema
        self.dialect = dialect
        self.now = now
        self.customer_aggs = {name: _Aggregates(alias) for name, alias in _AGG_CTE.items()}
        self.order_item_aggs = _Aggregates("oi_agg")
        self.populations: dict[ast.Expr, _Population] = {}
        self.through_ids = False  # set when the query is assembled
        self.tops: dict[ast.Aggregate, tuple[str, exp.Expression, exp.Expression, exp.Expression | None]] = {}

    # ----------------------------------------------------------------- naming
    def source(self, table_name: str) -> str:
        return self.schema.table(table_name).source

    def column_source(self, table_name: str, name: str) -> str:
        return self.schema.column(table_name, name).source

    def row_column(self, table_name: str, name: str) -> exp.Expression:
        """A column of the row in scope, read in the engine's representation of its type."""
        column = self.schema.column(table_name, name)
        ref = col(column.source, _ROW_ALIAS[table_name])
        return self.dialect.decimal_column(ref) if column.type == t.DECIMAL else ref

    # ------------------------------------------------------------- the query
    def query(self, segments: list[str]) -> exp.Select:
        """One SELECT of every customer's id with a boolean column per segment."""
        columns = [(name, self.membership(self.program.segments[name].body)) for name in segments]
        return self.assemble(columns, None, lambda: not self.nobody_without_rows(segments))

    def values(self, columns: list[tuple[str, ast.Expr]], segments: list[str] = (),
               where: ast.Expr | None = None) -> exp.Select:
        """One SELECT of the id of every existing customer (or of those for whom `where` is true), a
        column per expression (null kept) and one membership column per segment."""
        built = [(name, self.expr(body, "customers")) for name, body in columns]
        built += [(name, self.membership(self.program.segments[name].body)) for name in segments]
        if where is None:
            return self.assemble(built, None, lambda: True)
        condition = self.selection(where)
        return self.assemble(built, condition, lambda: self.empty_customer_may_match(where),
                             driver=_required_table(where, self.program.attributes))

    def members(self, segment: str) -> exp.Select:
        """A SELECT of the ids of one segment's members."""
        body = self.program.segments[segment].body
        condition = self.selection(body)
        return self.assemble([], condition, lambda: not self.nobody_without_rows([segment]),
                             driver=_required_table(body, self.program.attributes))

    def selection(self, body: ast.Expr) -> exp.Expression:
        """A condition for a WHERE clause, which keeps rows only where it is true: unknown needs no COALESCE."""
        return self.expr(body, "customers")

    def membership(self, body: ast.Expr) -> exp.Expression:
        return exp.Coalesce(this=self.expr(body, "customers"), expressions=[self.dialect.boolean(False)])

    def empty_customer_may_match(self, condition: ast.Expr) -> bool:
        """Whether a customer with no rows at all might meet a condition."""
        from crmrules.backends.memory import attribute_values

        try:
            return attribute_values(self.program, [condition])({}, self.now)[0] is not False
        except EvaluationError:
            return True  # ranked by an `ntile`: it depends on the data

    def nobody_without_rows(self, segments: list[str]) -> bool:
        """Whether no segment takes a customer who has no customer row and no rows anywhere.

        That is what an id found only in a table a rule does not aggregate over
        looks like to the rule; when no segment takes such a customer, those ids
        need not be gathered, which spares a scan of every table.
        """
        from crmrules.backends.memory import memory

        try:
            return not any(memory(self.program, name).matches({}, self.now) for name in segments)
        except EvaluationError:
            # a customer without rows would be ranked by an `ntile`: whether it matches depends on the data
            return False

    def population_takes_nobody(self) -> bool:
        """Whether a customer with no rows at all would be ranked in some population."""
        from crmrules.backends.memory import population_inputs

        return any(population_inputs(self.program, node)({}, self.now)[0]
                   for population in self.populations.values() for node in population.tiles)

    def grouped(self, aggregates: _Aggregates, key: exp.Expression, key_name: str, source: exp.Expression,
                joins: list[tuple] = ()) -> exp.Select:
        """`SELECT key, aggregates FROM source GROUP BY key`, reading only rows some aggregate counts."""
        select = exp.select(exp.alias_(key, ident(key_name), copy=False), *aggregates.expressions,
                            copy=False).from_(source, copy=False)
        for joined, on, kind in joins:
            select = select.join(joined, on=on, join_type=kind, copy=False)
        if all(f is not None for f in aggregates.filters):
            # rows that no aggregate counts change nothing; filtering first lets the engine skip them
            distinct: list[exp.Expression] = []
            for row_filter in aggregates.filters:
                if row_filter not in distinct:
                    distinct.append(row_filter)
            # `f or (f and g)` is `f`: a value's not-null test need not be read again
            kept = [f for f in distinct if not any(
                other is not f and other in list(f.flatten()) for other in distinct if isinstance(f, exp.And))]
            select = select.where(or_(*kept), copy=False)
        return select.group_by(key.copy(), copy=False)

    def assemble(self, columns: list[tuple[str, exp.Expression]], where: exp.Expression | None,
                 needs_everyone, driver: str | None = None) -> exp.Select:
        """The query: CTEs, then the customers with their `columns`, those for whom `where` holds.

        `needs_everyone()` says whether someone without any row could be selected (then every
        id of orders and events is gathered); `driver` names a table every selected customer has
        rows in, so the query can start from that table's aggregates instead of from everyone."""
        d = self.dialect
        now = d.timestamp(self.now)
        customers = self.schema.table("customers")
        id_column = self.column_source("customers", "id")
        customer_id = self.column_source("orders", "customer_id")
        order_id = self.column_source("orders", "id")
        item_order_id = self.column_source("order_items", "order_id")
        event_customer = self.column_source("events", "customer_id")

        def visible(table_name: str, time_column: str) -> exp.Select:
            moment = col(time_column)
            return exp.select("*", copy=False).from_(table(self.source(table_name)), copy=False).where(
                or_(exp.LTE(this=moment, expression=now.copy()),
                        exp.Is(this=moment.copy(), expression=exp.Null())), copy=False)

        ctes: list[tuple[str, exp.Expression]] = [
            ("vo", visible("orders", self.column_source("orders", "created_at"))),
            ("ve", visible("events", self.column_source("events", "at")))]
        if self.order_item_aggs.expressions:
            ctes.append(("oi_agg", self.grouped(self.order_item_aggs, col(item_order_id, "i"), "order_id",
                                                table(self.source("order_items"), "i"))))
        sources = {"orders": table("vo", "o"), "events": table("ve", "e"),
                   "order_items": table(self.source("order_items"), "i")}
        owners = {"orders": col(customer_id, "o"), "events": col(event_customer, "e"),
                  "order_items": col(customer_id, "o")}
        joined: list[str] = []

        def row_joins(table_name: str) -> list[tuple]:
            # what a table's rows are read with: an order's item aggregates, an item's (visible) order
            if table_name == "orders" and self.order_item_aggs.expressions:
                return [(table("oi_agg", "oi"), exp.EQ(this=col("order_id", "oi"), expression=col(order_id, "o")),
                         "left")]
            if table_name == "order_items":
                return [(table("vo", "o"), exp.EQ(this=col(item_order_id, "i"), expression=col(order_id, "o")),
                         "inner")]
            return []

        for name, alias in _AGG_CTE.items():
            if not self.customer_aggs[name].expressions:
                continue
            ctes.append((alias, self.grouped(self.customer_aggs[name], owners[name], "customer_id", sources[name],
                                             row_joins(name))))
            joined.append(alias)
        for node, (alias, value, weight, condition) in self.tops.items():
            ctes.append((alias, self.top(owners[node.table], sources[node.table], row_joins(node.table), value,
                                         weight, condition)))
            joined.append(alias)
        if driver is not None and driver in _AGG_CTE and _AGG_CTE[driver] in joined \
                and not self.population_takes_nobody():
            # every member has a row in this table's aggregates: start from them, not from everyone
            return self.driven_by(_AGG_CTE[driver], joined, ctes, columns, where, now)
        if needs_everyone() or self.population_takes_nobody():
            # someone with no rows at all can be a member, so every id in every table counts
            union = exp.union(exp.select(col(customer_id), copy=False).from_(table("vo"), copy=False),
                              exp.select(col(event_customer), copy=False).from_(table("ve"), copy=False),
                              distinct=True, copy=False)
            ctes.append(("others", exp.select(exp.alias_(col(customer_id), ident("customer_id"), copy=False),
                                              copy=False).from_(union.subquery(ident("u")), copy=False)))
            joined.append("others")

        self.through_ids = self.dialect.join_through_ids and bool(joined)
        if self.through_ids:
            ctes.append(("ids", self.all_ids(joined)))
        ctes.extend(self.population_ctes(joined, now))
        # the customers table, fully joined with whoever the aggregates know: people without a customer row exist too
        select = exp.select(exp.alias_(self.known_id(joined), ident("customer_id")), copy=False)
        select = select.select(*(exp.alias_(c, ident(n), copy=False) for n, c in columns), copy=False)
        select = self.everyone(select, joined, now, [where] if where is not None else [])
        select = self.with_populations(select, self.known_id(joined))
        for name, body in ctes:
            select = select.with_(ident(name), as_=body, copy=False)
        return select

    def all_ids(self, joined: list[str]) -> exp.Expression:
        """Every id of the customers table and of the aggregates, once each."""
        id_column = self.column_source("customers", "id")
        parts = [exp.select(exp.alias_(col(id_column), ident("customer_id")), copy=False).from_(
            table(self.schema.table("customers").source), copy=False)]
        parts += [exp.select(col("customer_id"), copy=False).from_(table(alias), copy=False) for alias in joined]
        union = parts[0]
        for part in parts[1:]:
            union = exp.union(union, part, distinct=True, copy=False)
        return union

    def known_id(self, aliases: list[str]) -> exp.Expression:
        """The id of a row of the full join: the customer row's, or else the first aggregate's that has one."""
        if self.through_ids and aliases:
            return col("customer_id", "ids")
        id_column = self.column_source("customers", "id")
        ids = [col("customer_id", a) for a in aliases]
        return exp.Coalesce(this=col(id_column, "c"), expressions=ids) if ids else col(id_column, "c")

    def join_on_id(self, select: exp.Select, alias: str, key: exp.Expression) -> exp.Select:
        """The select LEFT JOINed with a relation on the customer id (`c`: the customer row)."""
        if alias == "c":
            return select.join(table(self.schema.table("customers").source, "c"), join_type="left", copy=False,
                               on=exp.EQ(this=col(self.column_source("customers", "id"), "c"), expression=key.copy()))
        return select.join(table(alias), join_type="left", copy=False,
                           on=exp.EQ(this=col("customer_id", alias), expression=key.copy()))

    def everyone(self, select: exp.Select, joined: list[str], now: exp.Expression,
                 conditions: list[exp.Expression]) -> exp.Select:
        """FROM customers, fully joined with the aggregates, keeping whoever exists at `now` and meets `conditions`."""
        if self.through_ids:
            # the same rows as the full joins below, from left joins SQLite can index (its full joins are quadratic)
            key = col("customer_id", "ids")
            select = select.from_(table("ids"), copy=False)
            for alias in ["c", *joined]:
                select = self.join_on_id(select, alias, key)
        else:
            select = select.from_(table(self.schema.table("customers").source, "c"), copy=False)
            for index, alias in enumerate(joined):
                select = select.join(table(alias), join_type="full", copy=False, on=exp.EQ(
                    this=col("customer_id", alias), expression=self.known_id(joined[:index])))
        return select.where(and_(_not_null(self.known_id(joined)), *self.registered(now), *conditions), copy=False)

    def population_ctes(self, joined: list[str], now: exp.Expression) -> list[tuple[str, exp.Expression]]:
        """A CTE per `among` condition ranking its customers, one NTILE column per ranked value."""
        ctes = []
        for population in self.populations.values():
            driver = _AGG_CTE.get(population.driver)
            driven = driver in joined
            # everyone of the population has rows in `driver`: start from its customers, not from everyone
            key = col("customer_id", driver) if driven else self.known_id(joined)
            windows = []
            for buckets, value, name, always in population.values:
                # ties go by id, so every engine (and memory) deals the same customers into each tile
                order = exp.Order(expressions=[exp.Ordered(this=value.copy()), exp.Ordered(this=key.copy())])
                tile = exp.Anonymous(this="NTILE", expressions=[number(buckets)])
                if always:
                    windows.append(exp.alias_(exp.Window(this=tile, order=order), ident(name), copy=False))
                    continue
                # customers without a value are not ranked: they get a partition (and a null) of their own
                missing = exp.Is(this=paren(value.copy()), expression=exp.Null())
                window = exp.Window(this=tile, partition_by=[paren(missing)], order=order)
                windows.append(exp.alias_(case_when(exp.Not(this=missing.copy()), window), ident(name), copy=False))
            select = exp.select(exp.alias_(key.copy(), ident("customer_id")), *windows, copy=False)
            if driven:
                select = self.from_driver(select, driver, joined, now, [population.among])
            else:
                select = self.everyone(select, joined, now, [population.among])
            ctes.append((population.alias, select))
        return ctes

    def from_driver(self, select: exp.Select, driver: str, joined: list[str], now: exp.Expression,
                    conditions: list[exp.Expression]) -> exp.Select:
        """FROM one aggregate's customers, with the customer row and the other aggregates the select and the
        conditions read left-joined, keeping those who exist at `now` and meet the conditions."""
        key = col("customer_id", driver)
        read = {column.table for part in [*select.expressions, *conditions] for column in part.find_all(exp.Column)}
        select = select.from_(table(driver), copy=False)
        # nothing else needs the customer row? then only its registration date: leave out who registers later
        exists = self.registered(now) if "c" in read else self.not_registered_later(key, now)
        for alias in ["c", *joined]:
            # `others` only lists ids: nothing reads from it once the rows come from `driver`
            if alias in read and alias not in (driver, "others"):
                select = self.join_on_id(select, alias, key)
        # rows without a customer id (orders of nobody) make a group of their own: it is no customer
        return select.where(and_(_not_null(key.copy()), *exists, *conditions), copy=False)

    def not_registered_later(self, key: exp.Expression, now: exp.Expression) -> list[exp.Expression]:
        """`key` is not the id of a customer who registers after `now` (an anti-join with a tiny set)."""
        registered = self.schema.column("customers", "registered_at")
        if registered is None:
            return []
        id_column = col(self.column_source("customers", "id"))
        later = exp.select(id_column, copy=False).from_(table(self.schema.table("customers").source), copy=False)
        later = later.where(and_(exp.GT(this=col(registered.source), expression=now.copy()),
                                 _not_null(id_column.copy())), copy=False)
        return [exp.Not(this=exp.In(this=key.copy(), query=later.subquery(copy=False)))]

    def ntile_ref(self, node: ast.Ntile) -> exp.Expression:
        """A customer's tile, computed in the CTE of its population; null outside it."""
        population = self.populations.get(node.among)
        if population is None:
            alias = f"pop{len(self.populations)}"
            among = self.selection(node.among)
            driver = _required_table(node.among, self.program.attributes)
            population = self.populations[node.among] = _Population(alias, among, driver)
        name = population.tiles.get(node)
        if name is None:
            name = population.tiles[node] = f"t{len(population.tiles)}"
            value = self.expr(node.value, "customers")
            population.values.append((node.buckets, value, name, never_null(node.value, self.program.attributes)))
        return col(name, population.alias)

    def registered(self, now: exp.Expression) -> list[exp.Expression]:
        """The condition that a customer exists at `now`: one who registers later does not exist yet."""
        registered = self.schema.column("customers", "registered_at")
        if registered is None:
            return []
        moment = col(registered.source, "c")
        return [paren(or_(exp.Is(this=moment, expression=exp.Null()), exp.LTE(this=moment.copy(), expression=now.copy())))]

    def driven_by(self, driver: str, joined: list[str], ctes, columns, where, now) -> exp.Select:
        """Members drawn from one aggregate's customers, the customer row and other aggregates joined on."""
        ctes = ctes + self.population_ctes(joined, now)
        ranked = self.same_population(driver, where)
        if ranked is not None:
            # the members are exactly a population, already selected and ranked: read its CTE
            select = self.from_population(ranked, joined, columns)
            for name, body in ctes:
                select = select.with_(ident(name), as_=body, copy=False)
            return select
        key = col("customer_id", driver)
        select = exp.select(exp.alias_(key, ident("customer_id")), copy=False)
        select = select.select(*(exp.alias_(c, ident(n), copy=False) for n, c in columns), copy=False)
        select = self.with_populations(self.from_driver(select, driver, joined, now, [where]), key)
        for name, body in ctes:
            select = select.with_(ident(name), as_=body, copy=False)
        return select

    def same_population(self, driver: str, where: exp.Expression) -> _Population | None:
        """The population whose customers are exactly those `where` selects from `driver`, if any."""
        for population in self.populations.values():
            if _AGG_CTE.get(population.driver) == driver and population.among == where:
                return population
        return None

    def from_population(self, ranked: _Population, joined: list[str], columns) -> exp.Select:
        """SELECT the columns FROM a population's CTE, joining only the relations they read."""
        key = col("customer_id", ranked.alias)
        select = exp.select(exp.alias_(key, ident("customer_id")), copy=False)
        select = select.select(*(exp.alias_(c, ident(n), copy=False) for n, c in columns), copy=False)
        select = select.from_(table(ranked.alias), copy=False)
        read = {column.table for _, c in columns for column in c.find_all(exp.Column)}
        for alias in ["c", *joined, *(p.alias for p in self.populations.values() if p is not ranked)]:
            if alias in read and alias != "others":
                select = self.join_on_id(select, alias, key)
        return select

    def with_populations(self, select: exp.Select, key: exp.Expression) -> exp.Select:
        """The select with every population CTE left-joined on the customer id `key`."""
        for population in self.populations.values():
            select = self.join_on_id(select, population.alias, key)
        return select

    # ------------------------------------------------------------ expressions
    def expr(self, node: ast.Expr, scope: str) -> exp.Expression:  # noqa: C901 - one case per node kind
        d = self.dialect
        match node:
            case ast.Literal(value=value):
                return self.literal(value, node.type)
            case ast.ListLiteral():
                raise InternalError("list literals are compiled by `in`", node.span)
            case ast.Column(table=table_name, name=name):
                return self.row_column(table_name, name)
            case ast.Now():
                return d.timestamp(self.now)
            case ast.AttributeRef(name=name):
                return paren(self.expr(self.program.attributes[name].body, "customers"))
            case ast.SegmentRef(name=name):
                return paren(self.membership(self.program.segments[name].body))
            case ast.And(operands=ops):
                return paren(and_(*(self.expr(o, scope) for o in ops)))
            case ast.Or(operands=ops):
                return paren(or_(*(self.expr(o, scope) for o in ops)))
            case ast.Not(operand=op):
                return exp.Not(this=paren(self.expr(op, scope)))
            case ast.SetOp(op=op, left=left, right=right):
                a = exp.Coalesce(this=self.expr(left, scope), expressions=[d.boolean(False)])
                b = exp.Coalesce(this=self.expr(right, scope), expressions=[d.boolean(False)])
                if op == ast.SetOpKind.UNION:
                    return paren(or_(a, b))
                if op == ast.SetOpKind.INTERSECT:
                    return paren(and_(a, b))
                return paren(and_(a, exp.Not(this=b)))
            case ast.Compare(op=op, left=left, right=right):
                a, b = self.pair(left, right, scope)
                return _COMPARE[op](this=a, expression=b)
            case ast.Between(value=v, low=lo, high=hi):
                a, low = self.pair(v, lo, scope)
                a2, high = self.pair(v, hi, scope)
                return paren(and_(exp.GTE(this=a, expression=low), exp.LTE(this=a2, expression=high)))
            case ast.IsNull(operand=op, negated=negated):
                test = exp.Is(this=paren(self.expr(op, scope)), expression=exp.Null())
                return exp.Not(this=test) if negated else test
            case ast.In():
                return self.membership_test(node, scope)
            case ast.TextOp(op=op, left=left, right=right):
                a = self.expr(left, scope)
                if op == ast.TextOpKind.MATCHES:
                    return d.regex_search(a, right.value, node)
                b = self.expr(right, scope)
                return d.contains_text(a, b) if op == ast.TextOpKind.CONTAINS else d.starts_with(a, b)
            case ast.Within(value=v, duration=ast.Literal(value=duration)):
                moment = self.expr(v, scope)
                if v.type == t.DATE:
                    moment = d.to_timestamp(moment)
                edge = values.shift(self.now, duration, -1)
                return paren(and_(exp.GT(this=moment, expression=d.timestamp(edge)),
                                          exp.LTE(this=moment.copy(), expression=d.timestamp(self.now))))
            case ast.Arith():
                return self.arith(node, scope)
            case ast.Negate(operand=op):
                return exp.Neg(this=paren(self.expr(op, scope)))
            case ast.Call():
                return self.call(node, scope)
            case ast.Aggregate():
                return self.aggregate_ref(node, scope)
            case ast.Ntile():
                return self.ntile_ref(node)
        raise InternalError(f"the SQL backend cannot compile {type(node).__name__}", node.span)

    def literal(self, value, value_type: t.Type | None) -> exp.Expression:
        d = self.dialect
        match value:
            case None:
                return exp.Null()
            case bool():
                return d.boolean(value)
            case int():
                return number(value)
            case Decimal():
                return d.decimal(value)
            case str():
                return exp.Literal.string(value)
            case datetime():
                return d.timestamp(value)
            case date():
                return d.date(value)
        raise InternalError(f"no SQL literal for {value!r}")

    def pair(self, left: ast.Expr, right: ast.Expr, scope: str) -> tuple[exp.Expression, exp.Expression]:
        """Two operands in a common representation: dates widened to timestamps, ints to decimals."""
        a, b = self.expr(left, scope), self.expr(right, scope)
        kinds = {left.type, right.type}
        if kinds == {t.DATE, t.TIMESTAMP}:
            a = self.dialect.to_timestamp(a) if left.type == t.DATE else a
            b = self.dialect.to_timestamp(b) if right.type == t.DATE else b
        elif kinds == {t.INT, t.DECIMAL}:
            a = self.dialect.int_as_decimal(a) if left.type == t.INT else a
            b = self.dialect.int_as_decimal(b) if right.type == t.INT else b
        return a, b

    def arith(self, node: ast.Arith, scope: str) -> exp.Expression:
        d = self.dialect
        if node.right.type == t.DURATION:
            sign = 1 if node.op == ast.ArithOp.ADD else -1
            return d.shift(self.expr(node.left, scope), node.right.value, sign, node.left.type, node.type)
        if node.op == ast.ArithOp.DIV:
            return d.divide(self.as_decimal(self.expr(node.left, scope), node.left.type),
                            self.as_decimal(self.expr(node.right, scope), node.right.type))
        if node.op == ast.ArithOp.MUL:
            # an int times a decimal needs no conversion: scaled decimals stay scaled
            return paren(d.multiply(self.expr(node.left, scope), self.expr(node.right, scope),
                                        node.left.type, node.right.type))
        a, b = self.pair(node.left, node.right, scope)
        if node.op == ast.ArithOp.MOD:
            return d.modulo(a, b)
        operator = exp.Add if node.op == ast.ArithOp.ADD else exp.Sub
        return paren(operator(this=a, expression=b))

    def as_decimal(self, value: exp.Expression, value_type: t.Type) -> exp.Expression:
        return self.dialect.int_as_decimal(value) if value_type == t.INT else value

    def call(self, node: ast.Call, scope: str) -> exp.Expression:  # noqa: C901 - one case per function
        d = self.dialect
        args = [self.expr(a, scope) for a in node.args]
        types = [a.type for a in node.args]
        match node.name:
            case "days_since":
                return d.days_between(d.to_date(args[0]), d.date(self.now.date()))
            case "days_between":
                return d.days_between(d.to_date(args[0]), d.to_date(args[1]))
            case "date":
                if isinstance(node.args[0], ast.Now):
                    return d.date(self.now.date())
                return d.to_date(args[0])
            case "year" | "month" | "day":
                return d.date_part(node.name, args[0])
            case "lower":
                return exp.Lower(this=args[0])
            case "upper":
                return exp.Upper(this=args[0])
            case "trim":
                return exp.Trim(this=args[0])
            case "length":
                return d.list_length(args[0]) if types[0].is_list else d.text_length(args[0])
            case "abs":
                return exp.Abs(this=args[0])
            case "round":
                return d.round(args[0], args[1], types[0])
            case "coalesce":
                if node.type == t.DECIMAL:
                    args = [self.as_decimal(a, ty) for a, ty in zip(args, types)]
                return exp.Coalesce(this=args[0], expressions=args[1:])
            case "if":
                then, otherwise = args[1], args[2]
                if node.type == t.DECIMAL:
                    then, otherwise = self.as_decimal(then, types[1]), self.as_decimal(otherwise, types[2])
                return case_when(args[0], then, otherwise=otherwise)
            case "text":
                return d.text(args[0])
            case "concat":
                joined = args[0]
                for arg in args[1:]:
                    joined = exp.DPipe(this=joined, expression=arg)
                return paren(joined)
        raise InternalError(f"the SQL backend has no function `{node.name}`", node.span)

    def membership_test(self, node: ast.In, scope: str) -> exp.Expression:
        d = self.dialect
        needle = self.expr(node.needle, scope)
        element = t.element_of(node.haystack.type)
        widen = {node.needle.type, element} == {t.DATE, t.TIMESTAMP}
        if widen and node.needle.type == t.DATE:
            needle = d.to_timestamp(needle)
        if isinstance(node.haystack, ast.ListLiteral):
            if not node.haystack.items:
                # `x in []` is false, and unknown when x is null
                test = case_when(exp.Is(this=needle, expression=exp.Null()), exp.Null(), otherwise=
                    d.boolean(False))
            else:
                items = []
                for item in node.haystack.items:
                    value = self.expr(item, scope)
                    items.append(d.to_timestamp(value) if widen and item.type == t.DATE else value)
                test = exp.In(this=needle, expressions=items)
            return exp.Not(this=paren(test)) if node.negated else test
        haystack = self.expr(node.haystack, scope)
        # a null list or needle is unknown; null elements never match, as in memory
        test = case_when(or_(exp.Is(this=needle, expression=exp.Null()),
                                       exp.Is(this=haystack, expression=exp.Null())), exp.Null(), otherwise=
            exp.Coalesce(this=d.list_contains(haystack.copy(), needle.copy()), expressions=[d.boolean(False)]))
        return exp.Not(this=paren(test)) if node.negated else test

    # ------------------------------------------------------------- aggregates
    def aggregate_ref(self, node: ast.Aggregate, scope: str) -> exp.Expression:
        """A reference to an aggregate computed in its table's CTE, with the empty-set value applied."""
        if scope == "customers":
            target, alias = self.customer_aggs[node.table], _AGG_CTE[node.table]
        elif scope == "orders" and node.table == "order_items":
            target, alias = self.order_item_aggs, "oi"
        else:
            raise InternalError(f"no aggregate over {node.table} from {scope}", node.span)
        if node.func == ast.AggFunc.TOP:
            if scope != "customers":
                raise InternalError("`top` is only computed per customer", node.span)
            return self.top_ref(node)
        if node.func == ast.AggFunc.AVG:
            # an average is a sum and a count, each grouped once, divided after grouping
            column_type = node.value.type if node.value is not None else \
                self.schema.column(node.table, node.column).type
            total = self.aggregate_ref(dataclasses.replace(node, func=ast.AggFunc.SUM, type=column_type), scope)
            count = self.aggregate_ref(dataclasses.replace(node, func=ast.AggFunc.COUNT, type=t.INT), scope)
            return self.dialect.divide(self.as_decimal(total, column_type), self.as_decimal(count, t.INT))
        name = target.add(node, lambda: self.aggregate(node), lambda: self.row_filter(node))
        ref = col(name, alias)
        d = self.dialect
        match node.func:
            case ast.AggFunc.COUNT:
                return exp.Coalesce(this=ref, expressions=[number(0)])
            case ast.AggFunc.SUM:
                zero = d.decimal_zero() if node.type == t.DECIMAL else number(0)
                return exp.Coalesce(this=ref, expressions=[zero])
            case ast.AggFunc.ANY:
                return exp.EQ(this=exp.Coalesce(this=ref, expressions=[number(0)]), expression=number(1))
            case ast.AggFunc.NONE:
                return exp.EQ(this=exp.Coalesce(this=ref, expressions=[number(0)]), expression=number(0))
            case ast.AggFunc.DISTINCT:
                return exp.Coalesce(this=ref, expressions=[d.empty_list(t.element_of(node.type))])
        return ref

    def top_ref(self, node: ast.Aggregate) -> exp.Expression:
        """The customer's top value, from a CTE of its own: one row per customer."""
        found = self.tops.get(node)
        if found is None:
            value = self.row_value(node)
            weight = self.expr(node.by, node.table) if node.by is not None else number(1)
            condition = self.expr(node.where, node.table) if node.where is not None else None
            found = self.tops[node] = (f"top{len(self.tops)}", value, weight, condition)
        return col("value", found[0])

    def top(self, owner: exp.Expression, source: exp.Expression, joins, value: exp.Expression,
            weight: exp.Expression, condition: exp.Expression | None) -> exp.Select:
        """Each customer's value with the largest summed weight (null weights last), ties to the smallest value."""
        total = exp.Sum(this=weight)
        order = exp.Order(expressions=[
            exp.Ordered(this=case_when(exp.Is(this=total.copy(), expression=exp.Null()), number(1),
                                       otherwise=number(0))),
            exp.Ordered(this=total, desc=True), exp.Ordered(this=value.copy())])
        rank = exp.Window(this=exp.RowNumber(), partition_by=[owner.copy()], order=order)
        ranked = exp.select(exp.alias_(owner.copy(), ident("customer_id"), copy=False),
                            exp.alias_(value.copy(), ident("value"), copy=False),
                            exp.alias_(rank, ident("rn"), copy=False), copy=False).from_(source.copy(), copy=False)
        for joined, on, kind in joins:
            ranked = ranked.join(joined, on=on, join_type=kind, copy=False)
        ranked = ranked.where(and_(_not_null(value.copy()), *([condition] if condition is not None else [])),
                              copy=False).group_by(owner.copy(), value.copy(), copy=False)
        return exp.select(col("customer_id"), col("value"), copy=False).from_(
            ranked.subquery(ident("ranked"), copy=False), copy=False).where(
            exp.EQ(this=col("rn"), expression=number(1)), copy=False)

    def row_value(self, node: ast.Aggregate) -> exp.Expression:
        """The per-row value an aggregate reads: its column, or its `table: value` expression."""
        if node.value is not None:
            return self.expr(node.value, node.table)
        return self.row_column(node.table, node.column)

    def row_filter(self, node: ast.Aggregate) -> exp.Expression | None:
        """The rows an aggregate reads, or None when it reads them all."""
        if node.where is None:
            return None
        condition = self.expr(node.where, node.table)
        if (node.column is not None or node.value is not None) and node.func != ast.AggFunc.COUNT:
            value = self.row_value(node)
            condition = and_(condition, exp.Not(this=exp.Is(this=value, expression=exp.Null())))
        return condition

    def aggregate(self, node: ast.Aggregate) -> exp.Expression:
        """The aggregate over its table's rows, inside that table's CTE."""
        d = self.dialect
        condition = self.expr(node.where, node.table) if node.where is not None else None
        value = self.row_value(node) if node.column or node.value is not None else None

        def only_where(inner: exp.Expression) -> exp.Expression:
            # each aggregate reads its condition once: no copy needed
            return case_when(condition, inner) if condition is not None else inner

        match node.func:
            case ast.AggFunc.COUNT:
                if value is None and condition is None:
                    return exp.Count(this=exp.Star())
                return exp.Count(this=only_where(value if value is not None else number(1)))
            case ast.AggFunc.SUM:
                return exp.Sum(this=only_where(value))
            case ast.AggFunc.MIN:
                return exp.Min(this=only_where(value))
            case ast.AggFunc.MAX:
                return exp.Max(this=only_where(value))
            case ast.AggFunc.ANY | ast.AggFunc.NONE:
                hit = case_when(condition, number(1), otherwise=number(0)) if condition is not None else number(1)
                return exp.Max(this=hit)
            case ast.AggFunc.DISTINCT:
                return d.distinct_list(value, condition)
        raise InternalError(f"no SQL for aggregate {node.func}", node.span)


def _required_table(body: ast.Expr, attributes: dict | None = None) -> str | None:
    """A table every member must have a counted row in, read off the condition's top-level `and`
    (looking into the attributes it names when `attributes` is given)."""

    def plain(node: ast.Expr) -> ast.Expr:
        if attributes is not None and isinstance(node, ast.AttributeRef):
            return plain(attributes[node.name].body)
        return node

    for part in plain(body).operands if isinstance(plain(body), ast.And) else (plain(body),):
        part = plain(part)
        if isinstance(part, ast.Compare):
            part = dataclasses.replace(part, left=plain(part.left))
        match part:
            case ast.Aggregate(func=ast.AggFunc.ANY, table=table_name):
                return table_name
            case ast.Compare(op=op, left=ast.Aggregate(func=ast.AggFunc.COUNT, table=table_name),
                             right=ast.Literal(value=int() as n)) if (
                    (op == ast.CompareOp.GT and n >= 0) or (op in (ast.CompareOp.GE, ast.CompareOp.EQ) and n >= 1)):
                return table_name
    return None


_COMPARE = {ast.CompareOp.EQ: exp.EQ, ast.CompareOp.NE: exp.NEQ, ast.CompareOp.LT: exp.LT,
            ast.CompareOp.LE: exp.LTE, ast.CompareOp.GT: exp.GT, ast.CompareOp.GE: exp.GTE}
