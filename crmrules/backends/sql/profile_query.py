"""The profile query: one SQL query per profile, aggregated in the engine, not in Python.

Its CTE `base` holds one row per existing customer with the catalogue
attributes a profile reads and a membership column per segment; a UNION ALL of
one summary row and one grouped SELECT per distribution reads it.
"""

from __future__ import annotations

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.backends.sql.dialect import case_when, col, ident, number, table
from crmrules.backends.sql.planner import values_select
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext

DIMENSIONS = ("source", "lifecycle", "subscription_status", "spend_band", "preferred_category", "country",
              "rfm_class")
ATTRIBUTES = ("is_subscribed", "order_count", "total_spent", "lifecycle", "subscription_status", "spend_band",
              "preferred_category", "rfm_class")
# per segment, what the summary row sums: (name, condition on the customer, summed value or None for a count)
SUMS = (("customers", None, None), ("subscribers", "is_subscribed", None), ("buyers", "buyer", None),
         ("orders", None, "order_count"), ("revenue", None, "total_spent"), ("repeat_buyers", "repeat", None),
         ("new_buyers", "new", None), ("new_revenue", "new", "total_spent"),
         ("returning_buyers", "repeat", None), ("returning_revenue", "repeat", "total_spent"),
         ("returning_orders", "repeat", "order_count"))
NONE_KEY = "(none)"


def profile_query(program: Program, segments: list[str], dialect, ctx: EvaluationContext) -> exp.Expression:
    """The profile of one or two segments as one query: rows of (section, key, sums per segment)."""
    columns = [(name, program.attributes[name].body) for name in ATTRIBUTES]
    columns += [(name, ast.Column(table="customers", name=name, type=t.STRING)) for name in ("source", "country")]
    base = values_select(program, columns, dialect, ctx, segments)
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
        summary = summary.select(*(exp.alias_(summed(segment, c, v), ident(f"{segment}__{n}")) for n, c, v in SUMS))
    parts.append(summary.from_(table(base_ref)))
    for dimension in DIMENSIONS:
        key = col(dimension, base_ref)
        select = exp.select(exp.alias_(exp.Literal.string(dimension), ident("section")),
                            exp.alias_(key, ident("key")))
        for segment in segments:
            select = select.select(exp.alias_(summed(segment, None, None), ident(f"{segment}__customers")))
            select = select.select(*(exp.alias_(exp.Null(), ident(f"{segment}__{n}")) for n, _, _ in SUMS[1:]))
        having = [exp.GT(this=summed(segment, None, None), expression=number(0)) for segment in segments]
        condition = having[0] if len(having) == 1 else exp.Or(this=having[0], expression=having[1])
        parts.append(select.from_(table(base_ref)).group_by(key.copy()).having(condition))
    query = parts[0]
    for part in parts[1:]:
        query = exp.union(query, part, distinct=False)
    # a UNION's WITH belongs on the union itself; wrap it so every engine reads it the same way
    return exp.select("*").from_(query.subquery(ident("profile"))).with_(
        ident(base_ref), as_=base, materialized=True if dialect.materialized_ctes else None)


