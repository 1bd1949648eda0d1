"""The profile query: one SQL query per profile, aggregated in the engine, not in Python.

Its CTE `base` holds one row per existing customer with the columns a profile
reads (each a checked attribute of the program, see `crmrules.profile`) and a
membership column per segment; a UNION ALL of one summary row and one grouped
SELECT per distribution reads it. What the summary sums is the table `SUMS`
(and `PERIOD_SUMS`), with the conditions of `CONDITIONS`: the memory engine's
profile reads the same tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from crmrules.backends.sql.dialect import case_when, col, ident, number, table
from crmrules.backends.sql.planner import values_select
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext

DIMENSIONS = ("source", "lifecycle", "subscription_status", "spend_band", "preferred_category", "country",
              "rfm_class")
# the catalogue attributes a profile reads, base columns under their own names
ATTRIBUTES = ("is_subscribed", "order_count", "total_spent", "lifecycle", "subscription_status", "spend_band",
              "preferred_category", "rfm_class")
# a condition on a base row: (column, comparison, value)
CONDITIONS = {
    "is_subscribed": ("is_subscribed", "==", True),
    "buyer": ("order_count", ">", 0),
    "repeat": ("order_count", ">=", 2),
    "new": ("order_count", "==", 1),
    "period_buyer": ("profile__period_orders", ">", 0),
    "period_repeat": ("profile__period_orders", ">=", 2),
    "period_new": ("profile__period_new", "==", True),
    "period_returning": ("profile__period_returning", "==", True),
}
# per segment, what the summary row sums: (name, condition on the customer, summed column or None for a count)
SUMS = (("customers", None, None), ("subscribers", "is_subscribed", None), ("buyers", "buyer", None),
        ("orders", None, "order_count"), ("revenue", None, "total_spent"), ("repeat_buyers", "repeat", None),
        ("new_buyers", "new", None), ("new_revenue", "new", "total_spent"),
        ("returning_buyers", "repeat", None), ("returning_revenue", "repeat", "total_spent"),
        ("returning_orders", "repeat", "order_count"))
# with a period: the same customers' paid orders placed within it (columns named as the profile's own
# attributes, `profile__*`, which no segment's membership column can be called)
PERIOD_SUMS = (("period_buyers", "period_buyer", None), ("period_orders", None, "profile__period_orders"),
               ("period_sales", None, "profile__period_sales"), ("period_repeat_buyers", "period_repeat", None),
               ("period_new_buyers", "period_new", None),
               ("period_new_sales", "period_new", "profile__period_sales"),
               ("period_returning_buyers", "period_returning", None),
               ("period_returning_sales", "period_returning", "profile__period_sales"))
MONEY_COLUMNS = ("total_spent", "profile__period_sales")
NONE_KEY = "(none)"
_COMPARE = {"==": exp.EQ, ">": exp.GT, ">=": exp.GTE}


def sums_for(period: bool) -> tuple[tuple[str, str | None, str | None], ...]:
    """What the summary row sums per segment, with or without the period's figures."""
    return SUMS + PERIOD_SUMS if period else SUMS


def profile_query(program: Program, columns: Sequence[tuple[str, str]], segments: list[str],
                  dimensions: Sequence[str], sums, dialect, ctx: EvaluationContext) -> exp.Expression:
    """The profile of one or two segments as one query: rows of (section, key, sums per segment).
    `columns` are (base column, attribute of `program`)."""
    base_ref = "base"
    base = _base(program, columns, segments, dialect, ctx)

    def summed(segment: str, condition: str | None, value: str | None) -> exp.Expression:
        test = _flag(segment, base_ref, dialect)
        if condition is not None:
            name, op, operand = CONDITIONS[condition]
            right = dialect.boolean(operand) if isinstance(operand, bool) else number(operand)
            test = exp.And(this=test, expression=_COMPARE[op](this=col(name, base_ref), expression=right))
        return exp.Sum(this=case_when(test, col(value, base_ref) if value else number(1)))

    parts = []
    summary = exp.select(exp.alias_(exp.Literal.string("summary"), ident("section")),
                         exp.alias_(exp.Null(), ident("key")))
    for segment in segments:
        summary = summary.select(*(exp.alias_(summed(segment, c, v), ident(f"{segment}__{n}")) for n, c, v in sums))
    parts.append(summary.from_(table(base_ref)))
    for dimension in dimensions:
        key = col(dimension, base_ref)
        select = exp.select(exp.alias_(exp.Literal.string(dimension), ident("section")),
                            exp.alias_(key, ident("key")))
        for segment in segments:
            select = select.select(exp.alias_(summed(segment, None, None), ident(f"{segment}__customers")))
            select = select.select(*(exp.alias_(exp.Null(), ident(f"{segment}__{n}")) for n, _, _ in sums[1:]))
        having = [exp.GT(this=summed(segment, None, None), expression=number(0)) for segment in segments]
        condition = having[0] if len(having) == 1 else exp.Or(this=having[0], expression=having[1])
        parts.append(select.from_(table(base_ref)).group_by(key.copy()).having(condition))
    query = parts[0]
    for part in parts[1:]:
        query = exp.union(query, part, distinct=False)
    # a UNION's WITH belongs on the union itself; wrap it so every engine reads it the same way
    return exp.select("*").from_(query.subquery(ident("profile"))).with_(
        ident(base_ref), as_=base, materialized=True if dialect.materialized_ctes else None)


def bounds_query(program: Program, columns: Sequence[tuple[str, str]], segments: list[str], dialect,
                 ctx: EvaluationContext) -> exp.Expression:
    """The smallest and largest value and the number of distinct values of each column among the members of
    the segments: one row of (min, max, distinct count) per column, in order."""
    base = _base(program, columns, segments, dialect, ctx)
    select = exp.select(*(part for name, _ in columns for part in (
        exp.Min(this=col(name, "base")), exp.Max(this=col(name, "base")),
        exp.Count(this=exp.Distinct(expressions=[col(name, "base")])))))
    members = [_flag(segment, "base", dialect) for segment in segments]
    where = members[0] if len(members) == 1 else exp.Or(this=members[0], expression=members[1])
    return select.from_(base.subquery(ident("base"))).where(where)


def _base(program: Program, columns: Sequence[tuple[str, str]], segments: list[str], dialect,
          ctx: EvaluationContext) -> exp.Select:
    return values_select(program, [(name, program.attributes[attribute].body) for name, attribute in columns],
                         dialect, ctx, segments)


def _flag(segment: str, base_ref: str, dialect) -> exp.Expression:
    return exp.EQ(this=col(segment, base_ref), expression=dialect.boolean(True))
