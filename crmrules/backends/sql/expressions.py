"""The expression compiler: a checked AST expression, in one row scope, to a sqlglot expression.

Scopes are the tables rows come from: "customers" (one value per customer),
"orders", "order_items", "events" (one per row, inside an aggregate). An
aggregate or an `ntile` met on the way is not computed here: it is recorded in
`Needs` (which CTE computes it, under which column) and compiled to a reference
to that column; the query planner builds the CTEs from `Needs` afterwards.

SQL's own three-valued logic is the language's, so conditions translate one to
one. Time windows are comparisons with timestamp literals computed from `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.backends.sql.dialect import SqlDialect, and_, case_when, col, ident, not_null, number, or_, paren
from crmrules.backends.runtime import first_last_columns
from crmrules.backends.sql.compile_memo import Entry, MemoSpace, copy_of, mark, unmarked_copy
from crmrules.backends.sql.functions import BUILDERS, CallArgs
from crmrules.backends.sql.query_cache import describe
from crmrules.compiler.defaults import TOTAL, empty_value
from crmrules.compiler.never_null import never_null
from crmrules.compiler.pipeline import Program
from crmrules.compiler.query_shape import may_rank_without_rows, required_table
from crmrules.compiler.ranking_key import ranking_key
from crmrules.context import EvaluationContext
from crmrules.errors import InternalError, UnsupportedFeatureError

# aliases of the relations rows come from, by the table in scope
ROW_ALIAS = {"customers": "c", "orders": "o", "order_items": "i", "events": "e"}
# the CTE computing each table's aggregates per customer
AGG_CTE = {"orders": "o_agg", "order_items": "i_agg", "events": "e_agg"}
# nodes whose SQL is kept between queries (`compile_memo`): what a catalogue name compiles to, and, outside a
# tree being kept (each level would copy and key the whole of what it holds again), an aggregate or the arithmetic
# around aggregates and names (an average, a ratio)
_MEMOISED_NAMES = (ast.AttributeRef, ast.SegmentRef)
_MEMOISED_WITH_AGGREGATES = (ast.Arith, ast.Call)
_COMPARE = {ast.CompareOp.EQ: exp.EQ, ast.CompareOp.NE: exp.NEQ, ast.CompareOp.LT: exp.LT,
            ast.CompareOp.LE: exp.LTE, ast.CompareOp.GT: exp.GT, ast.CompareOp.GE: exp.GTE}


def _reads_aggregates(node: ast.Expr) -> bool:
    return any(isinstance(n, (ast.Aggregate, ast.AttributeRef, ast.Ntile)) for n in ast.walk(node))


@dataclass
class Aggregates:
    """The aggregates one CTE computes, deduplicated: the same aggregate written twice is computed once."""

    alias: str
    columns: dict[ast.Aggregate, str] = field(default_factory=dict)
    expressions: list[exp.Expression] = field(default_factory=list)
    filters: list[exp.Expression | None] = field(default_factory=list)

    def add(self, node: ast.Aggregate, build, row_filter) -> str:
        """The column computing `node`, added (with the rows it reads) the first time it is asked for."""
        name = self.columns.get(node)
        if name is None:
            name = self.columns[node] = f"a{len(self.columns)}"
            self.expressions.append(exp.alias_(build(), ident(name), copy=False))
            self.filters.append(row_filter())
        return name

    def copied(self) -> Aggregates:
        return Aggregates(self.alias, dict(self.columns), [unmarked_copy(e) for e in self.expressions],
                          [None if f is None else unmarked_copy(f) for f in self.filters])


@dataclass(frozen=True)
class Tile:
    """One ranked value of a population: NTILE(buckets) over `value` (`score`: tie-respecting), in `column`."""

    buckets: int
    value: exp.Expression  # what customers are sorted by: the value, or a key that orders alike (`ranking_key`)
    column: str
    never_null: bool  # customers without a value need no partition of their own
    ties: bool = False  # `score`: 1 + buckets × (RANK() - 1) DIV COUNT(*), equal values share a tile
    descending: bool = False  # the key runs the other way: the highest key ranks lowest
    key_type: t.Type | None = None  # the key's type: text is sorted as the language orders it


@dataclass
class Population:
    """The customers one `among` condition selects, and the tiles ranked over them (one CTE)."""

    alias: str
    among: exp.Expression
    ranks_rowless: bool  # may take a customer who has no rows anywhere (then every id is gathered)
    driver: str | None = None  # a table every customer of the population has rows in
    tiles: dict[ast.Ntile, Tile] = field(default_factory=dict)


@dataclass(frozen=True)
class Top:
    """A `top` aggregate's own CTE: the value with the largest weight per customer."""

    alias: str
    value: exp.Expression
    weight: exp.Expression
    condition: exp.Expression | None


