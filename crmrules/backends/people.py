"""Customer dicts (with `orders`, their `items`, and `events`) loaded into a private DuckDB.

This is how a list of customers reaches the SQL engines: the same tables a data
directory would give, so the directory's way onward (DuckDB as is, a copy for
SQLite or Spark) applies unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.sql.datadir import LoadedData, duckdb_type, quote
from crmrules.schema import Schema


def people_to_duckdb(people: Iterable[dict], schema: Schema) -> LoadedData:
    """A new in-memory DuckDB holding these customers' rows in the schema's tables, typed."""
    import duckdb

    loaded = LoadedData(duckdb.connect())
    rows = _rows(people, schema)
    for spec in schema.tables.values():
        names = [c.source for c in spec.columns.values()]
        columns = ", ".join(f"{quote(c.source)} {duckdb_type(c.type)}" for c in spec.columns.values())
        loaded.connection.execute(f"CREATE TABLE {quote(spec.source)} ({columns})")
        records = rows.get(spec.name)
        if records:
            loaded.connection.executemany(
                f"INSERT INTO {quote(spec.source)} VALUES ({', '.join('?' for _ in names)})",
                [[record.get(name) for name in names] for record in records])
    return loaded


def _rows(people: Iterable[dict], schema: Schema) -> dict[str, list[dict]]:
    """Each table's rows, in the schema's column names; children carry their parent's id."""
    id_of = schema.column("customers", "id").source
    order_id = schema.column("orders", "id").source
    order_owner = schema.column("orders", "customer_id").source
    item_order = schema.column("order_items", "order_id").source
    event_owner = schema.column("events", "customer_id").source
    rows: dict[str, list[dict]] = {"customers": [], "orders": [], "order_items": [], "events": []}
    for person in people:
        # converted first, so every engine reads the values the in-memory engines read
        person = prepare_customer(person, schema)
        owner = person.get(id_of)
        rows["customers"].append(person)
        for order in person.get("orders") or []:
            rows["orders"].append({**order, order_owner: owner})
            for item in order.get("items") or []:
                rows["order_items"].append({**item, item_order: order.get(order_id)})
        for event in person.get("events") or []:
            rows["events"].append({**event, event_owner: owner})
    return rows
