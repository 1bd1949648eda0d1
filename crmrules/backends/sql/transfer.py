"""Copy a loaded data set into another engine (SQLite, PostgreSQL, Spark) or into customer dicts.

The runners only read; these copies are how a data directory reaches the
SQLite and Spark backends, how the tests give every engine the same data, and
how `--backend memory` builds one dict per customer.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from crmrules import types as t
from crmrules.backends.sql.datadir import LoadedData, quote
from crmrules.schema import Schema

_PG_TYPES = {t.Scalar.BOOL: "BOOLEAN", t.Scalar.INT: "BIGINT", t.Scalar.DECIMAL: "NUMERIC(38, 6)",
             t.Scalar.STRING: "TEXT", t.Scalar.DATE: "DATE", t.Scalar.TIMESTAMP: "TIMESTAMP"}


def rows_of(loaded: LoadedData, schema: Schema, table: str) -> tuple[list[str], list[tuple]]:
    """The source column names and rows of one table."""
    spec = schema.table(table)
    names = [c.source for c in spec.columns.values()]
    rows = loaded.connection.execute(
        f"SELECT {', '.join(quote(n) for n in names)} FROM {quote(spec.source)}").fetchall()
    return names, rows


def _sqlite_value(value):
    match value:
        case bool():
            return int(value)
        case Decimal():
            return format(value, "f")
        case datetime():
            return value.isoformat(sep=" ", timespec="microseconds")
        case date():
            return value.isoformat()
        case list():
            return json.dumps(value)
    return value


def to_sqlite(loaded: LoadedData, schema: Schema, connection: sqlite3.Connection) -> None:
    """Write every table into a SQLite database, in the forms the SQLite dialect expects."""
    with connection:
        for spec in schema.tables.values():
            names, rows = rows_of(loaded, schema, spec.name)
            connection.execute(f"CREATE TABLE {quote(spec.source)} ({', '.join(quote(n) for n in names)})")
            connection.executemany(
                f"INSERT INTO {quote(spec.source)} VALUES ({', '.join('?' for _ in names)})",
                ([_sqlite_value(v) for v in row] for row in rows))


def to_postgres(loaded: LoadedData, schema: Schema, connection, pg_schema: str) -> None:
    """Create `pg_schema` with every table and copy the rows in (test setup; the engine itself never writes)."""
    with connection.transaction():
        connection.execute(f"DROP SCHEMA IF EXISTS {quote(pg_schema)} CASCADE")
        connection.execute(f"CREATE SCHEMA {quote(pg_schema)}")
        for spec in schema.tables.values():
            names, rows = rows_of(loaded, schema, spec.name)
            columns = ", ".join(
                f"{quote(c.source)} {_PG_TYPES[c.type.scalar]}{'[]' if c.type.is_list else ''}"
                for c in spec.columns.values())
            target = f"{quote(pg_schema)}.{quote(spec.source)}"
            connection.execute(f"CREATE TABLE {target} ({columns})")
            if rows:
                with connection.cursor() as cursor:
                    cursor.executemany(f"INSERT INTO {target} VALUES ({', '.join('%s' for _ in names)})", rows)


def to_spark(loaded: LoadedData, schema: Schema, spark, directory: str | Path) -> None:
    """Register every table as a Spark temp view, through Parquet files written into `directory`."""
    for spec in schema.tables.values():
        target = Path(directory) / f"{spec.source}.parquet"
        loaded.connection.execute(f"COPY (SELECT * FROM {quote(spec.source)}) TO '{target}' (FORMAT PARQUET)")
        spark.read.parquet(str(target)).createOrReplaceTempView(spec.source)


def customers(loaded: LoadedData, schema: Schema) -> list[dict]:
    """One dict per customer (customers ∪ order and event owners), with `orders` (and their `items`) and `events`."""
    def records(table: str) -> list[dict]:
        names, rows = rows_of(loaded, schema, table)
        return [dict(zip(names, row)) for row in rows]

    id_of = schema.column("customers", "id").source
    order_id = schema.column("orders", "id").source
    order_owner = schema.column("orders", "customer_id").source
    item_order = schema.column("order_items", "order_id").source
    event_owner = schema.column("events", "customer_id").source
    items = defaultdict(list)
    for item in records("order_items"):
        items[item[item_order]].append(item)
    people: dict[str, dict] = {}
    for person in records("customers"):
        if person[id_of] is not None:
            people.setdefault(person[id_of], person)
    for order in records("orders"):
        order["items"] = items.get(order[order_id], [])
        owner = order[order_owner]
        if owner is not None:
            people.setdefault(owner, {id_of: owner}).setdefault("orders", []).append(order)
    for event in records("events"):
        owner = event[event_owner]
        if owner is not None:
            people.setdefault(owner, {id_of: owner}).setdefault("events", []).append(event)
    return list(people.values())
