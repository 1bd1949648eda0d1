"""The customers behind the messages: their columns (email address, phone, names) for templates and payloads.

Only the customers table is read, and only the rows of the ids being delivered, a chunk at a time, by one
SQL query each on the data's own engine (a data directory through a private DuckDB, a SQLite or DuckDB
file, PostgreSQL), or from a list of customer dicts (the Python API).
"""

from __future__ import annotations

import json
import threading
from contextlib import ExitStack
from typing import Self

from crmrules import types as t
from crmrules.campaigns.delivery.errors import NEEDS_DATA, DeliveryError
from crmrules.schema import Schema, build_schema

# what a webhook or JSON-lines payload carries of the customer (a template sees every column)
CONTACT = ("email", "phone", "first_name", "last_name", "language")


class Customers:
    """Customer rows by id, read on demand from `data`; `close()` (or `with`) releases the data."""

    def __init__(self, data, schema: Schema, backend: str | None = None):
        self.schema = schema
        spec = schema.table("customers")
        self._id = spec.columns["id"].source
        self._names = {column.source: name for name, column in spec.columns.items()}
        self._types = {name: column.type for name, column in spec.columns.items()}
        self._stack = ExitStack()
        self._lock = threading.Lock()  # one connection, asked by every channel's thread
        self._rows: dict[str, dict] | None = None
        if isinstance(data, (list, tuple)):
            # every column of the schema, as a data file gives them (null when absent): templates see the same
            self._rows = {str(row.get(self._id)): {**{name: None for name in spec.columns},
                                                   **{self._names.get(key, key): value for key, value in row.items()
                                                      if key not in ("orders", "events")}}
                          for row in data if isinstance(row, dict)}
            self.columns = set(spec.columns)
            return
        from crmrules.backends.dispatch import open_data
        from crmrules.compiler.pipeline import Program

        # a schema of the customers table alone: a data directory's orders and events are not loaded
        only = build_schema({"customers": spec}, schema.timezone)
        try:
            self.handle = self._stack.enter_context(open_data(Program(schema=only), data, backend))[1]
        except BaseException:
            self._stack.close()
            raise
        from crmrules.backends.sql import runners

        found = runners.source_columns(self.handle)
        fold = (lambda name: name) if self.handle.kind == "postgres" else str.lower
        present = found.get(fold(spec.source)) if found is not None else None
        self._present = [column.source for column in spec.columns.values()
                         if present is None or fold(column.source) in present]
        self.columns = {self._names[source] for source in self._present}
        self._table = spec.source

    def require(self, column: str, why: str) -> None:
        """DeliveryError when the data has no such customers column."""
        if column not in self.columns:
            raise DeliveryError(f"the customer data has no `{column}` column, which {why} needs",
                                hint=f'map yours with --schema: [tables.customers.columns] {column} = "their_name"',
                                code=NEEDS_DATA)

    def fetch(self, ids) -> dict[str, dict]:
        """{customer id: {column: value}} of those ids found in the data."""
        ids = sorted({str(i) for i in ids})
        if self._rows is not None:
            return {i: self._rows[i] for i in ids if i in self._rows}
        from sqlglot import exp

        from crmrules.backends.sql import runners

        out: dict[str, dict] = {}
        kind = self.handle.kind
        key = exp.cast(exp.column(self._id, quoted=True), exp.DataType.build("text"))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            query = (exp.select(*(exp.column(source, quoted=True) for source in self._present))
                     .from_(exp.table_(self._table, quoted=True))
                     .where(key.isin(*(exp.convert(i) for i in chunk))))
            with self._lock:
                rows = runners.fetch(kind, self.handle.connection, query.sql(dialect=kind))
            for row in rows:
                record = {self._names[source]: self._value(self._names[source], value)
                          for source, value in zip(self._present, row)}
                out[str(record.get("id"))] = record
        return out

    def _value(self, name: str, value):
        kind = self._types.get(name)
        if value is None or kind is None:
            return value
        if kind == t.BOOL and isinstance(value, int):
            return bool(value)  # SQLite keeps booleans as 0 and 1
        if kind.is_list and isinstance(value, str):
            try:
                return json.loads(value)  # SQLite keeps lists as JSON text
            except ValueError:
                return value
        return value

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def contact(customer: dict | None) -> dict | None:
    """The contact fields a payload carries: CONTACT's columns the customer has."""
    if customer is None:
        return None
    return {name: _plain(customer.get(name)) for name in CONTACT if name in customer}


def _plain(value):
    from crmrules.campaigns.messages import jsonable

    return jsonable(value)
