"""The memory engine on a data set of any size: customers streamed in chunks, evaluated on every core.

A data directory (or file) is a private DuckDB of views over the files (`sql.datadir`).
For the in-memory engines `dispatch.open_data` yields a `CustomerChunks` over it instead
of a list of every customer: iterating it streams prepared customer dicts, a chunk at a
time, so memory does not grow with the customer base.

`members` and `values` on it (`MemoryBackend` hands them here) go further. By default the
data set's DuckDB folds each customer's rows into the customer-level aggregates and rankings
the rules read, in one query, and the generated code evaluates the rules over those values
(`memory_folded`). When that query cannot be built, or with `fold=False`, the engine reads the
rows itself:

- one generated function per run computes every asked segment (or attribute) and the
  registration condition for a customer, sharing every memoised attribute between them
  (`memory.compile_values`);
- it is compiled twice: once to learn which columns it reads (every field read goes through
  `ColumnReads.read`), then over tuples of just those columns, read by position, their types
  trusted (DuckDB's views already converted them; decimals come as exact text);
- DuckDB decides what need not reach Python (`memory_pushdown`): who exists (a customer row
  or a visible order or event), rows not visible at `now`, and rows no aggregate can count;
- the customers are split by a hash of their id into one partition per worker; each is one
  sorted query per table (and one of ids) fetched in batches, grouped per customer and cut
  into chunks of `chunk_size` customers;
- rankings (`ntile`, `score`) need the whole base: a first pass over the partitions keeps
  only each ranking's sorted `(value, id)`, `runtime.cut` merges them, and the second pass
  evaluates with that population;
- with more than one core, partitions run in a pool of forked processes: each opens its
  own DuckDB with the same view definitions (the files are read in place again, never
  copied or pickled) and its share of the memory limit, and sends back only ids, ranked
  values or attribute values.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import compress, groupby
from operator import itemgetter

import duckdb
from sqlglot import exp

from crmrules import ast
from crmrules import types as t
from crmrules.backends import memory_pushdown as pushdown
from crmrules.backends import resources, runtime
from crmrules.backends.customer_data import NESTED
from crmrules.backends.memory import compile_values
from crmrules.backends.memory_folded import folded_job, recorded
from crmrules.backends.resources import open_duckdb
from crmrules.backends.sql.datadir import LoadedData
from crmrules.backends.sql.expressions import ROW_ALIAS
from crmrules.backends.sql.runners import engine_error, prepare_duckdb
from crmrules.compiler import visibility
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext
from crmrules.schema import Schema

CHUNK_SIZE = 2000  # customers evaluated together: a chunk's rows are all the engine holds of the data at once
FETCH_ROWS = 20_000  # rows of the stream fetched from DuckDB at a time
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
    # DuckDB computes the customer-level aggregates and rankings when it can (memory_folded); False: the
    # engine reads the rows and computes them itself
    fold: bool = True
    # what the last `evaluate` did: partitions, passes (2 with rankings), chunks and the largest of the last
    # pass, whether a pool of workers ran them, the rows of each table the last pass fetched
    stats: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[dict]:
        source = _Source(self.schema, _columns(self.schema, _every_column(self.schema)), self.chunk_size)
        for chunk, _ in source.chunks(self.loaded.connection, 0, 1):
            yield from source.dicts(chunk)

    def customer_count(self) -> int:
        """How many distinct customer ids the data holds (customers, and owners of orders and events)."""
        query = exp.select(exp.Count(this=exp.Star())).from_(_id_union(self.schema).subquery())
        return self.loaded.connection.execute(_sql(query)).fetchone()[0]

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
        prepare_duckdb(self.loaded.connection)  # the functions compiled conditions may call (memory_pushdown)
        folded = folded_job(program, bodies, kind, ctx) if self.fold and ctx.population is None else None
        if folded is not None:
            # DuckDB computes every aggregate and ranking in one query on every core, and no rows are fetched;
            # partitions in workers would each fold the whole base again (a ranking needs all of it)
            self.stats = {"partitions": 1, "passes": 1, "pool": False, "folded": True,
                          "chunks": 0, "largest_chunk": 0, "fetched": {}}
            with _collector_paused():
                try:
                    result, stats = folded.run(self.loaded.connection, self.chunk_size)
                except duckdb.Error as error:
                    raise engine_error("DuckDB", error) from None
            self._count(stats)
            yield result
            return
        try:
            total = self.customer_count()
        except duckdb.Error as error:
            raise engine_error("DuckDB", error) from None
        workers = self.workers or os.cpu_count() or 1
        if (total < POOL_FROM and self.workers is None) or not _reopenable(self.loaded.connection):
            workers = 1
        # one partition per worker: each reads every file once per pass (hashing every id), so more partitions
        # would read the data more often; DuckDB sorts a partition within its memory limit, spilling the rest
        partitions = workers
        self.stats = {"partitions": partitions, "passes": 1, "pool": workers > 1, "folded": False}
        if ctx.population is None and runtime.ntiles(program):
            job = _Job(program, self.schema, self.chunk_size, ctx, None)
            self.stats.update(chunks=0, largest_chunk=0)
            ranked: dict[ast.Ntile, list[tuple]] = {node: [] for node in job.nodes}
            for part in self._run(job, partitions, workers):
                for node, found in zip(job.nodes, part):
                    ranked[node] += found  # each partition's sorted: `cut` merges the runs
            ctx = ctx.with_population(runtime.cut(ranked, ctx))
            self.stats["passes"] = 2
        # chunks and the largest of them: those of the evaluating pass
        self.stats.update(chunks=0, largest_chunk=0, fetched={})
        yield from self._run(_Job(program, self.schema, self.chunk_size, ctx, (bodies, kind)), partitions, workers)

    def _run(self, job: _Job, partitions: int, workers: int) -> Iterator:
        if workers == 1:
            for partition in range(partitions):
                with _collector_paused():
                    try:
                        result, stats = job.run(self.loaded.connection, partition, partitions)
                    except duckdb.Error as error:
                        raise engine_error("DuckDB", error) from None
                self._count(stats)
                yield result
            return
        global _JOB
        _JOB = (job, _definitions(self.loaded.connection), max(1, (os.cpu_count() or 1) // workers),
                resources.shared(resources.current(), workers))
        # forked: the workers inherit the compiled job and the view definitions, nothing is pickled to them
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for result, stats in pool.imap_unordered(_in_worker, [(p, partitions) for p in range(partitions)]):
                    self._count(stats)
                    yield result
        except duckdb.Error as error:  # raised in a worker, given back here: the user's to fix, as in one process
            raise engine_error("DuckDB", error) from None
        finally:
            _JOB = None

    def _count(self, stats: tuple[int, int, dict[str, int]]) -> None:
        self.stats["chunks"] += stats[0]
        self.stats["largest_chunk"] = max(self.stats["largest_chunk"], stats[1])
        fetched = self.stats.setdefault("fetched", {})
        for table, rows in stats[2].items():
            fetched[table] = fetched.get(table, 0) + rows


_JOB = None  # (job, view definitions, DuckDB threads) for the forked workers


def _in_worker(task: tuple[int, int]):
    job, definitions, threads, share = _JOB
    gc.disable()  # see _collector_paused; a worker's objects all go when the task returns
    # a DuckDB of this worker's own with the parent's views over the same files (their checks already done),
    # its share of the memory limit
    connection, spill = open_duckdb(resources=share)
    try:
        prepare_duckdb(connection)
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
        # who exists: registered by now (decided here), and a customer row or a visible row (DuckDB says);
        # the rows fetched are only the visible ones, so the generated code does not test them again
        registered = visibility.registered(schema)
        self.conditions = [registered] if registered is not None else []
        self.nodes = runtime.ntiles(program) if asked is None else []
        codes = self._codes(asked)
        # compiled twice: once to learn what the code reads, then over tuples of just those columns
        reads = recorded(program, codes)
        roots = asked[0] if asked is not None else self.nodes
        seen = {table: pushdown.seen(program, ctx, table) for table in ("orders", "events")}
        self.source = _Source(schema, _columns(schema, reads), chunk_size,
                              pushdown.row_filters(program, roots, ctx), seen)
        self.compute = compile_values(program, codes, self.source.positions, rows_visible=True)

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
        registered = size == 1  # the one condition: registered by now
        compute, ctx = self.compute, self.ctx
        kind = self.asked[1] if self.asked else None
        width = len(self.asked[0]) if self.asked else len(self.nodes)
        found: list = [[] for _ in range(width)] if kind != "V" else []
        chunks = largest = 0
        fetched: dict[str, int] = {}
        for chunk, exists in self.source.chunks(connection, partition, partitions, fetched):
            chunks, largest = chunks + 1, max(largest, len(chunk))
            # who exists at now (runtime.existing): a customer row or a visible row, and registered by then
            people = list(compress(chunk, exists))
            rows = [compute(person, ctx) for person in people]
            keys = [str(person[0]) for person in people]
            if registered:
                keys, rows = list(compress(keys, [row[0] for row in rows])), [row for row in rows if row[0]]
            if not rows:
                continue
            if kind == "V":
                found.extend((key, row[size:]) for key, row in zip(keys, rows))
                continue
            columns = list(zip(*rows))  # one tuple per computed value: the loops below run in C
            if kind == "T":
                for index in range(width):
                    found[index].extend(compress(keys, columns[size + index]))
                continue
            for index in range(width):  # per ntile, the (value, id) of those it ranks
                ranked, value = columns[size + 2 * index], columns[size + 2 * index + 1]
                found[index].extend((v, key) for v, key, inside in zip(value, keys, ranked) if inside and v is not None)
        if kind is None:
            for ranked in found:
                ranked.sort()  # here, on this core: the population merges sorted runs
        return found, (chunks, largest, fetched)


def _columns(schema: Schema, reads: dict[str, set[str]]) -> dict[str, list[str]]:
    """The source columns to fetch of each table the code reads (its nested rows' keys are not columns;
    the customer's id is always its first field)."""
    columns = {}
    # a table whose list is read (`count(events)` reads only how many) is fetched, if only its key
    listed = {child for parent, nested in NESTED.items() for key, child in nested if key in reads.get(parent, ())}
    for spec in schema.tables.values():
        read = reads.get(spec.name, set())
        if spec.name == "customers":
            read = read - {spec.columns["id"].source}
        elif spec.name not in reads and spec.name not in listed:
            continue
        columns[spec.name] = [c.source for c in spec.columns.values() if c.source in read]
    if "order_items" in columns:
        columns.setdefault("orders", [])
        order_id = schema.column("orders", "id").source
        if order_id not in columns["orders"]:
            columns["orders"].append(order_id)  # what items are matched to their order by
    return columns


def _every_column(schema: Schema) -> dict[str, set[str]]:
    return {spec.name: {c.source for c in spec.columns.values()} for spec in schema.tables.values()}


def _key(schema: Schema, table: str) -> str:
    return schema.column(table, "id" if table == "customers" else "customer_id").source


def _column(name: str, table: str | None = None) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True), table=table and exp.to_identifier(table))


