"""The generated-code engine: compile a checked segment to Python source once, then call it per customer.

Three-valued logic is compiled away: for a condition `e` the generator emits
`T(e)`, true exactly when `e` is true, and `F(e)`, true exactly when `e` is
false; unknown is neither. `not e` swaps them, so evaluation never carries a
third value through `and`/`or` and never walks the tree.

Each distinct attribute, segment, customer-level aggregate and `ntile` is
computed at most once per evaluation: one that the code reads in more than one
place lives in a local that starts unset and is filled on first use
(`(_m0 if _m0 is not _U else (_m0 := ...))`), so short-circuits still skip it.
What the code computes is defined by `backends/runtime.py` and
`backends/builtins.py`, which the interpreter uses too.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation

from crmrules import ast
from crmrules import types as t
from crmrules import values
from crmrules.backends import runtime
from crmrules.backends.builtins import BUILTINS
from crmrules.backends.column_reads import ColumnReads, fill_missing, plain
from crmrules.backends.customer_data import TEST_NAMES, prepare_customer, type_test
from crmrules.backends.memory_aggregates import AGGREGATE_RUNTIME, aggregate_code
from crmrules.backends.protocol import StreamedCustomers
from crmrules.compiler.never_null import never_null
from crmrules.compiler.pipeline import Program
from crmrules.compiler.visibility import registered, visible
from crmrules.context import EvaluationContext, evaluation_context
from crmrules.errors import InternalError

_PLACEHOLDER = re.compile("\x00(\\d+)([TFV])\x00")
_SIMPLE = re.compile(r"[\w.']*")  # code as cheap to repeat as to remember: a name, a number, a string

_RUNTIME = {
    "Decimal": Decimal, "_NaN": InvalidOperation, "_U": runtime.UNSET, **AGGREGATE_RUNTIME,
    "_tile": runtime.tile, "_div": values.divide, "_mod": values.modulo,
    "_round": values.round_half_up, "_shift": values.shift, "_ts": values.as_timestamp,
    "_days": values.days_between, "_to_date": runtime.to_date, "_bad": runtime.wrong_type, "_plain": plain, **TEST_NAMES,
    **{f"_fn_{name}": builtin.fn for name, builtin in BUILTINS.items()},
}


class MemorySegment:
    """One segment compiled to a Python function; `matches(customer, now)` is the hot path.

    `now` is an as-of date or timestamp, or an `EvaluationContext`; the context is
    built once per distinct `now` object, not per customer.
    """

    __slots__ = ("name", "title", "source", "matches", "_program")

    def __init__(self, name: str, title: str | None, source: str, matches, program: Program):
        self.name = name
        self.title = title
        self.source = source
        self.matches = matches
        self._program = program

    def __repr__(self) -> str:
        return f"<segment {self.name}>"


def memory(program: Program, segment: str) -> MemorySegment:
    """Compile the named segment of a checked program for in-memory evaluation."""
    decl = program.segments[segment]
    generator = _Generator(program)
    generator.subscript = True  # the hot path: see column_reads
    source = generator.module(generator.true(decl.body, "c"))
    if generator.tables or "_tile(" in source:
        # a rule over orders or rankings spends its time there, not reading fields: `.get`, so a missing
        # field never makes that work run twice
        generator = _Generator(program)
        source = generator.module(generator.true(decl.body, "c"))
    namespace = _namespace(generator)
    namespace.update(_fill=fill_missing, _keys=frozenset(generator.customer_keys))
    schema = program.schema

    def validate(customer):
        return prepare_customer(customer, schema, strict=True)

    def retry(customer, now, error, population=None):
        # data of the wrong type: convert it and evaluate again, or name exactly what is wrong
        fixed = prepare_customer(customer, schema)
        if fixed is customer:
            raise InternalError(f"evaluation of segment `{segment}` failed: {error}") from error
        return namespace["matches"](fixed, now, population=population)

    namespace.update(_prepare=validate, _retry=retry)
    exec(compile(source, f"<segment {segment}>", "exec"), namespace)  # noqa: S102 - our own generated code
    return MemorySegment(segment, decl.title, source, namespace["matches"], program)


def _namespace(generator: _Generator) -> dict:
    """The globals generated code runs in: the runtime, its constants, and `_context_of`."""
    namespace = dict(_RUNTIME)
    namespace.update(generator.constants)
    schema, windows = generator.schema, tuple(generator.windows)

    def context_of(now):
        # the context (instant, window edges, population) is made once per distinct `now`, not per customer
        ctx = now if isinstance(now, EvaluationContext) else evaluation_context(now, schema)
        namespace["_last"] = last = (now, ctx.instant, tuple(ctx.window_start(d) for d in windows), ctx.population)
        return last

    namespace.update(_last=(None, None, (), None), _context_of=context_of)
    return namespace


def compile_values(program: Program, codes: Callable[[_Generator], list[str]],
                   positions: dict[str, dict[str, int]] | None = None, rows_visible: bool = False,
                   folded: dict | None = None) -> Callable:
    """`values(customer, now, population=None)` -> a tuple, from `codes(generator)` giving one Python
    expression per value; the customer must already have the schema's types (see prepare_customer).
    With `positions` the customer and its rows are tuples of values of their columns' types, as the
    batch engine reads them (see column_reads); `rows_visible`: the rows given are only those that exist
    at `now` (the batch engine's source applied the visibility rule); `folded`: the customer-level
    aggregates and rankings given as customer fields (see memory_folded)."""
    generator = _Generator(program)
    generator.rows_visible, generator.folded = rows_visible, folded
    if positions is not None:
        generator.positions, generator.trusted = positions, True
    source = generator.values_module(codes(generator))
    namespace = _namespace(generator)
    exec(compile(source, "<values>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["values"]


def attribute_values(program: Program, exprs: list[ast.Expr]) -> Callable:
    """`values(customer, now, population=None)` -> the value of each expression for one customer."""
    return compile_values(program, lambda g: [g.value(e, "c") for e in exprs])


def ranking_inputs(program: Program, node: ast.Ntile) -> Callable[[dict, object], tuple[bool, object]]:
    """`inputs(customer, now) -> (ranked, value)` for one `ntile`: whether the customer is in its
    population and the value it is ranked by."""
    compiled = compile_values(program, lambda g: [g.true(node.among, "c"), g.value(node.value, "c")])

    def inputs(customer, now):
        among, value = compiled(customer, now)
        return among and value is not None, value

    return inputs


class MemoryBackend:
    """The generated-code engine over a list of prepared customer dicts."""

    name = "memory"
    takes = "rows"

    def members(self, program: Program, data: Sequence[dict], segments: Sequence[str],
                ctx: EvaluationContext) -> dict[str, list[str]]:
        """The sorted ids of each segment's members among the customers that exist at `ctx.instant`."""
        if isinstance(data, StreamedCustomers):  # too many to hold: it evaluates chunk by chunk
            return data.members(program, segments, ctx)
        ctx = self._ranked(program, data, ctx)
        id_of = program.schema.column("customers", "id").source
        matchers = {name: memory(program, name).matches for name in segments}
        members: dict[str, set[str]] = {name: set() for name in segments}
        for person in runtime.existing(program.schema, data, ctx, self.decide):
            for name, matches in matchers.items():
                if matches(person, ctx):
                    members[name].add(str(person[id_of]))
        return {name: sorted(ids) for name, ids in members.items()}

    def values(self, program: Program, data: Sequence[dict], names: Sequence[str],
               ctx: EvaluationContext) -> dict[str, dict[str, object]]:
        """The named attributes of every existing customer: {id: {name: value}}."""
        if isinstance(data, StreamedCustomers):  # too many to hold: it evaluates chunk by chunk
            return data.values(program, names, ctx)
        ctx = self._ranked(program, data, ctx)
        id_of = program.schema.column("customers", "id").source
        compute = attribute_values(program, [program.attributes[name].body for name in names])
        return {str(person[id_of]): dict(zip(names, compute(person, ctx)))
                for person in runtime.existing(program.schema, data, ctx, self.decide)}

    def node_values(self, program: Program, data: Sequence[dict], customer_id: str, expr: ast.Expr,
                    ctx: EvaluationContext) -> dict[ast.Expr, object]:
        """The value of `expr` and of each of its customer-level sub-expressions for one customer,
        each compiled on its own (the engine keeps no intermediate values)."""
        ctx = self._ranked(program, data, ctx)
        person = runtime.find_customer(data, program.schema, customer_id)
        nodes = list(dict.fromkeys(runtime.customer_nodes(expr)))
        computed = compile_values(program, lambda g: [g.value(n, "c") for n in nodes])(person, ctx)
        return dict(zip(nodes, computed))

    def population(self, program: Program, people: Sequence[dict], ctx: EvaluationContext) -> runtime.Population:
        """Where each `ntile` of the program cuts the existing customers of `people` (prepared)."""
        def inputs(node: ast.Ntile):
            compute = ranking_inputs(program, node)
            return lambda person: compute(person, ctx)

        return runtime.rank(program, runtime.existing(program.schema, people, ctx, self.decide), ctx, inputs)

    def _ranked(self, program: Program, data: Sequence[dict], ctx: EvaluationContext) -> EvaluationContext:
        if ctx.population is None and runtime.ntiles(program):
            return ctx.with_population(self.population(program, data, ctx))
        return ctx

    @staticmethod
    def decide(schema, condition: ast.Expr, ctx: EvaluationContext) -> Callable[[dict], bool]:
        """`holds(person) -> bool`: whether a customer-level condition is true, by generated code."""
        compute = compile_values(Program(schema), lambda g: [g.true(condition, "c")])
        return lambda person: compute(person, ctx)[0]


class _Generator(ColumnReads):
    """Emits Python expressions for T(e), F(e) and V(e)."""

    def __init__(self, program: Program):
        self.program = program
        self.schema = program.schema
        self.constants: dict[str, object] = {}
        self.windows: list[ast.Duration] = []
        self.tables: dict[str, str] = {}  # table -> the local holding the customer's visible rows of it
        self.row_tables: dict[str, str] = {"c": "customers"}  # row variable -> its table
        self.customer_keys = set()
        self.counter = itertools.count()
        # memoised customer-level values: key -> index, and the code of each (index, kind)
        self.keys: dict[tuple, int] = {}
        self.builders: dict[int, dict[str, Callable[[], str]]] = {}
        self.codes: dict[tuple[int, str], str] = {}

    # ----------------------------------------------------------------- plumbing
    def temp(self) -> str:
        return f"_v{next(self.counter)}"

    def constant(self, value) -> str:
        if value is None or isinstance(value, (bool, int, str)):
            return repr(value)
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def once(self, key: tuple, kind: str, builders: dict[str, Callable[[], str]]) -> str:
        """A placeholder for a customer-level value (kind V), or its T or F test, computed once.

        `builders` make the code of each kind the key has. Placeholders are resolved
        by `finish`: a key read in one place only is pasted there; one read in more
        places becomes a memoised local holding its value (a segment: its T test).
        """
        index = self.keys.setdefault(key, len(self.keys))
        self.builders.setdefault(index, builders)
        self._code(index, kind)  # now, so the tables and constants it needs are known
        return f"\x00{index}{kind}\x00"

    def _code(self, index: int, kind: str) -> str:
        if (index, kind) not in self.codes:
            self.codes[(index, kind)] = self.builders[index][kind]()
        return self.codes[(index, kind)]

    def _memo_kind(self, index: int) -> str:
        return "V" if "V" in self.builders[index] else "T"

    def finish(self, texts: list[str]) -> tuple[list[str], list[str]]:
        """The texts with every placeholder resolved, and the memoised locals to initialise."""
        memo: set[int] = set()
        while True:
            counts: Counter[int] = Counter()
            done: set[tuple[int, str]] = set()
            todo = list(texts)
            while todo:
                for match in _PLACEHOLDER.finditer(todo.pop()):
                    index, kind = int(match[1]), match[2]
                    counts[index] += 1
                    variant = (index, self._memo_kind(index) if index in memo else kind)
                    if variant not in done:
                        done.add(variant)
                        todo.append(self._code(*variant))
            again = memo | {index for index, n in counts.items()
                             if n > 1 and not _SIMPLE.fullmatch(self._code(index, self._memo_kind(index)))}
            if again == memo:
                break
            memo = again

        def paste(match: re.Match) -> str:
            index, kind = int(match[1]), match[2]
            if index not in memo:
                return _PLACEHOLDER.sub(paste, self._code(index, kind))
            stored = self._memo_kind(index)
            local = f"_m{index}"
            code = f"({local} if {local} is not _U else ({local} := {_PLACEHOLDER.sub(paste, self._code(index, stored))}))"
            if kind == stored:
                return code
            if stored == "T":
                return f"(not {code})"
            return f"({code} is {kind == 'T'})"

        return [_PLACEHOLDER.sub(paste, text) for text in texts], [f"_m{index}" for index in sorted(memo)]

    def prologue(self, memo: list[str]) -> list[str]:
        """Lines that gather the visible rows of the tables the code reads, and unset the memoised locals."""
        return [*self.row_lines, *([f"{' = '.join(memo)} = _U"] if memo else [])]

    def gather(self) -> None:
        """The code of each table's visible rows, parents first (their conditions may add constants)."""
        self.row_lines = []
        for table in sorted(self.tables, key=lambda name: len(runtime.row_path(name))):
            path = runtime.row_path(table)
            key, _ = path[-1]
            parent = "c" if len(path) == 1 else self.tables[path[-2][1]]
            if parent == "c":
                source = f"({self.read('c', key)} or ())"
            else:
                var = f"_p{next(self.counter)}"
                self.row_tables[var] = path[-2][1]
                source = f"[x for {var} in {parent} for x in ({self.read(var, key)} or ())]"
            self.row_lines.append(f"{self.tables[table]} = {self.visible(source, table)}")

    def visible(self, source: str, table: str) -> str:
        """Code for the rows of `source` that exist at `now` (compiled from the visibility rule)."""
        condition = visible(table, self.schema)
        if condition is None or self.rows_visible:
            return source
        var = f"_r{next(self.counter)}"
        self.row_tables[var] = table
        return f"[{var} for {var} in {source} if {self.true(condition, var)}]"

    def values_module(self, codes: list[str]) -> str:
        """`values(c, now, population)`: a tuple of the given expressions for one customer."""
        codes, memo = self.finish(codes)
        self.gather()
        lines = "\n".join("    " + line for line in self.prologue(memo))
        return f"""def values(c, now, population=None):
    last = _last
    if last[0] is not now:
        last = _context_of(now)
{self.context_lines(codes, "    ")}
{lines}
    return ({', '.join(codes)},)
"""

    def module(self, body: str) -> str:
        """The generated module: `matches` with the rule inline, and a slow path for bad data."""
        condition = registered(self.schema)
        # a customer who registers after `now` does not exist yet
        exists = self.true(condition, "c") if condition is not None else "True"
        (body, exists), memo = self.finish([body, exists])
        self.gather()
        lines = [*self.prologue(memo), f"if not {body}:", "    return False", f"return {exists}"]
        inline = "\n".join("        " + line for line in lines)
        return f"""def matches(customer, now, validate=False, population=None):
    last = _last
    if last[0] is not now:
        last = _context_of(now)
    if validate:
        customer = _prepare(customer)
    c = customer if type(customer) is dict else _plain(customer)
{self.context_lines([body, exists, *self.row_lines], "    ")}
    try:
{inline}
    except KeyError as error:
        return matches(_fill(c, _keys, error), now, population=population)
    except (TypeError, AttributeError, ValueError, _NaN) as error:
        return _retry(c, now, error, population)
"""

    def context_lines(self, codes: list[str], indent: str) -> str:
        """`n` (now), and `K` (window edges) and `P` (the ranked population) when the code reads them."""
        lines = ["n = last[1]"] + (["K = last[2]"] if self.windows else [])
        if any("_tile(P" in code for code in codes):
            lines.append("P = population if population is not None else last[3]")
        return "\n".join(indent + line for line in lines)

    def rows(self, table: str, row: str) -> str:
        """The visible rows of `table` in scope of `row`: its own child rows, else the customer's."""
        key = runtime.child_key(self.row_tables[row], table) if row != "c" else None
        if key is not None:
            return self.visible(f"({self.read(row, key)} or ())", table)
        for _, step in runtime.row_path(table):
            self.tables.setdefault(step, f"_t{len(self.tables)}")
        return self.tables[table]

    def value_pair(self, left: ast.Expr, right: ast.Expr, row: str) -> tuple[str, str, list[str]]:
        """Expressions for two operands and the null checks they need, dates widened to timestamps."""
        widen = runtime.widens(left.type, right.type)
        checks, names = [], []
        for side in (left, right):
            if isinstance(side, ast.Literal) and side.value is not None:
                value = values.as_timestamp(side.value) if widen else side.value
                names.append(self.constant(value))
                continue
            if never_null(side) and not widen:
                names.append(self.value(side, row))
                continue
            var, check = self.present(side, row, f"_ts({self.value(side, row)})" if widen else None)
            checks.append(check)
            names.append(var)
        return names[0], names[1], checks

    # --------------------------------------------------------------- conditions
    def true(self, node: ast.Expr, row: str) -> str:  # noqa: C901 - one case per node kind
        match node:
            case ast.Literal(value=value):
                return "True" if value is True else "False"
            case ast.And(operands=ops):
                return "(" + " and ".join(self.true(op, row) for op in ops) + ")"
            case ast.Or(operands=(ast.IsNull(operand=x, negated=False), ast.Compare(left=y) as compare)) if (
                    x == y and not runtime.widens(x.type, compare.right.type)):
                # `x is null or x <= now`, as visibility says: read x once
                var = self.temp()
                _, b, checks = self.value_pair(ast.Literal(value=0), compare.right, row)
                if isinstance(x, ast.Column):  # its type checked as every column read is
                    column = self.schema.column(x.table, x.name)
                    if not self.trusted:
                        checks.insert(0, f"({type_test(column.type, var, var)} or _bad())")
                    read = self.read(row, column.source)
                else:
                    read = self.value(x, row)
                tests = " and ".join([*checks, f"{var} {compare.op} {b}"])
                return f"(({var} := {read}) is None or {tests})"
            case ast.Or(operands=ops):
                return "(" + " or ".join(self.true(op, row) for op in ops) + ")"
            case ast.Not(operand=op):
                return self.false(op, row)
            case ast.Compare(op=ast.CompareOp.EQ, left=left, right=ast.Literal(value=value) as right) if (
                    self.trusted and value is not None and not runtime.widens(left.type, right.type)):
                # trusted values: null equals no constant, so equality needs no null test
                return f"({self.value(left, row)} == {self.constant(value)})"
            case ast.Compare(op=op, left=left, right=right):
                a, b, checks = self.value_pair(left, right, row)
                return "(" + " and ".join([*checks, f"{a} {op} {b}"]) + ")"
            case ast.IsNull(operand=op, negated=negated):
                return f"({self.value(op, row)} is {'not ' if negated else ''}None)"
            case ast.In(negated=True):
                return self.membership(node, row, want_in=False)
            case ast.In():
                return self.membership(node, row, want_in=True)
            case ast.TextOp():
                return self.text(node, row, want=True)
            case ast.SetOp(op=op, left=left, right=right):
                a, b = self.true(left, row), self.true(right, row)
                if op == ast.SetOpKind.UNION:
                    return f"({a} or {b})"
                if op == ast.SetOpKind.INTERSECT:
                    return f"({a} and {b})"
                return f"({a} and not {b})"
            case ast.SegmentRef(name=name):
                body = self.program.segments[name].body
                return self.once(("segment", name), "T", {"T": lambda: self.true(body, "c")})
            case ast.AttributeRef(name=name):
                return self.attribute(name, "T")
            case ast.Aggregate(func=ast.AggFunc.ANY | ast.AggFunc.NONE):
                return self.value(node, row)
        return f"({self.value(node, row)} is True)"

    def false(self, node: ast.Expr, row: str) -> str:
        match node:
            case ast.Literal(value=value):
                return "True" if value is False else "False"
            case ast.And(operands=ops):
                return "(" + " or ".join(self.false(op, row) for op in ops) + ")"
            case ast.Or(operands=ops):
                return "(" + " and ".join(self.false(op, row) for op in ops) + ")"
            case ast.Not(operand=op):
                return self.true(op, row)
            case ast.Compare(op=op):
                return self.true(ast.Compare(op=runtime.NEGATED[op], left=node.left, right=node.right), row)
            case ast.IsNull(operand=op, negated=negated):
                return self.true(ast.IsNull(operand=op, negated=not negated), row)
            case ast.In(negated=negated):
                return self.membership(node, row, want_in=negated)
            case ast.TextOp():
                return self.text(node, row, want=False)
            case ast.SetOp() | ast.SegmentRef() | ast.Aggregate(func=ast.AggFunc.ANY | ast.AggFunc.NONE):
                return f"(not {self.true(node, row)})"
            case ast.AttributeRef(name=name):
                return self.attribute(name, "F")
        return f"({self.value(node, row)} is False)"

    def window(self, duration: ast.Duration) -> str:
        if duration not in self.windows:
            self.windows.append(duration)
        return f"K[{self.windows.index(duration)}]"

    def attribute(self, name: str, kind: str) -> str:
        body = self.program.attributes[name].body
        return self.once(("attribute", name), kind, {"T": lambda: self.true(body, "c"),
                                                    "F": lambda: self.false(body, "c"),
                                                    "V": lambda: self.value(body, "c")})

    def membership(self, node: ast.In, row: str, want_in: bool) -> str:
        element = t.element_of(node.haystack.type)
        widen = runtime.widens(node.needle.type, element)
        if isinstance(node.needle, ast.Literal) and not widen:
            needle, checks = self.value(node.needle, row), []
        else:
            needle, check = self.present(node.needle, row, f"_ts({self.value(node.needle, row)})" if widen else None)
            checks = [check]
        test = "in" if want_in else "not in"
        if isinstance(node.haystack, ast.ListLiteral):
            items = [i.value if isinstance(i, ast.Literal) else None for i in node.haystack.items]
            if all(isinstance(i, ast.Literal) for i in node.haystack.items):
                converted = [values.as_timestamp(i) if widen else i for i in items]
                return "(" + " and ".join([*checks, f"{needle} {test} {self.constant(frozenset(converted))}"]) + ")"
        hay, check = self.present(node.haystack, row, f"[_ts(x) for x in {self.value(node.haystack, row)}]"
                                  if widen else None)
        return "(" + " and ".join([*checks, f"{check} and {needle} {test} {hay}"]) + ")"

    def text(self, node: ast.TextOp, row: str, want: bool) -> str:
        a, checks = self.present(node.left, row)
        if node.op == ast.TextOpKind.MATCHES:
            pattern = self.constant(re.compile(node.right.value, runtime.REGEX_FLAGS))
            test = f"{pattern}.search({a}) is not None"
        else:
            b, right = self.present(node.right, row)
            test = f"{b} in {a}" if node.op == ast.TextOpKind.CONTAINS else f"{a}.startswith({b})"
            checks = f"{checks} and {right}"
        return f"({checks} and {'' if want else 'not '}({test}))"

    # -------------------------------------------------------------------- values
    def value(self, node: ast.Expr, row: str) -> str:  # noqa: C901 - one case per node kind
        match node:
            case ast.Literal(value=value):
                return self.constant(value)
            case ast.ListLiteral(items=items):
                return "[" + ", ".join(self.value(i, row) for i in items) + "]"
            case ast.Column():
                return self.column(node, row)
            case ast.Now():
                return "n"
            case ast.WindowStart(duration=duration):
                return self.window(duration)
            case ast.AttributeRef(name=name):
                return self.attribute(name, "V")
            case ast.Arith(op=op, left=left, right=right):
                return self.arith(op, left, right, row)
            case ast.Negate(operand=op):
                var = self.temp()
                return f"(None if ({var} := {self.value(op, row)}) is None else -{var})"
            case ast.Call(name=name, args=args):
                return self.call(name, args, row)
            case ast.Aggregate() if row == "c":
                return self.once(("aggregate", node, node.type), "V", {"V": lambda: self.aggregate(node, row)})
            case ast.Aggregate():
                return self.aggregate(node, row)
            case ast.Ntile(value=value, among=among):
                id_source = self.schema.column("customers", "id").source
                return self.once(("ntile", node), "V", {"V": lambda: self.folded_value(node, lambda: (
                    f"_tile(P, {self.constant(node)}, {self.value(value, 'c')}, {self.true(among, 'c')}, "
                    f"{self.read('c', id_source)})"))})
        if node.type == t.BOOL:
            return f"(True if {self.true(node, row)} else (False if {self.false(node, row)} else None))"
        raise InternalError(f"the memory backend cannot evaluate {type(node).__name__}", node.span)

    def arith(self, op: ast.ArithOp, left: ast.Expr, right: ast.Expr, row: str) -> str:
        a, b = self.value(left, row), self.value(right, row)
        if right.type == t.DURATION:
            sign = 1 if op == ast.ArithOp.ADD else -1
            return f"_shift({a}, {b}, {sign})"
        if op == ast.ArithOp.DIV:
            return f"_div({a}, {b})"
        if op == ast.ArithOp.MOD:
            return f"_mod({a}, {b})"
        x, y = self.temp(), self.temp()
        return f"(None if ({x} := {a}) is None or ({y} := {b}) is None else {x} {op} {y})"

    def call(self, name: str, args: tuple[ast.Expr, ...], row: str) -> str:
        builtin = BUILTINS[name]
        codes = [self.true(a, row) if builtin.condition and i == 0 else self.value(a, row)
                 for i, a in enumerate(args)]
        if builtin.inline is None:
            return f"_fn_{name}({', '.join(['n', *codes] if builtin.needs_now else codes)})"
        if callable(builtin.inline):
            return builtin.inline(codes, self.temp)
        return builtin.inline.format(*codes, t=self.temp(), now="n")

    def aggregate(self, node: ast.Aggregate, row: str) -> str:
        if row == "c":
            return self.folded_value(node, lambda: aggregate_code(self, node, row))
        return aggregate_code(self, node, row)

__all__ = ["MemoryBackend", "MemorySegment", "attribute_values", "compile_values", "memory", "ranking_inputs"]
