"""Why a customer is (or is not) in a segment: the condition as a tree of values, and what would flip it.

The tree is built from the checked AST alone, so every engine gives the same one;
the values come from the chosen engine's `node_values` (each customer-level node of
a body, for one customer). Attribute and segment references are expanded under
their names: the referenced body is the name's only child. Aggregates and `ntile`
are leaves showing their value (for `count` and `any`, what the matching rows give).
Literals are not nodes of their own: their parent's source shows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from crmrules import ast
from crmrules import types as t
from crmrules import values as v
from crmrules.compiler.pipeline import Program
from crmrules.formatter import format_expr

NodeValues = Callable[[ast.Expr], dict]
"""`values_of(body) -> {node: value}`: one engine's values of a body's customer-level nodes."""

_HIDDEN = (ast.Literal, ast.ListLiteral, ast.Now, ast.WindowStart, ast.Ever)


@dataclass(frozen=True)
class ExplainNode:
    """One node of an explanation: its source text, its value, why it is not the other way, its parts."""

    source: str
    value: object
    children: tuple[ExplainNode, ...] = ()
    flip: str | None = None

    def to_json(self) -> dict:
        """The JSON object of this node (`flip` only when there is one)."""
        out: dict = {"source": self.source, "value": json_value(self.value),
                     "children": [child.to_json() for child in self.children]}
        if self.flip is not None:
            out["flip"] = self.flip
        return out


@dataclass(frozen=True)
class Explanation:
    """A segment's explanation for one customer."""

    segment: str
    customer_id: str
    as_of: date | datetime
    tree: ExplainNode
    result: bool | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "result", self.tree.value if isinstance(self.tree.value, bool) else None)

    def to_json(self) -> dict:
        """`{"segment", "customer_id", "as_of", "result", "tree"}`, as `crmrules explain --format json` prints."""
        return {"segment": self.segment, "customer_id": self.customer_id, "as_of": self.as_of.isoformat(),
                "result": self.result, "tree": self.tree.to_json()}

    def render(self) -> str:
        """The tree as indented text, one node a line: `value  source  (flip)`."""
        head = f"{self.segment} for customer {self.customer_id} as of {self.as_of.isoformat()}"
        lines = [f"{head}: {shown(self.result)}"]

        def walk(node: ExplainNode, prefix: str, last: bool, root: bool) -> None:
            branch = "" if root else ("└─ " if last else "├─ ")
            flip = f"   ({node.flip})" if node.flip else ""
            lines.append(f"{prefix}{branch}{shown(node.value)}  {node.source}{flip}")
            inner = prefix + ("" if root else ("   " if last else "│  "))
            for index, child in enumerate(node.children):
                walk(child, inner, index == len(node.children) - 1, False)

        walk(self.tree, "", True, True)
        return "\n".join(lines)


def explain(program: Program, segment: str, customer_id: str, as_of: date | datetime,
            values_of: NodeValues) -> Explanation:
    """The explanation of `segment` (a segment of `program`) for one customer, values from `values_of`."""
    tree = build(program, program.segments[segment].body, values_of, ())
    return Explanation(segment, str(customer_id), as_of, tree)


def build(program: Program, body: ast.Expr, values_of: NodeValues, expanding: tuple[str, ...]) -> ExplainNode:
    """The tree of one body: every customer-level node with its value, references expanded."""
    found = values_of(body)

    def node_of(node: ast.Expr) -> ExplainNode:
        value = found.get(node)
        children: list[ExplainNode] = []
        if isinstance(node, (ast.AttributeRef, ast.SegmentRef)):
            body = _body(program, node)
            # a constant's value says it all; a cycle is refused by the checker, this only guards the walk
            if not isinstance(body, ast.Literal) and node.name not in expanding:
                children.append(build(program, body, values_of, (*expanding, node.name)))
        elif not isinstance(node, (ast.Aggregate, ast.Ntile)):
            children = [node_of(child) for child in ast.children(node)
                        if isinstance(child, ast.Expr) and not isinstance(child, _HIDDEN)
                        and child.type != t.DURATION]
        return ExplainNode(source_of(node), value, tuple(children), flip_of(program, node, found))

    return node_of(body)


