"""The Python API: load rule files, get segments, match customers, run rule-file tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from crmrules import ast
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.memory import MemorySegment, memory
from crmrules.compiler.pipeline import Program, check
from crmrules.errors import CrmRulesError, UnknownNameError, did_you_mean, raise_all
from crmrules.grammar import parse
from crmrules.schema import Schema, default_schema, load_schema, schema_from_dict
from crmrules.values import evaluation_instant


class Segment(MemorySegment):
    """A compiled segment: `matches(customer, now)` in memory, `sql(dialect, as_of)` for a database."""

    __slots__ = ()

    def sql(self, dialect: str = "duckdb", as_of: date | datetime | str | None = None) -> str:
        """The query selecting this segment's members, formatted, with `now` fixed at `as_of` (default: today)."""
        from crmrules.backends.sql import members_query

        return members_query(self._program, self.name, dialect, as_of_or_today(as_of))


@dataclass(frozen=True)
class RunResult:
    """The members of each segment evaluated on a data set, as of one instant."""

    as_of: date | datetime
    members: dict[str, list[str]]
    warnings: list[str]

    def counts(self) -> dict[str, int]:
        """How many members each segment has."""
        return {name: len(ids) for name, ids in self.members.items()}


@dataclass(frozen=True)
class TestResult:
    """The outcome of one `given ... expect` case of a rule-file test."""

    __test__ = False

    segment: str
    case: int
    expected_in: bool
    actual_in: bool
    span: object

    @property
    def passed(self) -> bool:
        """Whether the segment said what the test expected."""
        return self.expected_in == self.actual_in


