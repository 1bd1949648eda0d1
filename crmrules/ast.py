"""The typed AST: frozen, slotted dataclasses with a source span and no behaviour.

Parse nodes come out of the grammar; resolved nodes (`Column`, `AttributeRef`, `SegmentRef`, `Now`) replace
names once the compiler knows what they mean. `type` is filled in by the type checker. Both span and type are
left out of equality, so two rules that say the same thing compare equal."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from operator import is_not
from typing import TypeVar, get_args, get_type_hints

from crmrules.errors import Span
from crmrules.types import Type
from crmrules.values import Duration, DurationUnit  # noqa: F401 - literal values, named as ast's


LiteralValue = None | bool | int | Decimal | str | date | datetime | Duration


class CompareOp(StrEnum):
    """Binary comparison operators."""

    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class ArithOp(StrEnum):
    """Binary arithmetic operators."""

    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    MOD = "%"


class SetOpKind(StrEnum):
    """Set operators on segment membership; each operand counts only when true."""

    UNION = "|"
    INTERSECT = "&"
    DIFFERENCE = "-"


class TextOpKind(StrEnum):
    """Word operators on strings (and `contains` on lists before type checking)."""

    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    MATCHES = "matches"


class AggFunc(StrEnum):
    """Aggregates over a customer's related rows."""

    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    ANY = "any"
    NONE = "none"
    DISTINCT = "distinct"
    TOP = "top"
    FIRST = "first"  # the value of the earliest row by the table's time column (`last`: the latest)
    LAST = "last"


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """Base of every node: a source span, left out of equality."""

    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Expr(Node):
    """Base of expressions; `type` is set by the type checker."""

    type: Type | None = field(default=None, compare=False, repr=False)


# ------------------------------------------------------------------ parse nodes
@dataclass(frozen=True, slots=True, kw_only=True)
class Literal(Expr):
    """A literal: null, boolean, integer, decimal, string, date, timestamp or duration."""

    value: LiteralValue
    # `1 == True == Decimal(1)` in Python: literals of different kinds must differ (nodes key values, dedupe aggregates)
    kind: type = field(init=False, repr=False, compare=True, default=type(None))

    def __post_init__(self):
        object.__setattr__(self, "kind", type(self.value))


@dataclass(frozen=True, slots=True, kw_only=True)
class ListLiteral(Expr):
    """A list written in the source, such as `["coat", "dress"]`."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Name(Expr):
    """A bare name before resolution: an attribute, column, segment or `now`."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Path(Expr):
    """A dotted name such as `event.category` or `customer.country`."""

    base: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class And(Expr):
    """`a and b and ...` under three-valued logic."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Or(Expr):
    """`a or b or ...` under three-valued logic."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Not(Expr):
    """`not a`: unknown stays unknown."""

    operand: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Compare(Expr):
    """A binary comparison such as `total > 100`."""

    op: CompareOp
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Arith(Expr):
    """Binary arithmetic such as `total - discount`."""

    op: ArithOp
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Negate(Expr):
    """Unary minus."""

    operand: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class SetOp(Expr):
    """`a | b`, `a & b`, `a - b` on segment membership: always true or false."""

    op: SetOpKind
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class In(Expr):
    """`needle in haystack` (or `not in`), the haystack a list."""

    needle: Expr
    haystack: Expr
    negated: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Between(Expr):
    """`value between low and high`, both ends included."""

    value: Expr
    low: Expr
    high: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class IsNull(Expr):
    """`value is null` / `value is not null`: never unknown."""

    operand: Expr
    negated: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TextOp(Expr):
    """`a contains b`, `a starts_with b`, `a matches "regex"`."""

    op: TextOpKind
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Within(Expr):
    """`x within 30d`: `now - 30d < x <= now`."""

    value: Expr
    duration: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedArg(Node):
    """`name: value` inside a call or an action."""

    name: str
    value: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Call(Expr):
    """A call of a built-in function; after resolution all arguments are positional."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[NamedArg, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Aggregate(Expr):
    """`count(orders where ...)`, `sum(orders.total where ...)` over related rows.

    `sum(order_items: price * quantity)` aggregates a per-row `value` instead of a column;
    `top(order_items.category by price * quantity)` is the value with the largest summed weight `by` (row count
    without `by`), ties to the smallest value."""

    func: AggFunc
    table: str
    column: str | None = None
    where: Expr | None = None
    value: Expr | None = None
    by: Expr | None = None


# --------------------------------------------------------------- resolved nodes
@dataclass(frozen=True, slots=True, kw_only=True)
class Column(Expr):
    """A column of the row in scope: the customer, an order, an item or an event."""

    table: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AttributeRef(Expr):
    """A use of a user-defined or built-in attribute."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentRef(Expr):
    """A segment used as a boolean: true for members, false otherwise, never unknown."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Now(Expr):
    """The evaluation instant, fixed for a whole run."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowStart(Expr):
    """`now - duration`, a window's open lower edge (lowered `within`); `EvaluationContext.window_start`."""

    duration: Duration


