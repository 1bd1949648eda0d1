"""The query planner: compiled expressions and what they need (`Needs`) assembled into one SELECT.

Shape of the query (all identifiers quoted):

    WITH vo AS (visible orders), ve AS (visible events),
         oi_top0.. AS (a `top` over each order's items: one row per order),
         oi_agg AS (item aggregates per order, for `orders where ...` and `orders: ...`),
         o_agg / i_agg / e_agg AS (each table's aggregates per customer, computed once and
                                   shared by every clause and segment that uses them; rows
                                   that no aggregate counts are filtered out first),
         top0.. AS (a `top` value per customer),
         others AS (every id in orders and events; only when a segment can take a
                    customer who has no rows at all),
         ids AS (every id once: dialects that join through ids instead of full joins),
         pop0.. AS (a population and its tiles)
    SELECT COALESCE(c.id, o_agg.customer_id, ...) AS customer_id, COALESCE(<segment>, FALSE) ...
    FROM customers c FULL JOIN o_agg ... FULL JOIN e_agg ... FULL JOIN others ...

When every selected customer must have rows in one table (`query_shape.required_table`),
the query starts from that table's aggregates instead ("driven"). Which shape a
query takes is decided once, in `Layout`, before any of it is built.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass

from sqlglot import exp

from crmrules import ast
from crmrules.backends.sql.compile_memo import memo_space, tables_read
from crmrules.backends.sql.dialect import SqlDialect, and_, case_when, col, ident, not_null, number, or_, paren, table
from crmrules.backends.sql.expressions import (AGG_CTE, ROW_ALIAS, Aggregates, ExpressionCompiler, Pick, Population,
                                               Top)
from crmrules.backends.sql.row_filters import (implies_visible, reads_only_hits, reduced, semi_join_hit, without,
                                               without_case)
from crmrules.compiler import visibility
from crmrules.compiler.catalogue_cache import schema_number
from crmrules.compiler.pipeline import Program
from crmrules.compiler.query_shape import may_hold_without_rows, required_table
from crmrules.context import EvaluationContext

Columns = list[tuple[str, exp.Expression]]


def segments_select(program: Program, segments: Sequence[str], dialect: SqlDialect,
                    ctx: EvaluationContext) -> exp.Select:
    """One SELECT of every existing customer's id with a boolean column per segment (unknown is false)."""
    planner = QueryPlanner(program, dialect, ctx)
    columns = [(name, planner.compiler.flag(program.segments[name].body)) for name in segments]
    rowless = any(planner.rowless(program.segments[name].body) for name in segments)
    return planner.select(columns, None, rowless)


def members_select(program: Program, segment: str, dialect: SqlDialect, ctx: EvaluationContext) -> exp.Select:
    """A SELECT of the ids of one segment's members."""
    body = program.segments[segment].body
    planner = QueryPlanner(program, dialect, ctx)
    condition = planner.compiler.expr(body, "customers")
    return planner.select([], condition, planner.rowless(body), required_table(body, program.attributes))


def values_select(program: Program, columns: Sequence[tuple[str, ast.Expr]], dialect: SqlDialect,
                  ctx: EvaluationContext, segments: Sequence[str] = (), where: ast.Expr | None = None,
                  customer_id: str | None = None) -> exp.Select:
    """A SELECT of the id of every existing customer (or of those for whom `where` is true, or of one
    customer), a column per expression (null kept) and a membership column per segment."""
    planner = QueryPlanner(program, dialect, ctx)
    compiler = planner.compiler
    built = [(name, compiler.expr(body, "customers")) for name, body in columns]
    built += [(name, compiler.flag(program.segments[name].body)) for name in segments]
    if customer_id is not None:
        return planner.select(built, None, True, customer_id=customer_id)
    if where is None:
        return planner.select(built, None, True)
    return planner.select(built, compiler.expr(where, "customers"),
                          planner.rowless(where), required_table(where, program.attributes))


@dataclass(frozen=True)
class Layout:
    """How the customers are gathered, decided before the query is built."""

    joined: tuple[str, ...]  # the per-customer CTEs joined on the id, in order (`others` last when gathered)
    through_ids: bool  # join through an `ids` CTE of every id with left joins instead of full joins
    driver: str | None  # the aggregate CTE every selected customer has a row in: the query starts from it


