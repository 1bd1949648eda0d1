"""The batch engine with DuckDB folding the rows: every customer-level aggregate and ranking in one query.

Turning a row into Python values costs more than evaluating a rule on it (`memory_batches`):
at 200,000 customers the rows the demo rules read are 2.7 million. Yet what the generated
code needs of a customer's rows is only the value of each customer-level aggregate
(`count(orders where ...)`, `top(...)`) and of each ranking (`ntile`, `score`). The data
set's DuckDB computes exactly those, where the rows are, with the queries every SQL engine
runs (`sql.planner.values_select`: the same compiled aggregates, windows, visibility and
existence). The generated code then evaluates everything above them per customer, a
customer being one tuple of its own fields read and those values (`ColumnReads.folded_value`).

- A ranking's population is the whole base: folded, it needs no first pass over the data.
- Who exists at `now` is the query's population; the code does not test it again.
- A job folds only when DuckDB's dialect compiles every leaf and each has a value Python
  reads as the memory engine holds it (`FOLDABLE`); else `folded_job` gives None and the
  engine reads the rows itself (`memory_batches`), as it still does when asked to
  (`CustomerChunks(fold=False)`): the differential tests compare both.
- The query runs once, in this process: DuckDB folds on every core. Partitions in worker
  processes would each fold the whole base again, since a ranking needs all of it (measured
  at 200,000 customers: 3.2 s in two workers, 2.6 s in one process).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import compress

from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.backends.memory import compile_values
from crmrules.backends.sql.dialects import DIALECTS
from crmrules.backends.sql.planner import values_select
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext
from crmrules.errors import CrmRulesError

# the value types DuckDB returns as the memory engine holds them, alone or in a list (`distinct`): decimals
# as their exact text (see column_reads), lists sorted
FOLDABLE = frozenset({t.BOOL, t.INT, t.DECIMAL, t.STRING, t.DATE, t.TIMESTAMP})


class FoldedJob:
    """The asked bodies (`kind` "T": each one's members; "V": (id, values) pairs) over the folded query."""

    def __init__(self, query: exp.Select, compute: Callable, kind: str, width: int, ctx: EvaluationContext):
        self.query, self.compute, self.kind, self.width, self.ctx = query, compute, kind, width, ctx

    def run(self, connection, chunk_size: int):
        """Every existing customer's results, fetched `chunk_size` at a time (all the engine holds of the
        data at once), and (chunks, largest chunk, customers fetched)."""
        compute, ctx, kind = self.compute, self.ctx, self.kind
        found: list = [[] for _ in range(self.width)] if kind == "T" else []
        chunks = largest = total = 0
        cursor = connection.cursor()
        try:
            cursor.execute(self.query.sql(dialect="duckdb"))
            while people := cursor.fetchmany(chunk_size):
                chunks, largest, total = chunks + 1, max(largest, len(people)), total + len(people)
                rows = [compute(person, ctx) for person in people]
                keys = [str(person[0]) for person in people]
                if kind == "V":
                    found.extend(zip(keys, rows))
                    continue
                for index, column in enumerate(zip(*rows)):  # one tuple per segment: the loop runs in C
                    found[index].extend(compress(keys, column))
        finally:
            cursor.close()
        return found, (chunks, largest, {"customers": total})


def folded_job(program: Program, bodies: list[ast.Expr], kind: str, ctx: EvaluationContext) -> FoldedJob | None:
    """The job computing `bodies` for every existing customer from the folded query, or None when some
    customer-level aggregate or ranking they read cannot be folded (see the module's docstring)."""
    def codes(generator) -> list[str]:
        return [generator.true(b, "c") if kind == "T" else generator.value(b, "c") for b in bodies]

    leaves: dict[ast.Expr, None] = {}
    reads = recorded(program, codes, leaves)
    if set(reads) - {"customers"} or any(_scalar(node.type) not in FOLDABLE for node in leaves):
        return None  # a row read outside the leaves, or a leaf Python would not read as the engine holds it
    schema = program.schema
    by_source = {c.source: (name, c) for name, c in schema.table("customers").columns.items()}
    id_source = schema.column("customers", "id").source
    fields = sorted(reads.get("customers", set()) - {id_source})
    columns = [(f"f{i}", ast.Column(table="customers", name=by_source[source][0], type=by_source[source][1].type))
               for i, source in enumerate(fields)]
    columns += [(f"f{len(fields) + i}", node) for i, node in enumerate(leaves)]
    try:
        inner = values_select(program, columns, DIALECTS["duckdb"](), ctx)
    except CrmRulesError:
        return None  # something DuckDB's SQL cannot say: the engine reads the rows itself
    # decimals as their exact text: Python makes them Decimals faster than DuckDB does, and only when read
    selected = [exp.column("customer_id", "q")]
    selected += [exp.cast(exp.column(name, "q"), "VARCHAR").as_(name) if node.type == t.DECIMAL
                 else exp.column(name, "q") for name, node in columns]
    query = exp.select(*selected).from_(inner.subquery("q"))
    keys: list = [id_source, *fields, *(("folded", i) for i in range(len(leaves)))]
    positions = {"customers": {key: i for i, key in enumerate(keys)}}
    folded = {node: ("folded", i) for i, node in enumerate(leaves)}
    compute = compile_values(program, codes, positions, rows_visible=True, folded=folded)
    return FoldedJob(query, compute, kind, len(bodies), ctx)


def recorded(program: Program, codes: Callable, leaves: dict | None = None) -> dict[str, set[str]]:
    """The fields of each table the code of `codes` reads: every read goes through the generator's `read`
    (`column_reads.ColumnReads`). Given `leaves`, each customer-level aggregate and ranking is noted there
    instead of compiled, so the reads are those outside them."""
    reads: dict[str, set[str]] = {}

    def recording(generator) -> list[str]:
        plain = generator.read

        def read(row: str, key: str) -> str:
            reads.setdefault(generator.row_tables.get(row, "customers"), set()).add(key)
            return plain(row, key)

        def folded_value(node: ast.Expr, build) -> str:
            leaves.setdefault(node)
            return "None"  # never run: only what it reads matters

        generator.read = read
        if leaves is not None:
            generator.folded_value = folded_value
        return codes(generator)

    compile_values(program, recording, rows_visible=True)
    return reads


def _scalar(value_type: t.Type) -> t.Type:
    return t.element_of(value_type) if value_type.is_list else value_type