@dataclass(frozen=True, slots=True, kw_only=True)
class Ever(Expr):
    """`ever`: the window without edges; `x within ever` holds for every visible row."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ntile(Expr):
    """`ntile(n, value, among: condition)`: the customer's n-quantile in a population.

    The population is every existing customer for whom `among` is true and `value` is not null, ordered by value,
    then by id; tiles follow SQL's NTILE. Outside the population the result is null."""

    buckets: int
    value: Expr
    among: Expr
    ties: bool = False  # `score`: 1 + floor(buckets × ranked below ÷ ranked), equal values share a tile


# ---------------------------------------------------------------- declarations
@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentDecl(Node):
    """`segment NAME "title": expr` (or `= expr` for set algebra)."""

    name: str
    title: str | None
    body: Expr
    uses_equals: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AttributeDecl(Node):
    """`attribute NAME = expr`: a derived attribute usable in every rule."""

    name: str
    title: str | None
    body: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Param(Node):
    """A function parameter, with its default value when the argument is optional."""

    name: str
    default: Expr | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionDecl(Node):
    """`function NAME(param, param: default) "title" = expr`: inlined at every call."""

    name: str
    title: str | None
    params: tuple[Param, ...]
    body: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class EventTrigger(Node):
    """`on add_to_cart where ...`: fires for each matching event."""

    event_type: str
    where: Expr | None = None
    at: time | None = None  # only meaningful once the name turns out to be a date (`on birthday at 10:00`)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleTrigger(Node):
    """`daily at 09:00`, `weekly on monday at 09:00`, `monthly on 1 at 09:00`."""

    every: str
    at: time
    day: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DateTrigger(Node):
    """`on birthday - 3d`: fires on the day a date computed from the data comes."""

    anchor: Expr
    where: Expr | None = None
    at: time | None = None  # the time of day it fires (default 09:00)


@dataclass(frozen=True, slots=True, kw_only=True)
class AfterTrigger(Node):
    """`75d after last_order_at where ...`."""

    delay: Duration
    anchor: Expr
    where: Expr | None = None
    at: time | None = None  # for a date anchor: the time of day it fires (default 09:00)


class ChangeKind(StrEnum):
    """How a threshold trigger fires."""

    BECOMES = "becomes"
    REACHES = "reaches"
    TRUE = "true"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeTrigger(Node):
    """`when tier becomes "gold"`, `when days_since_last_order reaches 60`, `when expr`."""

    subject: Expr
    kind: ChangeKind
    value: Expr | None = None


Trigger = EventTrigger | ScheduleTrigger | DateTrigger | AfterTrigger | ChangeTrigger