@dataclass(frozen=True)
class Pick:
    """A `first`/`last` aggregate's own CTE: per customer, the value of the row ordered first by `order`."""

    alias: str
    value: exp.Expression
    order: list[exp.Ordered]
    condition: exp.Expression


@dataclass
class Needs:
    """What the compiled expressions read besides the customer row: the planner turns it into CTEs."""

    customer_aggs: dict[str, Aggregates] = field(
        default_factory=lambda: {name: Aggregates(alias) for name, alias in AGG_CTE.items()})
    order_item_aggs: Aggregates = field(default_factory=lambda: Aggregates("oi_agg"))
    tops: dict[ast.Aggregate, Top | Pick] = field(default_factory=dict)  # `top`, `first` and `last`
    # `top` over an order's own items, inside `orders: ...` or `orders where ...`: one CTE per order each
    order_tops: dict[ast.Aggregate, Top] = field(default_factory=dict)
    populations: dict[ast.Expr, Population] = field(default_factory=dict)
    # every need recorded, in order (`ExpressionCompiler.record`), and which sequence that is (`compile_memo`)
    journal: list[tuple] = field(default_factory=list)
    state: int = 0

    def copied(self) -> Needs:
        """The same needs with every tree copied: the planner rewrites some while building the CTEs."""
        needs = Needs(order_item_aggs=self.order_item_aggs.copied(), order_tops={
            node: _copied(top) for node, top in self.order_tops.items()},
            tops={node: _copied(top) for node, top in self.tops.items()})
        needs.customer_aggs = {name: aggregates.copied() for name, aggregates in self.customer_aggs.items()}
        for among, population in self.populations.items():
            needs.populations[among] = Population(
                population.alias, unmarked_copy(population.among), population.ranks_rowless, population.driver,
                {node: _copied(tile) for node, tile in population.tiles.items()})
        return needs


def _copied(value):
    """A frozen dataclass of trees (`Top`, `Pick`, `Tile`) with each tree copied."""
    changes = {}
    for name in value.__dataclass_fields__:
        item = getattr(value, name)
        if isinstance(item, exp.Expression):
            changes[name] = unmarked_copy(item)
        elif isinstance(item, list):
            changes[name] = [unmarked_copy(part) for part in item]
    return replace(value, **changes)


