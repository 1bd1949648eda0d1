"""The reference interpreter: walk the checked tree for one customer and keep every node's value.

Slow and obviously right: each node is evaluated by the definition of what it
means, with the helpers of `backends/runtime.py` and `backends/builtins.py` that
the generated code uses too. It is the oracle of the differential suite and the
engine behind `explain`.

Conditions have three values: True, False and None (unknown), as in SQL; a
segment reference and the set operators have two (true when the customer is in,
else false). Every operand is evaluated, with no short-circuit, so every node of
the rule has a value. The values kept are those of customer-level nodes; nodes
inside an aggregate's `where`, value or `by` are evaluated once per row and not
kept (the aggregate's own value is). Each attribute, segment and `ntile` is
computed once per customer, however often the rules use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from crmrules import ast
from crmrules import types as t
from crmrules import values
from crmrules.backends import runtime
from crmrules.backends.builtins import BUILTINS
from crmrules.backends.customer_data import convert, fits, prepare_customer
from crmrules.compiler.defaults import empty_value
from crmrules.compiler.pipeline import Program
from crmrules.compiler.visibility import visible
from crmrules.context import EvaluationContext
from crmrules.errors import InternalError


class Evaluation:
    """The values of the customer-level nodes of one evaluation, by node identity, in evaluation order.

    A node equal to an evaluated one (a second `ntile(3, points)` read from the memo) has the same
    value for the same customer and instant, so lookups fall back to equality.
    """

    def __init__(self) -> None:
        self._values: dict[int, tuple[ast.Expr, object]] = {}
        self._equal: dict[ast.Expr, object] = {}

    def record(self, node: ast.Expr, value) -> None:
        """Keep `node`'s value."""
        self._values[id(node)] = (node, value)
        self._equal.setdefault(node, value)

    def value(self, node: ast.Expr):
        """The value of this node (or of an equal one evaluated in its place); KeyError when neither was."""
        found = self._values.get(id(node))
        return found[1] if found is not None else self._equal[node]

    def __contains__(self, node: ast.Expr) -> bool:
        return id(node) in self._values or node in self._equal

    def __iter__(self) -> Iterator[tuple[ast.Expr, object, object]]:
        """(node, span, value) for each node evaluated, in evaluation order (operands before the operation)."""
        for node, value in self._values.values():
            yield node, node.span, value