class RuleSet:
    """A checked set of rule files: segments, attributes, campaigns and tests."""

    def __init__(self, rules: ast.RuleFile, program: Program):
        self.rules = rules
        self.program = program
        self._compiled: dict[str, MemorySegment] = {}
        self._roots: tuple[str, ...] = ()

    @property
    def schema(self) -> Schema:
        """The schema the rules were checked against."""
        return self.program.schema

    @property
    def segments(self) -> list[tuple[str, str | None]]:
        """The rule files' own segments, names and titles, in file order (templates are usable by name)."""
        own = set(self.program.own)
        return [(name, decl.title) for name, decl in self.program.segments.items() if name in own]

    @property
    def attributes(self) -> list[str]:
        """The names of the rule files' own derived attributes."""
        own = set(self.program.own)
        return [name for name in self.program.attributes if name in own]

    @property
    def campaigns(self) -> dict[str, ast.CampaignDecl]:
        """The checked campaigns by name."""
        return dict(self.program.campaigns)

    def segment(self, name: str) -> Segment:
        """The named segment, compiled for in-memory matching on first use."""
        compiled = self._compiled.get(name)
        if compiled is None:
            self._require(name)
            built = memory(self.program, name)
            compiled = self._compiled[name] = Segment(name, built.title, built.source, built.matches, self.program)
        return compiled

    def _require(self, name: str) -> None:
        if name in self.program.segments:
            return
        from crmrules.stdlib import prelude

        templates = [d.name for d in prelude().declarations if isinstance(d, ast.SegmentDecl)]
        if name in templates:
            self._ensure([name], self.program.segments)
            return
        own = [n for n, _ in self.segments]
        raise UnknownNameError(f"unknown segment `{name}`", None,
                               did_you_mean(name, [*own, *templates])
                               or f"segments: {', '.join(own) or 'none'}; templates: crmrules templates")

    def run(self, data, backend: str | None = None, as_of: date | datetime | str | None = None,
            segments: list[str] | None = None) -> RunResult:
        """Evaluate segments on a whole data set: a data directory, a DuckDB or SQLite file,
        a PostgreSQL URL or a SparkSession; `backend` is duckdb, sqlite, postgres, spark or memory."""
        from crmrules.backends.sql.sources import run

        names = list(segments) if segments else [name for name, _ in self.segments]
        for name in names:
            self._require(name)
        now = as_of_or_today(as_of)
        warnings: list[str] = []
        members = run(self.program, data, backend, names, now, warnings)
        return RunResult(now, members, warnings)

    def values(self, data, attributes: list[str], backend: str | None = None,
               as_of: date | datetime | str | None = None) -> dict[str, dict[str, object]]:
        """The named attributes (own or from the catalogue) of every existing customer, by id."""
        from crmrules.backends.sql.sources import values

        self._ensure(attributes, self.program.attributes)
        return values(self.program, data, backend, list(attributes), as_of_or_today(as_of))

    def profile(self, data, segment: str, vs: str | None = None, backend: str | None = None,
                as_of: date | datetime | str | None = None, warnings: list[str] | None = None) -> dict:
        """The profile (画像) of a segment, or of two side by side, computed in one SQL query on `data`."""
        from crmrules.backends.sql import dialect_named, render
        from crmrules.backends.sql.sources import query_rows
        from crmrules.profile import ATTRIBUTES, profile_query, profile_rows

        names = [segment] + ([vs] if vs else [])
        for name in names:
            self._require(name)
        if vs == segment:
            raise CrmRulesError("compare a segment with another one", None, "give --vs a different segment",
                                code="E0002")
        self._ensure(ATTRIBUTES, self.program.attributes)
        now = as_of_or_today(as_of)

        def build(kind: str) -> str:
            d = dialect_named(kind)
            instant = evaluation_instant(now, self.schema.timezone)
            return render(profile_query(self.program, names, d, instant), d, pretty=False)

        kind, rows = query_rows(self.program, data, backend, build, warnings)
        result = profile_rows(rows, names, dialect_named(kind), self.program)
        titles = {name: self.program.segments[name].title for name in names}
        return {"as_of": now.isoformat(), **result, "titles": titles}

    def population(self, data, as_of: date | datetime | str | None = None):
        """Where every `ntile` of these rules (the RFM scores, value_tier) cuts the customer base in
        `data` (a data directory or file, or a list of customer dicts): pass it to `matches(...,
        population=...)`. Computed in memory, once; keep it for the run."""
        from crmrules.backends.population import population

        now = as_of_or_today(as_of)
        if isinstance(data, (list, tuple)):
            return population(self.program, data, now)
        from crmrules.backends.sql.sources import engine

        with engine(self.program, data, "memory") as (_, people):
            return population(self.program, people, now)

    def _ensure(self, names, found) -> None:
        """Check the catalogue declarations named here too, or raise with the closest names."""
        from crmrules.stdlib import prelude

        missing = [n for n in names if n not in found]
        if not missing:
            return
        known = {d.name for d in prelude().declarations}
        unknown = [n for n in missing if n not in known]
        if unknown:
            everything = [*known, *self.program.attributes, *self.program.segments]
            raise UnknownNameError(f"unknown name `{unknown[0]}`", None, did_you_mean(unknown[0], everything))
        self._roots = (*self._roots, *missing)
        self.program = check_with_catalogue(self.rules, self.program.schema, self._roots)
        self._compiled.clear()

    def run_tests(self, today: date | None = None) -> list[TestResult]:
        """Run every `test` block with the in-memory engine."""
        results = []
        for decl in self.program.tests:
            segment = self.segment(decl.segment)
            for index, case in enumerate(decl.cases, start=1):
                customer = _test_customer(case)
                now = case.as_of or today or date.today()
                actual = segment.matches(prepare_customer(customer, self.schema), now)
                results.append(TestResult(decl.segment, index, case.expect_in, actual, case.span))
        return results


def _test_customer(case: ast.TestCase) -> dict:
    customer: dict = {}
    for given in case.given:
        value = _plain(given.value)
        if given.table == "customer":
            customer.update(value)
        else:
            customer[given.table] = value
    return customer


