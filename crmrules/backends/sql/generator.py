"""Compile checked segments into one SQL query, as sqlglot expression trees.

Shape of the query (all identifiers quoted):

    WITH vo AS (visible orders), ve AS (visible events),
         oi_agg AS (item aggregates per order, for conditions inside `orders where ...`),
         o_agg / i_agg / e_agg AS (each table's aggregates per customer, computed once
                                   and shared by every clause and segment that uses them),
         ids AS (every customer id: customers ∪ visible orders ∪ visible events)
    SELECT ids.id AS customer_id, COALESCE(<segment 1>, FALSE) AS "segment 1", ...
    FROM ids LEFT JOIN customers ... LEFT JOIN o_agg ... LEFT JOIN i_agg ... LEFT JOIN e_agg ...

SQL's own three-valued logic is the language's, so conditions translate one to
one; a segment is true for a customer only when its condition is true.
Time windows become comparisons with timestamp literals computed from `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules import values
from crmrules.backends.sql.dialect import SqlDialect, number
from crmrules.compiler.pipeline import Program
from crmrules.errors import InternalError

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

    def add(self, node: ast.Aggregate, build) -> str:
        name = self.columns.get(node)
        if name is None:
            name = self.columns[node] = f"a{len(self.columns)}"
            self.expressions.append(exp.alias_(build(), ident(name)))
        return name


class SqlGenerator:
    """Builds the query for a set of segments of one checked program, for one dialect and `now`."""

    def __init__(self, program: Program, dialect: SqlDialect, now: datetime):
        self.program = program
        self.schema = program.schema
        self.dialect = dialect
        self.now = now
        self.customer_aggs = {name: _Aggregates(alias) for name, alias in _AGG_CTE.items()}
        self.order_item_aggs = _Aggregates("oi_agg")

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
        """One SELECT with a boolean column per segment."""
        columns = [exp.alias_(col("id", "ids"), ident("customer_id"))]
        for name in segments:
            condition = self.membership(self.program.segments[name].body)
            columns.append(exp.alias_(condition, ident(name)))
        return self.assemble(columns, where=None)

    def members(self, segment: str) -> exp.Select:
        """A SELECT of the ids of one segment's members."""
        condition = self.membership(self.program.segments[segment].body)
        return self.assemble([exp.alias_(col("id", "ids"), ident("customer_id"))], where=condition)

    def membership(self, body: ast.Expr) -> exp.Expression:
        return exp.Coalesce(this=self.expr(body, "customers"), expressions=[self.dialect.boolean(False)])

    def assemble(self, columns: list[exp.Expression], where: exp.Expression | None) -> exp.Select:
        d = self.dialect
        now = d.timestamp(self.now)
        customers = self.schema.table("customers")
        orders_time = self.column_source("orders", "created_at")
        events_time = self.column_source("events", "at")

        def visible(table_name: str, time_column: str) -> exp.Select:
            moment = col(time_column)
            return exp.select("*").from_(table(self.source(table_name))).where(
                exp.or_(exp.LTE(this=moment, expression=now.copy()), exp.Is(this=moment.copy(), expression=exp.Null())))

        ctes: list[tuple[str, exp.Expression]] = [("vo", visible("orders", orders_time)),
                                                 ("ve", visible("events", events_time))]
        customer_id = self.column_source("orders", "customer_id")
        order_id = self.column_source("orders", "id")
        item_order_id = self.column_source("order_items", "order_id")
        if self.order_item_aggs.expressions:
            ctes.append(("oi_agg", exp.select(exp.alias_(col(item_order_id, "i"), ident("order_id")),
                                              *self.order_item_aggs.expressions)
                         .from_(table(self.source("order_items"), "i"))
                         .group_by(col(item_order_id, "i"))))
        orders_from = exp.select(exp.alias_(col(customer_id, "o"), ident("customer_id")),
                                 *self.customer_aggs["orders"].expressions).from_(table("vo", "o"))
        if self.order_item_aggs.expressions:
            orders_from = orders_from.join(table("oi_agg", "oi"), join_type="left",
                                           on=exp.EQ(this=col("order_id", "oi"), expression=col(order_id, "o")))
        aggregated = {}
        if self.customer_aggs["orders"].expressions:
            aggregated["orders"] = orders_from.group_by(col(customer_id, "o"))
        if self.customer_aggs["order_items"].expressions:
            aggregated["order_items"] = (
                exp.select(exp.alias_(col(customer_id, "o"), ident("customer_id")),
                           *self.customer_aggs["order_items"].expressions)
                .from_(table(self.source("order_items"), "i"))
                .join(table("vo", "o"), join_type="inner",
                      on=exp.EQ(this=col(item_order_id, "i"), expression=col(order_id, "o")))
                .group_by(col(customer_id, "o")))
        if self.customer_aggs["events"].expressions:
            event_customer = self.column_source("events", "customer_id")
            aggregated["events"] = (exp.select(exp.alias_(col(event_customer, "e"), ident("customer_id")),
                                               *self.customer_aggs["events"].expressions)
                                    .from_(table("ve", "e")).group_by(col(event_customer, "e")))
        for name, select in aggregated.items():
            ctes.append((_AGG_CTE[name], select))
        id_column = self.column_source("customers", "id")
        event_customer = self.column_source("events", "customer_id")
        ids = exp.union(
            exp.union(exp.select(exp.alias_(col(id_column), ident("id"))).from_(table(customers.source)),
                      exp.select(col(customer_id)).from_(table("vo")), distinct=True),
            exp.select(col(event_customer)).from_(table("ve")), distinct=True)
        ids = exp.select(col("id")).from_(ids.subquery(ident("u"))).where(_not_null(col("id")))
        ctes.append(("ids", ids))

        select = exp.select(*columns).from_(table("ids"))
        select = select.join(table(customers.source, "c"), join_type="left",
                             on=exp.EQ(this=col(id_column, "c"), expression=col("id", "ids")))
        for name in aggregated:
            alias = _AGG_CTE[name]
            select = select.join(table(alias), join_type="left",
                                 on=exp.EQ(this=col("customer_id", alias), expression=col("id", "ids")))
        registered = self.schema.column("customers", "registered_at")
        conditions = []
        if registered is not None:
            # a customer who registers after `now` does not exist yet
            moment = col(registered.source, "c")
            conditions.append(exp.or_(exp.Is(this=moment, expression=exp.Null()),
                                      exp.LTE(this=moment.copy(), expression=now.copy())))
        if where is not None:
            conditions.append(where)
        if conditions:
            select = select.where(exp.and_(*conditions))
        for name, body in ctes:
            select = select.with_(ident(name), as_=body)
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
                return exp.paren(self.expr(self.program.attributes[name].body, "customers"))
            case ast.SegmentRef(name=name):
                return exp.paren(self.membership(self.program.segments[name].body))
            case ast.And(operands=ops):
                return exp.paren(exp.and_(*(self.expr(o, scope) for o in ops)))
            case ast.Or(operands=ops):
                return exp.paren(exp.or_(*(self.expr(o, scope) for o in ops)))
            case ast.Not(operand=op):
                return exp.Not(this=exp.paren(self.expr(op, scope)))
            case ast.SetOp(op=op, left=left, right=right):
                a = exp.Coalesce(this=self.expr(left, scope), expressions=[d.boolean(False)])
                b = exp.Coalesce(this=self.expr(right, scope), expressions=[d.boolean(False)])
                if op == ast.SetOpKind.UNION:
                    return exp.paren(exp.or_(a, b))
                if op == ast.SetOpKind.INTERSECT:
                    return exp.paren(exp.and_(a, b))
                return exp.paren(exp.and_(a, exp.Not(this=b)))
            case ast.Compare(op=op, left=left, right=right):
                a, b = self.pair(left, right, scope)
                return _COMPARE[op](this=a, expression=b)
            case ast.Between(value=v, low=lo, high=hi):
                a, low = self.pair(v, lo, scope)
                a2, high = self.pair(v, hi, scope)
                return exp.paren(exp.and_(exp.GTE(this=a, expression=low), exp.LTE(this=a2, expression=high)))
            case ast.IsNull(operand=op, negated=negated):
                test = exp.Is(this=exp.paren(self.expr(op, scope)), expression=exp.Null())
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
                return exp.paren(exp.and_(exp.GT(this=moment, expression=d.timestamp(edge)),
                                          exp.LTE(this=moment.copy(), expression=d.timestamp(self.now))))
            case ast.Arith():
                return self.arith(node, scope)
            case ast.Negate(operand=op):
                return exp.Neg(this=exp.paren(self.expr(op, scope)))
            case ast.Call():
                return self.call(node, scope)
            case ast.Aggregate():
                return self.aggregate_ref(node, scope)
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
            return exp.paren(d.multiply(self.expr(node.left, scope), self.expr(node.right, scope),
                                        node.left.type, node.right.type))
        a, b = self.pair(node.left, node.right, scope)
        if node.op == ast.ArithOp.MOD:
            return d.modulo(a, b)
        operator = exp.Add if node.op == ast.ArithOp.ADD else exp.Sub
        return exp.paren(operator(this=a, expression=b))

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
                return exp.Case().when(args[0], then).else_(otherwise)
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
                test = exp.Case().when(exp.Is(this=needle, expression=exp.Null()), exp.Null()).else_(
                    d.boolean(False))
            else:
                items = []
                for item in node.haystack.items:
                    value = self.expr(item, scope)
                    items.append(d.to_timestamp(value) if widen and item.type == t.DATE else value)
                test = exp.In(this=needle, expressions=items)
            return exp.Not(this=exp.paren(test)) if node.negated else test
        haystack = self.expr(node.haystack, scope)
        # a null list or needle is unknown; null elements never match, as in memory
        test = exp.Case().when(exp.or_(exp.Is(this=needle, expression=exp.Null()),
                                       exp.Is(this=haystack, expression=exp.Null())), exp.Null()).else_(
            exp.Coalesce(this=d.list_contains(haystack.copy(), needle.copy()), expressions=[d.boolean(False)]))
        return exp.Not(this=exp.paren(test)) if node.negated else test

    # ------------------------------------------------------------- aggregates
    def aggregate_ref(self, node: ast.Aggregate, scope: str) -> exp.Expression:
        """A reference to an aggregate computed in its table's CTE, with the empty-set value applied."""
        if scope == "customers":
            target, alias = self.customer_aggs[node.table], _AGG_CTE[node.table]
        elif scope == "orders" and node.table == "order_items":
            target, alias = self.order_item_aggs, "oi"
        else:
            raise InternalError(f"no aggregate over {node.table} from {scope}", node.span)
        name = target.add(node, lambda: self.aggregate(node))
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

    def aggregate(self, node: ast.Aggregate) -> exp.Expression:
        """The aggregate over its table's rows, inside that table's CTE."""
        d = self.dialect
        condition = self.expr(node.where, node.table) if node.where is not None else None
        value = self.row_column(node.table, node.column) if node.column else None

        def only_where(inner: exp.Expression) -> exp.Expression:
            return exp.Case().when(condition.copy(), inner) if condition is not None else inner

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
            case ast.AggFunc.AVG:
                column_type = self.schema.column(node.table, node.column).type
                total = exp.Sum(this=only_where(value))
                count = exp.Count(this=only_where(value.copy()))
                return d.divide(self.as_decimal(total, column_type), self.as_decimal(count, t.INT))
            case ast.AggFunc.ANY | ast.AggFunc.NONE:
                hit = exp.Case().when(condition, number(1)).else_(number(0)) if condition is not None else number(1)
                return exp.Max(this=hit)
            case ast.AggFunc.DISTINCT:
                return d.distinct_list(value, condition)
        raise InternalError(f"no SQL for aggregate {node.func}", node.span)


_COMPARE = {ast.CompareOp.EQ: exp.EQ, ast.CompareOp.NE: exp.NEQ, ast.CompareOp.LT: exp.LT,
            ast.CompareOp.LE: exp.LTE, ast.CompareOp.GT: exp.GT, ast.CompareOp.GE: exp.GTE}