def _table(schema: Schema, table: str, alias: str | None = None) -> exp.Table:
    return exp.Table(this=exp.to_identifier(schema.table(table).source, quoted=True),
                     alias=alias and exp.TableAlias(this=exp.to_identifier(alias)))


def _sql(tree: exp.Expression) -> str:
    return tree.sql(dialect="duckdb")


def _id_union(schema: Schema) -> exp.Select:
    """The ids of every customer: of a customer row, or owning orders or events."""
    parts = [exp.select(_column(_key(schema, t)).as_("k")).from_(_table(schema, t))
             for t in ("customers", "orders", "events")]
    union = exp.union(*parts, distinct=False)
    return exp.select("k").distinct().from_(union.subquery()).where(exp.column("k").is_(exp.null()).not_())


def _in_partition(key: exp.Expression) -> exp.Expression:
    """`hash(key) % ? = ?`: the partition's customers (partition count and number as parameters)."""
    return exp.EQ(this=exp.Mod(this=exp.func("hash", key), expression=exp.Placeholder()),
                  expression=exp.Placeholder())


class _Source:
    """One partition's customers in chunks: the partition's ids, then each table's rows sorted by customer
    (one query per table, fetched in batches), cut at every `chunk_size`-th id and nested per customer.

    A customer is a tuple: its id, the customer columns read, then its list of orders and of events (when
    read); an order is the fetched row (customer id, columns read) and, when items are read, their list;
    an item row starts with its owner and order id. `positions` says where each field is (see column_reads)."""

    def __init__(self, schema: Schema, columns: dict[str, list[str]], chunk_size: int,
                 filters: dict[str, exp.Expression] | None = None, seen: dict[str, exp.Expression] | None = None):
        self.schema, self.columns, self.chunk_size = schema, columns, chunk_size
        # per table, the condition a fetched row must meet (memory_pushdown); per table, the condition of
        # a visible row (None: every customer is given, existing or not)
        self.filters, self.seen = filters or {}, seen
        self.order_id = schema.column("orders", "id").source
        self.lists = [(key, table) for key, table in NESTED["customers"] if table in columns]
        self.items = "order_items" in columns
        customer = [_key(schema, "customers"), *columns["customers"], *(key for key, _ in self.lists)]
        self.positions = {"customers": {name: i for i, name in enumerate(customer)}}
        for table in ("orders", "events"):
            if table in columns:
                fields = [_key(schema, table), *columns[table], *(["items"] if table == "orders" and self.items else [])]
                self.positions[table] = {name: i for i, name in enumerate(fields)}
        if self.items:
            self.positions["order_items"] = {name: i + 2 for i, name in enumerate(columns["order_items"])}
        self.blank = (None,) * len(columns["customers"])
        self.decimals = {spec.name: {c.source for c in spec.columns.values() if c.type == t.DECIMAL}
                         for spec in schema.tables.values()}

    def _queries(self) -> dict[str, str]:
        """Each table's query: its customer's id first, then the columns read, sorted by that id."""
        schema, columns = self.schema, self.columns
        queries = {}
        for table in ("customers", "orders", "events"):
            if table not in columns:
                continue
            key = _column(_key(schema, table))
            query = (exp.select(key, *(self._fetched(table, name) for name in columns[table]))
                     .from_(_table(schema, table, ROW_ALIAS[table]))
                     .where(self._rows(table, key)).order_by(key))
            queries[table] = _sql(query)
        if self.items:
            owner = _column(_key(schema, "orders"))
            # each item once per customer having an order of its order id (as `transfer.customers` nests them)
            owners = (exp.select(owner.as_("owner"), _column(self.order_id).as_("oid")).distinct()
                      .from_(_table(schema, "orders", ROW_ALIAS["orders"]))
                      .where(self._rows("orders", owner)))
            item_order = _column(schema.column("order_items", "order_id").source, "r")
            query = (exp.select(exp.column("owner", "o"), item_order,
                                *(self._fetched("order_items", name, "r") for name in columns["order_items"]))
                     .from_(_table(schema, "order_items", "r"))
                     .join(owners.subquery("o"), on=exp.NullSafeEQ(this=item_order, expression=exp.column("oid", "o")))
                     .order_by(exp.column("owner", "o"), item_order.copy()))
            queries["order_items"] = _sql(query)
        return queries

    def _fetched(self, table: str, name: str, alias: str | None = None) -> exp.Expression:
        """A column as fetched: decimals as their exact text (see column_reads)."""
        column = _column(name, alias)
        return exp.cast(column, "VARCHAR").as_(name) if name in self.decimals[table] else column

    def _rows(self, table: str, key: exp.Column) -> exp.Expression:
        """The rows of `table` to fetch for the partition: a customer's, of the partition, visible at now
        (given `seen`: the generated code then need not test it) and meeting the table's filter if it has one."""
        visible = [self.seen[table].copy()] if self.seen is not None and table in self.seen else []
        pushed = [exp.paren(self.filters[table], copy=True)] if table in self.filters else []
        return exp.and_(key.is_(exp.null()).not_(), _in_partition(key), *visible, *pushed)

    def _ids(self) -> exp.Select:
        """The partition's ids in order, each with whether the customer exists at now but for registration:
        it has a customer row, or a visible order or event (every id when `seen` is None)."""
        schema = self.schema
        if self.seen is None:
            flagged = exp.select("k", exp.true().as_("e")).from_(_id_union(schema).subquery())
        else:
            parts = [exp.select(_column(_key(schema, "customers")).as_("k"), exp.true().as_("v"))
                     .from_(_table(schema, "customers"))]
            parts += [exp.select(_column(_key(schema, t)).as_("k"), self.seen[t].copy().as_("v"))
                      .from_(_table(schema, t, ROW_ALIAS[t])) for t in ("orders", "events")]
            flagged = (exp.select("k", exp.func("bool_or", exp.column("v")).as_("e"))
                       .from_(exp.union(*parts, distinct=False).subquery())
                       .where(exp.column("k").is_(exp.null()).not_()).group_by("k"))
        return (exp.select("k", "e").from_(flagged.subquery())
                .where(_in_partition(exp.column("k"))).order_by("k"))

    def chunks(self, connection, partition: int, partitions: int,
               fetched: dict[str, int] | None = None) -> Iterator[tuple[list[tuple], list[bool]]]:
        """The partition's customers as tuples, `chunk_size` at a time in the order of their ids, and for
        each whether it exists at now but for registration (see `_ids`)."""
        # the ids, like every table's rows, come a batch at a time: nothing here grows with the partition
        ids = connection.cursor()
        streams = {}
        try:
            ids.execute(_sql(self._ids()), [partitions, partition])
            for table, sql in self._queries().items():
                cursor = streams[table] = _Stream(connection.cursor())
                cursor.cursor.execute(sql, [partitions, partition])
            while batch := ids.fetchmany(self.chunk_size):
                keys = [row[0] for row in batch]
                rows = {table: stream.until(keys[-1]) for table, stream in streams.items()}
                if fetched is not None:  # how many rows of each table reached Python (memory_pushdown)
                    for table, taken in rows.items():
                        fetched[table] = fetched.get(table, 0) + len(taken)
                yield self._chunk(keys, rows), [row[1] for row in batch]
        finally:
            ids.close()
            for stream in streams.values():
                stream.cursor.close()

    def _chunk(self, keys: list, rows: dict[str, list[tuple]]) -> list[tuple]:
        people = {row[0]: row for row in rows.get("customers", ())}
        # per nested list (orders, events), each customer's, in the order of `keys`; the rows come sorted by
        # customer (items by customer and order), so grouping them is C's work
        columns = []
        for _, table in self.lists:
            if table == "orders" and self.items:
                items = {pair: list(group) for pair, group in groupby(rows["order_items"], key=_owner_and_order)}
                at = self.positions["orders"][self.order_id]
                by_owner = {owner: [row + (items.get((owner, row[at]), ()),) for row in group]
                            for owner, group in groupby(rows[table], key=_first)}
            else:
                by_owner = {owner: list(group) for owner, group in groupby(rows[table], key=_first)}
            columns.append([by_owner.get(key, ()) for key in keys])
        blank = self.blank
        bases = [people.get(key) or (key, *blank) for key in keys]
        return [base + extra for base, extra in zip(bases, zip(*columns))] if columns else bases

    def dicts(self, chunk: list[tuple]) -> list[dict]:
        """A chunk's customers as dicts of the columns fetched, nested rows included."""
        def record(row: tuple, table: str) -> dict:
            decimals = self.decimals[table]
            found = {name: Decimal(row[i]) if name in decimals and row[i] is not None else row[i]
                     for name, i in self.positions[table].items()}
            for key, child in NESTED.get(table, ()):
                if key in found:
                    found[key] = [record(r, child) for r in found[key]]
            return found
        return [record(person, "customers") for person in chunk]


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


_first = itemgetter(0)  # a row's customer
_owner_and_order = itemgetter(0, 1)  # an item row's customer and order