def _plain(node: ast.Expr):
    match node:
        case ast.Record(fields=fields):
            return {f.name: _plain(f.value) for f in fields}
        case ast.ListLiteral(items=items):
            return [_plain(i) for i in items]
        case ast.Literal(value=value):
            return value
    raise CrmRulesError("test data must be written as literals", node.span, code="E0103")


def resolve_schema(schema: Schema | str | Path | dict | None) -> Schema:
    """A Schema from a Schema, a mapping file path, a dict, or None for the default."""
    if schema is None:
        return default_schema()
    if isinstance(schema, Schema):
        return schema
    if isinstance(schema, dict):
        return schema_from_dict(schema)
    return load_schema(schema)


def load_text(source: str, name: str = "<rules>", schema: Schema | str | Path | dict | None = None) -> RuleSet:
    """Parse and check rule text; every error of the text is raised together."""
    rules = parse(source, name)
    return RuleSet(rules, check_with_catalogue(rules, resolve_schema(schema)))


def load(paths: str | Path | Iterable[str | Path], schema: Schema | str | Path | dict | None = None) -> RuleSet:
    """Parse and check one or more rule files as one rule set."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    declarations: list[ast.Declaration] = []
    errors: list[CrmRulesError] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            errors.append(CrmRulesError(f"cannot read {path}: {error.strerror}", code="E0001"))
            continue
        try:
            declarations.extend(parse(text, str(path)).declarations)
        except CrmRulesError as error:
            errors.extend(getattr(error, "errors", [error]))
    raise_all(errors)
    rules = ast.RuleFile(declarations=tuple(declarations))
    return RuleSet(rules, check_with_catalogue(rules, resolve_schema(schema)))


def check_with_catalogue(rules: ast.RuleFile, schema: Schema, roots: tuple[str, ...] = ()) -> Program:
    """Check rules with the built-in catalogue available by name (read only when a rule names
    something the file does not define: parsing it costs ~45 ms once per process)."""
    if not roots and not _names_outside(rules, schema):
        return check(rules, schema)
    from crmrules.stdlib import prelude

    return check(rules, schema, prelude=prelude(), roots=roots)


def _names_outside(rules: ast.RuleFile, schema: Schema) -> bool:
    """Whether any declaration mentions a name or calls a function the file and the language lack."""
    from crmrules.compiler.functions import FUNCTIONS

    declared = {d.name for d in rules.declarations if isinstance(d, (ast.SegmentDecl, ast.AttributeDecl,
                                                                    ast.FunctionDecl))}
    known = declared | set(FUNCTIONS) | {"ntile", "now", "today"}

    def outside(node: ast.Node, local: set[str], in_rows: bool) -> bool:
        if isinstance(node, ast.Call) and node.name not in known:
            return True
        # inside `where` (and per-row values) bare names are the row's columns
        if isinstance(node, ast.Name) and not in_rows and node.name not in known | local \
                and schema.column("customers", node.name) is None:
            return True
        if isinstance(node, ast.Aggregate):
            return any(outside(part, local, True) for part in (node.where, node.value, node.by) if part is not None)
        return any(outside(child, local, in_rows) for child in ast.children(node))

    for decl in rules.declarations:
        if isinstance(decl, ast.TestDecl) and decl.segment not in declared:
            return True
        local = {p.name for p in decl.params} if isinstance(decl, ast.FunctionDecl) else set()
        if outside(decl, local, False):
            return True
    return False


def as_of_or_today(value: str | date | datetime | None) -> date | datetime:
    """An as-of value, today when none is given."""
    return date.today() if value is None else as_of(value)


def as_of(value: str | date | datetime) -> date | datetime:
    """Parse an `--as-of` value: a date (meaning the end of that day) or an ISO timestamp."""
    if isinstance(value, (date, datetime)):
        return value
    text = value.strip()
    try:
        return datetime.fromisoformat(text) if ("T" in text or " " in text) else date.fromisoformat(text)
    except ValueError:
        raise CrmRulesError(f"`{value}` is not a date or timestamp", None,
                            "write 2026-01-31 or 2026-01-31T09:00", code="E0002") from None
