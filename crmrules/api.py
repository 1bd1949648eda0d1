"""The Python API: load rule files, get segments, match customers, evaluate on data sets.

A facade: checking is `compiler.pipeline`, engines are reached through
`backends.dispatch`, rule-file tests are `rule_tests`, profiles are `profile`.
Every call that evaluates builds one `EvaluationContext` and passes it down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from crmrules import ast
from crmrules.backends.memory import memory
from crmrules.compiler.pipeline import Program, check
from crmrules.context import evaluation_context
from crmrules.errors import CrmRulesError, UnknownNameError, did_you_mean, raise_all
from crmrules.grammar import parse
from crmrules.rule_tests import TestResult, run_tests
from crmrules.schema import Schema, default_schema, load_schema, schema_from_dict

AsOf = date | datetime | str | None

__all__ = ["RuleSet", "RunResult", "Segment", "TestResult", "check_with_catalogue", "load", "load_text",
           "resolve_schema"]


class Segment:
    """A compiled segment: `matches(customer, now)` in memory, `sql(dialect, as_of)` for a database."""

    __slots__ = ("name", "title", "matches", "program", "source")

    def __init__(self, name: str, title: str | None, matches, program: Program, source: str = ""):
        self.name = name
        self.title = title
        # the generated function itself, so a call costs nothing on top of the rule
        self.matches = matches
        self.program = program  # the program it was compiled from: always consistent with `matches`
        self.source = source

    def sql(self, dialect: str = "duckdb", as_of: AsOf = None) -> str:
        """The query selecting this segment's members, formatted, with `now` fixed at `as_of` (default: today)."""
        from crmrules.backends.sql import members_query

        return members_query(self.program, self.name, dialect, evaluation_context(as_of, self.program.schema))

    def explain(self, customer: dict, now: AsOf = None, population=None):
        """Why `customer` (a dict with `orders` and `events`) is in this segment or not, as of `now`: an
        `explain.Explanation` (`.result`, `.tree`, `.to_json()`, `.render()`), by the reference interpreter.
        Rules that rank customers need the `population` of `RuleSet.population`."""
        from crmrules.backends.customer_data import prepare_customer
        from crmrules.backends.interpreter import evaluate
        from crmrules.explain import explain

        ctx = evaluation_context(now, self.program.schema, population)
        person = prepare_customer(customer, self.program.schema)
        customer_id = person.get(self.program.schema.column("customers", "id").source, "customer")

        def values_of(body: ast.Expr) -> dict:
            return {node: value for node, _, value in evaluate(self.program, person, body, ctx)}

        return explain(self.program, self.name, str(customer_id), ctx.as_of, values_of)

    def __repr__(self) -> str:
        return f"<segment {self.name}>"


@dataclass(frozen=True)
class RunResult:
    """The members of each segment evaluated on a data set, as of one instant."""

    as_of: date | datetime
    members: dict[str, list[str]]
    warnings: list[str]

    def counts(self) -> dict[str, int]:
        """How many members each segment has."""
        return {name: len(ids) for name, ids in self.members.items()}


