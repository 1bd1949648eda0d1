"""The in-memory backend: compile a checked segment to Python source once, then call it per customer.

Three-valued logic is compiled away: for a condition `e` the generator emits
`T(e)`, true exactly when `e` is true, and `F(e)`, true exactly when `e` is
false; unknown is neither. `not e` swaps them, so evaluation never carries a
third value through `and`/`or` and never walks the tree.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from decimal import Decimal

from crmrules import ast
from crmrules import types as t
from crmrules import values
from crmrules.backends.customer_data import prepare_customer
from crmrules.compiler.never_null import never_null
from crmrules.compiler.pipeline import Program
from crmrules.errors import EvaluationError, InternalError

_OPS = {ast.CompareOp.EQ: "==", ast.CompareOp.NE: "!=", ast.CompareOp.LT: "<", ast.CompareOp.LE: "<=",
        ast.CompareOp.GT: ">", ast.CompareOp.GE: ">="}
_NEGATED = {ast.CompareOp.EQ: ast.CompareOp.NE, ast.CompareOp.NE: ast.CompareOp.EQ,
            ast.CompareOp.LT: ast.CompareOp.GE, ast.CompareOp.GE: ast.CompareOp.LT,
            ast.CompareOp.GT: ast.CompareOp.LE, ast.CompareOp.LE: ast.CompareOp.GT}
_ROW_TABLES = {"orders": ("_O", "orders"), "order_items": ("_I", None), "events": ("_E", "events")}
_PARTS = {"year": "year", "month": "month", "day": "day"}


def _sum(xs, zero):
    present = [x for x in xs if x is not None]
    return sum(present, zero) if present else zero


def _min(xs):
    present = [x for x in xs if x is not None]
    return min(present) if present else None


def _max(xs):
    present = [x for x in xs if x is not None]
    return max(present) if present else None


def _distinct(xs):
    return sorted({x for x in xs if x is not None})


def _top(pairs):
    # the value with the largest summed weight (a value whose weights are all null comes last), ties to the smallest
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


def _visible(rows, column, now):
    # rows dated after `now` do not exist yet; undated rows are always there
    return [r for r in rows or () if (at := r.get(column)) is None or at <= now]


def _to_date(x):
    return x.date() if isinstance(x, datetime) else x


def _tile(population, node, value, ranked, customer_id):
    if not ranked or value is None:
        return None
    if population is None:
        raise EvaluationError(
            "this rule ranks customers against the whole customer base (`ntile`, e.g. the RFM scores)",
            node.span, "pass `population=rules.population(data, as_of=...)`, or run it on a data set",
            code="E0602")
    return population.tile(node, value, str(customer_id))


_RUNTIME = {
    "Decimal": Decimal, "_sum": _sum, "_top": _top, "_min": _min, "_max": _max, "_distinct": _distinct,
    "_avg": values.average, "_tile": _tile,
    "_div": values.divide, "_mod": values.modulo, "_round": values.round_half_up, "_shift": values.shift,
    "_ts": values.as_timestamp, "_days": values.days_between, "_visible": _visible, "_to_date": _to_date,
}


class MemorySegment:
    """One segment compiled to a Python function; `matches(customer, now)` is the hot path."""

    __slots__ = ("name", "title", "source", "matches", "_program")

    def __init__(self, name: str, title: str | None, source: str, matches, program: Program):
        self.name = name
        self.title = title
        self.source = source
        self.matches = matches
        self._program = program

    def __repr__(self) -> str:
        return f"<segment {self.name}>"


def memory(program: Program, segment: str) -> MemorySegment:
    """Compile the named segment of a checked program for in-memory evaluation."""
    decl = program.segments[segment]
    generator = _Generator(program)
    body = generator.true(decl.body, "c")
    source = generator.module(body)
    namespace = _namespace(generator)
    schema = program.schema

    def prepare(customer):
        return prepare_customer(customer, schema)

    def retry(customer, now, error, population=None):
        # data of the wrong type: convert it and evaluate again, or name exactly what is wrong
        fixed = prepare(customer)
        if fixed is customer:
            raise InternalError(f"evaluation of segment `{segment}` failed: {error}") from error
        return namespace["matches"](fixed, now, population=population)

    namespace.update(_prepare=prepare, _retry=retry)
    exec(compile(source, f"<segment {segment}>", "exec"), namespace)  # noqa: S102 - our own generated code
    return MemorySegment(segment, decl.title, source, namespace["matches"], program)


def _namespace(generator: _Generator) -> dict:
    """The globals generated code runs in: the runtime helpers, its constants, and `_instant_of`."""
    namespace = dict(_RUNTIME)
    namespace.update(generator.constants)
    timezone, windows = generator.schema.timezone, tuple(generator.windows)

    def instant_of(now):
        # `now` and the window edges are computed once per distinct `now`, not per customer
        n = values.evaluation_instant(now, timezone)
        namespace["_last"] = last = (now, n, tuple(values.shift(n, d, -1) for d in windows))
        return last

    namespace.update(_last=(None, None, ()), _instant_of=instant_of)
    return namespace


def compile_values(program: Program, codes) -> callable:
    """`values(customer, now, population=None)` -> a tuple, from `codes(generator)` giving one Python
    expression per value; the customer must already have the schema's types (see prepare_customer)."""
    generator = _Generator(program)
    source = generator.values_module(codes(generator))
    namespace = _namespace(generator)
    exec(compile(source, "<values>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["values"]


def attribute_values(program: Program, exprs: list[ast.Expr]):
    """`values(customer, now, population=None)` -> the value of each expression for one customer."""
    return compile_values(program, lambda g: [g.value(e, "c") for e in exprs])


def population_inputs(program: Program, node: ast.Ntile):
    """`inputs(customer, now) -> (ranked, value)` for one `ntile`: whether the customer is in its
    population and the value it is ranked by."""
    compiled = compile_values(program, lambda g: [g.true(node.among, "c"), g.value(node.value, "c")])

    def inputs(customer, now):
        among, value = compiled(customer, now)
        return among and value is not None, value

    return inputs


class _Generator:
    """Emits Python expressions for T(e), F(e) and V(e)."""

    def __init__(self, program: Program):
        self.program = program
        self.schema = program.schema
        self.constants: dict[str, object] = {}
        self.windows: list[ast.Duration] = []
        self.tables: set[str] = set()
        self.counter = itertools.count()

    # ----------------------------------------------------------------- plumbing
    def temp(self) -> str:
        return f"_v{next(self.counter)}"

    def constant(self, value) -> str:
        if value is None or isinstance(value, (bool, int, str)):
            return repr(value)
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def prologue(self) -> list[str]:
        """Lines that gather the visible rows of the tables the code reads."""
        prologue = []
        if "orders" in self.tables or "order_items" in self.tables:
            created = self.schema.column("orders", "created_at").source
            prologue.append(f"_O = _visible(c.get('orders'), {created!r}, n)")
        if "order_items" in self.tables:
            prologue.append("_I = [i for o in _O for i in (o.get('items') or ())]")
        if "events" in self.tables:
            prologue.append(f"_E = _visible(c.get('events'), {self.schema.column('events', 'at').source!r}, n)")
        return prologue

    def values_module(self, codes: list[str]) -> str:
        """`values(c, now, population)`: a tuple of the given expressions for one customer."""
        lines = "\n".join("    " + line for line in self.prologue())
        return f"""def values(c, now, population=None):
    P = population
    last = _last
    if last[0] is not now:
        last = _instant_of(now)
    n = last[1]
    K = last[2]
{lines}
    return ({', '.join(codes)},)
"""

    def module(self, body: str) -> str:
        """The generated module: `matches` with the rule inline, and a slow path for bad data."""
        prologue = self.prologue()
        prologue.append(f"if not {body}:")
        prologue.append("    return False")
        registered = self.schema.column("customers", "registered_at")
        if registered is not None:
            # a customer who registers after `now` does not exist yet
            prologue.append(f"return (r := c.get({registered.source!r})) is None or r <= n")
        else:
            prologue.append("return True")
        inline = "\n".join("        " + line for line in prologue)
        return f"""def matches(customer, now, validate=False, population=None):
    P = population
    last = _last
    if last[0] is not now:
        last = _instant_of(now)
    if validate:
        customer = _prepare(customer)
    c = customer
    n = last[1]
    K = last[2]
    try:
{inline}
    except (TypeError, AttributeError, ValueError) as error:
        return _retry(customer, now, error, P)
"""

    def column(self, node: ast.Column, row: str) -> str:
        return f"{row}.get({self.schema.column(node.table, node.name).source!r})"

    def rows(self, table: str, row: str) -> str:
        if table == "order_items" and row != "c":
            return f"({row}.get('items') or ())"
        self.tables.add(table)
        return _ROW_TABLES[table][0]

    def value_pair(self, left: ast.Expr, right: ast.Expr, row: str) -> tuple[str, str, list[str]]:
        """Expressions for two operands and the null checks they need, dates widened to timestamps."""
        widen = {left.type, right.type} == {t.DATE, t.TIMESTAMP}
        checks, names = [], []
        for side in (left, right):
            if isinstance(side, ast.Literal) and side.value is not None:
                value = values.as_timestamp(side.value) if widen else side.value
                names.append(self.constant(value))
                continue
            if never_null(side) and not widen:
                names.append(self.value(side, row))
                continue
            var = self.temp()
            expr = self.value(side, row)
            checks.append(f"({var} := {'_ts(' + expr + ')' if widen else expr}) is not None")
            names.append(var)
        return names[0], names[1], checks

    # --------------------------------------------------------------- conditions
    def true(self, node: ast.Expr, row: str) -> str:  # noqa: C901 - one case per node kind
        match node:
            case ast.Literal(value=value):
                return "True" if value is True else "False"
            case ast.And(operands=ops):
                return "(" + " and ".join(self.true(op, row) for op in ops) + ")"
            case ast.Or(operands=ops):
                return "(" + " or ".join(self.true(op, row) for op in ops) + ")"
            case ast.Not(operand=op):
                return self.false(op, row)
            case ast.Compare(op=op, left=left, right=right):
                a, b, checks = self.value_pair(left, right, row)
                return "(" + " and ".join([*checks, f"{a} {_OPS[op]} {b}"]) + ")"
            case ast.Between(value=v, low=lo, high=hi):
                return self.true(self.between(v, lo, hi), row)
            case ast.IsNull(operand=op, negated=negated):
                return f"({self.value(op, row)} is {'not ' if negated else ''}None)"
            case ast.In(negated=True):
                return self.membership(node, row, want_in=False)
            case ast.In():
                return self.membership(node, row, want_in=True)
            case ast.TextOp():
                return self.text(node, row, want=True)
            case ast.Within(value=v, duration=ast.Literal(value=duration)):
                var = self.temp()
                window = self.window(duration)
                return f"(({var} := {self.timestamp(v, row)}) is not None and {window} < {var} <= n)"
            case ast.SetOp(op=op, left=left, right=right):
                a, b = self.true(left, row), self.true(right, row)
                if op == ast.SetOpKind.UNION:
                    return f"({a} or {b})"
                if op == ast.SetOpKind.INTERSECT:
                    return f"({a} and {b})"
                return f"({a} and not {b})"
            case ast.SegmentRef(name=name):
                return self.true(self.program.segments[name].body, "c")
            case ast.AttributeRef(name=name):
                return self.true(self.program.attributes[name].body, "c")
            case ast.Aggregate(func=ast.AggFunc.ANY | ast.AggFunc.NONE):
                return self.value(node, row)
        return f"({self.value(node, row)} is True)"

    def false(self, node: ast.Expr, row: str) -> str:
        match node:
            case ast.Literal(value=value):
                return "True" if value is False else "False"
            case ast.And(operands=ops):
                return "(" + " or ".join(self.false(op, row) for op in ops) + ")"
            case ast.Or(operands=ops):
                return "(" + " and ".join(self.false(op, row) for op in ops) + ")"
            case ast.Not(operand=op):
                return self.true(op, row)
            case ast.Compare(op=op):
                return self.true(ast.Compare(op=_NEGATED[op], left=node.left, right=node.right), row)
            case ast.Between(value=v, low=lo, high=hi):
                return self.false(self.between(v, lo, hi), row)
            case ast.IsNull(operand=op, negated=negated):
                return self.true(ast.IsNull(operand=op, negated=not negated), row)
            case ast.In(negated=negated):
                return self.membership(node, row, want_in=negated)
            case ast.TextOp():
                return self.text(node, row, want=False)
            case ast.Within(value=v, duration=ast.Literal(value=duration)):
                var = self.temp()
                window = self.window(duration)
                return f"(({var} := {self.timestamp(v, row)}) is not None and not ({window} < {var} <= n))"
            case ast.SetOp() | ast.SegmentRef() | ast.Aggregate(func=ast.AggFunc.ANY | ast.AggFunc.NONE):
                return f"(not {self.true(node, row)})"
            case ast.AttributeRef(name=name):
                return self.false(self.program.attributes[name].body, "c")
        return f"({self.value(node, row)} is False)"

    def between(self, v: ast.Expr, lo: ast.Expr, hi: ast.Expr) -> ast.Expr:
        # SQL defines `v between lo and hi` as `v >= lo and v <= hi`, unknowns included
        return ast.And(operands=(ast.Compare(op=ast.CompareOp.GE, left=v, right=lo),
                                 ast.Compare(op=ast.CompareOp.LE, left=v, right=hi)))

    def window(self, duration: ast.Duration) -> str:
        if duration not in self.windows:
            self.windows.append(duration)
        return f"K[{self.windows.index(duration)}]"

    def timestamp(self, node: ast.Expr, row: str) -> str:
        expr = self.value(node, row)
        return f"_ts({expr})" if node.type == t.DATE else expr

    def membership(self, node: ast.In, row: str, want_in: bool) -> str:
        element = t.element_of(node.haystack.type)
        widen = {node.needle.type, element} == {t.DATE, t.TIMESTAMP}
        needle, hay = self.temp(), self.temp()
        needle_expr = self.value(node.needle, row)
        if widen:
            needle_expr = f"_ts({needle_expr})"
        needle_check = f"({needle} := {needle_expr}) is not None"
        if isinstance(node.needle, ast.Literal) and not widen:
            needle, needle_check = needle_expr, "True"
        test = "in" if want_in else "not in"
        if isinstance(node.haystack, ast.ListLiteral):
            items = [i.value if isinstance(i, ast.Literal) else None for i in node.haystack.items]
            if all(isinstance(i, ast.Literal) for i in node.haystack.items):
                converted = [values.as_timestamp(i) if widen else i for i in items]
                return f"({needle_check} and {needle} {test} {self.constant(frozenset(converted))})"
        hay_expr = self.value(node.haystack, row)
        if widen:
            hay_expr = f"[_ts(x) for x in {hay_expr}]"
        return f"({needle_check} and ({hay} := {hay_expr}) is not None and {needle} {test} {hay})"

    def text(self, node: ast.TextOp, row: str, want: bool) -> str:
        a, b = self.temp(), self.temp()
        left = self.value(node.left, row)
        if node.op == ast.TextOpKind.MATCHES:
            pattern = self.constant(re.compile(node.right.value))
            test = f"{pattern}.search({a}) is not None"
            checks = f"({a} := {left}) is not None"
        else:
            test = f"{b} in {a}" if node.op == ast.TextOpKind.CONTAINS else f"{a}.startswith({b})"
            checks = f"({a} := {left}) is not None and ({b} := {self.value(node.right, row)}) is not None"
        return f"({checks} and {'' if want else 'not '}({test}))"

    # -------------------------------------------------------------------- values
    def value(self, node: ast.Expr, row: str) -> str:  # noqa: C901 - one case per node kind
        match node:
            case ast.Literal(value=value):
                return self.constant(value)
            case ast.ListLiteral(items=items):
                return "[" + ", ".join(self.value(i, row) for i in items) + "]"
            case ast.Column():
                return self.column(node, row)
            case ast.Now():
                return "n"
            case ast.AttributeRef(name=name):
                return self.value(self.program.attributes[name].body, "c")
            case ast.Arith(op=op, left=left, right=right):
                return self.arith(node, op, left, right, row)
            case ast.Negate(operand=op):
                var = self.temp()
                return f"(None if ({var} := {self.value(op, row)}) is None else -{var})"
            case ast.Call(name=name, args=args):
                return self.call(name, args, row)
            case ast.Aggregate():
                return self.aggregate(node, row)
            case ast.Ntile(value=value, among=among):
                id_source = self.schema.column("customers", "id").source
                return (f"_tile(P, {self.constant(node)}, {self.value(value, 'c')}, {self.true(among, 'c')}, "
                        f"c.get({id_source!r}))")
        if node.type == t.BOOL:
            return f"(True if {self.true(node, row)} else (False if {self.false(node, row)} else None))"
        raise InternalError(f"the memory backend cannot evaluate {type(node).__name__}", node.span)

    def arith(self, node, op: ast.ArithOp, left: ast.Expr, right: ast.Expr, row: str) -> str:
        a, b = self.value(left, row), self.value(right, row)
        if right.type == t.DURATION:
            sign = 1 if op == ast.ArithOp.ADD else -1
            return f"_shift({a}, {b}, {sign})"
        if op == ast.ArithOp.DIV:
            return f"_div({a}, {b})"
        if op == ast.ArithOp.MOD:
            return f"_mod({a}, {b})"
        x, y = self.temp(), self.temp()
        return f"(None if ({x} := {a}) is None or ({y} := {b}) is None else {x} {op} {y})"

    def call(self, name: str, args: tuple[ast.Expr, ...], row: str) -> str:
        vals = [self.value(a, row) for a in args]
        var = self.temp()
        match name:
            case "days_since":
                return f"_days({vals[0]}, n)"
            case "days_between":
                return f"_days({vals[0]}, {vals[1]})"
            case "date":
                return f"_to_date({vals[0]})"
            case "year" | "month" | "day":
                return f"(None if ({var} := {vals[0]}) is None else {var}.{_PARTS[name]})"
            case "lower" | "upper":
                return f"(None if ({var} := {vals[0]}) is None else {var}.{name}())"
            case "trim":
                return f"(None if ({var} := {vals[0]}) is None else {var}.strip(' '))"
            case "length":
                return f"(None if ({var} := {vals[0]}) is None else len({var}))"
            case "abs":
                return f"(None if ({var} := {vals[0]}) is None else abs({var}))"
            case "round":
                return f"_round({vals[0]}, {vals[1]})"
            case "coalesce":
                expr = vals[-1]
                for val in reversed(vals[:-1]):
                    tmp = self.temp()
                    expr = f"({tmp} if ({tmp} := {val}) is not None else {expr})"
                return expr
            case "if":
                return f"({vals[1]} if {self.true(args[0], row)} else {vals[2]})"
            case "text":
                return f"(None if ({var} := {vals[0]}) is None else str({var}))"
            case "concat":
                return f"(None if None in ({var} := ({', '.join(vals)},)) else ''.join({var}))"
        raise InternalError(f"the memory backend has no function `{name}`")

    def aggregate(self, node: ast.Aggregate, row: str) -> str:
        rows = self.rows(node.table, row)
        var = f"_r{next(self.counter)}"
        condition = self.true(node.where, var) if node.where is not None else None
        if node.value is not None:
            value = self.value(node.value, var)
        elif node.column is not None:
            value = f"{var}.get({self.schema.column(node.table, node.column).source!r})"
        else:
            value = None
        if node.func in (ast.AggFunc.ANY, ast.AggFunc.NONE):
            found = f"any({condition} for {var} in {rows})" if condition else f"bool({rows})"
            return found if node.func == ast.AggFunc.ANY else f"(not {found})"
        if node.func == ast.AggFunc.COUNT:
            tests = [f"{value} is not None"] if value else []
            tests += [condition] if condition else []
            if not tests:
                return f"len({rows})"
            return f"sum(1 for {var} in {rows} if {' and '.join(tests)})"
        only = f" if {condition}" if condition else ""
        if node.func == ast.AggFunc.TOP:
            weight = self.value(node.by, var) if node.by is not None else "1"
            return f"_top([({value}, {weight}) for {var} in {rows}{only}])"
        values_expr = f"[{value} for {var} in {rows}{only}]"
        match node.func:
            case ast.AggFunc.SUM:
                zero = self.constant(Decimal(0)) if node.type == t.DECIMAL else "0"
                return f"_sum({values_expr}, {zero})"
            case ast.AggFunc.AVG:
                return f"_avg({values_expr})"
            case ast.AggFunc.MIN:
                return f"_min({values_expr})"
            case ast.AggFunc.MAX:
                return f"_max({values_expr})"
        return f"_distinct({values_expr})"


__all__ = ["MemorySegment", "memory"]
