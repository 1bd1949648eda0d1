"""Print any AST back to canonical source: `parse(format_rules(tree)) == tree`."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal

from crmrules import ast
from crmrules.grammar.parser import parse
from crmrules.grammar.to_ast import encode_string as _encode_string

INDENT = "    "
WIDTH = 100  # lines longer than this are broken at `and` / `or` where the rule allows it
_SURROGATE = re.compile("[\ud800-\udfff]")


def encode_string(value: str) -> str:
    """A string literal that decodes back to `value`; a lone surrogate (only ever written as an escape)
    stays an escape, so the formatted file is UTF-8 like any other."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", _encode_string(value))

# binding strength, loosest first; atoms bind tightest
_OR, _AND, _NOT, _COMPARE, _UNION, _INTERSECT, _ADD, _MUL, _UNARY, _ATOM = range(1, 11)
_ARITH_LEVEL = {ast.ArithOp.ADD: _ADD, ast.ArithOp.SUB: _ADD, ast.ArithOp.MUL: _MUL, ast.ArithOp.DIV: _MUL,
                ast.ArithOp.MOD: _MUL}
_SET_LEVEL = {ast.SetOpKind.UNION: _UNION, ast.SetOpKind.INTERSECT: _INTERSECT, ast.SetOpKind.DIFFERENCE: _ADD}
_CAMPAIGN_FIELDS = ("audience", "trigger", "wait", "unless", "action", "cap", "quiet", "holdout", "priority",
                    "budget", "cost")


def format_rules(node: ast.Node, width: int = WIDTH) -> str:
    """Canonical source for a rule file, a declaration or an expression; a declaration's body longer than
    `width` is laid out over several lines, broken at `and` / `or`."""
    match node:
        case ast.RuleFile(declarations=decls):
            return "\n".join(_declaration(d, width) for d in decls)
        case ast.Expr():
            return format_expr(node)
    return _declaration(node, width)


def format_expr(node: ast.Expr) -> str:
    """Canonical source for one expression, with only the parentheses it needs."""
    return _expr(node)[0]


def _level(node: ast.Expr) -> int:
    match node:
        case ast.Or():
            return _OR
        case ast.And():
            return _AND
        case ast.Not():
            return _NOT
        case ast.Compare() | ast.In() | ast.Between() | ast.IsNull() | ast.TextOp() | ast.Within():
            return _COMPARE
        case ast.SetOp(op=op):
            return _SET_LEVEL[op]
        case ast.Arith(op=op):
            return _ARITH_LEVEL[op]
        case ast.Negate():
            return _UNARY
        case ast.Literal(value=value) if type(value) in (int, Decimal) and value < 0:
            return _UNARY
    return _ATOM


def _wrap(node: ast.Expr, minimum: int) -> str:
    text = format_expr(node)
    return text if _level(node) >= minimum else f"({text})"


def _expr(node: ast.Expr) -> tuple[str, int]:  # noqa: C901 - one case per node kind
    level = _level(node)
    match node:
        case ast.Or(operands=ops) | ast.And(operands=ops):
            word = " or " if isinstance(node, ast.Or) else " and "
            # a nested junction of the same kind keeps its parentheses, so it parses back nested
            return word.join(f"({format_expr(o)})" if type(o) is type(node) else _wrap(o, level + 1)
                             for o in ops), level
        case ast.Not(operand=op):
            return f"not {_wrap(op, _NOT)}", level
        case ast.Compare(op=op, left=left, right=right):
            return f"{_wrap(left, _UNION)} {op} {_wrap(right, _UNION)}", level
        case ast.In(needle=needle, haystack=hay, negated=negated):
            return f"{_wrap(needle, _UNION)} {'not in' if negated else 'in'} {_wrap(hay, _UNION)}", level
        case ast.Between(value=v, low=lo, high=hi):
            return f"{_wrap(v, _UNION)} between {_wrap(lo, _UNION)} and {_wrap(hi, _UNION)}", level
        case ast.IsNull(operand=op, negated=negated):
            return f"{_wrap(op, _UNION)} is {'not ' if negated else ''}null", level
        case ast.TextOp(op=op, left=left, right=right):
            return f"{_wrap(left, _UNION)} {op} {_wrap(right, _UNION)}", level
        case ast.Within(value=v, duration=d):
            return f"{_wrap(v, _UNION)} within {_wrap(d, _UNION)}", level
        case ast.SetOp(op=op, left=left, right=right) | ast.Arith(op=op, left=left, right=right):
            return f"{_wrap(left, level)} {op} {_wrap(right, level + 1)}", level
        case ast.Negate(operand=op):
            inner = _wrap(op, _UNARY + 1)
            return f"-{inner}" if not inner.startswith("-") else f"-({inner})", level
        case ast.Literal(value=value):
            return _literal(value), level
        case ast.ListLiteral(items=items):
            return "[" + ", ".join(format_expr(i) for i in items) + "]", level
        case ast.Record(fields=fields):
            return "{" + ", ".join(f"{f.name}: {format_expr(f.value)}" for f in fields) + "}", level
        case ast.Name(name=name) | ast.AttributeRef(name=name) | ast.SegmentRef(name=name) | \
                ast.Column(name=name):
            return name, level
        case ast.Path(base=base, name=name):
            return f"{base}.{name}", level
        case ast.Now():
            return "now", level
        case ast.Ever():
            return "ever", level
        case ast.Call(name=name, args=args, kwargs=kwargs):
            parts = [format_expr(a) for a in args] + [_named(k) for k in kwargs]
            return f"{name}({', '.join(parts)})", level
        case ast.Aggregate(func=func, table=table, column=column, where=where, value=value, by=by):
            source = f"{table}: {format_expr(value)}" if value is not None else (
                f"{table}.{column}" if column else table)
            weight = f" by {format_expr(by)}" if by is not None else ""
            condition = f" where {format_expr(where)}" if where is not None else ""
            return f"{func}({source}{weight}{condition})", level
    raise TypeError(f"cannot format {type(node).__name__}")


