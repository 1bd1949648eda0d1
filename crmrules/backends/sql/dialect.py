"""What differs between SQL engines, as small overridable methods; the base is standard SQL.

Each dialect module subclasses `SqlDialect` and overrides only what its engine
does differently. Every method returns a sqlglot expression tree.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.compiler.safe_regex import canonical_pattern
from crmrules.errors import UnsupportedFeatureError
from crmrules.values import SCALE

# exact money: one scale for every engine and the in-memory ones (`values.divide`)
MONEY_SCALE = SCALE
DECIMAL_TYPE = f"DECIMAL(38, {MONEY_SCALE})"
_UNIT_NAMES = {ast.DurationUnit.SECOND: "SECOND", ast.DurationUnit.MINUTE: "MINUTE", ast.DurationUnit.HOUR: "HOUR",
               ast.DurationUnit.DAY: "DAY", ast.DurationUnit.WEEK: "WEEK", ast.DurationUnit.MONTH: "MONTH",
               ast.DurationUnit.YEAR: "YEAR"}


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: column names such as `at` are reserved words in some engines."""
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted, optionally qualified column."""
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def table(name: str, alias: str | None = None) -> exp.Table:
    """A quoted table, optionally aliased."""
    node = exp.Table(this=ident(name))
    return node.as_(ident(alias)) if alias else node


def not_null(value: exp.Expression) -> exp.Expression:
    """`NOT value IS NULL`, without copying."""
    return exp.Not(this=exp.Is(this=value, expression=exp.Null()))


def cast(value: exp.Expression, to: str) -> exp.Expression:
    """`CAST(value AS to)` without copying `value` (sqlglot's builders copy by default, which dominates compile time)."""
    return exp.Cast(this=value, to=_data_type(to).copy())


@lru_cache(maxsize=None)
def _data_type(name: str) -> exp.DataType:
    # sqlglot parses a type's text on every build: parse each one once
    return exp.DataType.build(name)


def case_when(condition: exp.Expression, then: exp.Expression, otherwise: exp.Expression | None = None) -> exp.Case:
    """`CASE WHEN condition THEN then [ELSE otherwise] END`, without copying."""
    node = exp.Case(ifs=[exp.If(this=condition, true=then)])
    if otherwise is not None:
        node.set("default", otherwise)
    return node


def and_(*conditions: exp.Expression) -> exp.Expression:
    """Conditions joined by AND, without copying them."""
    return _combine(exp.And, conditions)


def or_(*conditions: exp.Expression) -> exp.Expression:
    """Conditions joined by OR, without copying them."""
    return _combine(exp.Or, conditions)


def _combine(operator: type[exp.Connector], conditions) -> exp.Expression:
    """The tree sqlglot's `and_`/`or_` build (left-deep, an AND or OR operand parenthesised, None left out), built
    directly: theirs also accept text to parse, which costs a tenth of a compile."""
    this, *rest = [condition for condition in conditions if condition is not None]
    if rest and isinstance(this, exp.Connector):
        this = exp.Paren(this=this)
    for condition in rest:
        this = operator(this=this, expression=exp.Paren(this=condition) if isinstance(condition, exp.Connector)
                        else condition)
    return this


def paren(value: exp.Expression) -> exp.Paren:
    """`(value)`, without copying it."""
    return exp.Paren(this=value)


def call(name: str, *args: exp.Expression) -> exp.Expression:
    """A function call spelled exactly so in the output; sqlglot would reorder or rename a known one."""
    return exp.Anonymous(this=name, expressions=list(args))


def number(value: int | Decimal | str) -> exp.Expression:
    """A numeric literal; negative numbers become a negation so every engine parses them."""
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    if text.startswith("-"):
        return exp.Neg(this=exp.Literal.number(text[1:]))
    return exp.Literal.number(text)


def places(value: exp.Expression) -> int:
    """The most decimal places of any numeric literal in `value` (0 without one)."""
    found = [len(lit.this.partition(".")[2]) for lit in value.find_all(exp.Literal) if lit.is_number]
    return max(found, default=0)


def int_literal(value: exp.Expression) -> int | None:
    """The value of an integer literal (`3`, `-1` as a negation), else None."""
    if isinstance(value, exp.Paren):
        return int_literal(value.this)
    if isinstance(value, exp.Neg):
        inner = int_literal(value.this)
        return None if inner is None else -inner
    if isinstance(value, exp.Literal) and value.is_number and value.this.lstrip("-").isdigit():
        return int(value.this)
    return None


class SqlDialect:
    """Standard SQL; subclasses override what their engine spells or computes differently."""

    name = "ansi"
    sqlglot_name = ""
    # whether `WITH x AS MATERIALIZED (...)` is understood: a CTE read many times is computed once
    materialized_ctes = False
    # whether to join the aggregates through a CTE of every id with left joins instead of full joins
    join_through_ids = False

    def unsupported(self, what: str, node: ast.Node | None = None) -> UnsupportedFeatureError:
        """The error for a construct this dialect cannot express; the expression compiler adds the span
        of the node it was compiling when `node` is not given."""
        return UnsupportedFeatureError(f"{what} cannot be expressed in {self.name}",
                                       node.span if node is not None else None, code="E0401")

    # ------------------------------------------------------------------ literals
    def timestamp(self, value: datetime) -> exp.Expression:
        return cast(exp.Literal.string(value.isoformat(sep=" ", timespec="microseconds")), "TIMESTAMP")

    def date(self, value: date) -> exp.Expression:
        return cast(exp.Literal.string(value.isoformat()), "DATE")

    def decimal(self, value: Decimal) -> exp.Expression:
        return number(value)

    def boolean(self, value: bool) -> exp.Expression:
        return exp.true() if value else exp.false()

    def decimal_column(self, column: exp.Expression, where: str = "") -> exp.Expression:
        """How a decimal column (`where`: its table.column, for errors) is read (SQLite scales it to an integer)."""
        return column

    def text_order(self, value: exp.Expression, value_type: t.Type) -> exp.Expression:
        """A value compared or sorted as the language orders it: strings by code point. Engines that
        compare bytes need nothing (PostgreSQL follows the database's collation: `COLLATE "C"`)."""
        return value

    def change_case(self, value: exp.Expression, upper: bool) -> exp.Expression:
        """`upper(value)` or `lower(value)` with Unicode's case mapping, as Python's str.upper/lower."""
        return exp.Upper(this=value) if upper else exp.Lower(this=value)

    def exact(self, value: exp.Expression, value_type: t.Type) -> exp.Expression:
        """An arithmetic result of `value_type`, refused where the engine would silently lose exactness
        (SQLite past its integers); other engines raise on overflow themselves."""
        return value

    def int_as_decimal(self, value: exp.Expression) -> exp.Expression:
        """An integer used where a decimal is expected."""
        return value

    def decimal_zero(self) -> exp.Expression:
        return cast(exp.Literal.number(0), DECIMAL_TYPE)

    # -------------------------------------------------------------- arithmetic
    def divide(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        """`a / b` rounded half away from zero to MONEY_SCALE places; null when b is 0."""
        quotient = exp.Div(this=cast(a, "DECIMAL(38, 12)"),
                           expression=exp.Nullif(this=cast(b, "DECIMAL(38, 12)"), expression=number(0)))
        return exp.Round(this=quotient, decimals=number(MONEY_SCALE))

    def divide_by_whole(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        """`divide` where `b` is a whole number (a count, say): the same value, which some engines find faster."""
        return self.divide(a, b)

    def multiply(self, a: exp.Expression, b: exp.Expression, a_type: t.Type, b_type: t.Type) -> exp.Expression:
        return exp.Mul(this=a, expression=b)

    def modulo(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        return exp.Mod(this=a, expression=exp.Nullif(this=b, expression=number(0)))

    def round(self, value: exp.Expression, digits: exp.Expression, value_type: t.Type) -> exp.Expression:
        return exp.Round(this=value, decimals=digits)

    def shift(self, value: exp.Expression, duration: ast.Duration, sign: int, value_type: t.Type,
              result_type: t.Type) -> exp.Expression:
        """`value ± duration`; months clamp to the end of the month; a date stays a date."""
        interval = exp.Interval(this=exp.Literal.string(str(duration.amount)),
                                unit=exp.var(_UNIT_NAMES[duration.unit]))
        moved = exp.Add(this=value, expression=interval) if sign > 0 else exp.Sub(this=value, expression=interval)
        return cast(moved, "DATE") if result_type == t.DATE else cast(moved, "TIMESTAMP")

    def days_between(self, start: exp.Expression, end: exp.Expression) -> exp.Expression:
        """Calendar days between two dates."""
        return exp.DateDiff(this=end, expression=start, unit=exp.var("DAY"))

    def to_date(self, value: exp.Expression) -> exp.Expression:
        return cast(value, "DATE")

    def to_timestamp(self, value: exp.Expression) -> exp.Expression:
        return cast(value, "TIMESTAMP")

    def date_part(self, part: str, value: exp.Expression) -> exp.Expression:
        return exp.Extract(this=exp.var(part.upper()), expression=value)

    def make_date(self, year: exp.Expression, month: exp.Expression, day: exp.Expression) -> exp.Expression:
        """The date of a year, month and day (integers)."""
        return call("make_date", year, month, day)

    def hash32(self, text: exp.Expression) -> exp.Expression:
        """The first 4 bytes of SHA-256 of the text's UTF-8 bytes as an unsigned big-endian integer (`bucket`)."""
        raise self.unsupported("`bucket` (SHA-256)")

    # ------------------------------------------------------------------ strings
    def contains_text(self, haystack: exp.Expression, needle: exp.Expression) -> exp.Expression:
        return exp.GT(this=exp.StrPosition(this=haystack, substr=needle), expression=number(0))

    def starts_with(self, value: exp.Expression, prefix: exp.Expression) -> exp.Expression:
        return exp.EQ(this=exp.Substring(this=value, start=number(1), length=exp.Length(this=prefix)),
                      expression=prefix)

    def regex_search(self, value: exp.Expression, pattern: str, node: ast.Node) -> exp.Expression:
        return exp.RegexpLike(this=value, expression=exp.Literal.string(self.ascii_pattern(pattern, node)))

    def ascii_pattern(self, pattern: str, node: ast.Node) -> str:
        """The pattern as every engine reads it alike: no `(?i)`, ASCII letters and `\\d \\w \\s` spelled
        as ASCII sets (`safe_regex.canonical_pattern`; the type checker accepted it)."""
        return canonical_pattern(pattern)

    def read(self, value, value_type: t.Type):
        """A value as the engine returned it, in the memory engine's Python representation."""
        if value_type == t.DECIMAL and isinstance(value, (int, float)) and not isinstance(value, bool):
            return Decimal(str(value))
        if value_type == t.BOOL and isinstance(value, int):
            return bool(value)
        if value_type == t.INT and isinstance(value, Decimal):
            return int(value)  # PostgreSQL sums integers as NUMERIC
        if value_type == t.DURATION and isinstance(value, str):  # as `expressions` writes it: `30d`
            amount = value.rstrip("abcdefghijklmnopqrstuvwxyz")
            return ast.Duration(amount=int(amount), unit=ast.DurationUnit(value[len(amount):]))
        if value_type.is_list and value is not None:
            # a list column may hold nulls (`tags: [null]`): they sort last instead of failing the sort
            return sorted(value, key=lambda item: (item is None, item if item is not None else 0)) \
                if value_type != t.NULL else list(value)
        return value

    def text(self, value: exp.Expression) -> exp.Expression:
        """A whole number or a string as text."""
        return cast(value, "TEXT")

    def text_length(self, value: exp.Expression) -> exp.Expression:
        return exp.Length(this=value)

    # -------------------------------------------------------------------- lists
    def list_contains(self, haystack: exp.Expression, needle: exp.Expression) -> exp.Expression:
        return exp.ArrayContains(this=haystack, expression=needle)

    def list_membership(self, haystack: exp.Expression, needle: exp.Expression, haystack_may_be_null: bool,
                        needle_may_be_null: bool) -> exp.Expression:
        """`needle in haystack` for a list value: null when either side is null; null elements never match."""
        unknown = [exp.Is(this=side.copy(), expression=exp.Null())
                   for side, may in ((needle, needle_may_be_null), (haystack, haystack_may_be_null)) if may]
        test = exp.Coalesce(this=self.list_contains(haystack, needle), expressions=[self.boolean(False)])
        return case_when(or_(*unknown), exp.Null(), otherwise=test) if unknown else test

    def list_length(self, value: exp.Expression) -> exp.Expression:
        return exp.ArraySize(this=value)

    def distinct_list(self, value: exp.Expression, condition: exp.Expression | None) -> exp.Expression:
        """The distinct non-null values of a column over the rows where `condition` is true."""
        keep = exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))
        if condition is not None:
            keep = and_(condition, keep)
        return exp.Filter(this=exp.ArrayAgg(this=exp.Distinct(expressions=[value])), expression=exp.Where(this=keep))

    def empty_list(self, element: t.Type) -> exp.Expression:
        return exp.Array(expressions=[])