class RuleSet:
    """A checked set of rule files: segments, attributes, campaigns and tests; never changes once built.

    A catalogue segment or attribute named later (a template, `clv`) is checked into a
    new program derived from the same rules, kept per set of names; `program` stays as loaded.
    """

    def __init__(self, rules: ast.RuleFile, program: Program):
        self._rules = rules
        self._program = program
        self._derived: dict[tuple[str, ...], Program] = {}
        self._compiled: dict[str, Segment] = {}

    @property
    def rules(self) -> ast.RuleFile:
        """The parsed rule files."""
        return self._rules

    @property
    def program(self) -> Program:
        """The checked rules with the catalogue declarations they use."""
        return self._program

    @property
    def schema(self) -> Schema:
        """The schema the rules were checked against."""
        return self._program.schema

    @property
    def segments(self) -> list[tuple[str, str | None]]:
        """The rule files' own segments, names and titles, in file order (templates are usable by name)."""
        own = set(self._program.own)
        return [(name, decl.title) for name, decl in self._program.segments.items() if name in own]

    @property
    def attributes(self) -> list[str]:
        """The names of the rule files' own derived attributes."""
        own = set(self._program.own)
        return [name for name in self._program.attributes if name in own]

    @property
    def campaigns(self) -> dict[str, ast.CampaignDecl]:
        """The checked campaigns by name."""
        return dict(self._program.campaigns)

    def segment(self, name: str) -> Segment:
        """The named segment (own or a template), compiled for in-memory matching on first use."""
        compiled = self._compiled.get(name)
        if compiled is None:
            program = self.program_for(segments=[name])
            built = memory(program, name)
            compiled = self._compiled[name] = Segment(name, built.title, built.matches, program,
                                                      getattr(built, "source", ""))
        return compiled

    def program_for(self, segments: Iterable[str] = (), attributes: Iterable[str] = ()) -> Program:
        """A program holding these segments and attributes: `program` itself when it has them, else the
        rules checked again with the catalogue declarations named here (once per set of names)."""
        segments, attributes = list(segments), list(attributes)
        for name in segments:
            if name not in self._program.segments:
                self._known(name, ast.SegmentDecl)
        for name in attributes:
            if name not in self._program.attributes:
                self._known(name, ast.AttributeDecl)
        missing = tuple(sorted({n for n in segments if n not in self._program.segments}
                               | {n for n in attributes if n not in self._program.attributes}))
        if not missing:
            return self._program
        derived = self._derived.get(missing)
        if derived is None:
            derived = self._derived[missing] = check_with_catalogue(self._rules, self.schema, missing)
        return derived

    def _known(self, name: str, kind: type) -> None:
        """Raise with the closest names unless the catalogue declares `name` as a `kind`."""
        from crmrules.stdlib import prelude

        declared = [d.name for d in prelude().declarations if isinstance(d, kind)]
        if name in declared:
            return
        if kind is ast.SegmentDecl:
            own = [n for n, _ in self.segments]
            raise UnknownNameError(f"unknown segment `{name}`", None,
                                   did_you_mean(name, [*own, *declared])
                                   or f"segments: {', '.join(own) or 'none'}; templates: crmrules templates")
        everything = [*declared, *self._program.attributes, *self._program.segments]
        raise UnknownNameError(f"unknown name `{name}`", None, did_you_mean(name, everything))

    def run(self, data, backend: str | None = None, as_of: AsOf = None,
            segments: list[str] | None = None) -> RunResult:
        """Evaluate segments on a whole data set: a data directory, a DuckDB or SQLite file, a PostgreSQL
        URL, a SparkSession or a list of customer dicts; `backend` is a name of `backends.dispatch.BACKENDS`
        (duckdb, sqlite, postgres, spark, memory, interpreter)."""
        from crmrules.backends.dispatch import open_data

        names = list(segments) if segments else [name for name, _ in self.segments]
        program = self.program_for(segments=names)
        ctx = evaluation_context(as_of, self.schema)
        warnings: list[str] = []
        with open_data(program, data, backend, warnings) as (engine, opened):
            members = engine.members(program, opened, names, ctx)
        return RunResult(ctx.as_of, members, warnings)

    def write_parquet(self, data, path: str, backend: str | None = None, as_of: AsOf = None,
                      segments: list[str] | None = None, warnings: list[str] | None = None) -> dict[str, int]:
        """Write each customer's membership (`customer_id`, a true/false column per segment) to `path` as
        Parquet, on the engine (DuckDB, Spark: written by the cluster, never collected); the member counts.
        `data` as `run` takes it, or `SparkData(location, spark)` (`backends.spark_source`)."""
        from crmrules.backends.dispatch import open_data
        from crmrules.backends.sql.export import write_members

        names = list(segments) if segments else [name for name, _ in self.segments]
        program = self.program_for(segments=names)
        ctx = evaluation_context(as_of, self.schema)
        with open_data(program, data, backend, warnings) as (engine, opened):
            if engine.takes != "sql":
                raise CrmRulesError(f"--output writes Parquet from DuckDB or Spark, not {engine.name}", None,
                                    "run on --backend duckdb or spark", code="E0401")
            return write_members(program, opened, names, ctx, str(path))

    def values(self, data, attributes: list[str], backend: str | None = None,
               as_of: AsOf = None) -> dict[str, dict[str, object]]:
        """The named attributes (own or from the catalogue) of every existing customer, by id."""
        from crmrules.backends.dispatch import open_data

        names = list(attributes)
        program = self.program_for(attributes=names)
        ctx = evaluation_context(as_of, self.schema)
        with open_data(program, data, backend) as (engine, opened):
            return engine.values(program, opened, names, ctx)

    def profile(self, data, segment: str, vs: str | None = None, backend: str | None = None,
                as_of: AsOf = None, warnings: list[str] | None = None, period: str | None = None,
                by: Iterable[str] = ()) -> dict:
        """The profile (画像) of a segment, or of two side by side, on `data`: one SQL query on a SQL backend,
        the same sums on the memory engine. `period` (`"30d"`) adds the figures of the paid orders placed
        within it, ending at `as_of`; each `by` attribute (own, catalogue or a customers column) adds its
        distribution."""
        from crmrules.profile import parse_period, profile

        names = [segment] + ([vs] if vs else [])
        self.program_for(segments=names)  # unknown names first, as everywhere
        if vs == segment:
            raise CrmRulesError("compare a segment with another one", None, "give --vs a different segment",
                                code="E0002")
        by = list(by)
        for name in by:
            if self.schema.column("customers", name) is None:
                self.program_for(attributes=[name])  # an unknown name, with the closest known ones
        duration = parse_period(period) if period is not None else None
        return profile(self._rules, self.schema, data, names, evaluation_context(as_of, self.schema), backend,
                       warnings, duration, by)

    def population(self, data, as_of: AsOf = None, segments: Iterable[str] | None = None):
        """Where every `ntile` of these rules and of the catalogue (the RFM scores, value_tier) cuts the
        customer base in `data` (a data directory or file, or a list of customer dicts): pass it to
        `matches(..., population=...)` of any segment of this rule set, templates included. Computed in
        memory, once; keep it for the run."""
        from crmrules.backends.dispatch import open_data
        from crmrules.backends.population import population

        names = [*self._compiled, *(segments or ())]
        try:
            program = self.program_for(segments=names, attributes=_ranked_attributes())
        except CrmRulesError:
            program = self.program_for(segments=names)  # a schema the catalogue's scores do not fit
        ctx = evaluation_context(as_of, self.schema)
        with open_data(program, data, "memory") as (_, people):
            return population(program, people, ctx)

    def node_values(self, customer: dict | str, name: str, data=None, backend: str = "interpreter",
                    as_of: AsOf = None) -> dict[ast.Expr, object]:
        """The value of a segment's or attribute's body and of each of its customer-level sub-expressions
        for one customer (a dict, or an id in `data`): what `explain` shows, keyed by node."""
        from crmrules.backends.dispatch import open_data

        if self._is_segment(name):
            program = self.program_for(segments=[name])
            body = program.segments[name].body
        else:
            program = self.program_for(attributes=[name])
            body = program.attributes[name].body
        id_of = self.schema.column("customers", "id").source
        if isinstance(customer, dict):
            customer = {id_of: "customer", **customer}
            data, customer_id = [customer], str(customer[id_of])
        else:
            customer_id = str(customer)
        ctx = evaluation_context(as_of, self.schema)
        with open_data(program, data, backend) as (engine, opened):
            return engine.node_values(program, opened, customer_id, body, ctx)

    def campaign_engine(self, outbox=":memory:", tick: str = "1h"):
        """The campaigns for an app, in memory: `on_event(event, customer)`, `tick(now, customers)`."""
        from crmrules.campaigns.engine import CampaignEngine

        return CampaignEngine(self._program, outbox, tick)

    def campaign_report(self, data, outbox, as_of: AsOf = None, window="14d", cost=None, backend: str | None = None,
                        warnings: list[str] | None = None) -> dict:
        """Each campaign's sent messages against its holdout: conversions (paid orders within `window` after
        each message), uplift with a 95 % interval, revenue, cost (`cost`: "email=0.002,sms=0.04" or a dict)
        and ROI, counted in SQL on `data` joined with the messages of `outbox` (`campaigns.report`)."""
        from crmrules.campaigns.report import campaign_report

        program = self.program_for(attributes=["total_spent"])
        return campaign_report(program, data, outbox, evaluation_context(as_of, self.schema), window, cost, backend,
                               warnings)

    def _is_segment(self, name: str) -> bool:
        if name in self._program.segments or name in self._program.attributes:
            return name in self._program.segments
        from crmrules.stdlib import prelude

        return any(d.name == name and isinstance(d, ast.SegmentDecl) for d in prelude().declarations)

    def run_tests(self, today: date | None = None, data=None) -> list[TestResult]:
        """Run every `test` block with the in-memory engine (cases without `as of`: today in the store's zone).

        Rules that rank customers (`ntile`) rank each test customer against the customer base in `data`
        (as `population` takes it), as of each case's own date."""
        ranked = None
        if data is not None:
            tested = sorted({decl.segment for decl in self._program.tests})
            populations: dict = {}

            def ranked(as_of):
                if as_of not in populations:
                    populations[as_of] = self.population(data, as_of, segments=tested)
                return populations[as_of]
        return run_tests(self._program, today, ranked)

    def learning(self, data, backend: str | None = None, warnings: list[str] | None = None) -> RuleSet:
        """These rules checked again knowing the values `data` holds in open columns (e.g. `events.type`):
        a literal the data holds is then no warning. `data` and `backend` as `run` takes them."""
        from crmrules.backends.dispatch import open_data

        program = self._program
        schema = program.schema
        columns = [(table.name, column.name) for table in schema.tables.values()
                   for column in table.columns.values() if column.values and not column.closed]
        learned: dict[tuple[str, str], frozenset[str]] = {}
        with open_data(program, data, backend, warnings) as (engine, opened):
            for table, column in columns:
                if engine.takes == "sql":
                    from crmrules.backends.sql.backend import distinct_values

                    found = distinct_values(opened, schema, table, column)
                else:
                    found = _row_values(opened, schema, table, column)
                if found:
                    learned[(table, column)] = frozenset(found)
        if not learned:
            return self
        return RuleSet(self._rules, check_with_catalogue(self._rules, schema, learned=learned))


