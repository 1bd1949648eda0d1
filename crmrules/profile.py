"""Segment profiles (客户画像): the figures of one or two segments, over their lifetime and over a period.

What a profile reads of each customer is written in the language: the catalogue's
attributes, and attributes this module adds to the rules (`profile__*`) for the
period's figures and for the `--by` distributions, so every engine computes them
from the same definitions (a period is a `within` window). SQL engines aggregate
in one query (`backends.sql.profile_query`), the memory engine sums the same
table (`SUMS`, `CONDITIONS`) over its rows; ratios are divided here with the
language's own exact division.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from crmrules import ast
from crmrules import types as t
from crmrules.backends.sql.profile_query import (
    ATTRIBUTES,
    CONDITIONS,
    DIMENSIONS,
    MONEY_COLUMNS,
    NONE_KEY,
    bounds_query,
    profile_query,
    sums_for,
)
from crmrules.compiler.defaults import empty_value
from crmrules.compiler.pipeline import Program, check
from crmrules.context import EvaluationContext
from crmrules.errors import CrmRulesError
from crmrules.grammar import parse, parse_expression
from crmrules.values import divide

__all__ = ["ATTRIBUTES", "DIMENSIONS", "NONE_KEY", "parse_period", "profile", "profile_rows"]

# the columns of customers a profile groups by as they are, and the period's figures: base column -> rule
_OWN_RULES = {"source": "source", "country": "country"}
_PERIOD_RULES = {
    "period_orders": "orders_within(within: {period})",
    "period_sales": "spent(within: {period})",
    # new (新成交): the first paid order ever falls in the period; returning (老成交): one came before it
    "period_new": "ordered(within: {period}) and first_order_at within {period}",
    "period_returning": "ordered(within: {period}) and not (first_order_at within {period})",
}
MAX_EXACT = 20  # whole numbers with more distinct values than this are grouped into bins
TOP_VALUES = 10  # a text distribution lists its most frequent values, the rest summed as "(other)"
OTHER_KEY = "(other)"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_period(period: str | ast.Duration) -> ast.Duration:
    """A period as the language writes a duration: `30d`, `12w`, `6mo`, `1y`."""
    if isinstance(period, ast.Duration):
        return period
    try:
        parsed = parse_expression(str(period).strip(), "<period>")
    except CrmRulesError:
        parsed = None
    if not (isinstance(parsed, ast.Literal) and isinstance(parsed.value, ast.Duration)):
        raise CrmRulesError(f"`{period}` is not a period", None, "write a duration such as 30d, 12w, 6mo or 1y",
                            code="E0002")
    return parsed.value


def profile(rules: ast.RuleFile, schema, data, segments: list[str], ctx: EvaluationContext,
            backend: str | None = None, warnings: list[str] | None = None, period: ast.Duration | None = None,
            by: Sequence[str] = ()) -> dict:
    """The profile of one or two segments of `rules` on `data`, with the period's figures when `period` is
    given and a distribution per `by` attribute (own, catalogue or a customers column)."""
    from crmrules.backends.dispatch import open_data

    by = list(dict.fromkeys(by))
    for name in by:
        if not _NAME.fullmatch(name):
            raise CrmRulesError(f"`{name}` is not an attribute name", None, "give --by an attribute's name",
                                code="E0002")
    extra = [name for name in by if name not in DIMENSIONS]
    raw = {f"raw_{i}": name for i, name in enumerate(extra)}
    program = _checked(rules, schema, segments, period, raw)
    with open_data(program, data, backend, warnings) as (engine, handle):
        in_sql = engine.takes == "sql"
        if in_sql:
            from crmrules.backends.sql import dialect_named

            program = handle.fitted(program)  # the source's own schema (dispatch.fit_schema)
            dialect = dialect_named(handle.kind)
        types = {name: program.attributes[f"profile__{column}"].body.type for column, name in raw.items()}
        for name, kind in types.items():
            if kind.is_list or kind not in (*t.NUMERIC, t.STRING, t.BOOL):
                raise CrmRulesError(f"cannot group by `{name}`, a {kind}", None,
                                    "group by a number, a text or a yes/no; for a date, an attribute such as "
                                    "year(...) or month(...)", code="E0002")
        numeric = [(f"profile__{column}",) * 2 for column, name in raw.items() if types[name] in t.NUMERIC]
        bins: dict[str, list[tuple[Decimal | None, str]] | None] = {}
        if numeric:
            if in_sql:
                found = _fetch(handle, bounds_query(program, numeric, segments, dialect, ctx), dialect)[0]
            else:
                found = _bounds_in_memory(engine, program, handle, numeric, segments, ctx)
            for index, (column, _) in enumerate(numeric):
                name = raw[column.removeprefix("profile__")]
                low, high, distinct = found[3 * index:3 * index + 3]
                if in_sql and low is not None:
                    low, high = dialect.read(low, types[name]), dialect.read(high, types[name])
                bins[name] = _bins(low, high, int(distinct or 0), types[name] == t.INT)
        texts = {f"by_{i}": _grouping(name, types[name], bins.get(name)) for i, name in enumerate(extra)}
        if texts:
            program = _checked(rules, schema, segments, period, texts)
            if in_sql:
                program = handle.fitted(program)
        # base columns under the attributes' names: a segment's membership column cannot be called so
        own = [f"profile__{name}" for name in (*_OWN_RULES, *(_PERIOD_RULES if period is not None else ()), *texts)]
        columns = [(name, name) for name in (*ATTRIBUTES, *own)]
        labels = {f"profile__{name}": name for name in _OWN_RULES}
        labels |= {f"profile__by_{i}": name for i, name in enumerate(extra)}
        dimensions = [*(f"profile__{d}" if d in _OWN_RULES else d for d in DIMENSIONS),
                      *(f"profile__by_{i}" for i in range(len(extra)))]
        sums = sums_for(period is not None)
        if in_sql:
            query = profile_query(program, columns, segments, dimensions, sums, dialect, ctx)
            rows = _fetch(handle, query, dialect)
        else:
            rows = _rows_in_memory(engine, program, handle, columns, segments, dimensions, sums, ctx)
    read = dialect.read if in_sql else (lambda raw, kind: raw)
    # numbers in their order: bins as listed, whole numbers by value; texts: the most frequent values
    orders = {name: None if found is None else [label for _, label in found] for name, found in bins.items()}
    tops = {name for name in extra if name not in orders}
    result = profile_rows(rows, segments, read, program, sums, labels, orders, tops)
    titles = {name: program.segments[name].title for name in segments}
    report = {"as_of": ctx.as_of.isoformat(), **result, "titles": titles}
    if period is not None:
        report["period"] = {"length": str(period), "after": ctx.window_start(period).isoformat(),
                            "until": ctx.instant.isoformat()}
    if by:
        report["by"] = by
        report["ordinal"] = list(orders)
    return report


def _checked(rules: ast.RuleFile, schema, segments: list[str], period: ast.Duration | None,
             groupings: dict[str, str]) -> Program:
    """The rules with the catalogue and the profile's own attributes, checked."""
    from crmrules.stdlib import prelude

    bodies = dict(_OWN_RULES)
    if period is not None:
        bodies.update({name: body.format(period=period) for name, body in _PERIOD_RULES.items()})
    bodies.update(groupings)
    # the names and bodies are ours; the only values in them are a checked duration, an attribute name that
    # matched NAME, and bin edges and labels computed here
    text = "\n".join(f"attribute profile__{name} = {body}" for name, body in bodies.items()) + "\n"
    own = parse(text, "<profile>").declarations
    roots = (*segments, *ATTRIBUTES, *(f"profile__{name}" for name in bodies))
    return check(ast.RuleFile(declarations=(*rules.declarations, *own)), schema, prelude=prelude(), roots=roots)


