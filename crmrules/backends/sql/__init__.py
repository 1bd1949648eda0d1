"""The SQL backend: checked segments compiled to one query per rule file, for any supported dialect."""

from __future__ import annotations

from collections.abc import Sequence

from crmrules.backends.sql.compile_memo import generate
from crmrules.backends.sql.dialect import SqlDialect
from crmrules.backends.sql.dialects import DIALECTS
from crmrules.backends.sql.planner import members_select, segments_select
from crmrules.backends.sql.query_cache import cached_query
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext
from crmrules.errors import UnsupportedFeatureError, did_you_mean


def dialect_named(name: str) -> SqlDialect:
    """The dialect object for a name such as `duckdb`; UnsupportedFeatureError with a suggestion otherwise."""
    cls = DIALECTS.get(name.lower())
    if cls is None:
        raise UnsupportedFeatureError(f"unknown SQL dialect `{name}`", None,
                                      did_you_mean(name, DIALECTS) or f"dialects: {', '.join(DIALECTS)}",
                                      code="E0402")
    return cls()


def segments_query(program: Program, segments: Sequence[str], dialect: str, ctx: EvaluationContext,
                   pretty: bool = True) -> str:
    """One query returning `customer_id` and a boolean column per segment, formatted."""
    d = dialect_named(dialect)
    return cached_query(program, "segments", list(segments), d.name, ctx, pretty,
                        lambda: render(segments_select(program, segments, d, ctx), d, pretty))


def members_query(program: Program, segment: str, dialect: str, ctx: EvaluationContext, pretty: bool = True) -> str:
    """One query returning the `customer_id`s of a segment's members, formatted."""
    d = dialect_named(dialect)
    return cached_query(program, "members", [segment], d.name, ctx, pretty,
                        lambda: render(members_select(program, segment, d, ctx), d, pretty))


def render(tree, dialect: SqlDialect, pretty: bool = True) -> str:
    """SQL text of a tree we built and own, so sqlglot need not copy it first; our trees hold no comments,
    so sqlglot need not look for them at every node (a sixth of the generation time); subtrees kept between
    queries are printed once (`compile_memo.generate`)."""
    return generate(tree, dialect.sqlglot_name, pretty)


__all__ = ["DIALECTS", "dialect_named", "members_query", "render", "segments_query"]