class ExpressionCompiler:
    """Compiles expressions of one checked program for one dialect and context, recording what they need."""

    def __init__(self, program: Program, dialect: SqlDialect, ctx: EvaluationContext, memo: MemoSpace | None = None):
        self.program = program
        self.schema = program.schema
        self.dialect = dialect
        self.ctx = ctx
        self.needs = Needs()
        self.memo = memo  # the trees kept from earlier queries of the same context, if any
        self.building = 0  # > 0 while a tree for the memo is built: kept trees it holds are copies
        self._placed: set[int] = set()  # the kept trees already in this query (by the entry's id)
        self._reached: dict[str, frozenset] = {}

    # ------------------------------------------------------------------ the memo
    def node_key(self, node: ast.Expr) -> tuple:
        """A node's content and the checked bodies of every attribute and segment it reaches."""
        if isinstance(node, (ast.AttributeRef, ast.SegmentRef)):
            return type(node).__name__, node.name, self.reached(node.name)
        text = repr(node)
        if "AttributeRef(" not in text and "SegmentRef(" not in text:  # most aggregates: no walk needed
            return text, frozenset()
        names = {n.name for n in ast.walk(node) if isinstance(n, (ast.AttributeRef, ast.SegmentRef))}
        return text, frozenset().union(*(self.reached(name) for name in names))

    def reached(self, name: str) -> frozenset:
        """(name, body) of an attribute or segment and of every one it uses, directly or not."""
        found = self._reached.get(name)
        if found is None:
            parts, pending, seen = set(), [name], {name}
            while pending:
                current = pending.pop()
                decl = self.program.attributes.get(current) or self.program.segments.get(current)
                text, uses = describe(decl.body)
                parts.add((current, text))
                pending.extend(uses - seen)
                seen |= uses
            found = self._reached[name] = frozenset(parts)
        return found

    def record(self, event: tuple, key: tuple) -> None:
        """Note a need the query gained (`key`: what it is, by content), for the memo to replay it."""
        self.needs.journal.append(event)
        if self.memo is not None:
            self.needs.state = self.memo.state_after(self.needs.state, key)

    def replay(self, event: tuple) -> None:
        """Record again a need recorded with a kept tree."""
        needs = self.needs
        match event:
            case ("agg", table_name, node, name, expression, row_filter):
                target = needs.order_item_aggs if table_name is None else needs.customer_aggs[table_name]
                target.columns[node] = name
                target.expressions.append(expression)
                target.filters.append(row_filter)
            case ("top", per_order, node, found):
                (needs.order_tops if per_order else needs.tops)[node] = found
            case ("population", among, population):
                needs.populations[among] = Population(population.alias, population.among, False, population.driver)
            case ("tile", among, node, tile, rowless):
                population = needs.populations[among]
                population.tiles[node] = tile
                population.ranks_rowless = population.ranks_rowless or rowless
        needs.journal.append(event)

    def handed(self, entry: Entry):
        """A kept tree to place in this query: a copy when it is there already or goes into another kept tree."""
        if self.building or id(entry) in self._placed:
            return copy_of(entry.tree)
        self._placed.add(id(entry))
        return entry.tree

    def kept(self, key: tuple, build):
        """A tree that records no needs, kept under `key` (the memo's context is the rest of its key)."""
        if self.memo is None:
            return build()
        return self.handed(self.memo.kept(key, build))

    def memoised(self, node: ast.Expr, scope: str) -> exp.Expression:
        """`node` in `scope`, from the memo when compiled before in the same context after the same needs."""
        needs, memo = self.needs, self.memo
        key = (self.node_key(node), scope, needs.state)
        entry = memo.entries.get(key)
        if entry is not None:
            for event in entry.events:
                self.replay(event)
            needs.state = entry.after
            return self.handed(entry)
        start = len(needs.journal)
        self.building += 1
        try:
            tree = self._expr(node, scope)
        finally:
            self.building -= 1
        entry = memo.store(key, Entry(mark(tree), tuple(needs.journal[start:]), needs.state))
        return self.handed(entry)

    def row_column(self, table_name: str, name: str) -> exp.Expression:
        """A column of the row in scope, read in the engine's representation of its type."""
        column = self.schema.column(table_name, name)
        ref = col(column.source, ROW_ALIAS[table_name])
        if column.type != t.DECIMAL:
            return ref
        return self.dialect.decimal_column(ref, f"{table_name}.{name}")

    def flag(self, condition: ast.Expr) -> exp.Expression:
        """A condition as a definite boolean, unknown counting as false: a segment's membership."""
        return exp.Coalesce(this=self.expr(condition, "customers"), expressions=[self.dialect.boolean(False)])

    def expr(self, node: ast.Expr, scope: str) -> exp.Expression:
        """`node` evaluated in `scope`; an unsupported construct's error carries the node's span."""
        try:
            if self.memo is not None and (isinstance(node, _MEMOISED_NAMES) or not self.building and (
                    isinstance(node, ast.Aggregate)
                    or isinstance(node, _MEMOISED_WITH_AGGREGATES) and _reads_aggregates(node))):
                return self.memoised(node, scope)
            return self._expr(node, scope)
        except UnsupportedFeatureError as error:
            if error.span is None:
                error.span = node.span
            raise

    def _expr(self, node: ast.Expr, scope: str) -> exp.Expression:  # noqa: C901 - one case per node kind
        d = self.dialect
        match node:
            case ast.Literal(value=value):
                return self.literal(value)
            case ast.ListLiteral():
                raise InternalError("list literals are compiled by `in`", node.span)
            case ast.Column(table=table_name, name=name):
                return self.row_column(table_name, name)
            case ast.Now():
                return d.timestamp(self.ctx.instant)
            case ast.WindowStart(duration=duration):
                return d.timestamp(self.ctx.window_start(duration))
            case ast.AttributeRef(name=name):
                return paren(self.expr(self.program.attributes[name].body, "customers"))
            case ast.SegmentRef(name=name):
                return paren(self.flag(self.program.segments[name].body))
            case ast.And(operands=ops):
                return paren(and_(*(self.expr(o, scope) for o in ops)))
            case ast.Or(operands=ops):
                return paren(or_(*(self.expr(o, scope) for o in ops)))
            case ast.Not(operand=op):
                return exp.Not(this=paren(self.expr(op, scope)))
            case ast.SetOp(op=op, left=left, right=right):
                a, b = self.flag(left), self.flag(right)
                if op == ast.SetOpKind.UNION:
                    return paren(or_(a, b))
                if op == ast.SetOpKind.INTERSECT:
                    return paren(and_(a, b))
                return paren(and_(a, exp.Not(this=b)))
            case ast.Compare(op=op, left=left, right=right):
                a, b = self.pair(left, right, scope)
                if op not in (ast.CompareOp.EQ, ast.CompareOp.NE):  # (a deterministic collation's `=` is byte-wise)
                    a = self.dialect.text_order(a, left.type)
                return _COMPARE[op](this=a, expression=b)
            case ast.IsNull(operand=op, negated=negated):
                value = self.expr(op, scope)
                test = exp.Is(this=value if isinstance(value, exp.Column) else paren(value), expression=exp.Null())
                return exp.Not(this=test) if negated else test
            case ast.In():
                return self.membership_test(node, scope)
            case ast.TextOp(op=op, left=left, right=right):
                a = self.expr(left, scope)
                if op == ast.TextOpKind.MATCHES:
                    return d.regex_search(a, right.value, node)
                b = self.expr(right, scope)
                return d.contains_text(a, b) if op == ast.TextOpKind.CONTAINS else d.starts_with(a, b)
            case ast.Arith():
                return self.arith(node, scope)
            case ast.Negate(operand=op):
                return exp.Neg(this=paren(self.expr(op, scope)))
            case ast.Call(name=name, args=args):
                compiled = [self.expr(a, scope) for a in args]
                return BUILDERS[name](CallArgs(node, compiled, [a.type for a in args], d, self.ctx.instant))
            case ast.Aggregate():
                return self.aggregate_ref(node, scope)
            case ast.Ntile():
                return self.ntile_ref(node)
        raise InternalError(f"the SQL backend cannot compile {type(node).__name__}", node.span)

    def literal(self, value) -> exp.Expression:
        """A constant in the dialect's representation of its type."""
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
            case list() | tuple() if not value:
                return d.empty_list(t.STRING)
            case ast.Duration():
                # a duration is only ever a setting's value (never compared nor computed with): it travels
                # as its text, `30d`, and `dialect.read` gives it back as the Duration the memory engine has
                return exp.Literal.string(str(value))
        raise InternalError(f"no SQL literal for {value!r}")

    def pair(self, left: ast.Expr, right: ast.Expr, scope: str) -> tuple[exp.Expression, exp.Expression]:
        """Two operands in a common representation: dates widened to timestamps, ints to decimals."""
        a, b = self.expr(left, scope), self.expr(right, scope)
        kinds = {left.type, right.type}
        if kinds == {t.DATE, t.TIMESTAMP}:
            a = self.dialect.to_timestamp(a) if left.type == t.DATE else a
            b = self.dialect.to_timestamp(b) if right.type == t.DATE else b
        elif kinds == {t.INT, t.DECIMAL}:
            a = self.as_decimal(a, left.type)
            b = self.as_decimal(b, right.type)
        return a, b

    def arith(self, node: ast.Arith, scope: str) -> exp.Expression:
        """Arithmetic, with the dialect's exact division, multiplication and date shifts."""
        d = self.dialect
        if node.right.type == t.DURATION:
            sign = 1 if node.op == ast.ArithOp.ADD else -1
            return d.shift(self.expr(node.left, scope), node.right.value, sign, node.left.type, node.type)
        if node.op == ast.ArithOp.DIV:
            divide = d.divide_by_whole if node.right.type == t.INT else d.divide
            return divide(self.as_decimal(self.expr(node.left, scope), node.left.type),
                          self.as_decimal(self.expr(node.right, scope), node.right.type))
        if node.op == ast.ArithOp.MUL:
            # an int times a decimal needs no conversion: scaled decimals stay scaled
            return paren(d.multiply(self.expr(node.left, scope), self.expr(node.right, scope),
                                    node.left.type, node.right.type))
        a, b = self.pair(node.left, node.right, scope)
        if node.op == ast.ArithOp.MOD:
            return d.modulo(a, b)
        operator = exp.Add if node.op == ast.ArithOp.ADD else exp.Sub
        return paren(d.exact(operator(this=a, expression=b), node.type))

    def as_decimal(self, value: exp.Expression, value_type: t.Type) -> exp.Expression:
        """An int value used where a decimal is expected."""
        return self.dialect.int_as_decimal(value) if value_type == t.INT else value

    def membership_test(self, node: ast.In, scope: str) -> exp.Expression:
        """`needle in haystack`: a literal list becomes SQL's IN, a list value the dialect's search."""
        d = self.dialect
        needle = self.expr(node.needle, scope)
        element = t.element_of(node.haystack.type)
        widen = {node.needle.type, element} == {t.DATE, t.TIMESTAMP}
        if widen and node.needle.type == t.DATE:
            needle = d.to_timestamp(needle)
        if isinstance(node.haystack, ast.ListLiteral):
            if not node.haystack.items:
                # `x in []` is false, and unknown when x is null
                test = case_when(exp.Is(this=needle, expression=exp.Null()), exp.Null(), otherwise=d.boolean(False))
            else:
                items = []
                for item in node.haystack.items:
                    value = self.expr(item, scope)
                    items.append(d.to_timestamp(value) if widen and item.type == t.DATE else value)
                test = exp.In(this=needle, expressions=items)
            return exp.Not(this=paren(test)) if node.negated else test
        haystack = self.expr(node.haystack, scope)
        # a null list or needle is unknown; null elements never match, as in memory (a side that is never
        # null, such as a written value or an aggregated list, needs no test)
        may_be_null = [not (never_null(operand) or isinstance(operand, ast.Literal) and operand.value is not None)
                       for operand in (node.haystack, node.needle)]
        test = d.list_membership(haystack, needle, *may_be_null)
        return exp.Not(this=paren(test)) if node.negated else test

    # ------------------------------------------------------------- aggregates
    def aggregate_ref(self, node: ast.Aggregate, scope: str) -> exp.Expression:
        """A reference to an aggregate computed in its table's CTE, with the empty-set value applied."""
        if scope == "customers":
            target, alias = self.needs.customer_aggs[node.table], AGG_CTE[node.table]
        elif scope == "orders" and node.table == "order_items":
            target, alias = self.needs.order_item_aggs, "oi"
        else:
            raise InternalError(f"no aggregate over {node.table} from {scope}", node.span)
        if node.func in (ast.AggFunc.TOP, ast.AggFunc.FIRST, ast.AggFunc.LAST):
            if scope != "customers" and node.func != ast.AggFunc.TOP:
                raise InternalError(f"`{node.func}` is only computed per customer", node.span)
            return self.top_ref(node, self.needs.tops if scope == "customers" else self.needs.order_tops)
        known = len(target.columns)
        ref = col(target.add(node, lambda: self.aggregate(node), lambda: self.row_filter(node)), alias)
        if len(target.columns) > known:
            table_name = None if target is self.needs.order_item_aggs else node.table
            self.record(("agg", table_name, node, ref.name, target.expressions[-1], target.filters[-1]),
                        ("agg", table_name, self.node_key(node) if self.memo is not None else None))
        if node.func in (ast.AggFunc.ANY, ast.AggFunc.NONE):
            # both are computed as MAX(hit): 1 when some row counts, null over no rows
            hit = 0 if empty_value(node.func, node.type) else 1
            return exp.EQ(this=exp.Coalesce(this=ref, expressions=[number(0)]), expression=number(hit))
        if node.func in TOTAL:
            return exp.Coalesce(this=ref, expressions=[self.empty(node)])
        return ref

    def empty(self, node: ast.Aggregate) -> exp.Expression:
        """The SQL for an aggregate's value over no rows (`defaults.empty_value`)."""
        value = empty_value(node.func, node.type)
        if value == [] and isinstance(value, list):
            return self.dialect.empty_list(t.element_of(node.type))
        if isinstance(value, Decimal):
            return self.dialect.decimal_zero()
        return self.literal(value)

    def top_ref(self, node: ast.Aggregate, tops: dict) -> exp.Expression:
        """The customer's (`tops`: the order's) top value, from a CTE of its own: one row per customer (order)."""
        found = tops.get(node)
        prefix = "top" if tops is self.needs.tops else "oi_top"
        if found is not None:
            return col("value", found.alias)
        if node.func != ast.AggFunc.TOP:
            found = tops[node] = self.pick(node, f"{prefix}{len(tops)}")
        else:
            # ties go to the smallest value: by code point
            value = self.dialect.text_order(self.row_value(node), node.type)
            weight = self.expr(node.by, node.table) if node.by is not None else number(1)
            condition = self.expr(node.where, node.table) if node.where is not None else None
            found = tops[node] = Top(f"{prefix}{len(tops)}", value, weight, condition)
        per_order = tops is self.needs.order_tops
        self.record(("top", per_order, node, found), ("top", per_order, self.memo and self.node_key(node)))
        return col("value", found.alias)

    def pick(self, node: ast.Aggregate, alias: str) -> Pick:
        """`first`/`last`: rows with a time and a value, by time (latest first for `last`), then id as text,
        then value (`runtime.first_last_columns`, `runtime.agg_first`)."""
        moment, key = first_last_columns(self.schema, node.table)
        value = self.row_value(node)
        when = self.row_column(node.table, moment)
        order = [exp.Ordered(this=when, desc=node.func == ast.AggFunc.LAST)]
        if key is not None:
            key_column = self.row_column(node.table, key)
            if self.schema.column(node.table, key).type != t.STRING:
                key_column = self.dialect.text(key_column)
            key_text = exp.Coalesce(this=key_column, expressions=[exp.Literal.string("")])
            order.append(exp.Ordered(this=self.dialect.text_order(key_text, t.STRING)))
        order.append(exp.Ordered(this=self.dialect.text_order(value.copy(), node.type)))
        condition = and_(not_null(when.copy()), not_null(value.copy()),
                         *([self.expr(node.where, node.table)] if node.where is not None else []))
        return Pick(alias, value, order, condition)

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
            condition = and_(condition, not_null(self.row_value(node)))
        return condition

    def aggregate(self, node: ast.Aggregate) -> exp.Expression:
        """The aggregate over its table's rows, inside that table's CTE."""
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
                return exp.Min(this=self.dialect.text_order(only_where(value), node.type))
            case ast.AggFunc.MAX:
                return exp.Max(this=self.dialect.text_order(only_where(value), node.type))
            case ast.AggFunc.ANY | ast.AggFunc.NONE:
                hit = case_when(condition, number(1), otherwise=number(0)) if condition is not None else number(1)
                return exp.Max(this=hit)
            case ast.AggFunc.DISTINCT:
                return self.dialect.distinct_list(value, condition)
        raise InternalError(f"no SQL for aggregate {node.func}", node.span)

    # ------------------------------------------------------------------ ntiles
    def ntile_ref(self, node: ast.Ntile) -> exp.Expression:
        """A customer's tile, computed in the CTE of its population; null outside it."""
        population = self.needs.populations.get(node.among)
        if population is None:
            alias = f"pop{len(self.needs.populations)}"
            among = self.expr(node.among, "customers")
            driver = required_table(node.among, self.program.attributes)
            population = self.needs.populations[node.among] = Population(alias, among, False, driver)
            self.record(("population", node.among, population),
                        ("population", self.memo and self.node_key(node.among)))
        tile = population.tiles.get(node)
        if tile is None:
            key, descending = ranking_key(node.value, self.program.attributes)
            tile = population.tiles[node] = Tile(node.buckets, self.expr(key, "customers"), f"t{len(population.tiles)}",
                                                 never_null(node.value, self.program.attributes), node.ties,
                                                 descending, key.type)
            rowless = may_rank_without_rows(node, self.program, self.ctx)
            population.ranks_rowless = population.ranks_rowless or rowless
            self.record(("tile", node.among, node, tile, rowless),
                        ("tile", self.memo and (self.node_key(node.among), self.node_key(node)), rowless))
        return col(tile.column, population.alias)