def _grouping(name: str, kind: t.Type, bins: list[tuple[Decimal | None, str]] | None) -> str:
    """The rule giving a customer's group in the `--by name` distribution, as text (null for none)."""
    if kind == t.STRING:
        return name
    if kind == t.BOOL:
        return f'if({name} is null, null, if({name}, "true", "false"))'
    if bins is None:
        return f"text({name})"
    body = f'"{bins[-1][1]}"'
    for edge, label in reversed(bins[:-1]):
        body = f'if({name} < {edge:f}, "{label}", {body})'
    return f"if({name} is null, null, {body})"


def _bins(low, high, distinct: int, whole: bool) -> list[tuple[Decimal | None, str]] | None:
    """(upper edge, label) of each bin, the last without an edge: whole numbers with few values are not
    binned (None); otherwise about ten bins of a round width (1, 2 or 5 × 10^k) from a multiple of it."""
    if low is None:
        return None if whole else [(None, NONE_KEY)]
    if whole and distinct <= MAX_EXACT:
        return None
    low, high = Decimal(low), Decimal(high)
    rough = (high - low) / 10
    step = Decimal(1)
    if rough > 0:
        scale = Decimal(10) ** rough.adjusted()
        step = next(scale * factor for factor in (1, 2, 5, 10) if scale * factor >= rough)
    if whole and step < 1:
        step = Decimal(1)
    start = (low / step).to_integral_value(rounding="ROUND_FLOOR") * step
    found = []
    while True:
        end = start + step
        if whole:
            label = f"{start:f}" if step == 1 else f"{start:f}–{end - 1:f}"
        else:
            label = f"[{start.normalize():f}, {end.normalize():f})"
        found.append((end if end <= high else None, label))
        if end > high:
            return found
        start = end