class Interpreter:
    """Evaluates expressions of one program for one customer as of one context, sharing memos."""

    def __init__(self, program: Program, customer: dict, ctx: EvaluationContext):
        self.program = program
        self.schema = program.schema
        self.customer = customer
        self.ctx = ctx
        self.evaluation = Evaluation()
        self._attributes: dict[str, object] = {}
        self._segments: dict[str, bool] = {}
        self._tiles: dict[ast.Ntile, object] = {}
        self._rows: dict[str, list[dict]] = {}

    def value(self, expr: ast.Expr):
        """The value of a customer-level expression."""
        return self.eval(expr, self.customer, "customers")

    def member(self, segment: str) -> bool:
        """Whether the customer is in the named segment."""
        return self.segment(segment)

    # ------------------------------------------------------------------ plumbing
    def eval(self, node: ast.Expr, row: dict, table: str):
        """`node`'s value on `row`, a row of `table` (the customer dict for `customers`)."""
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise InternalError(f"the interpreter cannot evaluate {type(node).__name__}", node.span)
        value = method(node, row, table)
        if row is self.customer:
            self.evaluation.record(node, value)
        return value

    def segment(self, name: str) -> bool:
        if name not in self._segments:
            body = self.program.segments[name].body
            self._segments[name] = self.eval(body, self.customer, "customers") is True
        return self._segments[name]

    def attribute(self, name: str):
        if name not in self._attributes:
            self._attributes[name] = self.eval(self.program.attributes[name].body, self.customer, "customers")
        return self._attributes[name]

    def rows(self, target: str, row: dict, table: str) -> list[tuple[dict, str]]:
        """The visible rows of `target` in scope of `row`: its own child rows, else the customer's."""
        key = runtime.child_key(table, target) if row is not self.customer else None
        if key is not None:
            return [(r, target) for r in self.visible_rows(row.get(key), target)]
        if target not in self._rows:
            current = [self.customer]
            for key, child in runtime.row_path(target):
                current = [r for parent in current for r in self.visible_rows(parent.get(key), child)]
            self._rows[target] = current
        return [(r, target) for r in self._rows[target]]

    def visible_rows(self, rows, table: str) -> list[dict]:
        if rows is not None and (rows.__class__ is not list or any(r.__class__ is not dict for r in rows)):
            self.wrong_type()
        condition = visible(table, self.schema)
        if condition is None:
            return list(rows or ())
        return [r for r in rows or () if self.eval(condition, r, table) is True]

    # ------------------------------------------------------------- plain values
    def _Literal(self, node: ast.Literal, row, table):
        return node.value

    def _ListLiteral(self, node: ast.ListLiteral, row, table):
        return [self.eval(item, row, table) for item in node.items]

    def _Column(self, node: ast.Column, row, table):
        column = self.schema.column(node.table, node.name)
        value = row.get(column.source)
        if value is None or fits(value, column.type):
            return value
        self.wrong_type()
        return convert(value, column.type, column.source, self.schema.timezone)

    def wrong_type(self) -> None:
        """A value of another Python type than its column's: as the generated code does, check the whole
        customer (DataError naming the first bad field), and go on with the value converted."""
        prepare_customer(self.customer, self.schema)

    def _Now(self, node, row, table):
        return self.ctx.instant

    def _WindowStart(self, node: ast.WindowStart, row, table):
        return self.ctx.window_start(node.duration)

    def _AttributeRef(self, node: ast.AttributeRef, row, table):
        return self.attribute(node.name)

    def _SegmentRef(self, node: ast.SegmentRef, row, table):
        return self.segment(node.name)

    def _Arith(self, node: ast.Arith, row, table):
        a, b = self.eval(node.left, row, table), self.eval(node.right, row, table)
        if node.right.type == t.DURATION:
            return values.shift(a, b, 1 if node.op == ast.ArithOp.ADD else -1)
        if node.op == ast.ArithOp.DIV:
            return values.divide(a, b)
        if node.op == ast.ArithOp.MOD:
            return values.modulo(a, b)
        return None if a is None or b is None else runtime.ARITH[node.op](a, b)

    def _Negate(self, node: ast.Negate, row, table):
        value = self.eval(node.operand, row, table)
        return None if value is None else -value

    def _Call(self, node: ast.Call, row, table):
        builtin = BUILTINS[node.name]
        args = [self.eval(a, row, table) for a in node.args]
        return builtin.fn(self.ctx.instant, *args) if builtin.needs_now else builtin.fn(*args)

    def _Ntile(self, node: ast.Ntile, row, table):
        if node not in self._tiles:
            value = self.eval(node.value, self.customer, "customers")
            among = self.eval(node.among, self.customer, "customers") is True
            customer_id = self.customer.get(self.schema.column("customers", "id").source)
            self._tiles[node] = runtime.tile(self.ctx.population, node, value, among, customer_id)
        return self._tiles[node]

    def _Aggregate(self, node: ast.Aggregate, row, table):
        kept, weights = [], []
        for r, r_table in self.rows(node.table, row, table):
            if node.where is not None and self.eval(node.where, r, r_table) is not True:
                continue
            if node.value is not None:
                kept.append(self.eval(node.value, r, r_table))
            elif node.column is not None:
                kept.append(r.get(self.schema.column(node.table, node.column).source))
            else:
                kept.append(r)
            if node.func == ast.AggFunc.TOP:
                weights.append(1 if node.by is None else self.eval(node.by, r, r_table))
            elif node.func in (ast.AggFunc.FIRST, ast.AggFunc.LAST):  # the row's (time, id) orders it
                weights.append(tuple(self._Column(ast.Column(table=r_table, name=name), r, r_table)
                                     if name else None for name in runtime.first_last_columns(self.schema, r_table)))
        match node.func:
            case ast.AggFunc.ANY:
                return bool(kept)
            case ast.AggFunc.NONE:
                return not kept
            case ast.AggFunc.COUNT:
                return sum(1 for v in kept if v is not None)
            case ast.AggFunc.SUM:
                return runtime.agg_sum(kept, empty_value(node.func, node.type))
            case ast.AggFunc.MIN:
                return runtime.agg_min(kept)
            case ast.AggFunc.MAX:
                return runtime.agg_max(kept)
            case ast.AggFunc.DISTINCT:
                return runtime.agg_distinct(kept)
            case ast.AggFunc.TOP:
                return runtime.agg_top(zip(kept, weights))
            case ast.AggFunc.FIRST | ast.AggFunc.LAST:
                return runtime.agg_first(((*order, value) for order, value in zip(weights, kept)),
                                         node.func == ast.AggFunc.LAST)
        raise InternalError(f"the interpreter has no aggregate `{node.func}`", node.span)

    # --------------------------------------------------------------- conditions
    def _And(self, node: ast.And, row, table):
        return runtime.and3([self.eval(op, row, table) for op in node.operands])

    def _Or(self, node: ast.Or, row, table):
        return runtime.or3([self.eval(op, row, table) for op in node.operands])

    def _Not(self, node: ast.Not, row, table):
        return runtime.not3(self.eval(node.operand, row, table))

    def _Compare(self, node: ast.Compare, row, table):
        a, b = self.eval(node.left, row, table), self.eval(node.right, row, table)
        return runtime.compare(node.op, a, b, runtime.widens(node.left.type, node.right.type))

    def _IsNull(self, node: ast.IsNull, row, table):
        return (self.eval(node.operand, row, table) is None) != node.negated

    def _In(self, node: ast.In, row, table):
        needle, hay = self.eval(node.needle, row, table), self.eval(node.haystack, row, table)
        if needle is None or hay is None:
            return None
        if runtime.widens(node.needle.type, t.element_of(node.haystack.type)):
            needle, hay = values.as_timestamp(needle), [values.as_timestamp(x) for x in hay]
        return (needle in hay) != node.negated

    def _TextOp(self, node: ast.TextOp, row, table):
        a, b = self.eval(node.left, row, table), self.eval(node.right, row, table)
        if a is None or b is None:
            return None
        match node.op:
            case ast.TextOpKind.MATCHES:
                return re.search(b, a, runtime.REGEX_FLAGS) is not None
            case ast.TextOpKind.CONTAINS:
                return b in a
        return a.startswith(b)

    def _SetOp(self, node: ast.SetOp, row, table):
        a, b = self.eval(node.left, row, table) is True, self.eval(node.right, row, table) is True
        match node.op:
            case ast.SetOpKind.UNION:
                return a or b
            case ast.SetOpKind.INTERSECT:
                return a and b
        return a and not b