def _body(program: Program, ref: ast.AttributeRef | ast.SegmentRef) -> ast.Expr:
    if isinstance(ref, ast.SegmentRef):
        return program.segments[ref.name].body
    return program.attributes[ref.name].body


def explain_on_data(rules, segment: str, customer_id: str, data, backend: str | None = None,
                    as_of=None) -> Explanation:
    """The explanation of `segment` for the customer `customer_id` of `data` (a data directory or file, a URL,
    customer dicts), values from the chosen engine: one `node_values` call per body shown."""
    from crmrules.backends.dispatch import open_data
    from crmrules.context import evaluation_context

    program = rules.program_for(segments=[segment])
    ctx = evaluation_context(as_of, program.schema)
    with open_data(program, data, backend) as (engine, opened):
        ranked = getattr(engine, "_ranked", None)
        if ranked is not None:  # rank the customer base once, not once per body
            ctx = ranked(program, opened, ctx)
        cache: dict[ast.Expr, dict] = {}

        def values_of(body: ast.Expr) -> dict:
            if body not in cache:
                cache[body] = engine.node_values(program, opened, str(customer_id), body, ctx)
            return cache[body]

        return explain(program, segment, str(customer_id), ctx.as_of, values_of)


# ------------------------------------------------------------------------------------------ source text
def source_of(node: ast.Expr) -> str:
    """The node's source, canonical (function calls inlined), windows written back as `within`."""
    try:
        return format_expr(ast.transform(node, _readable))
    except TypeError:  # a node the formatter cannot write: what the rule file says there
        if node.span is not None:
            return " ".join(node.span.source.text[node.span.start:node.span.end].split())
        return type(node).__name__


def _readable(node: ast.Node) -> ast.Node:
    """Lowered nodes written as the user wrote them: `within`, `now - 30d`, `ntile(...)`."""
    match node:
        # bottom-up: the window's start is already `now - d` here
        case ast.And(operands=(ast.Compare(op=ast.CompareOp.GT, left=x, right=ast.Arith(
                op=ast.ArithOp.SUB, left=ast.Now(), right=ast.Literal(value=ast.Duration() as d))),
                               ast.Compare(op=ast.CompareOp.LE, left=y, right=ast.Now()))) if x == y:
            return ast.Within(value=x, duration=ast.Literal(value=d))
        case ast.WindowStart(duration=d):
            return ast.Arith(op=ast.ArithOp.SUB, left=ast.Now(), right=ast.Literal(value=d))
        case ast.Ntile(buckets=buckets, value=value, among=among, ties=ties):
            named = () if among == ast.Literal(value=True) else (ast.NamedArg(name="among", value=among),)
            return ast.Call(name="score" if ties else "ntile", args=(ast.Literal(value=buckets), value), kwargs=named)
    return node