class QueryPlanner:
    """Builds one query of a checked program for one dialect and context."""

    def __init__(self, program: Program, dialect: SqlDialect, ctx: EvaluationContext):
        self.program = program
        self.schema = program.schema
        self.dialect = dialect
        self.ctx = ctx
        # trees kept from earlier queries of this dialect, schema and `now` (`compile_memo`); a population ranked
        # in memory is not part of that key: nothing is kept then
        memo = None if ctx.population is not None else memo_space(
            (type(dialect), ctx.instant, schema_number(ctx.schema), schema_number(program.schema)))
        self.compiler = ExpressionCompiler(program, dialect, ctx, memo)
        self.needs = self.compiler.needs

    def rowless(self, condition: ast.Expr) -> bool:
        """Whether someone without any row could meet `condition` (`query_shape.may_hold_without_rows`), with
        what each attribute is without rows kept in the memo (folding a catalogue attribute costs 0.1 ms)."""
        memo = self.compiler.memo
        kept = None if memo is None else _KeptByContent(memo.facts, self.compiler.reached)
        return may_hold_without_rows(condition, self.program, self.ctx, kept)

    def source(self, table_name: str) -> str:
        return self.schema.table(table_name).source

    def column_source(self, table_name: str, name: str) -> str:
        return self.schema.column(table_name, name).source

    # -------------------------------------------------------------- the plan
    def layout(self, rowless: bool, driver_table: str | None) -> Layout:
        """Which CTEs are joined and how, from what the compiled expressions need."""
        joined = [AGG_CTE[name] for name in AGG_CTE if self.needs.customer_aggs[name].expressions]
        joined += [top.alias for top in self.needs.tops.values()]
        ranks_rowless = any(p.ranks_rowless for p in self.needs.populations.values())
        driver = AGG_CTE.get(driver_table)
        if driver in joined and not ranks_rowless:
            # every member has a row in this table's aggregates: start from them, not from everyone
            return Layout(tuple(joined), False, driver)
        if rowless or ranks_rowless:
            # someone with no rows at all can be selected, so every id in every table counts
            joined.append("others")
        return Layout(tuple(joined), self.dialect.join_through_ids and bool(joined), None)

    def select(self, columns: Columns, where: exp.Expression | None, rowless: bool, driver_table: str | None = None,
               customer_id: str | None = None) -> exp.Select:
        """The query: CTEs, then the customers with their `columns`, those for whom `where` holds.

        `rowless` says whether someone without any row could be selected (then every id of orders
        and events is gathered); `driver_table` names a table every selected customer has rows in."""
        layout = self.layout(rowless or customer_id is not None, None if customer_id else driver_table)
        ctes = self.ctes(layout)
        if layout.driver is not None:
            return self.driven(layout, ctes, columns, where)
        # the customers table, fully joined with whoever the aggregates know: people without a customer row exist too
        key = self.known_id(layout, layout.joined)
        conditions = [where] if where is not None else []
        if customer_id is not None:
            conditions.append(exp.EQ(this=key.copy(), expression=exp.Literal.string(customer_id)))
        select = exp.select(exp.alias_(key, ident("customer_id")), copy=False)
        select = select.select(*(exp.alias_(c, ident(n), copy=False) for n, c in columns), copy=False)
        select = self.everyone(select, layout, conditions)
        return _with(self.with_populations(select, self.known_id(layout, layout.joined)), ctes)

    # ------------------------------------------------------------------ CTEs
    def ctes(self, layout: Layout) -> list[tuple[str, exp.Expression]]:
        """Every CTE of the query, kept between queries of the same needs and layout (`compile_memo`)."""
        compiler = self.compiler
        if compiler.memo is None:
            return self.built_ctes(layout)
        kept = compiler.kept(("ctes", compiler.needs.state, layout), lambda: tuple(self.built_ctes(layout)))
        return list(kept)

    def built_ctes(self, layout: Layout) -> list[tuple[str, exp.Expression]]:
        """The CTEs, built from a copy of the needs: `grouped` rewrites the aggregates in place."""
        needs, self.needs = self.needs, self.needs.copied()
        self.compiler.building += 1
        try:
            ctes = self.row_ctes(layout)
            if layout.driver is None:
                if "others" in layout.joined:
                    ctes.append(("others", self.others()))
                if layout.through_ids:
                    ctes.append(("ids", self.all_ids(layout.joined)))
            return ctes + self.population_ctes(layout)
        finally:
            self.needs = needs
            self.compiler.building -= 1

    def row_ctes(self, layout: Layout) -> list[tuple[str, exp.Expression]]:
        """The visible rows, then each table's aggregates per customer and each `top`."""
        needs = self.needs
        ctes: list[tuple[str, exp.Expression]] = [("vo", self.visible("orders")), ("ve", self.visible("events"))]
        item_order_id = self.column_source("order_items", "order_id")
        for top in needs.order_tops.values():
            ctes.append((top.alias, self.top("order_items", top, per_order=True)))
        semi = self.item_semi_join()
        if needs.order_item_aggs.expressions and semi is None:
            ctes.append(("oi_agg", self.grouped(needs.order_item_aggs, col(item_order_id, "i"), "order_id",
                                                table(self.source("order_items"), "i"))))
        for name, alias in AGG_CTE.items():
            if needs.customer_aggs[name].expressions:
                joins = self.row_joins(name) if name != "orders" or semi is None else []
                ctes.append((alias, self.grouped(needs.customer_aggs[name], self.owner(name), "customer_id",
                                                 self.rows(name), joins, name, semi if name == "orders" else None)))
        for node, top in needs.tops.items():
            ctes.append((top.alias, self.top(node.table, top) if isinstance(top, Top) else self.pick(node.table, top)))
        return ctes

    def visible(self, table_name: str) -> exp.Select:
        """The rows of a table that exist at `now` (`compiler.visibility`)."""
        alias = ROW_ALIAS[table_name]
        select = exp.select(exp.Star(), copy=False).from_(table(self.source(table_name), alias), copy=False)
        condition = visibility.visible(table_name, self.schema)
        if condition is None:
            return select
        return select.where(self.compiler.expr(condition, table_name).unnest(), copy=False)

    def rows(self, table_name: str) -> exp.Expression:
        """Where a table's visible rows are read from, under its row alias."""
        if table_name == "order_items":
            return table(self.source("order_items"), "i")
        return table({"orders": "vo", "events": "ve"}[table_name], ROW_ALIAS[table_name])

    def owner(self, table_name: str) -> exp.Expression:
        """The customer id of a row of a table (an item's is its order's)."""
        if table_name == "events":
            return col(self.column_source("events", "customer_id"), "e")
        return col(self.column_source("orders", "customer_id"), "o")

    def row_joins(self, table_name: str) -> list[tuple]:
        """What a table's rows are read with: an order's item aggregates, an item's (visible) order."""
        order_id = self.column_source("orders", "id")
        item_order_id = self.column_source("order_items", "order_id")
        if table_name == "orders":
            # each order's item aggregates and `top` values, one row per order: left joins keep every order
            per_order = [("oi_agg", "oi")] if self.needs.order_item_aggs.expressions else []
            per_order += [(top.alias, top.alias) for top in self.needs.order_tops.values()]
            return [(table(name, alias), exp.EQ(this=col("order_id", alias), expression=col(order_id, "o")), "left")
                    for name, alias in per_order]
        if table_name == "order_items":
            return [(table("vo", "o"), exp.EQ(this=col(item_order_id, "i"), expression=col(order_id, "o")), "inner")]
        return []

    def grouped(self, aggregates: Aggregates, key: exp.Expression, key_name: str, source: exp.Expression,
                joins: list[tuple] = (), table_name: str | None = None,
                semi: tuple[exp.Expression, exp.Expression] | None = None) -> exp.Select:
        """`SELECT key, aggregates FROM source GROUP BY key`, reading only rows some aggregate counts
        (`row_filters`); `semi` is an `item_semi_join` every aggregate's rows meet."""
        expressions, where = aggregates.expressions, None
        if all(f is not None for f in aggregates.filters):
            # rows that no aggregate counts change nothing; filtering first lets the engine skip them
            filters = aggregates.filters
            if semi is not None:
                true = self.dialect.boolean(True)
                expressions = [without_case(without(e, semi[0], true), true) for e in expressions]
                filters = [without(f, semi[0], true) for f in filters]
                # a condition that was only the semi-join's: every row it leaves is read
                filters = [] if any(f == true for f in filters) else filters
            kept = reduced(filters)
            if len(kept) == 1:
                expressions = [without_case(e, kept[0]) for e in expressions]
            where = or_(*kept) if kept else None
            visible = visibility.visible(table_name, self.schema) if table_name in ("orders", "events") else None
            if visible is not None and kept and all(
                    implies_visible(f, self.compiler.expr(visible, table_name)) for f in kept):
                # every row counted exists at `now` anyway: read the table, not its visible rows
                source = table(self.source(table_name), ROW_ALIAS[table_name])
            if semi is not None:
                where = and_(semi[1], where) if where is not None else semi[1]
        select = exp.select(exp.alias_(key, ident(key_name), copy=False), *expressions,
                            copy=False).from_(source, copy=False)
        for joined, on, kind in joins:
            select = _join(select, joined, on, kind)
        if where is not None:
            select = select.where(where, copy=False)
        return select.group_by(key.copy(), copy=False)

    def item_semi_join(self) -> tuple[exp.Expression, exp.Expression] | None:
        """`(hit, o.id IN (SELECT order_id FROM order_items WHERE ...))` when the item aggregates are one
        `any(items where ...)` (`hit`: its test) that every aggregate over orders requires and nothing else reads:
        the orders are then semi-joined with the items it finds, shared by every aggregate, instead of joined with
        per-order aggregates (the items are not grouped)."""
        items, orders = self.needs.order_item_aggs, self.needs.customer_aggs["orders"]
        if len(items.columns) != 1 or self.needs.order_tops or any(node.table == "orders" for node in self.needs.tops):
            return None
        ((node, column),) = items.columns.items()
        if node.func != ast.AggFunc.ANY or items.filters[0] is None:
            return None
        hit = exp.EQ(this=exp.Coalesce(this=col(column, "oi"), expressions=[number(0)]), expression=number(1))
        if not semi_join_hit(orders.filters, hit) or not reads_only_hits([*orders.expressions, *orders.filters],
                                                                           "oi", hit):
            return None
        found = exp.select(col(self.column_source("order_items", "order_id"), "i"), copy=False).from_(
            table(self.source("order_items"), "i"), copy=False).where(items.filters[0], copy=False)
        return hit, exp.In(this=col(self.column_source("orders", "id"), "o"), query=found.subquery(copy=False))

    def top(self, table_name: str, top: Top, per_order: bool = False) -> exp.Select:
        """Each customer's (`per_order`: each order's, over its items) value with the largest summed weight (null
        weights last), ties to the smallest value."""
        owner, value = self.owner(table_name), top.value
        key_name, joins = "customer_id", self.row_joins(table_name)
        if per_order:
            # an order's items: visible when their order is, which the join onto the orders decides
            owner, key_name, joins = col(self.column_source("order_items", "order_id"), "i"), "order_id", []
        total = exp.Sum(this=top.weight)
        order = exp.Order(expressions=[
            exp.Ordered(this=case_when(exp.Is(this=total.copy(), expression=exp.Null()), number(1),
                                       otherwise=number(0))),
            exp.Ordered(this=total, desc=True), exp.Ordered(this=value.copy())])
        rank = exp.Window(this=exp.RowNumber(), partition_by=[owner.copy()], order=order)
        ranked = exp.select(exp.alias_(owner.copy(), ident(key_name), copy=False),
                            exp.alias_(value.copy(), ident("value"), copy=False),
                            exp.alias_(rank, ident("rn"), copy=False), copy=False).from_(
            self.rows(table_name), copy=False)
        for joined, on, kind in joins:
            ranked = _join(ranked, joined, on, kind)
        condition = [top.condition] if top.condition is not None else []
        ranked = ranked.where(and_(not_null(value.copy()), *condition), copy=False).group_by(
            owner.copy(), value.copy(), copy=False)
        found = exp.select(col(key_name), col("value"), copy=False).from_(
            ranked.subquery(ident("ranked"), copy=False), copy=False).where(
            exp.EQ(this=col("rn"), expression=number(1)), copy=False)
        # one row per order already; grouped, SQLite expects as many rows as orders and indexes the join on
        # them (filtered, it expects a few and scans the whole CTE for every order: 80x slower on the demo shop)
        return found.group_by(col(key_name), col("value"), copy=False) if per_order else found

    def pick(self, table_name: str, pick: Pick) -> exp.Select:
        """Each customer's value of the row `pick.order` puts first (`first`, `last`)."""
        owner = self.owner(table_name)
        rank = exp.Window(this=exp.RowNumber(), partition_by=[owner.copy()], order=exp.Order(expressions=pick.order))
        ranked = exp.select(exp.alias_(owner.copy(), ident("customer_id"), copy=False),
                            exp.alias_(pick.value.copy(), ident("value"), copy=False),
                            exp.alias_(rank, ident("rn"), copy=False), copy=False).from_(
            self.rows(table_name), copy=False)
        for joined, on, kind in self.row_joins(table_name):
            ranked = _join(ranked, joined, on, kind)
        ranked = ranked.where(pick.condition, copy=False)
        return exp.select(col("customer_id"), col("value"), copy=False).from_(
            ranked.subquery(ident("ranked"), copy=False), copy=False).where(
            exp.EQ(this=col("rn"), expression=number(1)), copy=False)

    def others(self) -> exp.Select:
        """Every customer id of the visible orders and events."""
        customer_id = self.column_source("orders", "customer_id")
        union = exp.union(exp.select(col(customer_id), copy=False).from_(table("vo"), copy=False),
                          exp.select(col(self.column_source("events", "customer_id")), copy=False).from_(
                              table("ve"), copy=False), distinct=True, copy=False)
        return exp.select(exp.alias_(col(customer_id), ident("customer_id"), copy=False), copy=False).from_(
            union.subquery(ident("u")), copy=False)

    def all_ids(self, joined: Sequence[str]) -> exp.Expression:
        """Every id of the customers table and of the aggregates, once each."""
        id_column = self.column_source("customers", "id")
        parts = [exp.select(exp.alias_(col(id_column), ident("customer_id")), copy=False).from_(
            table(self.source("customers")), copy=False)]
        parts += [exp.select(col("customer_id"), copy=False).from_(table(alias), copy=False) for alias in joined]
        union = parts[0]
        for part in parts[1:]:
            union = exp.union(union, part, distinct=True, copy=False)
        return union

    def population_ctes(self, layout: Layout) -> list[tuple[str, exp.Expression]]:
        """A CTE per `among` condition ranking its customers, one NTILE column per ranked value."""
        ctes = []
        for population in self.needs.populations.values():
            driver = AGG_CTE.get(population.driver)
            driven = driver in layout.joined
            # everyone of the population has rows in `driver`: start from its customers, not from everyone
            key = col("customer_id", driver) if driven else self.known_id(layout, layout.joined)
            # each ranked value is computed once, below the windows that sort, test and count it
            tiles = list(population.tiles.values())
            values = [exp.alias_(tile.value.copy(), ident(f"v{i}"), copy=False) for i, tile in enumerate(tiles)]
            select = exp.select(exp.alias_(key.copy(), ident("customer_id")), *values, copy=False)
            if driven:
                select = self.from_driver(select, driver, layout, [population.among])
            else:
                select = self.everyone(select, layout, [population.among])
            windows = []
            for i, tile in enumerate(tiles):
                value = col(f"v{i}", "ranked")
                # customers without a value are not ranked: they get a partition (and a null) of their own
                missing = None if tile.never_null else exp.Is(this=value.copy(), expression=exp.Null())
                ranking = self.tile_window(tile, value, col("customer_id", "ranked"), missing)
                if missing is not None:
                    ranking = case_when(exp.Not(this=missing.copy()), ranking)
                windows.append(exp.alias_(ranking, ident(tile.column), copy=False))
            ranked = exp.select(exp.alias_(col("customer_id", "ranked"), ident("customer_id")), *windows, copy=False)
            ctes.append((population.alias, ranked.from_(select.subquery(ident("ranked"), copy=False), copy=False)))
        return ctes

    def tile_window(self, tile, value: exp.Expression, key: exp.Expression,
                    missing: exp.Expression | None) -> exp.Expression:
        """A customer's tile over the population's partition `missing` (or all of it): NTILE, or for `score`
        1 + buckets × (customers strictly below) DIV (customers ranked), in integers on every engine; `value` is
        the tile's value (or key) computed once."""
        ordered = self.dialect.text_order(value.copy(), tile.key_type)
        if tile.ties:
            # nulls sort last and are not counted, so no partition is needed: one sort per ranked value
            rank = exp.Window(this=exp.Anonymous(this="RANK", expressions=[]), order=exp.Order(
                expressions=[exp.Ordered(this=ordered, desc=tile.descending or None, nulls_first=False)]))
            # a value never null is counted by COUNT(*), which the engine need not evaluate it for
            size = exp.Window(this=exp.Count(this=exp.Star() if tile.never_null else value.copy()))
            below = exp.Mul(this=number(tile.buckets), expression=paren(exp.Sub(this=rank, expression=number(1))))
            return exp.Add(this=number(1), expression=exp.IntDiv(this=paren(below), expression=size))
        # ties go by id, so every engine (and memory) deals the same customers into each tile
        partition = [paren(missing)] if missing is not None else None
        tie = self.dialect.text_order(key.copy(), self.program.schema.column("customers", "id").type)
        order = exp.Order(expressions=[exp.Ordered(this=ordered, desc=tile.descending or None),
                                       exp.Ordered(this=tie)])
        return exp.Window(this=exp.Anonymous(this="NTILE", expressions=[number(tile.buckets)]),
                          partition_by=partition, order=order)

    # ------------------------------------------------------------- the rows
    def known_id(self, layout: Layout, aliases: Sequence[str]) -> exp.Expression:
        """The id of a row of the full join: the customer row's, or else the first aggregate's that has one."""
        if layout.through_ids and aliases:
            return col("customer_id", "ids")
        id_column = self.column_source("customers", "id")
        ids = [col("customer_id", a) for a in aliases]
        return exp.Coalesce(this=col(id_column, "c"), expressions=ids) if ids else col(id_column, "c")

    def join_on_id(self, select: exp.Select, alias: str, key: exp.Expression) -> exp.Select:
        """The select LEFT JOINed with a relation on the customer id (`c`: the customer row)."""
        if alias == "c":
            return _join(select, table(self.source("customers"), "c"),
                         exp.EQ(this=col(self.column_source("customers", "id"), "c"), expression=key.copy()), "left")
        return _join(select, table(alias), exp.EQ(this=col("customer_id", alias), expression=key.copy()), "left")

    def everyone(self, select: exp.Select, layout: Layout, conditions: list[exp.Expression]) -> exp.Select:
        """FROM customers, fully joined with the aggregates, keeping whoever exists at `now` and meets `conditions`."""
        joined = layout.joined
        if layout.through_ids:
            # the same rows as the full joins below, from left joins SQLite can index (its full joins are quadratic)
            key = col("customer_id", "ids")
            select = select.from_(table("ids"), copy=False)
            for alias in ["c", *joined]:
                select = self.join_on_id(select, alias, key)
        else:
            select = select.from_(table(self.source("customers"), "c"), copy=False)
            for index, alias in enumerate(joined):
                select = _join(select, table(alias), exp.EQ(
                    this=col("customer_id", alias), expression=self.known_id(layout, joined[:index])), "full")
        return select.where(and_(not_null(self.known_id(layout, joined)), *self.registered(), *conditions),
                            copy=False)

    def registered(self) -> list[exp.Expression]:
        """The condition that a customer row exists at `now` (`compiler.visibility`)."""
        condition = visibility.registered(self.schema)
        if condition is None:
            return []
        return [self.compiler.kept(("registered",), lambda: self.compiler.expr(condition, "customers"))]

    def not_registered_later(self, key: exp.Expression) -> list[exp.Expression]:
        """`key` is not the id of a customer who registers after `now` (an anti-join with a tiny set)."""
        condition = visibility.registered(self.schema)
        if condition is None:
            return []
        return [self.compiler.kept(("registered later", key.table, key.name), lambda: self.registered_later(key))]

    def registered_later(self, key: exp.Expression) -> exp.Expression:
        condition = visibility.registered(self.schema)
        id_column = col(self.column_source("customers", "id"), "c")
        later = exp.select(id_column, copy=False).from_(table(self.source("customers"), "c"), copy=False)
        later = later.where(and_(exp.Not(this=self.compiler.expr(condition, "customers")), not_null(id_column.copy())),
                            copy=False)
        return exp.Not(this=exp.In(this=key.copy(), query=later.subquery(copy=False)))

    def from_driver(self, select: exp.Select, driver: str, layout: Layout,
                    conditions: list[exp.Expression]) -> exp.Select:
        """FROM one aggregate's customers, with the customer row and the other aggregates the select and the
        conditions read left-joined, keeping those who exist at `now` and meet the conditions."""
        key = col("customer_id", driver)
        read = tables_read([*select.expressions, *conditions])
        select = select.from_(table(driver), copy=False)
        # nothing else needs the customer row? then only its registration date: leave out who registers later
        exists = self.registered() if "c" in read else self.not_registered_later(key)
        for alias in ["c", *layout.joined]:
            # `others` only lists ids: nothing reads from it once the rows come from `driver`
            if alias in read and alias not in (driver, "others"):
                select = self.join_on_id(select, alias, key)
        # rows without a customer id (orders of nobody) make a group of their own: it is no customer
        return select.where(and_(not_null(key.copy()), *exists, *conditions), copy=False)

    def driven(self, layout: Layout, ctes, columns: Columns, where: exp.Expression) -> exp.Select:
        """Members drawn from one aggregate's customers, the customer row and other aggregates joined on."""
        ranked = self.same_population(layout.driver, where)
        if ranked is not None:
            # the members are exactly a population, already selected and ranked: read its CTE
            return _with(self.from_population(ranked, layout, columns), ctes)
        key = col("customer_id", layout.driver)
        select = exp.select(exp.alias_(key, ident("customer_id")), copy=False)
        select = select.select(*(exp.alias_(c, ident(n), copy=False) for n, c in columns), copy=False)
        return _with(self.with_populations(self.from_driver(select, layout.driver, layout, [where]), key), ctes)

    def same_population(self, driver: str, where: exp.Expression) -> Population | None:
        """The population whose customers are exactly those `where` selects from `driver`, if any."""
        for population in self.needs.populations.values():
            if AGG_CTE.get(population.driver) == driver and population.among == where:
                return population
        return None

    def from_population(self, ranked: Population, layout: Layout, columns: Columns) -> exp.Select:
        """SELECT the columns FROM a population's CTE, joining only the relations they read."""
        key = col("customer_id", ranked.alias)
        select = exp.select(exp.alias_(key, ident("customer_id")), copy=False)
        select = select.select(*(exp.alias_(c, ident(n), copy=False) for n, c in columns), copy=False)
        select = select.from_(table(ranked.alias), copy=False)
        read = tables_read(c for _, c in columns)
        others = (p.alias for p in self.needs.populations.values() if p is not ranked)
        for alias in ["c", *layout.joined, *others]:
            if alias in read and alias != "others":
                select = self.join_on_id(select, alias, key)
        return select

    def with_populations(self, select: exp.Select, key: exp.Expression) -> exp.Select:
        """The select with every population CTE left-joined on the customer id `key`."""
        for population in self.needs.populations.values():
            select = self.join_on_id(select, population.alias, key)
        return select