def evaluate(program: Program, customer: dict, expr: ast.Expr, ctx: EvaluationContext) -> Evaluation:
    """Every customer-level node's value of `expr` for one prepared customer."""
    interpreter = Interpreter(program, customer, ctx)
    interpreter.value(expr)
    return interpreter.evaluation


class InterpreterBackend:
    """The reference engine: the interpreter over a list of prepared customer dicts."""

    name = "interpreter"
    takes = "rows"

    def members(self, program: Program, data: Sequence[dict], segments: Sequence[str],
                ctx: EvaluationContext) -> dict[str, list[str]]:
        """The sorted ids of each segment's members among the customers that exist at `ctx.instant`."""
        ctx = self._ranked(program, data, ctx)
        id_of = program.schema.column("customers", "id").source
        members: dict[str, set[str]] = {name: set() for name in segments}
        for person, interpreter in self._existing(program, data, ctx):
            for name in segments:
                if interpreter.member(name):
                    members[name].add(str(person[id_of]))
        return {name: sorted(ids) for name, ids in members.items()}

    def values(self, program: Program, data: Sequence[dict], names: Sequence[str],
               ctx: EvaluationContext) -> dict[str, dict[str, object]]:
        """The named attributes of every existing customer: {id: {name: value}}."""
        ctx = self._ranked(program, data, ctx)
        id_of = program.schema.column("customers", "id").source
        return {str(person[id_of]): {name: interpreter.attribute(name) for name in names}
                for person, interpreter in self._existing(program, data, ctx)}

    def node_values(self, program: Program, data: Sequence[dict], customer_id: str, expr: ast.Expr,
                    ctx: EvaluationContext) -> dict[ast.Expr, object]:
        """The value of `expr` and of each of its customer-level sub-expressions for one customer."""
        ctx = self._ranked(program, data, ctx)
        person = runtime.find_customer(data, program.schema, customer_id)
        return {node: value for node, _, value in evaluate(program, person, expr, ctx)}

    def _ranked(self, program: Program, data: Sequence[dict], ctx: EvaluationContext) -> EvaluationContext:
        if ctx.population is None and runtime.ntiles(program):
            people = runtime.existing(program.schema, data, ctx, self.decide)
            return ctx.with_population(runtime.rank(program, people, ctx, lambda node: self.ranking(program, node, ctx)))
        return ctx

    def _existing(self, program: Program, data: Sequence[dict], ctx: EvaluationContext):
        for person in runtime.existing(program.schema, data, ctx, self.decide):
            yield person, Interpreter(program, person, ctx)

    @staticmethod
    def decide(schema, condition: ast.Expr, ctx: EvaluationContext):
        """`holds(person) -> bool`: whether a customer-level condition is true, by the interpreter."""
        program = Program(schema)
        return lambda person: Interpreter(program, person, ctx).value(condition) is True

    @staticmethod
    def ranking(program: Program, node: ast.Ntile, ctx: EvaluationContext):
        """`ranking(person) -> (ranked, value)` for one `ntile`, by the interpreter."""
        def inputs(person: dict):
            interpreter = Interpreter(program, person, ctx)
            value = interpreter.value(node.value)
            return interpreter.value(node.among) is True and value is not None, value
        return inputs


__all__ = ["Evaluation", "Interpreter", "InterpreterBackend", "evaluate"]
