"""The SQL backend: checked segments compiled to one query per rule file, for any supported dialect."""

from __future__ import annotations

from datetime import date, datetime

from sqlglot.dialects.dialect import Dialect

from crmrules.backends.sql.dialect import SqlDialect
from crmrules.backends.sql.dialects import DIALECTS
from crmrules.backends.sql.generator import SqlGenerator
from crmrules.compiler.pipeline import Program
from crmrules.errors import UnsupportedFeatureError, did_you_mean
from crmrules.values import evaluation_instant


def dialect_named(name: str) -> SqlDialect:
    """The dialect object for a name such as `duckdb`; UnsupportedFeatureError with a suggestion otherwise."""
    cls = DIALECTS.get(name.lower())
    if cls is None:
        raise UnsupportedFeatureError(f"unknown SQL dialect `{name}`", None,
                                      did_you_mean(name, DIALECTS) or f"dialects: {', '.join(DIALECTS)}",
                                      code="E0402")
    return cls()


def segments_query(program: Program, segments: list[str], dialect: str, now: date | datetime) -> str:
    """One query returning `customer_id` and a boolean column per segment, formatted."""
    d = dialect_named(dialect)
    instant = evaluation_instant(now, program.schema.timezone)
    tree = SqlGenerator(program, d, instant).query(segments)
    return render(tree, d)


def members_query(program: Program, segment: str, dialect: str, now: date | datetime) -> str:
    """One query returning the `customer_id`s of a segment's members, formatted."""
    d = dialect_named(dialect)
    instant = evaluation_instant(now, program.schema.timezone)
    tree = SqlGenerator(program, d, instant).members(segment)
    return render(tree, d)


def render(tree, dialect: SqlDialect, pretty: bool = True) -> str:
    """SQL text of a tree we built and own, so sqlglot need not copy it first."""
    return Dialect.get_or_raise(dialect.sqlglot_name).generate(tree, copy=False, pretty=pretty)


__all__ = ["DIALECTS", "dialect_named", "members_query", "segments_query"]
