"""The data schema: five tables, their typed columns, and how a user's own names map onto them.

The schema itself is a set of small frozen dataclasses, built without pydantic
so that `import crmrules` stays fast; mapping files and dicts are validated
with pydantic models (`schema_file.py`), imported only when one is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from collections.abc import Mapping
from types import MappingProxyType


from crmrules import types as t
from crmrules.errors import UnknownNameError, did_you_mean


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column: our name, its type, the user's own column name (`source`) and its known values.

    `values` lists what a string column holds; `closed` says no other value exists
    (a literal outside the list is an error) rather than only the common ones (a warning).
    """

    name: str
    type: t.Type
    source: str
    values: frozenset[str] = frozenset()
    closed: bool = False


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One table: our name, the user's table or file name, its columns and its time column."""

    name: str
    source: str
    columns: Mapping[str, ColumnSpec]
    time_column: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Schema:
    """The tables a rule can use, and the store's time zone."""

    tables: Mapping[str, TableSpec]
    timezone: str = "UTC"
    _column_names: dict = field(default_factory=dict, repr=False, compare=False)

    def table(self, name: str) -> TableSpec:
        """The named table; UnknownNameError with the closest name when there is none."""
        spec = self.tables.get(name)
        if spec is None:
            raise UnknownNameError(f"unknown table `{name}`", None, did_you_mean(name, self.tables),
                                   code="E0203")
        return spec

    def column(self, table: str, name: str) -> ColumnSpec | None:
        """The named column of a table, or None."""
        spec = self.tables.get(table)
        return spec.columns.get(name) if spec is not None else None

    def columns(self, table: str) -> list[str]:
        """Our names of a table's columns, in schema order."""
        names = self._column_names.get(table)
        if names is None:
            names = self._column_names[table] = list(self.table(table).columns)
        return names


DEFAULT_TABLES: dict[str, tuple[str | None, str]] = {
    # table: (time column, "column:type ...")
    "customers": (None, "id:string email:string phone:string first_name:string last_name:string gender:string "
                        "birthday:date country:string city:string language:string source:string "
                        "registered_at:timestamp email_subscribed:bool sms_subscribed:bool tags:list[string] "
                        "tier:string points:int"),
    "orders": ("created_at", "id:string customer_id:string created_at:timestamp status:string total:decimal "
                             "discount:decimal coupon:string channel:string"),
    "order_items": (None, "order_id:string product_id:string category:string quantity:int price:decimal"),
    "events": ("at", "customer_id:string type:string at:timestamp product_id:string category:string "
                     "value:string"),
    "products": (None, "id:string title:string category:string price:decimal tags:list[string]"),
}


# the values a column is known to hold: (closed?, values)
KNOWN_VALUES: dict[tuple[str, str], tuple[bool, tuple[str, ...]]] = {
    ("orders", "status"): (True, ("paid", "pending", "cancelled", "refunded")),
    ("events", "type"): (False, ("visit", "view", "add_to_cart", "remove_from_cart", "favorite", "search",
                                 "checkout", "share", "review", "login", "signup", "email_open", "email_click",
                                 "sms_click", "push_open")),
}


def build_schema(tables: dict[str, TableSpec], timezone: str = "UTC") -> Schema:
    """A Schema over the given tables, frozen."""
    return Schema(MappingProxyType(dict(tables)), timezone)


@cache
def default_schema() -> Schema:
    """The default e-commerce schema of the design: customers, orders, order_items, events, products."""
    tables = {}
    for name, (time_column, spec) in DEFAULT_TABLES.items():
        columns = {}
        for item in spec.split():
            column, type_name = item.split(":")
            closed, known = KNOWN_VALUES.get((name, column), (False, ()))
            columns[column] = ColumnSpec(column, t.parse_type(type_name), column, frozenset(known), closed)
        tables[name] = TableSpec(name, name, MappingProxyType(columns), time_column)
    return build_schema(tables)


def schema_from_dict(data: dict, origin: str = "<schema>") -> Schema:
    """The default schema with a mapping (as parsed from TOML or YAML) applied to it."""
    from crmrules.schema_file import apply_mapping

    return apply_mapping(default_schema(), data, origin)


def load_schema(path: str | Path) -> Schema:
    """Read a TOML or YAML mapping file and apply it to the default schema."""
    from crmrules.schema_file import read_mapping

    return schema_from_dict(read_mapping(Path(path)), str(path))