class _KeptByContent(MutableMapping):
    """Values by attribute name, kept under the content of the name's body and all it reaches."""

    def __init__(self, store: dict, reached) -> None:
        self.store, self.reached = store, reached

    def __getitem__(self, name: str):
        return self.store[("without rows", name, self.reached(name))]

    def __setitem__(self, name: str, value) -> None:
        self.store[("without rows", name, self.reached(name))] = value

    def __delitem__(self, name: str) -> None:
        del self.store[("without rows", name, self.reached(name))]

    def __iter__(self):
        raise TypeError("kept values are found by name only")

    def __len__(self) -> int:
        return len(self.store)


# a join's kind as sqlglot's parser reads it from `LEFT JOIN` ...: built directly, nothing is parsed
_JOIN_KINDS = {"left": {"side": "LEFT"}, "full": {"side": "FULL"}, "inner": {"kind": "INNER"}}


def _join(select: exp.Select, source: exp.Expression, on: exp.Expression, kind: str) -> exp.Select:
    """`select` joined with `source` on `on` (`kind`: left, full or inner), in place."""
    select.append("joins", exp.Join(this=source, on=on, **_JOIN_KINDS[kind]))
    return select


def _with(select: exp.Select, ctes: list[tuple[str, exp.Expression]]) -> exp.Select:
    for name, body in ctes:
        select = select.with_(ident(name), as_=body, copy=False)
    return select