def _ranked_attributes() -> list[str]:
    """The catalogue attributes that rank customers (`ntile`): a population covers them for every template."""
    from crmrules.stdlib import prelude

    return [d.name for d in prelude().declarations if isinstance(d, ast.AttributeDecl)
            and any(isinstance(n, ast.Call) and n.name in ("ntile", "score") for n in ast.walk(d.body))]


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
            text = Path(path).read_bytes().decode("utf-8")
        except OSError as error:
            errors.append(CrmRulesError(f"cannot read {path}: {error.strerror}", code="E0001"))
            continue
        except UnicodeDecodeError as error:
            errors.append(CrmRulesError(f"{path}: not UTF-8 text (byte {error.start}: {error.object[error.start]:#04x})",
                                        None, "save the file as UTF-8", code="E0001"))
            continue
        try:
            declarations.extend(parse(text, str(path)).declarations)
        except CrmRulesError as error:
            errors.extend(getattr(error, "errors", [error]))
    raise_all(errors)
    rules = ast.RuleFile(declarations=tuple(declarations))
    return RuleSet(rules, check_with_catalogue(rules, resolve_schema(schema)))


def check_with_catalogue(rules: ast.RuleFile, schema: Schema, roots: tuple[str, ...] = (),
                         learned: dict[tuple[str, str], frozenset[str]] | None = None) -> Program:
    """Check rules with the built-in catalogue usable by name; only the catalogue declarations the
    rules (or `roots`) use are checked; `learned` adds values seen in the data to open columns.
    The parsed catalogue is cached (~3 ms to read once a process)."""
    from crmrules.stdlib import prelude

    return check(rules, schema, prelude=prelude, roots=roots, learned=learned)


# where each table's rows sit in a customer dict: the path of list keys from the customer
_ROW_PATHS = {"customers": (), "orders": ("orders",), "events": ("events",), "order_items": ("orders", "items")}


def _row_values(people: list[dict], schema: Schema, table: str, column: str) -> set[str]:
    """The distinct non-null values of `table.column` in customer dicts (products are not nested: none)."""
    path = _ROW_PATHS.get(table)
    if path is None:
        return set()
    key = schema.column(table, column).source
    found: set[str] = set()

    def visit(row: dict, rest: tuple[str, ...]) -> None:
        if not rest:
            value = row.get(key)
            if isinstance(value, str):
                found.add(value)
            return
        for child in row.get(rest[0]) or ():
            if isinstance(child, dict):
                visit(child, rest[1:])

    for person in people:
        visit(person, path)
    return found