def _named(arg: ast.NamedArg) -> str:
    return f"{arg.name}: {format_expr(arg.value)}"


def _literal(value: ast.LiteralValue) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case Decimal():
            text = format(value, "f")
            return text if "." in text else text + ".0"
        case str():
            return encode_string(value)
        case datetime():
            return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
        case date():
            return value.isoformat()
        case ast.Duration():
            return str(value)
    raise TypeError(f"cannot format literal {value!r}")


def _time(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def _header(keyword: str, name: str, title: str | None) -> str:
    return f"{keyword} {name}" + (f" {encode_string(title)}" if title is not None else "")


def _layout(node: ast.Expr, indent: str, width: int) -> list[str]:
    """The lines of an expression starting at `indent`: as one line when it fits; a junction too long is
    broken before its `and` / `or`, its operands packed while they fit and a long operand broken deeper."""
    flat = format_expr(node)
    if len(indent) + len(flat) <= width or not isinstance(node, (ast.Or, ast.And)):
        return [indent + flat]
    word = "or" if isinstance(node, ast.Or) else "and"
    lines: list[str] = []
    current: str | None = None
    for index, operand in enumerate(node.operands):
        # the parentheses `_expr` gives an operand: a nested junction of the same kind, or a looser one
        parens = type(operand) is type(node) or _level(operand) < _level(node) + 1
        text = f"({format_expr(operand)})" if parens else format_expr(operand)
        piece = text if index == 0 else f"{word} {text}"
        if current is not None and len(current) + 1 + len(piece) <= width:
            current += " " + piece
            continue
        if current is not None:
            lines.append(current)
        if len(indent) + len(piece) <= width:
            current = indent + piece
            continue
        inner = _layout(operand, indent + INDENT, width - (1 if parens else 0))
        lead = indent + ("" if index == 0 else f"{word} ") + ("(" if parens else "")
        inner[0] = lead + inner[0].lstrip()
        if parens:
            inner[-1] += ")"
        lines.extend(inner)  # the next operand starts a line of its own, at this junction's depth
        current = None
    if current is not None:
        lines.append(current)
    return lines


def _after_equals(header: str, body: ast.Expr, width: int) -> str:
    """`header = body`, with the body on lines of its own below when it does not fit on one."""
    flat = f"{header} = {format_expr(body)}"
    if len(flat) <= width:
        return flat + "\n"
    return f"{header} =\n" + "\n".join(_layout(body, INDENT, width)) + "\n"


def _declaration(decl: ast.Node, width: int = WIDTH) -> str:
    match decl:
        case ast.SegmentDecl(name=name, title=title, body=body, uses_equals=True):
            return _after_equals(_header("segment", name, title), body, width)
        case ast.SegmentDecl(name=name, title=title, body=body):
            return f"{_header('segment', name, title)}:\n" + "\n".join(_layout(body, INDENT, width)) + "\n"
        case ast.AttributeDecl(name=name, title=title, body=body):
            return _after_equals(_header("attribute", name, title), body, width)
        case ast.FunctionDecl(name=name, title=title, params=params, body=body):
            listed = ", ".join(p.name if p.default is None else f"{p.name}: {format_expr(p.default)}"
                               for p in params)
            title_text = f" {encode_string(title)}" if title is not None else ""
            return _after_equals(f"function {name}({listed}){title_text}", body, width)
        case ast.CampaignDecl():
            lines = [f"{_header('campaign', decl.name, decl.title)}:"]
            for field_name in _CAMPAIGN_FIELDS:
                value = getattr(decl, field_name)
                if value is not None:  # budget and cost are money, not a percentage like holdout
                    shown = format(value, "f") if field_name in ("budget", "cost") else _campaign_value(value)
                    lines.append(f"{INDENT}{field_name}: {shown}")
            return "\n".join(lines) + "\n"
        case ast.LimitDecl(channel=channel, count=count, per=per):
            return f"limit {channel}: {count} per {per}\n"
        case ast.TestDecl(segment=segment, title=title, cases=cases):
            lines = [f"{_header('test', segment, title)}:"]
            for index, case in enumerate(cases):
                if index:
                    lines.append("")
                given = ", ".join(f"{g.table} {format_expr(g.value)}" for g in case.given)
                lines.append(f"{INDENT}given {given}")
                if case.as_of is not None:
                    lines.append(f"{INDENT}as of {_literal(case.as_of)}")
                lines.append(f"{INDENT}expect {'in' if case.expect_in else 'out'}")
            return "\n".join(lines) + "\n"
    raise TypeError(f"cannot format {type(decl).__name__}")


def _campaign_value(value) -> str:  # noqa: C901 - one case per field kind
    match value:
        case ast.Expr():
            return format_expr(value)
        case ast.Duration():
            return str(value)
        case Decimal():
            return f"{_literal(value).removesuffix('.0')}%"
        case int():
            return str(value)
        case ast.Cap(count=count, per=per):
            return f"{count} per {per}"
        case ast.QuietHours(start=start, end=end):
            return f"{_time(start)}-{_time(end)}"
        case ast.Action(kind=kind, args=args):
            return f"{kind}({', '.join(_named(a) for a in args)})"
        case ast.EventTrigger(event_type=event_type, where=where):
            return f"on {event_type}" + (f" where {format_expr(where)}" if where is not None else "")
        case ast.DateTrigger(anchor=anchor, where=where, at=at):
            return f"on {format_expr(anchor)}" + (f" at {_time(at)}" if at is not None else "") + \
                (f" where {format_expr(where)}" if where is not None else "")
        case ast.ScheduleTrigger(every="daily", at=at):
            return f"daily at {_time(at)}"
        case ast.ScheduleTrigger(every=every, day=day, at=at):
            return f"{every} on {day} at {_time(at)}"
        case ast.AfterTrigger(delay=delay, anchor=anchor, where=where, at=at):
            text = f"{delay} after {format_expr(anchor)}" + (f" at {_time(at)}" if at is not None else "")
            return text + (f" where {format_expr(where)}" if where is not None else "")
        case ast.ChangeTrigger(subject=subject, kind=ast.ChangeKind.TRUE):
            return f"when {format_expr(subject)}"
        case ast.ChangeTrigger(subject=subject, kind=kind, value=v):
            return f"when {format_expr(subject)} {kind} {format_expr(v)}"
    raise TypeError(f"cannot format campaign field {value!r}")


_TOKENS_WITH_COMMENTS = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|#[^\n]*")


def _comments(text: str) -> list[re.Match]:
    return [m for m in _TOKENS_WITH_COMMENTS.finditer(text) if m.group().startswith("#")]


def format_source(text: str, name: str = "<rules>", width: int = WIDTH) -> str:
    """Reformat rule-file text, keeping every comment: a declaration with comments inside stays as written.
    Bodies longer than `width` are laid out over several lines, broken at `and` / `or`."""
    tree = parse(text, name)
    blocks: list[str] = []
    position = 0
    for decl in tree.declarations:
        gap = text[position:decl.span.start]
        if blocks and _comments(gap.split("\n")[0]):
            # a comment on the line where the previous declaration ends stays on that line
            first, _, gap = gap.partition("\n")
            blocks[-1] = blocks[-1].rstrip("\n") + "  " + first.strip() + "\n"
        own = text[decl.span.start:decl.span.end]
        body = own.rstrip() + "\n" if _comments(own) else _declaration(decl, width)
        blocks.extend(_paragraphs(gap, attach_to=body))
        position = decl.span.end
    tail = text[position:]
    if blocks and _comments(tail.split("\n")[0]):
        first, _, tail = tail.partition("\n")
        blocks[-1] = blocks[-1].rstrip("\n") + "  " + first.strip() + "\n"
    blocks.extend(_paragraphs(tail, attach_to=None))
    return "\n".join(blocks)


def _paragraphs(gap: str, attach_to: str | None) -> list[str]:
    """Comment paragraphs of a gap; the last one touching the declaration stays on top of it."""
    paragraphs: list[list[str]] = [[]]
    # the text after the gap's last newline is the start of the declaration's own line
    for line in gap.split("\n")[:-1] if attach_to is not None else gap.split("\n"):
        stripped = line.strip()
        if stripped.startswith("#"):
            paragraphs[-1].append(stripped)
        elif not stripped and paragraphs[-1]:
            paragraphs.append([])
    touching = bool(paragraphs[-1])
    blocks = ["\n".join(p) + "\n" for p in paragraphs if p]
    if attach_to is None:
        return blocks
    if touching:
        blocks[-1] += attach_to
        return blocks
    return blocks + [attach_to]
