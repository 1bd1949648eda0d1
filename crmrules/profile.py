"""Segment profiles (客户画像): run the profile query on a data set and turn its rows into the report.

The numbers are aggregated by the engine in one query (see `profile_query`);
ratios are divided here with the language's own exact division.
"""

from __future__ import annotations

from decimal import Decimal

from crmrules import ast
from crmrules import types as t
from crmrules.backends.sql.profile_query import ATTRIBUTES, DIMENSIONS, NONE_KEY, SUMS, profile_query
from crmrules.compiler.defaults import empty_value
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext
from crmrules.errors import UnsupportedFeatureError
from crmrules.values import divide

__all__ = ["ATTRIBUTES", "DIMENSIONS", "NONE_KEY", "profile", "profile_rows"]


def profile(program: Program, data, segments: list[str], ctx: EvaluationContext, backend: str | None = None,
            warnings: list[str] | None = None) -> dict:
    """The profile of one or two segments of `program` (which has the catalogue's ATTRIBUTES) on `data`."""
    from crmrules.backends.dispatch import open_data
    from crmrules.backends.sql import dialect_named, render
    from crmrules.backends.sql.runners import fetch

    with open_data(program, data, backend, warnings) as (engine, handle):
        if engine.takes != "sql":
            raise UnsupportedFeatureError("this report runs on a SQL backend", None,
                                          "use --backend duckdb, sqlite, postgres or spark", code="E0402")
        program = handle.fitted(program)  # the source's own schema (dispatch.fit_schema)
        dialect = dialect_named(handle.kind)
        query = render(profile_query(program, segments, dialect, ctx), dialect, pretty=False)
        rows = fetch(handle.kind, handle.connection, query)
    result = profile_rows(rows, segments, dialect, program)
    titles = {name: program.segments[name].title for name in segments}
    return {"as_of": ctx.as_of.isoformat(), **result, "titles": titles}


def profile_rows(rows, segments: list[str], dialect, program: Program) -> dict:
    """The profile dict from the query's rows: counts, sums, ratios and distributions."""
    money = program.attributes["total_spent"].body.type
    sums = {s: {} for s in segments}
    distributions: dict[str, dict[str, dict[str, int]]] = {d: {s: {} for s in segments} for d in DIMENSIONS}
    width = len(SUMS)
    for row in rows:
        section, key, values = row[0], row[1], row[2:]
        for index, segment in enumerate(segments):
            mine = values[index * width:(index + 1) * width]
            if section == "summary":
                for (name, _, value), raw in zip(SUMS, mine):
                    kind = money if value == "total_spent" else t.INT
                    # a sum over nobody is the empty sum of the one defaults table
                    sums[segment][name] = dialect.read(raw, kind) if raw is not None else \
                        empty_value(ast.AggFunc.SUM, kind)
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
