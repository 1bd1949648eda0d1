"""Turn Lark's parse tree into AST nodes with spans; literals are decoded here."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal

from lark import Token, Transformer, Tree, v_args
from lark.exceptions import GrammarError, VisitError

from crmrules import ast
from crmrules.errors import RuleSyntaxError, Source, Span

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "\\": "\\", '"': '"', "'": "'",
            "0": "\0"}
MAX_DEPTH = 200
_MAX_INT = 2**63 - 1
_MAX_DECIMAL_DIGITS = 38
_MAX_DURATION = {ast.DurationUnit.YEAR: 1000, ast.DurationUnit.MONTH: 12_000, ast.DurationUnit.WEEK: 52_000,
                 ast.DurationUnit.DAY: 365_000, ast.DurationUnit.HOUR: 8_760_000,
                 ast.DurationUnit.MINUTE: 525_600_000, ast.DurationUnit.SECOND: 31_536_000_000}
_DURATION = re.compile(r"(\d+)(mo|min|[ywdhs])")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def decode_string(text: str) -> str:
    """The value of a quoted string literal, escapes resolved."""
    body = text[1:-1]
    out = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6]):
                out.append(chr(int(body[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


_ENCODE = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def encode_string(value: str) -> str:
    """A double-quoted literal that decodes back to `value`; other control characters as \\uXXXX."""
    out = []
    for char in value:
        if char in _ENCODE:
            out.append(_ENCODE[char])
        elif ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 or char in "\u2028\u2029":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'



@v_args(meta=True)
class ToAst(Transformer):
    """CST → AST for one declaration or expression; offsets shift spans into the file."""

    def __init__(self, offset: int, source: Source):
        super().__init__()
        self.offset = offset
        self.source = source

    def transform(self, tree: Tree):
        """Lark's `Transformer.transform`, each rule's method called directly: lark's `v_args` builds a new
        bound wrapper around the method at every node (a fifth of the transform). The same results and the
        same `VisitError` around a method's exception; tokens are kept as they are (no method takes one)."""
        return self._build(tree, 1)

    def _build(self, tree: Tree, depth: int):
        if depth > MAX_DEPTH:  # before Python's own recursion limit
            start = self.offset + (tree.meta.start_pos if not tree.meta.empty else 0)
            raise RuleSyntaxError(f"expression nested too deeply (more than {MAX_DEPTH} levels)",
                                  Span(start, start + 1, self.source),
                                  "name parts of it as attributes or segments", code="E0104")
        children = [self._build(child, depth + 1) if isinstance(child, Tree) else child for child in tree.children]
        method = _RULE_METHODS.get(tree.data)
        if method is None:
            return self._call_userfunc(tree, children)
        try:
            return method(self, tree.meta, children)
        except GrammarError:
            raise
        except Exception as error:  # wrapped as lark does: the parser unwraps ours
            raise VisitError(tree.data, tree, error) from error

    # ------------------------------------------------------------------ helpers
    def _span(self, meta) -> Span | None:
        if meta.empty:
            return None
        return Span(self.offset + meta.start_pos, self.offset + meta.end_pos, self.source)

    def _token_span(self, token: Token) -> Span:
        return Span(self.offset + token.start_pos, self.offset + token.end_pos, self.source)

    def _error(self, message: str, token: Token, hint: str | None = None) -> RuleSyntaxError:
        return RuleSyntaxError(message, self._token_span(token), hint, code="E0103")

    def _date(self, token: Token) -> date:
        try:
            return date.fromisoformat(str(token))
        except ValueError:
            raise self._error(f"`{token}` is not a valid date", token) from None

    def _datetime(self, token: Token) -> datetime:
        try:
            return datetime.fromisoformat(str(token))
        except ValueError:
            raise self._error(f"`{token}` is not a valid timestamp", token) from None

    def _time(self, token: Token) -> time:
        hours, minutes = str(token).split(":")
        if int(hours) > 23 or int(minutes) > 59:
            raise self._error(f"`{token}` is not a valid time of day", token, "use 00:00 to 23:59")
        return time(int(hours), int(minutes))

    def _duration(self, token: Token) -> ast.Duration:
        match = _DURATION.fullmatch(str(token))
        amount, unit = match.group(1), ast.DurationUnit(match.group(2))
        # every engine must be able to move any date of the data by it: at most 1,000 years
        if len(amount) > 12 or int(amount) > _MAX_DURATION[unit]:
            raise self._error(f"`{token}` is longer than 1,000 years", token,
                              f"at most {_MAX_DURATION[unit]:,}{unit}")
        return ast.Duration(int(amount), unit)

    # ----------------------------------------------------------------- literals
    def int_(self, meta, children):
        text = str(children[0])
        # SQL engines hold whole numbers in 64 bits; a longer literal is a mistake, not a number
        if len(text) > 19 or int(text) > _MAX_INT:
            raise self._error(f"`{text[:30]}{'...' if len(text) > 30 else ''}` is too large for a whole number",
                              children[0], f"at most {_MAX_INT:,}")
        return ast.Literal(value=int(text), span=self._span(meta))

    def decimal(self, meta, children):
        value = Decimal(str(children[0]))
        if len(value.as_tuple().digits) > _MAX_DECIMAL_DIGITS:
            raise self._error(f"`{str(children[0])[:30]}...` has more than {_MAX_DECIMAL_DIGITS} digits", children[0],
                              "SQL engines keep at most 38 digits of a decimal")
        return ast.Literal(value=value, span=self._span(meta))

    def string(self, meta, children):
        return ast.Literal(value=decode_string(str(children[0])), span=self._span(meta))

    def true(self, meta, children):
        return ast.Literal(value=True, span=self._span(meta))

    def false(self, meta, children):
        return ast.Literal(value=False, span=self._span(meta))

    def null(self, meta, children):
        return ast.Literal(value=None, span=self._span(meta))

    def ever(self, meta, children):
        return ast.Ever(span=self._span(meta))

    def duration(self, meta, children):
        return ast.Literal(value=self._duration(children[0]), span=self._span(meta))

    def date(self, meta, children):
        return ast.Literal(value=self._date(children[0]), span=self._span(meta))

    def datetime(self, meta, children):
        return ast.Literal(value=self._datetime(children[0]), span=self._span(meta))

    def list_literal(self, meta, children):
        items = tuple(c for c in children if c is not None)
        return ast.ListLiteral(items=items, span=self._span(meta))

    value_list = list_literal

    def negative(self, meta, children):
        return ast.Literal(value=-children[0].value, span=self._span(meta))

    def record_field(self, meta, children):
        name, value = children
        return ast.RecordField(name=str(name), value=value, span=self._span(meta))

    def record(self, meta, children):
        fields = tuple(c for c in children if c is not None)
        return ast.Record(fields=fields, span=self._span(meta))

    # -------------------------------------------------------------- expressions
    def name(self, meta, children):
        return ast.Name(name=str(children[0]), span=self._span(meta))

    def path(self, meta, children):
        return ast.Path(base=str(children[0]), name=str(children[1]), span=self._span(meta))

    def expr(self, meta, children):  # `a or b or ...`
        return ast.Or(operands=tuple(children), span=self._span(meta))

    def and_expr(self, meta, children):
        return ast.And(operands=tuple(children), span=self._span(meta))

    def not_(self, meta, children):
        return ast.Not(operand=children[0], span=self._span(meta))

    def compare(self, meta, children):
        left, op, right = children
        return ast.Compare(op=ast.CompareOp(str(op)), left=left, right=right, span=self._span(meta))

    def in_(self, meta, children):
        return ast.In(needle=children[0], haystack=children[1], span=self._span(meta))

    def not_in(self, meta, children):
        return ast.In(needle=children[0], haystack=children[1], negated=True, span=self._span(meta))

    def between(self, meta, children):
        value, low, high = children
        return ast.Between(value=value, low=low, high=high, span=self._span(meta))

    def is_null(self, meta, children):
        return ast.IsNull(operand=children[0], span=self._span(meta))

    def is_not_null(self, meta, children):
        return ast.IsNull(operand=children[0], negated=True, span=self._span(meta))

    def _text_op(self, kind, meta, children):
        return ast.TextOp(op=kind, left=children[0], right=children[1], span=self._span(meta))

    def contains(self, meta, children):
        return self._text_op(ast.TextOpKind.CONTAINS, meta, children)

    def starts_with(self, meta, children):
        return self._text_op(ast.TextOpKind.STARTS_WITH, meta, children)

    def matches(self, meta, children):
        return self._text_op(ast.TextOpKind.MATCHES, meta, children)

    def within(self, meta, children):
        return ast.Within(value=children[0], duration=children[1], span=self._span(meta))

    def _set_op(self, kind, meta, children):
        return ast.SetOp(op=kind, left=children[0], right=children[1], span=self._span(meta))

    def union(self, meta, children):
        return self._set_op(ast.SetOpKind.UNION, meta, children)

    def intersect(self, meta, children):
        return self._set_op(ast.SetOpKind.INTERSECT, meta, children)

    def _arith(self, op, meta, children):
        return ast.Arith(op=op, left=children[0], right=children[1], span=self._span(meta))

    def add(self, meta, children):
        return self._arith(ast.ArithOp.ADD, meta, children)

    def sub(self, meta, children):
        return self._arith(ast.ArithOp.SUB, meta, children)

    def mul(self, meta, children):
        return self._arith(ast.ArithOp.MUL, meta, children)

    def div(self, meta, children):
        return self._arith(ast.ArithOp.DIV, meta, children)

    def mod(self, meta, children):
        return self._arith(ast.ArithOp.MOD, meta, children)

    def neg(self, meta, children):
        operand = children[0]
        # `-5` is the literal -5, so that formatting a negative literal round-trips
        if isinstance(operand, ast.Literal) and type(operand.value) in (int, Decimal):
            return ast.Literal(value=-operand.value, span=self._span(meta))
        return ast.Negate(operand=operand, span=self._span(meta))

    def named_arg(self, meta, children):
        return ast.NamedArg(name=str(children[0]), value=children[1], span=self._span(meta))

    def args(self, meta, children):
        return children

    def call(self, meta, children):
        name, args = children
        args = args or []
        positional = tuple(a for a in args if not isinstance(a, ast.NamedArg))
        named = tuple(a for a in args if isinstance(a, ast.NamedArg))
        for arg in args[len(positional):]:
            if not isinstance(arg, ast.NamedArg):
                raise RuleSyntaxError("positional argument after a named one", arg.span,
                                      "put positional arguments first", code="E0103")
        return ast.Call(name=str(name), args=positional, kwargs=named, span=self._span(meta))

    def agg_func(self, meta, children):
        return ast.AggFunc(str(children[0]))

    def aggregate(self, meta, children):
        func, table, column, by, where = children
        return ast.Aggregate(func=func, table=str(table), column=str(column) if column else None,
                             where=where, by=by, span=self._span(meta))

    def aggregate_of(self, meta, children):
        func, table, value, by, where = children
        return ast.Aggregate(func=func, table=str(table), value=value, where=where, by=by, span=self._span(meta))

    # ------------------------------------------------------------- declarations
    def segment_colon(self, meta, children):
        name, title, body = children
        return ast.SegmentDecl(name=str(name), title=_title(title), body=body, span=self._span(meta))

    def segment_equals(self, meta, children):
        name, title, body = children
        return ast.SegmentDecl(name=str(name), title=_title(title), body=body, uses_equals=True,
                               span=self._span(meta))

    def attribute(self, meta, children):
        name, title, body = children
        return ast.AttributeDecl(name=str(name), title=_title(title), body=body, span=self._span(meta))

    def function(self, meta, children):
        name, *params, title, body = children
        params = tuple(p for p in params if p is not None)
        seen: set[str] = set()
        for param in params:
            if param.name in seen:
                raise RuleSyntaxError(f"parameter `{param.name}` is listed twice", param.span,
                                      "give each parameter its own name", code="E0103")
            seen.add(param.name)
        for before, after in zip(params, params[1:]):
            if before.default is not None and after.default is None:
                raise RuleSyntaxError(f"parameter `{after.name}` needs a default", after.span,
                                      "parameters with defaults come after those without", code="E0103")
        return ast.FunctionDecl(name=str(name), title=_title(title), params=params, body=body,
                                span=self._span(meta))

    def param(self, meta, children):
        name, default = children
        return ast.Param(name=str(name), default=default, span=self._span(meta))

    # campaign fields come back as (field name, value, span) and are gathered below
    def audience(self, meta, children):
        return ("audience", children[0], self._span(meta))

    def trigger_field(self, meta, children):
        return ("trigger", children[0], self._span(meta))

    def wait(self, meta, children):
        return ("wait", self._duration(children[0]), self._span(meta))

    def unless(self, meta, children):
        return ("unless", children[0], self._span(meta))

    def action(self, meta, children):
        kind, args = children
        span = Span(self.offset + kind.start_pos, self.offset + meta.end_pos, self.source)
        node = ast.Action(kind=str(kind), args=tuple(args.children if args else ()), span=span)
        return ("action", node, self._span(meta))

    def named_args(self, meta, children):
        return _Args(children)

    def cap(self, meta, children):
        count, per = children
        node = ast.Cap(count=int(count), per=self._duration(per), span=self._span(meta))
        return ("cap", node, self._span(meta))

    def quiet(self, meta, children):
        start, end = children
        node = ast.QuietHours(start=self._time(start), end=self._time(end), span=self._span(meta))
        return ("quiet", node, self._span(meta))

    def priority(self, meta, children):
        return ("priority", int(children[0]), self._span(meta))

    def budget(self, meta, children):
        return ("budget", Decimal(children[0].value), self._span(meta))

    def cost(self, meta, children):
        return ("cost", Decimal(children[0].value), self._span(meta))

    def limit(self, meta, children):
        channel, count, per = children
        return ast.LimitDecl(channel=str(channel), count=int(count), per=self._duration(per), span=self._span(meta))

    def holdout(self, meta, children):
        value = Decimal(children[0].value)
        if not 0 <= value < 100:
            raise RuleSyntaxError("a holdout is a percentage from 0 up to (not including) 100",
                                  children[0].span, code="E0103")
        return ("holdout", value, self._span(meta))

    def on_trigger(self, meta, children):
        subject, at, where = children
        at = self._time(at) if at is not None else None
        if isinstance(subject, ast.Name):
            return ast.EventTrigger(event_type=subject.name, where=where, at=at, span=self._span(meta))
        return ast.DateTrigger(anchor=subject, where=where, at=at, span=self._span(meta))

    def daily(self, meta, children):
        return ast.ScheduleTrigger(every="daily", at=self._time(children[0]), span=self._span(meta))

    def weekly(self, meta, children):
        day, at = children
        if str(day).lower() not in _WEEKDAYS:
            raise self._error(f"`{day}` is not a day of the week", day, "write monday ... sunday")
        return ast.ScheduleTrigger(every="weekly", day=str(day).lower(), at=self._time(at),
                                   span=self._span(meta))

    def monthly(self, meta, children):
        day, at = children
        if not 1 <= int(day) <= 31:
            raise self._error(f"there is no day {day} in a month", day, "use a day from 1 to 31 (past a "
                              "month's end it fires on its last day)")
        return ast.ScheduleTrigger(every="monthly", day=str(int(day)), at=self._time(at),
                                   span=self._span(meta))

    def after_trigger(self, meta, children):
        delay, anchor, at, where = children
        return ast.AfterTrigger(delay=self._duration(delay), anchor=anchor, where=where,
                                at=self._time(at) if at is not None else None, span=self._span(meta))

    def becomes(self, meta, children):
        return ast.ChangeTrigger(subject=children[0], kind=ast.ChangeKind.BECOMES, value=children[1],
                                 span=self._span(meta))

    def reaches(self, meta, children):
        return ast.ChangeTrigger(subject=children[0], kind=ast.ChangeKind.REACHES, value=children[1],
                                 span=self._span(meta))

    def when_true(self, meta, children):
        return ast.ChangeTrigger(subject=children[0], kind=ast.ChangeKind.TRUE, span=self._span(meta))

    def campaign(self, meta, children):
        name, title, *fields = children
        seen: dict[str, object] = {}
        for field_name, value, span in fields:
            if field_name in seen:
                raise RuleSyntaxError(f"campaign `{name}` sets `{field_name}` twice", span,
                                      "keep one of them", code="E0105")
            seen[field_name] = value
        for required in ("trigger", "action"):
            if required not in seen:
                raise RuleSyntaxError(f"campaign `{name}` has no `{required}`", self._token_span(name),
                                      f"add a `{required}:` line", code="E0106")
        return ast.CampaignDecl(name=str(name), title=_title(title), span=self._span(meta), **seen)

    def given_item(self, meta, children):
        table, value = children
        return ast.Given(table=str(table), value=value, span=self._span(meta))

    def as_of(self, meta, children):
        token = children[0]
        return self._datetime(token) if token.type == "DATETIME" else self._date(token)

    def expectation(self, meta, children):
        return str(children[0]) == "in"

    def test_case(self, meta, children):
        *given, as_of, expect_in = children
        return ast.TestCase(given=tuple(given), as_of=as_of, expect_in=expect_in, span=self._span(meta))

    def test(self, meta, children):
        name, title, *cases = children
        return ast.TestDecl(segment=str(name), title=_title(title), cases=tuple(cases),
                            span=self._span(meta))


# each rule's method as written (`(self, meta, children)`), unwrapped from `v_args(meta=True)`
_RULE_METHODS = {name: value.base_func for name, value in vars(ToAst).items()
                 if getattr(getattr(value, "visit_wrapper", None), "__name__", "") == "_vargs_meta"}


class _Args:
    """Named arguments of an action, carried up to the action rule."""

    def __init__(self, children):
        self.children = children


def _title(token: Token | None) -> str | None:
    return decode_string(str(token)) if token is not None else None
