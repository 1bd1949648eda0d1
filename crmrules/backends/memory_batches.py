"""The memory engine on a data set of any size: customers streamed in chunks, evaluated on every core.

A data directory (or file) is a private DuckDB of views over the files (`sql.datadir`).
For the in-memory engines `dispatch.open_data` yields a `CustomerChunks` over it instead
of a list of every customer: iterating it streams prepared customer dicts, a chunk at a
time, so memory does not grow with the customer base.

`members` and `values` on it (`MemoryBackend` hands them here) go further:

- one generated function per run computes every asked segment (or attribute) and the two
  conditions of existence for a customer, sharing the visible rows and every memoised
  attribute between them (`memory.compile_values`);
- only the columns that function reads are fetched: the code generator's every field read
  goes through `ColumnReads.read`, which is recorded while compiling;
- the customers are split by a hash of their id into partitions; each partition is one query
  (a customer's rows of every table in one stream, sorted by id) fetched in batches of rows
  and cut into chunks of `chunk_size` customers; DuckDB values already have the engine's
  Python types, so no `prepare_customer` pass is needed;
- rankings (`ntile`, `score`) need the whole base: a first pass over the partitions keeps
  only the ranked `(value, id)` of each ranking, `runtime.rank` cuts them, and the second
  pass evaluates with that population;
- with more than one core, partitions run in a pool of forked processes: each opens its
  own DuckDB with the same view definitions (the files are read in place again, never
  copied or pickled) and sends back only ids, ranked values or attribute values.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import groupby

from crmrules import ast
from crmrules.backends import runtime
from crmrules.backends.customer_data import NESTED
from crmrules.backends.memory import compile_values
from crmrules.backends.sql.datadir import LoadedData, quote
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext
from crmrules.schema import Schema

CHUNK_SIZE = 2000  # customers evaluated together: a chunk's dicts are all the engine holds at once
FETCH_ROWS = 20_000  # rows of the stream fetched from DuckDB at a time
PARTITION_CUSTOMERS = 250_000  # customers per partition query at most (each partition reads the files once)
POOL_FROM = 20_000  # fewer customers than this run in this process: starting workers would cost more


@dataclass
class CustomerChunks:
    """The customers of a loaded data set for the in-memory engines, streamed in chunks of prepared dicts.

    Iterating gives every customer with every column, as `sql.transfer.customers` once listed them;
    `MemoryBackend.members` and `values` evaluate it chunk by chunk (`evaluate`), reading only what
    the rules read. `workers`: processes evaluating partitions (default: one per core; 1 keeps
    everything in this process)."""

    loaded: LoadedData
    schema: Schema
    chunk_size: int = CHUNK_SIZE
    workers: int | None = None
    # what the last `evaluate` did: partitions, passes (2 with rankings), chunks and the largest of the last
    # pass, whether a pool of workers ran them
    stats: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[dict]:
        reads = {spec.name: [c.source for c in spec.columns.values()] for spec in self.schema.tables.values()}
        source = _Source(self.schema, reads, self.chunk_size)
        for chunk in source.chunks(self.loaded.connection, 0, 1):
            yield from chunk

    def customer_count(self) -> int:
        """How many distinct customer ids the data holds (customers, and owners of orders and events)."""
        ids = _id_union(self.schema)
        return self.loaded.connection.execute(f"SELECT count(*) FROM ({ids})").fetchone()[0]

    def members(self, program: Program, segments: Sequence[str], ctx: EvaluationContext) -> dict[str, list[str]]:
        """The sorted ids of each segment's members among the customers that exist at `ctx.instant`."""
        segments = list(segments)
        found: dict[str, list[str]] = {name: [] for name in segments}
        for part in self.evaluate(program, [program.segments[name].body for name in segments], "T", ctx):
            for name, ids in zip(segments, part):
                found[name].extend(ids)
        return {name: sorted(ids) for name, ids in found.items()}

    def values(self, program: Program, names: Sequence[str], ctx: EvaluationContext) -> dict[str, dict]:
        """The named attributes of every existing customer: {id: {name: value}}."""
        names = list(names)
        found: dict[str, dict] = {}
        for part in self.evaluate(program, [program.attributes[name].body for name in names], "V", ctx):
            found.update((key, dict(zip(names, computed))) for key, computed in part)
        return dict(sorted(found.items()))

    def evaluate(self, program: Program, bodies: list[ast.Expr], kind: str, ctx: EvaluationContext) -> Iterator:
        """Each partition's results: per body its members' ids (`kind` "T"), or (id, values) pairs ("V")."""
        total = self.customer_count()
        workers = self.workers or os.cpu_count() or 1
        if (total < POOL_FROM and self.workers is None) or not _reopenable(self.loaded.connection):
            workers = 1
        partitions = workers * max(1, -(-total // (PARTITION_CUSTOMERS * workers)))
        self.stats = {"partitions": partitions, "passes": 1, "pool": workers > 1}
        if ctx.population is None and runtime.ntiles(program):
            job = _Job(program, self.schema, self.chunk_size, ctx, None)
            self.stats.update(chunks=0, largest_chunk=0)
            ranked = [row for part in self._run(job, partitions, workers) for row in part]
            ctx = ctx.with_population(_population(program, ranked, ctx))
            self.stats["passes"] = 2
        # chunks and the largest of them: those of the evaluating pass
        self.stats.update(chunks=0, largest_chunk=0)
        yield from self._run(_Job(program, self.schema, self.chunk_size, ctx, (bodies, kind)), partitions, workers)

    def _run(self, job: _Job, partitions: int, workers: int) -> Iterator:
        if workers == 1:
            for partition in range(partitions):
                with _collector_paused():
                    result, stats = job.run(self.loaded.connection, partition, partitions)
                self._count(stats)
                yield result
            return
        global _JOB
        _JOB = (job, _definitions(self.loaded.connection), max(1, (os.cpu_count() or 1) // workers))
        # forked: the workers inherit the compiled job and the view definitions, nothing is pickled to them
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for result, stats in pool.imap_unordered(_in_worker, [(p, partitions) for p in range(partitions)]):
                    self._count(stats)
                    yield result
        finally:
            _JOB = None

    def _count(self, stats: tuple[int, int]) -> None:
        self.stats["chunks"] += stats[0]
        self.stats["largest_chunk"] = max(self.stats["largest_chunk"], stats[1])


_JOB = None  # (job, view definitions, DuckDB threads) for the forked workers


def _in_worker(task: tuple[int, int]):
    from crmrules.backends.resources import open_duckdb

    job, definitions, threads = _JOB
    gc.disable()  # see _collector_paused; a worker's objects all go when the task returns
    # a DuckDB of this worker's own with the parent's views over the same files (their checks already done)
    connection, spill = open_duckdb()
    try:
        connection.execute(f"SET threads = {int(threads)}")
        for statement in definitions:
            connection.execute(statement)
        return job.run(connection, *task)
    finally:
        connection.close()
        spill.cleanup()


@contextmanager
def _collector_paused():
    """Python's cycle collector off while chunks are built: their many dicts hold no cycles, yet each few
    hundred new ones would start a collection scanning them all again (a third of the time of building)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _reopenable(connection) -> bool:
    """Whether a worker can open the same data again: views over files and empty tables only (data held in
    the connection's own tables, as the tests load customer dicts, stays in this process)."""
    held = connection.execute("SELECT count(*) FROM duckdb_tables() WHERE estimated_size > 0").fetchone()[0]
    return held == 0


def _definitions(connection) -> list[str]:
    """The statements that made the loaded tables: empty tables first, then the views over the files."""
    tables = [row[0] for row in connection.execute("SELECT sql FROM duckdb_tables() ORDER BY table_name").fetchall()]
    views = [row[0] for row in connection.execute(
        "SELECT sql FROM duckdb_views() WHERE NOT internal ORDER BY view_name").fetchall()]
    return tables + views


class _Job:
    """One pass over the customers: the ranked values of every `ntile` (`asked` None), or the asked bodies."""

    def __init__(self, program: Program, schema: Schema, chunk_size: int, ctx: EvaluationContext, asked):
        self.schema, self.ctx, self.asked = schema, ctx, asked
        self.id_of = schema.column("customers", "id").source
        registered, seen = runtime.existence(schema)
        self.conditions = [c for c in (registered, seen) if c is not None]
        self.nodes = runtime.ntiles(program) if asked is None else []
        reads: dict[str, set[str]] = {}
        self.compute = _compiled(program, self._codes(asked), reads)
        self.source = _Source(schema, _columns(schema, reads), chunk_size)

    def _codes(self, asked) -> Callable:
        conditions = self.conditions

        def codes(generator) -> list[str]:
            found = [generator.true(c, "c") for c in conditions]
            if asked is None:
                for node in self.nodes:
                    found += [generator.true(node.among, "c"), generator.value(node.value, "c")]
                return found
            bodies, kind = asked
            return found + [generator.true(b, "c") if kind == "T" else generator.value(b, "c") for b in bodies]
        return codes

    def run(self, connection, partition: int, partitions: int):
        """This pass's result for one partition, and (chunks, largest chunk)."""
        size = len(self.conditions)
        compute, ctx, id_of = self.compute, self.ctx, self.id_of
        kind = self.asked[1] if self.asked else None
        width = len(self.asked[0]) if self.asked else len(self.nodes)
        found: list = [[] for _ in range(width)] if kind == "T" else []
        chunks = largest = 0
        for chunk in self.source.chunks(connection, partition, partitions):
            chunks, largest = chunks + 1, max(largest, len(chunk))
            computed = {id(person): compute(person, ctx) for person in chunk}
            for person in runtime.existing(self.schema, chunk, ctx, _precomputed(self.conditions, computed)):
                row = computed[id(person)]
                key = str(person[id_of])
                if kind == "T":
                    for index in range(width):
                        if row[size + index]:
                            found[index].append(key)
                elif kind == "V":
                    found.append((key, row[size:]))
                else:
                    pairs = [(row[size + 2 * i] and row[size + 2 * i + 1] is not None, row[size + 2 * i + 1])
                             for i in range(width)]
                    if any(inside for inside, _ in pairs):
                        found.append(_Ranked(key, pairs))
        return found, (chunks, largest)


def _precomputed(conditions: list[ast.Expr], computed: dict[int, tuple]) -> runtime.Decider:
    """`runtime.existing`'s decider reading the conditions of existence from each customer's computed row."""
    def decide(_schema, condition: ast.Expr, _ctx):
        index = conditions.index(condition)
        return lambda person: computed[id(person)][index]
    return decide


class _Ranked:
    """A ranked customer of the first pass: its id and, per `ntile`, (in the ranking, value)."""

    __slots__ = ("inputs", "key")

    def __init__(self, key: str, inputs: list[tuple[bool, object]]):
        self.key, self.inputs = key, inputs

    def __getitem__(self, _column: str) -> str:  # `runtime.rank` reads the id by the id column's name
        return self.key


def _population(program: Program, ranked: list[_Ranked], ctx: EvaluationContext) -> runtime.Population:
    nodes = runtime.ntiles(program)

    def inputs(node: ast.Ntile):
        index = nodes.index(node)
        return lambda person: person.inputs[index]

    return runtime.rank(program, ranked, ctx, inputs)


def _compiled(program: Program, codes: Callable, reads: dict[str, set[str]]) -> Callable:
    """`compile_values` of `codes`, noting into `reads` every (table, field) the generated code reads:
    each read goes through the generator's `read` (`column_reads.ColumnReads`)."""
    def recording(generator) -> list[str]:
        plain = generator.read

        def read(row: str, key: str) -> str:
            reads.setdefault(generator.row_tables.get(row, "customers"), set()).add(key)
            return plain(row, key)

        generator.read = read
        return codes(generator)

    return compile_values(program, recording)


def _columns(schema: Schema, reads: dict[str, set[str]]) -> dict[str, list[str]]:
    """The source columns to fetch of each table the code reads (its nested rows' keys are not columns)."""
    columns = {}
    for spec in schema.tables.values():
        read = reads.get(spec.name)
        nested = {key for key, _ in NESTED.get(spec.name, ())}
        if spec.name == "customers":
            read = (read or set()) - nested - {spec.columns["id"].source}
            if not read:
                # a customer row must show it is one (`runtime.existing`): with no field read, fetch them all
                read = {c.source for c in spec.columns.values()} - {spec.columns["id"].source}
        elif read is None:
            continue
        columns[spec.name] = [c.source for c in spec.columns.values() if c.source in read]
    if "order_items" in columns:
        columns.setdefault("orders", [])
        order_id = schema.column("orders", "id").source
        if order_id not in columns["orders"]:
            columns["orders"].append(order_id)  # what items are matched to their order by
    return columns


def _key(schema: Schema, table: str) -> str:
    return schema.column(table, "id" if table == "customers" else "customer_id").source


def _id_union(schema: Schema) -> str:
    parts = [f"SELECT {quote(_key(schema, t))} AS k FROM {quote(schema.table(t).source)}"
             for t in ("customers", "orders", "events")]
    return f"SELECT DISTINCT k FROM ({' UNION ALL '.join(parts)}) WHERE k IS NOT NULL"


class _Source:
    """One partition's customers in chunks: the partition's ids, then each table's rows sorted by customer
    (one query per table, fetched in batches), cut at every `chunk_size`-th id and nested per customer."""

    def __init__(self, schema: Schema, columns: dict[str, list[str]], chunk_size: int):
        self.schema, self.columns, self.chunk_size = schema, columns, chunk_size
        self.id_of = schema.column("customers", "id").source
        self.order_id = schema.column("orders", "id").source

    def _queries(self) -> dict[str, str]:
        """Each table's query: its customer's id first, then the columns read, sorted by that id."""
        schema, columns = self.schema, self.columns
        partition = "hash({key}) % ? = ?"
        queries = {}
        for table in ("customers", "orders", "events"):
            if table not in columns:
                continue
            key = quote(_key(schema, table))
            selected = ", ".join([key, *(quote(name) for name in columns[table])])
            queries[table] = (f"SELECT {selected} FROM {quote(schema.table(table).source)} "
                              f"WHERE {key} IS NOT NULL AND {partition.format(key=key)} ORDER BY {key}")
        if "order_items" in columns:
            owner, item_order = quote(_key(schema, "orders")), quote(schema.column("order_items", "order_id").source)
            selected = ", ".join(["o.owner", f"r.{item_order}", *(f"r.{quote(n)}" for n in columns["order_items"])])
            # each item once per customer having an order of its order id (as `transfer.customers` nests them)
            queries["order_items"] = (
                f"SELECT {selected} FROM {quote(schema.table('order_items').source)} r JOIN (SELECT DISTINCT "
                f"{owner} AS owner, {quote(self.order_id)} AS oid FROM {quote(schema.table('orders').source)} "
                f"WHERE {owner} IS NOT NULL AND {partition.format(key=owner)}) o "
                f"ON r.{item_order} IS NOT DISTINCT FROM o.oid ORDER BY o.owner")
        return queries

    def chunks(self, connection, partition: int, partitions: int) -> Iterator[list[dict]]:
        """The partition's customers as prepared dicts, `chunk_size` at a time, in the order of their ids."""
        ids = connection.execute(f"SELECT k FROM ({_id_union(self.schema)}) WHERE hash(k) % ? = ? ORDER BY k",
                                 [partitions, partition]).fetchall()
        if not ids:
            return
        streams = {}
        try:
            for table, sql in self._queries().items():
                cursor = streams[table] = _Stream(connection.cursor())
                cursor.cursor.execute(sql, [partitions, partition])
            size = self.chunk_size
            for start in range(0, len(ids), size):
                keys = [row[0] for row in ids[start:start + size]]
                yield self._chunk(keys, {table: stream.until(keys[-1]) for table, stream in streams.items()})
        finally:
            for stream in streams.values():
                stream.cursor.close()

    def _chunk(self, keys: list, rows: dict[str, list[tuple]]) -> list[dict]:
        id_of, order_id = self.id_of, self.order_id
        names = [id_of, *self.columns.get("customers", ())]
        people = {row[0]: dict(zip(names, row)) for row in rows.get("customers", ())}
        chunk = [people.get(key) or people.setdefault(key, {id_of: key}) for key in keys]
        items: dict[tuple, list] = {}
        if "order_items" in rows:
            names = self.columns["order_items"]
            for row in rows["order_items"]:
                items.setdefault((row[0], row[1]), []).append(dict(zip(names, row[2:])))
        for table in ("orders", "events"):
            names = [_key(self.schema, table), *self.columns.get(table, ())]
            # the rows come sorted by customer: one list per customer, built by a comprehension (C speed)
            for key, group in groupby(rows.get(table, ()), key=_first):
                records = [dict(zip(names, row)) for row in group]
                if table == "orders" and items:
                    for record in records:
                        record["items"] = items.get((key, record[order_id]), [])
                elif table == "orders" and "order_items" in rows:
                    for record in records:
                        record["items"] = []
                people[key][table] = records
        return chunk


class _Stream:
    """A query's rows sorted by their first column, handed out up to a key at a time."""

    def __init__(self, cursor):
        self.cursor, self.rows, self.start, self.done = cursor, [], 0, False

    def until(self, upper) -> list[tuple]:
        """The next rows whose key is at most `upper`."""
        taken: list[tuple] = []
        while True:
            if self.start >= len(self.rows):
                if self.done:
                    return taken
                self.rows, self.start = self.cursor.fetchmany(FETCH_ROWS), 0
                if not self.rows:
                    self.done = True
                    return taken
            rows = self.rows
            if rows[-1][0] <= upper:
                taken += rows[self.start:] if self.start else rows
                self.start = len(rows)
                continue
            end = bisect_right(rows, upper, lo=self.start, key=_first)
            taken += rows[self.start:end]
            self.start = end
            return taken


def _first(row: tuple):
    return row[0]