@dataclass(frozen=True, slots=True, kw_only=True)
class Action(Node):
    """`email(template: "winback", coupon: "BACK15")`."""

    kind: str
    args: tuple[NamedArg, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cap(Node):
    """`cap: 1 per 30d`."""

    count: int
    per: Duration


@dataclass(frozen=True, slots=True, kw_only=True)
class QuietHours(Node):
    """`quiet: 22:00-08:00`: no sends inside this daily window."""

    start: time
    end: time


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignDecl(Node):
    """A campaign: audience, trigger, wait, unless, action and guard rails."""

    name: str
    title: str | None
    trigger: Trigger
    action: Action
    audience: Expr | None = None
    wait: Duration | None = None
    unless: Expr | None = None
    cap: Cap | None = None
    quiet: QuietHours | None = None
    holdout: Decimal | None = None
    priority: int | None = None  # wins ties for a channel's `limit` (higher first); else declaration order
    budget: Decimal | None = None  # money: sends stop when their cost would pass it (campaigns/budget.py)
    cost: Decimal | None = None  # money per message sent (ready, sending, delivered)


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitDecl(Node):
    """`limit email: 2 per 7d`: at most this many messages of a channel per customer, across campaigns."""

    channel: str
    count: int
    per: Duration


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordField(Node):
    """`key: value` inside a test record."""

    name: str
    value: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Record(Expr):
    """`{id: "c1", total: 150}`: test data only."""

    fields: tuple[RecordField, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Given(Node):
    """`customer {...}`, `orders [...]` or `events [...]` in a test case."""

    table: str
    value: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class TestCase(Node):
    """`given ... [as of DATE] expect in|out`."""

    __test__ = False  # not a pytest class
    given: tuple[Given, ...]
    expect_in: bool
    as_of: date | datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TestDecl(Node):
    """`test SEGMENT:` followed by one or more cases."""

    __test__ = False
    segment: str
    title: str | None
    cases: tuple[TestCase, ...]


Declaration = SegmentDecl | AttributeDecl | FunctionDecl | CampaignDecl | LimitDecl | TestDecl


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleFile(Node):
    """Every declaration of one or more rule files, in source order."""

    declarations: tuple[Declaration, ...]


# -------------------------------------------------------------- generic traversal
N = TypeVar("N", bound=Node)


def _holds_nodes(hint) -> bool:  # whether a field's type names a node class: alone, in a union or in a tuple
    return issubclass(hint, Node) if isinstance(hint, type) else any(_holds_nodes(a) for a in get_args(hint))


_EVERY_FIELD: dict[type, tuple[str, ...]] = {}  # per node class (every one above, at any depth): its fields
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # the fields that can hold nodes: not span, type, names, numbers
for _cls in (_found := [Node]):  # the list grows while it is read; a slotted class replaced its unslotted first
    _found += [sub for sub in _cls.__subclasses__() if "__slots__" in vars(sub)]
    _EVERY_FIELD[_cls] = tuple(f.name for f in dataclasses.fields(_cls))
    _FIELD_NAMES[_cls] = tuple(n for n, hint in get_type_hints(_cls).items() if _holds_nodes(hint))


def children(node: Node) -> list[Node]:
    """The child nodes of a node, derived from its dataclass fields."""
    found = []
    for name in _FIELD_NAMES[type(node)]:
        value = getattr(node, name)
        if isinstance(value, Node):
            found.append(value)
        elif isinstance(value, tuple):
            found += value
    return found


def walk(node: Node) -> Iterator[Node]:
    """The node and all its descendants, parents first."""
    stack = [node]
    while stack:
        yield (current := stack.pop())
        stack.extend(reversed(children(current)))


def transform(node: N, fn: Callable[[Node], Node]) -> N:
    """Rebuild a tree bottom-up, applying `fn` to every node after its children."""
    def rebuilt(current: Node) -> Node:  # one closure for the whole walk, not one per node
        return fn(map_children(current, rebuilt))
    return rebuilt(node)


def map_children(node: N, fn: Callable[[Node], Node]) -> N:
    """The node with `fn` applied to each direct child, for passes that walk top-down."""
    changes = {}
    for name in _FIELD_NAMES[type(node)]:
        value = getattr(node, name)
        if isinstance(value, Node):
            new = fn(value)
            if new is not value:
                changes[name] = new
        elif isinstance(value, tuple) and value:
            new_items = tuple([fn(item) for item in value])  # a field that can hold nodes holds only nodes
            if any(map(is_not, new_items, value)):
                changes[name] = new_items
    return replace(node, **changes) if changes else node


def replace(node: N, **changes) -> N:
    """`dataclasses.replace` without its checks (a tenth of checking a rule): fields by name, the rest kept."""
    new = object.__new__(cls := type(node))
    for name in _EVERY_FIELD[cls]:
        object.__setattr__(new, name, changes.pop(name) if name in changes else getattr(node, name))
    if changes:
        raise TypeError(f"{cls.__name__} has no field {', '.join(changes)}")
    if cls is Literal:  # its kind follows its value
        object.__setattr__(new, "kind", type(new.value))
    return new
