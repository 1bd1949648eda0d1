"""Turn generated customer dicts into the same data set on every engine, and ask any engine about it."""

from __future__ import annotations

import sqlite3

import duckdb

from crmrules.backends.sql.datadir import LoadedData, _create_empty, quote
from crmrules.backends.sql.runners import SqlHandle, prepare_sqlite
from crmrules.backends.sql.transfer import to_sqlite
from crmrules.schema import Schema


def with_unique_ids(people: list[dict]) -> list[dict]:
    """Customers with distinct ids, and order ids unique across the data set (items find their order)."""
    seen, out = set(), []
    for person in people:
        if person["id"] in seen:
            continue
        seen.add(person["id"])
        orders = [{**order, "id": f"{person['id']}-{i}"} for i, order in enumerate(person.get("orders") or [])]
        out.append({**person, "orders": orders})
    return out


def load_people(people: list[dict], schema: Schema) -> LoadedData:
    """A DuckDB holding the customers, orders, items and events of these dicts."""
    loaded = LoadedData(duckdb.connect())
    for spec in schema.tables.values():
        _create_empty(loaded.connection, spec)
    rows: dict[str, list[dict]] = {"customers": [], "orders": [], "order_items": [], "events": []}
    for person in people:
        rows["customers"].append(person)
        for order in person.get("orders") or []:
            rows["orders"].append({**order, "customer_id": person["id"]})
            for item in order.get("items") or []:
                rows["order_items"].append({**item, "order_id": order["id"]})
        for event in person.get("events") or []:
            rows["events"].append({**event, "customer_id": person["id"]})
    for table, records in rows.items():
        spec = schema.table(table)
        names = [c.source for c in spec.columns.values()]
        if records:
            loaded.connection.executemany(
                f"INSERT INTO {quote(spec.source)} VALUES ({', '.join('?' for _ in names)})",
                [[record.get(name) for name in names] for record in records])
    return loaded


def sqlite_copy(loaded: LoadedData, schema: Schema) -> sqlite3.Connection:
    """An in-memory SQLite holding the same data, with the runner's functions registered."""
    connection = sqlite3.connect(":memory:")
    prepare_sqlite(connection)
    to_sqlite(loaded, schema, connection)
    return connection


def _engine(kind: str, handle, program):
    # what the Backend protocol takes: prepared customer dicts, or an SqlHandle around a connection
    from crmrules.backends.dispatch import BACKENDS

    backend = BACKENDS[kind]
    if backend.takes == "sql":
        return backend, SqlHandle(kind, handle)
    from crmrules.backends.customer_data import prepare_customer

    return backend, [prepare_customer(p, program.schema) for p in handle]


def values_on(kind: str, handle, program, names: list[str], as_of) -> dict[str, dict]:
    """Every existing customer's named attributes on an engine ("memory": customer dicts; else a connection)."""
    from crmrules.context import evaluation_context

    backend, data = _engine(kind, handle, program)
    return backend.values(program, data, names, evaluation_context(as_of, program.schema))


def members_on(kind: str, handle, program, names: list[str], as_of) -> dict[str, list[str]]:
    """Each segment's members on an engine ("memory": customer dicts; else a connection)."""
    from crmrules.context import evaluation_context

    backend, data = _engine(kind, handle, program)
    return backend.members(program, data, names, evaluation_context(as_of, program.schema))
