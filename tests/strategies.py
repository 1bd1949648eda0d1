"""Hypothesis strategies for parse-level ASTs: every node kind, every literal, every declaration."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

from hypothesis import strategies as st

from crmrules import ast

KEYWORDS = set("""and or not in between is null contains starts_with matches within true false count sum avg min max
any none distinct top by ever function segment attribute campaign test where audience trigger wait unless action cap quiet holdout on
daily weekly monthly at after when becomes reaches given as of expect per out""".split())

names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(lambda n: n not in KEYWORDS)
strings = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
decimals = st.decimals(min_value=Decimal("-1e6"), max_value=Decimal("1e6"), places=3, allow_nan=False,
                       allow_infinity=False)
datetimes = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
durations = st.builds(ast.Duration, st.integers(0, 999), st.sampled_from(list(ast.DurationUnit)))
literal_values = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), decimals, strings,
                           st.dates(date(1900, 1, 1), date(2100, 1, 1)), datetimes, durations)


def _lit(value):
    return ast.Literal(value=value)


literals = literal_values.map(_lit)
leaves = st.one_of(literals, names.map(lambda n: ast.Name(name=n)), st.just(ast.Ever()),
                   st.builds(lambda b, n: ast.Path(base=b, name=n), names, names))


def _branches(inner):
    # `-5` parses as the literal -5, so unary minus never wraps a numeric literal
    negatable = inner.filter(lambda e: not (isinstance(e, ast.Literal) and type(e.value) in (int, Decimal)))
    pairs = st.tuples(inner, inner)
    junction = st.lists(inner, min_size=2, max_size=3).map(tuple)
    return st.one_of(
        junction.map(lambda ops: ast.And(operands=ops)), junction.map(lambda ops: ast.Or(operands=ops)),
        inner.map(lambda e: ast.Not(operand=e)),
        st.builds(lambda op, p: ast.Compare(op=op, left=p[0], right=p[1]), st.sampled_from(list(ast.CompareOp)), pairs),
        st.builds(lambda op, p: ast.Arith(op=op, left=p[0], right=p[1]), st.sampled_from(list(ast.ArithOp)), pairs),
        negatable.map(lambda e: ast.Negate(operand=e)),
        st.builds(lambda op, p: ast.SetOp(op=op, left=p[0], right=p[1]),
                  st.sampled_from([ast.SetOpKind.UNION, ast.SetOpKind.INTERSECT]), pairs),
        st.builds(lambda n, p: ast.In(needle=p[0], haystack=p[1], negated=n), st.booleans(), pairs),
        st.builds(lambda v, lo, hi: ast.Between(value=v, low=lo, high=hi), inner, inner, inner),
        st.builds(lambda n, e: ast.IsNull(operand=e, negated=n), st.booleans(), inner),
        st.builds(lambda op, p: ast.TextOp(op=op, left=p[0], right=p[1]), st.sampled_from(list(ast.TextOpKind)), pairs),
        st.builds(lambda p: ast.Within(value=p[0], duration=p[1]), pairs),
        st.lists(inner, max_size=3).map(lambda items: ast.ListLiteral(items=tuple(items))),
        st.builds(lambda n, args, kw: ast.Call(name=n, args=tuple(args),
                                               kwargs=tuple(ast.NamedArg(name=k, value=v) for k, v in kw)),
                  names, st.lists(inner, max_size=2), st.lists(st.tuples(names, inner), max_size=2)),
        st.builds(lambda f, t, c, w, by: ast.Aggregate(func=f, table=t, column=c, where=w, by=by),
                  st.sampled_from(list(ast.AggFunc)), names, st.none() | names, st.none() | inner, st.none() | inner),
        # the per-row form: `sum(order_items: price * quantity where ...)`
        st.builds(lambda f, t, v, w, by: ast.Aggregate(func=f, table=t, value=v, where=w, by=by),
                  st.sampled_from(list(ast.AggFunc)), names, inner, st.none() | inner, st.none() | inner),
    )


expressions = st.recursive(leaves, _branches, max_leaves=12)
titles = st.none() | strings
times = st.builds(time, st.integers(0, 23), st.integers(0, 59))


def _not_bare_name(e):
    return not isinstance(e, ast.Name)


triggers = st.one_of(
    st.builds(lambda n, w: ast.EventTrigger(event_type=n, where=w), names, st.none() | expressions),
    st.builds(lambda a, w: ast.DateTrigger(anchor=a, where=w), expressions.filter(_not_bare_name),
              st.none() | expressions),
    st.builds(lambda t: ast.ScheduleTrigger(every="daily", at=t), times),
    st.builds(lambda d, t: ast.ScheduleTrigger(every="weekly", day=d, at=t),
              st.sampled_from(["monday", "sunday"]), times),
    st.builds(lambda d, t: ast.ScheduleTrigger(every="monthly", day=str(d), at=t), st.integers(1, 28), times),
    st.builds(lambda d, a, w: ast.AfterTrigger(delay=d, anchor=a, where=w), durations, expressions,
              st.none() | expressions),
    st.builds(lambda s, k, v: ast.ChangeTrigger(subject=s, kind=k, value=v), expressions,
              st.sampled_from([ast.ChangeKind.BECOMES, ast.ChangeKind.REACHES]), expressions),
    expressions.map(lambda s: ast.ChangeTrigger(subject=s, kind=ast.ChangeKind.TRUE)),
)
named_args = st.lists(st.tuples(names, expressions), max_size=2).map(
    lambda kw: tuple(ast.NamedArg(name=k, value=v) for k, v in kw))
campaigns = st.builds(
    lambda n, t, trig, kind, args, aud, wait, unless, cap, quiet, hold, money: ast.CampaignDecl(
        name=n, title=t, trigger=trig, action=ast.Action(kind=kind, args=args), audience=aud, wait=wait,
        unless=unless, cap=cap, quiet=quiet, holdout=hold, budget=money[0], cost=money[1]),
    names, titles, triggers, names, named_args, st.none() | expressions, st.none() | durations,
    st.none() | expressions,
    st.none() | st.builds(lambda c, d: ast.Cap(count=c, per=d), st.integers(0, 99), durations),
    st.none() | st.builds(lambda a, b: ast.QuietHours(start=a, end=b), times, times),
    st.none() | st.decimals(min_value=0, max_value=Decimal("99.9"), places=1),
    st.tuples(*[st.none() | st.decimals(min_value=0, max_value=Decimal("1e6"), places=3)] * 2))

record_values = st.recursive(
    st.one_of(literal_values.filter(lambda v: not (type(v) in (int, Decimal) and v < 0) or True).map(_lit)),
    lambda inner: st.one_of(st.lists(inner, max_size=2).map(lambda i: ast.ListLiteral(items=tuple(i))),
                            st.lists(st.tuples(names, inner), max_size=2).map(
                                lambda fs: ast.Record(fields=tuple(ast.RecordField(name=k, value=v) for k, v in fs)))),
    max_leaves=4)
tests = st.builds(
    lambda seg, title, cases: ast.TestDecl(segment=seg, title=title, cases=tuple(cases)),
    names, titles, st.lists(st.builds(
        lambda given, as_of, expect: ast.TestCase(given=tuple(given), as_of=as_of, expect_in=expect),
        st.lists(st.builds(lambda t, v: ast.Given(table=t, value=v), names, record_values), min_size=1, max_size=2),
        st.none() | st.dates() | datetimes, st.booleans()), min_size=1, max_size=2))

params = st.lists(names, max_size=3, unique=True).flatmap(
    lambda ns: st.integers(0, len(ns)).flatmap(lambda required: st.tuples(*(
        st.just(ast.Param(name=n)) if i < required else expressions.map(lambda d, n=n: ast.Param(name=n, default=d))
        for i, n in enumerate(ns))))).map(tuple)
functions = st.builds(lambda n, t, p, b: ast.FunctionDecl(name=n, title=t, params=p, body=b), names, titles, params,
                      expressions)

declarations = st.one_of(
    functions,
    st.builds(lambda n, t, b, eq: ast.SegmentDecl(name=n, title=t, body=b, uses_equals=eq), names, titles,
              expressions, st.booleans()),
    st.builds(lambda n, t, b: ast.AttributeDecl(name=n, title=t, body=b), names, titles, expressions),
    campaigns, tests)
rule_files = st.lists(declarations, max_size=4).map(lambda ds: ast.RuleFile(declarations=tuple(ds)))
