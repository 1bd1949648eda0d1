"""Segment profiles (客户画像): one SQL query per profile, aggregated in the engine, not in Python.

The query's CTE `base` holds one row per existing customer with the catalogue
attributes a profile reads and a membership column per segment; a UNION ALL of
one summary row and one grouped SELECT per distribution reads it. Ratios are
divided afterwards in Python with the language's own exact division.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.backends.sql.dialect import case_when, number
from crmrules.backends.sql.generator import SqlGenerator, col, ident, table
from crmrules.compiler.pipeline import Program
from crmrules.values import divide

DIMENSIONS = ("source", "lifecycle", "subscription_status", "spend_band", "preferred_category", "country",
              "rfm_class")
ATTRIBUTES = ("is_subscribed", "order_count", "total_spent", "lifecycle", "subscription_status", "spend_band",
              "preferred_category", "rfm_class")
# per segment, what the summary row sums: (name, condition on the customer, summed value or None for a count)
_SUMS = (("customers", None, None), ("subscribers", "is_subscribed", None), ("buyers", "buyer", None),
         ("orders", None, "order_count"), ("revenue", None, "total_spent"), ("repeat_buyers", "repeat", None),
         ("new_buyers", "new", None), ("new_revenue", "new", "total_spent"),
         ("returning_buyers", "repeat", None), ("returning_revenue", "repeat", "total_spent"),
         ("returning_orders", "repeat", "order_count"))
NONE_KEY = "(none)"


def profile_query(program: Program, segments: list[str], dialect, now: datetime) -> exp.Expression:
    """The profile of one or two segments as one query: rows of (section, key, sums per segment)."""
    columns = [(name, program.attributes[name].body) for name in ATTRIBUTES]
    columns += [(name, ast.Column(table="customers", name=name, type=t.STRING)) for name in ("source", "country")]
    generator = SqlGenerator(program, dialect, now)
    base = generator.values(columns, segments)
    base_ref = "base"

    def flag(segment: str) -> exp.Expression:
        return exp.EQ(this=col(segment, base_ref), expression=dialect.boolean(True))

    conditions = {
        None: None,
        "is_subscribed": exp.EQ(this=col("is_subscribed", base_ref), expression=dialect.boolean(True)),
        "buyer": exp.GT(this=col("order_count", base_ref), expression=number(0)),
        "repeat": exp.GTE(this=col("order_count", base_ref), expression=number(2)),
        "new": exp.EQ(this=col("order_count", base_ref), expression=number(1)),
    }

    def summed(segment: str, condition: str | None, value: str | None) -> exp.Expression:
        test = flag(segment) if conditions[condition] is None else exp.And(this=flag(segment),
                                                                              expression=conditions[condition].copy())
        return exp.Sum(this=case_when(test, col(value, base_ref) if value else number(1)))

    parts = []
    summary = exp.select(exp.alias_(exp.Literal.string("summary"), ident("section")),
                         exp.alias_(exp.Null(), ident("key")))
    for segment in segments:
        summary = summary.select(*(exp.alias_(summed(segment, c, v), ident(f"{segment}__{n}")) for n, c, v in _SUMS))
    parts.append(summary.from_(table(base_ref)))
    for dimension in DIMENSIONS:
        key = col(dimension, base_ref)
        select = exp.select(exp.alias_(exp.Literal.string(dimension), ident("section")),
                            exp.alias_(key, ident("key")))
        for segment in segments:
            select = select.select(exp.alias_(summed(segment, None, None), ident(f"{segment}__customers")))
            select = select.select(*(exp.alias_(exp.Null(), ident(f"{segment}__{n}")) for n, _, _ in _SUMS[1:]))
        having = [exp.GT(this=summed(segment, None, None), expression=number(0)) for segment in segments]
        condition = having[0] if len(having) == 1 else exp.Or(this=having[0], expression=having[1])
        parts.append(select.from_(table(base_ref)).group_by(key.copy()).having(condition))
    query = parts[0]
    for part in parts[1:]:
        query = exp.union(query, part, distinct=False)
    # a UNION's WITH belongs on the union itself; wrap it so every engine reads it the same way
    return exp.select("*").from_(query.subquery(ident("profile"))).with_(
        ident(base_ref), as_=base, materialized=True if dialect.materialized_ctes else None)


def profile_rows(rows, segments: list[str], dialect, program: Program) -> dict:
    """The profile dict from the query's rows: counts, sums, ratios and distributions."""
    money = program.attributes["total_spent"].body.type
    sums = {s: {} for s in segments}
    distributions: dict[str, dict[str, dict[str, int]]] = {d: {s: {} for s in segments} for d in DIMENSIONS}
    width = len(_SUMS)
    for row in rows:
        section, key, values = row[0], row[1], row[2:]
        for index, segment in enumerate(segments):
            mine = values[index * width:(index + 1) * width]
            if section == "summary":
                for (name, _, value), raw in zip(_SUMS, mine):
                    kind = money if value == "total_spent" else t.INT
                    sums[segment][name] = dialect.read(raw, kind) if raw is not None else (
                        Decimal(0) if kind == t.DECIMAL else 0)
            elif mine[0]:
                distributions[section][segment][NONE_KEY if key is None else str(key)] = int(mine[0])
    summary = {segment: _summary(sums[segment]) for segment in segments}
    result = {"segments": segments, "summary": summary,
              "distributions": {d: {s: dict(sorted(v.items(), key=lambda kv: (-kv[1], kv[0])))
                                    for s, v in per.items()} for d, per in distributions.items()}}
    if len(segments) == 2:
        first, second = (summary[s] for s in segments)
        result["differences"] = {name: _difference(first[name], second[name]) for name in first}
    return result


def _summary(sums: dict) -> dict:
    def ratio(a, b):
        value = divide(Decimal(a), Decimal(b)) if b else None
        return None if value is None else str(value)

    return {"customers": sums["customers"], "subscribers": sums["subscribers"], "buyers": sums["buyers"],
            "orders": sums["orders"], "revenue": _money(sums["revenue"]),
            "aov": ratio(sums["revenue"], sums["orders"]),
            "repurchase_rate": ratio(sums["repeat_buyers"], sums["buyers"]),
            "avg_spend": ratio(sums["revenue"], sums["buyers"]),
            "avg_frequency": ratio(sums["orders"], sums["buyers"]),
            "new_buyers": sums["new_buyers"], "new_buyers_aov": ratio(sums["new_revenue"], sums["new_buyers"]),
            "returning_buyers": sums["returning_buyers"],
            "returning_buyers_aov": ratio(sums["returning_revenue"], sums["returning_orders"])}


def _difference(a, b):
    if a is None or b is None:
        return None
    if isinstance(a, int):
        return b - a
    return _money(Decimal(b) - Decimal(a))


def _money(value: Decimal) -> str:
    # engines return sums at different scales (DuckDB 6 places, SQLite as few as needed): print one way
    return str(Decimal(value).quantize(Decimal("0.000001")))
