"""Infer and check types bottom-up; resolve overloaded operators by the types they meet."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from crmrules import ast
from crmrules import types as t
from crmrules.compiler.functions import FUNCTIONS, month_day
from crmrules.compiler.safe_regex import unsafe_regex
from crmrules.compiler.visibility import time_column
from crmrules.errors import CrmRulesError, RuleTypeError
from crmrules.schema import ColumnSpec, Schema

_SUB_DAY_UNITS = {ast.DurationUnit.SECOND, ast.DurationUnit.MINUTE, ast.DurationUnit.HOUR}


def literal_type(value: object) -> t.Type:
    """The type of a literal value."""
    match value:
        case None:
            return t.NULL
        case bool():
            return t.BOOL
        case int():
            return t.INT
        case Decimal():
            return t.DECIMAL
        case str():
            return t.STRING
        case datetime():
            return t.TIMESTAMP
        case date():
            return t.DATE
        case ast.Duration():
            return t.DURATION
    raise TypeError(f"not a literal value: {value!r}")


def typecheck(expr: ast.Expr, schema: Schema, attribute_types: dict[str, t.Type],
              errors: list[CrmRulesError]) -> ast.Expr:
    """The expression with every node's type set; mismatches are appended to `errors`."""
    checker = _Checker(schema, attribute_types, errors)

    def visit(node: ast.Node) -> ast.Node:
        rebuilt = ast.map_children(node, visit)
        return checker.check(rebuilt, fresh=rebuilt is not node)

    return visit(expr)