# ------------------------------------------------------------------------------------------ flips
def flip_of(program: Program, node: ast.Expr, found: dict) -> str | None:
    """For a false or unknown comparison of numbers or dates: what would make it true."""
    if not isinstance(node, ast.Compare) or found.get(node) is True or node not in found:
        return None
    left, right = _operand(node.left, found), _operand(node.right, found)
    kinds = {_kind(node.left.type), _kind(node.right.type)}
    if kinds - {"number", "time"} or len(kinds) != 1:
        return None
    if left is _MISSING or right is _MISSING:
        return None
    if left is None or right is None:
        missing = node.left if left is None else node.right
        return f"unknown: {source_of(missing)} has no value"
    if node.op == ast.CompareOp.NE:
        return None
    gap = _gap(left, right)  # right - left: how far the left side is from the right one
    if gap is None:
        return None
    grow = node.op in (ast.CompareOp.GT, ast.CompareOp.GE) or (node.op == ast.CompareOp.EQ and gap > gap * 0)
    strict = node.op in (ast.CompareOp.LT, ast.CompareOp.GT)
    amount = abs(gap)
    if "time" in kinds:
        days, rest = divmod(amount.total_seconds(), 86400)
        amount = int(days) + (1 if rest or strict else 0)
        whole = True
    else:
        whole = node.left.type == t.INT and node.right.type == t.INT
        if whole and strict:
            amount += 1
    # the side that moves: one time moves the right way if there is one (then it is a wait), else
    # the first that is not a constant; the right side moves opposite to the left
    sides = [(s, g) for s, g in ((node.left, grow), (node.right, not grow)) if not isinstance(s, ast.Literal)]
    for side, up in sides:
        if up and whole and _moves_with_time(program, side):
            return f"in {amount} day{'s' if amount != 1 else ''}"
    side, up = next(((s, g) for s, g in sides if not _moves_with_time(program, s)), sides[0] if sides else (None, grow))
    if "time" in kinds:
        return f"needs {amount} day{'s' if amount != 1 else ''} {'later' if up else 'earlier'}"
    if strict and not whole:
        return f"needs over {_number(amount)} {'more' if up else 'less'}"
    return f"needs {_number(amount)} {'more' if up else 'less'}"


_MISSING = object()


def _operand(node: ast.Expr, found: dict):
    return node.value if isinstance(node, ast.Literal) else found.get(node, _MISSING)


def _kind(type_) -> str | None:
    if type_ in (t.INT, t.DECIMAL):
        return "number"
    if type_ in (t.DATE, t.TIMESTAMP):
        return "time"
    return None


def _gap(left, right):
    if isinstance(left, datetime) != isinstance(right, datetime):
        left, right = v.as_timestamp(left), v.as_timestamp(right)
    try:
        return right - left
    except TypeError:
        return None


def _moves_with_time(program: Program, node: ast.Expr) -> bool:
    """Whether the node's value grows as time passes (`now`, `days_since(...)`, attributes made of them)."""
    for inner in _customer_level(node):
        if isinstance(inner, ast.Now | ast.WindowStart):
            return True
        if isinstance(inner, ast.Call) and inner.name.startswith("days_since"):
            return True
        if isinstance(inner, ast.AttributeRef) and inner.name in program.attributes:
            body = program.attributes[inner.name].body
            if body is not node and _moves_with_time(program, body):
                return True
    return False


def _customer_level(node: ast.Expr):
    """The node and its sub-expressions outside aggregates (a count over a window does not grow by waiting)."""
    yield node
    if not isinstance(node, ast.Aggregate | ast.Ntile):
        for child in ast.children(node):
            if isinstance(child, ast.Expr):
                yield from _customer_level(child)


def _number(value) -> str:
    if isinstance(value, Decimal):
        value = value.normalize()
        return format(value, "f")
    return str(value)


# ------------------------------------------------------------------------------------------ values
def json_value(value):
    """A value as JSON holds it, the same from every engine: decimals as numbers (whole ones as integers),
    dates and times in ISO form, lists sorted, element by element."""
    match value:
        case bool() | None | str() | int():
            return value
        case Decimal():
            normal = value.normalize()
            if normal == normal.to_integral_value():
                return int(normal)
            as_float = float(normal)
            return as_float if Decimal(repr(as_float)) == normal else format(normal, "f")
        case datetime() | date():
            return value.isoformat()
        case list() | tuple():
            # a list is a set of values to the language: sorted (nulls last), so every engine shows the same
            ordered = sorted(value, key=lambda item: (item is None, item if item is not None else 0))
            return [json_value(item) for item in ordered]
    return str(value)


def shown(value) -> str:
    """A value for the text tree: true/false/unknown, numbers and dates as written."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(json_value(value), ensure_ascii=False) if isinstance(value, (str, list)) else \
        str(json_value(value))


__all__ = ["ExplainNode", "Explanation", "build", "explain", "explain_on_data", "json_value", "source_of"]