def _fetch(handle, query, dialect) -> list:
    from crmrules.backends.sql import render
    from crmrules.backends.sql.runners import fetch

    return fetch(handle.kind, handle.connection, render(query, dialect, pretty=False))


def _memory_rows(engine, program: Program, handle, columns, segments: list[str], ctx) -> list[dict]:
    """One dict per existing customer: the base columns and a membership flag per segment."""
    values = engine.values(program, handle, [attribute for _, attribute in columns], ctx)
    members = {name: set(ids) for name, ids in engine.members(program, handle, segments, ctx).items()}
    return [{**{column: row[attribute] for column, attribute in columns},
             **{name: customer in members[name] for name in segments}} for customer, row in values.items()]


def _bounds_in_memory(engine, program, handle, columns, segments, ctx) -> list:
    bounds = []
    people = [row for row in _memory_rows(engine, program, handle, columns, segments, ctx)
              if any(row[s] for s in segments)]
    for column, _ in columns:
        present = {row[column] for row in people if row[column] is not None}
        bounds += [min(present, default=None), max(present, default=None), len(present)]
    return bounds


def _rows_in_memory(engine, program, handle, columns, segments, dimensions, sums, ctx) -> list[tuple]:
    """The rows the profile query gives, from the memory engine's values: the same sums (SQL's: a sum
    over no values is null) and the same groups."""
    people = _memory_rows(engine, program, handle, columns, segments, ctx)

    def holds(row: dict, condition: str | None) -> bool:
        if condition is None:
            return True
        column, op, operand = CONDITIONS[condition]
        value = row[column]
        return value is not None and (value == operand if op == "==" else
                                      value > operand if op == ">" else value >= operand)

    def total(rows: list[dict], condition: str | None, value: str | None):
        added = [1 if value is None else row[value] for row in rows if holds(row, condition)]
        added = [v for v in added if v is not None]
        return sum(added) if added else None

    mine = {s: [row for row in people if row[s]] for s in segments}
    found = [("summary", None, *(total(mine[s], c, v) for s in segments for _, c, v in sums))]
    padding = [None] * (len(sums) - 1)
    for dimension in dimensions:
        keys = dict.fromkeys(row[dimension] for s in segments for row in mine[s])
        for key in keys:
            counts = [sum(1 for row in mine[s] if row[dimension] == key) for s in segments]
            found.append((dimension, key, *(v for count in counts for v in (count or None, *padding))))
    return found