class _Checker:
    def __init__(self, schema: Schema, attribute_types: dict[str, t.Type], errors: list[CrmRulesError]):
        self.schema = schema
        self.attribute_types = attribute_types
        self.errors = errors
        self.failed = False
        # the first `bucket` call inside each checked node that holds one (aggregates may not split customers)
        self.buckets: dict[int, ast.Call] = {}

    def fail(self, node: ast.Node, message: str, hint: str | None = None, code: str = "E0301") -> ast.Node:
        self.errors.append(RuleTypeError(message, node.span, hint, code=code))
        self.failed = True
        return node  # left untyped: parents skip it instead of reporting the same fault again

    def check(self, node: ast.Node, fresh: bool = False) -> ast.Node:
        """The node typed, its children typed already; `fresh`: a node just rebuilt here, that nothing else holds,
        whose type is set in place instead of building it once more (every node with a child would be built twice)."""
        # children are checked first, so only a failure (or a `bucket` below) makes looking at them worth it
        below = None
        if self.failed or self.buckets:
            parts = ast.children(node)
            below = next((self.buckets[id(c)] for c in parts if id(c) in self.buckets), None)
            if not isinstance(node, ast.Expr) or any(isinstance(c, ast.Expr) and c.type is None for c in parts):
                if below is not None:
                    self.buckets[id(node)] = below
                return node
        if not isinstance(node, ast.Expr):
            return node
        if isinstance(node, ast.Aggregate) and below is not None:
            return self.fail(below, "`bucket` splits customers, so it cannot be used inside a where-clause",
                             code="E0217")
        result = self.infer(node)
        if isinstance(result, t.Type) and fresh:
            object.__setattr__(node, "type", result)
            result = node
        elif isinstance(result, t.Type):
            result = ast.replace(node, type=result)
        elif not isinstance(result, ast.Expr):
            return node
        if below is not None or (isinstance(result, ast.Call) and result.name == "bucket"):
            self.buckets[id(result)] = below if below is not None else result
        return result

    def infer(self, node: ast.Expr):  # noqa: C901 - one case per node kind
        match node:
            case ast.Literal(value=value):
                return literal_type(value)
            case ast.ListLiteral(items=items):
                return self.list_literal(node, items)
            case ast.Column(table=table, name=name):
                return self.schema.column(table, name).type
            case ast.Compare():
                return self.compare(node)
            case ast.Aggregate():
                return self.aggregate(node)
            case ast.AttributeRef(name=name):
                return self.attribute_types[name]
            case ast.SegmentRef():
                return t.BOOL
            case ast.Now():
                return t.TIMESTAMP
            case ast.And(operands=ops) | ast.Or(operands=ops):
                return self.booleans(node, ops, "and" if isinstance(node, ast.And) else "or")
            case ast.Not(operand=op):
                return self.booleans(node, (op,), "not")
            case ast.SetOp(op=op, left=left, right=right):
                if left.type != t.BOOL or right.type != t.BOOL:
                    return self.fail(node, f"`{op}` combines segments or conditions, not {left.type} "
                                           f"and {right.type}")
                return t.BOOL
            case ast.Arith():
                return self.arith(node)
            case ast.Negate(operand=op):
                if op.type not in t.NUMERIC:
                    return self.fail(node, f"cannot negate {op.type}")
                return op.type
            case ast.In(needle=needle, haystack=hay):
                return self.membership(node, needle, hay)
            case ast.Between(value=v, low=lo, high=hi):
                common = t.unify(t.unify(v.type, lo.type) or v.type, hi.type)
                if common is None or t.unify(v.type, lo.type) is None or not t.is_orderable(common):
                    return self.fail(node, f"cannot compare {v.type} with {lo.type} and {hi.type}")
                return t.BOOL
            case ast.IsNull():
                return t.BOOL
            case ast.TextOp():
                return self.text_op(node)
            case ast.Within(value=v, duration=d):
                if v.type not in t.TEMPORAL:
                    return self.fail(node, f"`within` applies to a date or timestamp, not {v.type}")
                if not isinstance(d, ast.Literal) or d.type != t.DURATION:
                    return self.fail(d, "`within` takes a duration such as `30d`")
                return t.BOOL
            case ast.Call(name=name, args=args):
                result = FUNCTIONS[name].result([a.type for a in args])
                if isinstance(result, str):
                    return self.fail(node, f"`{name}` {result}")
                return self.literal_arguments(node, result)
            case ast.Ntile(value=value, among=among, ties=ties):
                if value.type.is_list or value.type in (t.DURATION, t.BOOL) or not t.is_orderable(value.type):
                    return self.fail(value, f"`{'score' if ties else 'ntile'}` orders customers by a number, date "
                                            f"or text, not {value.type}")
                if among.type not in (t.BOOL, t.NULL):
                    return self.fail(among, f"`among` needs a condition (bool), got {among.type}")
                return t.INT
            case ast.Ever():
                return self.fail(node, "`ever` is the window without edges: use it as `x within ever`",
                                 code="E0302")
            case ast.Record():
                return t.NULL
        return self.fail(node, f"`{type(node).__name__}` cannot be used here", code="E0302")

    def booleans(self, node: ast.Expr, operands, word: str):
        for op in operands:
            if op.type not in (t.BOOL, t.NULL):
                return self.fail(op, f"`{word}` needs conditions (bool), got {op.type}",
                                 "compare the value, e.g. `x > 0` or `x is not null`")
        return t.BOOL

    def list_literal(self, node: ast.ListLiteral, items):
        element = t.NULL
        for item in items:
            if item.type == t.NULL:
                return self.fail(item, "a list cannot contain null", "leave null out of the list")
            if item.type.is_list or item.type == t.DURATION:
                return self.fail(item, f"a list cannot contain {item.type}")
            common = t.unify(element, item.type)
            if common is None:
                return self.fail(item, f"a list cannot mix {element} and {item.type}")
            element = common
        return t.list_of(element) if element != t.NULL else t.Type(t.Scalar.NULL, is_list=True)

    def compare(self, node: ast.Compare):
        left, right = node.left.type, node.right.type
        if left == t.NULL or right == t.NULL:
            word = "is null" if node.op == ast.CompareOp.EQ else "is not null"
            return self.fail(node, f"`{node.op} null` is never true", f"write `{word}`", code="E0302")
        common = t.unify(left, right)
        if common is None or left.is_list or right.is_list or common == t.DURATION:
            return self.fail(node, f"cannot compare {left} with {right}")
        ordering = node.op not in (ast.CompareOp.EQ, ast.CompareOp.NE)
        if ordering and not t.is_orderable(common):
            return self.fail(node, f"`{node.op}` does not apply to {common}")
        return t.BOOL

    def arith(self, node: ast.Arith):
        op, left, right = node.op, node.left.type, node.right.type
        if op == ast.ArithOp.SUB and left == t.BOOL and right == t.BOOL:
            return ast.SetOp(op=ast.SetOpKind.DIFFERENCE, left=node.left, right=node.right,
                             span=node.span, type=t.BOOL)
        if left in t.NUMERIC and right in t.NUMERIC:
            if op == ast.ArithOp.DIV:
                return t.DECIMAL
            return t.unify(left, right)
        if op in (ast.ArithOp.ADD, ast.ArithOp.SUB) and left in t.TEMPORAL and right == t.DURATION:
            if not isinstance(node.right, ast.Literal):
                return self.fail(node.right, "a duration must be written out, such as `30d`")
            if left == t.DATE and node.right.value.unit in _SUB_DAY_UNITS:
                return t.TIMESTAMP
            return left
        if op == ast.ArithOp.ADD and left == t.DURATION and right in t.TEMPORAL:
            return self.fail(node, "write the date first: `date + 30d`")
        if left in t.TEMPORAL and right in t.TEMPORAL and op == ast.ArithOp.SUB:
            return self.fail(node, f"cannot subtract {right} from {left}",
                             "use `days_between(start, end)` or `days_since(x)`")
        return self.fail(node, f"cannot apply `{op}` to {left} and {right}")

    def membership(self, node: ast.In, needle: ast.Expr, hay: ast.Expr):
        if not hay.type.is_list:
            return self.fail(hay, f"`in` needs a list on its right, got {hay.type}",
                             "write `x in [\"a\", \"b\"]` or `\"vip\" in tags`")
        if needle.type.is_list or t.unify(needle.type, t.element_of(hay.type)) is None:
            return self.fail(node, f"cannot look for {needle.type} in {hay.type}")
        return t.BOOL

    def text_op(self, node: ast.TextOp):
        left, right = node.left.type, node.right.type
        if node.op == ast.TextOpKind.CONTAINS and left.is_list:
            rewritten = ast.In(needle=node.right, haystack=node.left, span=node.span)
            result = self.membership(rewritten, node.right, node.left)
            return ast.replace(rewritten, type=result) if isinstance(result, t.Type) else result
        if left not in (t.STRING, t.NULL) or right not in (t.STRING, t.NULL):
            return self.fail(node, f"`{node.op}` applies to strings, not {left} and {right}")
        if node.op == ast.TextOpKind.MATCHES:
            if not isinstance(node.right, ast.Literal) or not isinstance(node.right.value, str):
                return self.fail(node.right, "`matches` takes a regular expression written as a string")
            problem = unsafe_regex(node.right.value)
            if problem is not None:
                return self.fail(node.right, problem, code="E0303")
        return t.BOOL

    def aggregate(self, node: ast.Aggregate):
        if node.where is not None and node.where.type not in (t.BOOL, t.NULL):
            return self.fail(node.where, f"`where` needs a condition (bool), got {node.where.type}")
        func = node.func
        if func in (ast.AggFunc.ANY, ast.AggFunc.NONE):
            return t.BOOL
        if func == ast.AggFunc.COUNT:
            return t.INT
        column = self.schema.column(node.table, node.column) if node.column else ColumnSpec(
            "value", node.value.type, "value")
        if node.by is not None and node.by.type not in t.NUMERIC | {t.NULL}:
            return self.fail(node.by, f"`by` needs a number to weigh values by, got {node.by.type}")
        if func in (ast.AggFunc.FIRST, ast.AggFunc.LAST):
            return self.first_last(node, column.type)
        if func == ast.AggFunc.TOP:
            if column.type.is_list or column.type in (t.DURATION, t.NULL):
                return self.fail(node, f"`top` does not apply to {column.type}")
            return column.type
        if column.type.is_list:
            return self.fail(node, f"`{func}` does not apply to a list column ({node.column})")
        if func in (ast.AggFunc.SUM, ast.AggFunc.AVG):
            if column.type not in t.NUMERIC:
                return self.fail(node, f"`{func}` needs a number column, `{node.column}` is {column.type}")
            return t.DECIMAL if func == ast.AggFunc.AVG else column.type
        if func == ast.AggFunc.DISTINCT:
            return t.list_of(column.type)
        if not t.is_orderable(column.type):
            return self.fail(node, f"`{func}` does not apply to {column.type}")
        return column.type

    def literal_arguments(self, node: ast.Call, result: t.Type):
        """Arguments that must be written out: `bucket`'s salt and count (then the customer id is added as a
        third argument, so every engine hashes the same text), a `"MM-DD"` of `anniversary`/`days_until`."""
        if node.name == "bucket" and len(node.args) == 2:
            salt, count = node.args
            if not (isinstance(count, ast.Literal) and type(count.value) is int and count.value >= 1):
                return self.fail(count, "`bucket` needs a whole number of buckets of at least 1, written out",
                                 "for a random split into three groups write `bucket(\"split\", 3)`", code="E0216")
            if not isinstance(salt, ast.Literal) or not isinstance(salt.value, str):
                return self.fail(salt, "`bucket` needs its salt written out as text",
                                 "name the split, e.g. `bucket(\"spring_test\", 2)`", code="E0217")
            spec = self.schema.column("customers", "id")
            customer_id = ast.Column(table="customers", name="id", span=node.span, type=spec.type)
            return ast.replace(node, args=(*node.args, customer_id), type=result)
        if node.name in ("anniversary", "days_until") and node.args[0].type == t.STRING:
            text = node.args[0]
            if not isinstance(text, ast.Literal) or month_day(text.value) is None:
                return self.fail(text, f"`{node.name}` takes a date, or a month and day written as \"MM-DD\"",
                                 f"for 1 September write `{node.name}(\"09-01\")`", code="E0218")
        return result

    def first_last(self, node: ast.Aggregate, value_type: t.Type):
        """`first`/`last`: the value of the earliest/latest row, so the table must date its rows."""
        moment = time_column(node.table, self.schema)
        if moment is None or self.schema.column(node.table, moment) is None:
            dated = [name for name, spec in self.schema.tables.items() if spec.time_column]
            return self.fail(node, f"`{node.func}` orders rows by time, and {node.table} rows have no time column",
                             f"use it over a dated table ({', '.join(dated)})", code="E0219")
        if value_type.is_list or value_type in (t.DURATION, t.NULL):
            return self.fail(node, f"`{node.func}` does not apply to {value_type}")
        return value_type