def profile_rows(rows, segments: list[str], read, program: Program, sums=None, labels: dict | None = None,
                 orders: dict | None = None, tops: set[str] = frozenset()) -> dict:
    """The profile dict from the query's rows: counts, sums, ratios and distributions. `labels` names the
    `--by` sections; `orders` lists the bins of binned ones in order (others go largest first)."""
    sums = sums or sums_for(False)
    labels, orders = labels or {}, orders or {}
    money = program.attributes["total_spent"].body.type
    totals = {s: {} for s in segments}
    distributions: dict[str, dict[str, dict[str, int]]] = {}
    width = len(sums)
    for row in rows:
        section, key, values = row[0], row[1], row[2:]
        for index, segment in enumerate(segments):
            mine = values[index * width:(index + 1) * width]
            if section == "summary":
                for (name, _, value), raw in zip(sums, mine):
                    kind = money if value in MONEY_COLUMNS else t.INT
                    # a sum over nobody is the empty sum of the one defaults table
                    totals[segment][name] = read(raw, kind) if raw is not None else \
                        empty_value(ast.AggFunc.SUM, kind)
            else:
                per = distributions.setdefault(labels.get(section, section), {s: {} for s in segments})
                if mine[0]:
                    per[segment][NONE_KEY if key is None else str(key)] = int(mine[0])
    summary = {segment: _summary(totals[segment]) for segment in segments}
    result = {"segments": segments, "summary": summary,
              "distributions": {d: _ordered(per, d in tops, d in orders, orders.get(d))
                                for d, per in distributions.items()}}
    if len(segments) == 2:
        first, second = (summary[s] for s in segments)
        result["differences"] = {name: _difference(first[name], second[name]) for name in first}
    return result


def _ordered(per: dict[str, dict[str, int]], top: bool, numeric: bool, order: list[str] | None) -> dict:
    """A distribution per segment: bins in order, whole numbers by value, others largest first; a `--by`
    text's top values."""
    if numeric:
        keys = {key for counts in per.values() for key in counts}
        if order is not None:
            rank = {key: (key not in order, order.index(key) if key in order else 0) for key in keys}
        else:
            rank = {key: (key == NONE_KEY, 0 if key == NONE_KEY else int(key)) for key in keys}
        return {s: dict(sorted(v.items(), key=lambda kv: rank[kv[0]])) for s, v in per.items()}
    if top:
        overall: dict[str, int] = {}
        for counts in per.values():
            for key, count in counts.items():
                overall[key] = overall.get(key, 0) + count
        kept = set(sorted(overall, key=lambda k: (-overall[k], k))[:TOP_VALUES])
        folded = {}
        for s, counts in per.items():
            folded[s] = {k: c for k, c in counts.items() if k in kept}
            rest = sum(c for k, c in counts.items() if k not in kept)
            if rest:
                folded[s][OTHER_KEY] = rest
        per = folded
    return {s: dict(sorted(v.items(), key=lambda kv: (kv[0] == OTHER_KEY, -kv[1], kv[0]))) for s, v in per.items()}


def _summary(sums: dict) -> dict:
    def ratio(a, b):
        value = divide(Decimal(a), Decimal(b)) if b else None
        return None if value is None else str(value)

    found = {"customers": sums["customers"], "subscribers": sums["subscribers"], "buyers": sums["buyers"],
             "orders": sums["orders"], "revenue": _money(sums["revenue"]),
             "aov": ratio(sums["revenue"], sums["orders"]),
             "repurchase_rate": ratio(sums["repeat_buyers"], sums["buyers"]),
             "avg_spend": ratio(sums["revenue"], sums["buyers"]),
             "avg_frequency": ratio(sums["orders"], sums["buyers"]),
             "new_buyers": sums["new_buyers"], "new_buyers_aov": ratio(sums["new_revenue"], sums["new_buyers"]),
             "returning_buyers": sums["returning_buyers"],
             "returning_buyers_aov": ratio(sums["returning_revenue"], sums["returning_orders"])}
    if "period_buyers" in sums:
        found.update({
            "period_sales": _money(sums["period_sales"]), "period_orders": sums["period_orders"],
            "period_aov": ratio(sums["period_sales"], sums["period_orders"]),
            "period_buyers": sums["period_buyers"],
            "period_repurchase_rate": ratio(sums["period_repeat_buyers"], sums["period_buyers"]),
            "period_new_buyers": sums["period_new_buyers"], "period_new_sales": _money(sums["period_new_sales"]),
            "period_returning_buyers": sums["period_returning_buyers"],
            "period_returning_sales": _money(sums["period_returning_sales"])})
    return found


def _difference(a, b):
    if a is None or b is None:
        return None
    if isinstance(a, int):
        return b - a
    return _money(Decimal(b) - Decimal(a))


def _money(value: Decimal) -> str:
    # engines return sums at different scales (DuckDB 6 places, SQLite as few as needed): print one way
    return str(Decimal(value).quantize(Decimal("0.000001")))
