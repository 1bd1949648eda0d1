"""Placeholder schema (being replaced by the full pydantic module)."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict

from crmrules import types as t
from crmrules.errors import SchemaError, UnknownNameError, did_you_mean


class ColumnSpec(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    name: str
    type: t.Type
    source: str


class TableSpec(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    name: str
    source: str
    columns: dict[str, ColumnSpec]
    time_column: str | None = None


class Schema(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    tables: dict[str, TableSpec]
    timezone: str = "UTC"

    def table(self, name):
        if name not in self.tables:
            raise UnknownNameError(f"unknown table `{name}`", None, did_you_mean(name, self.tables))
        return self.tables[name]

    def column(self, table, name):
        spec = self.tables.get(table)
        return spec.columns.get(name) if spec else None

    def columns(self, table):
        return list(self.tables[table].columns)


_DEFAULT = {
    "customers": "id:string email:string phone:string first_name:string last_name:string gender:string birthday:date country:string city:string language:string source:string registered_at:timestamp email_subscribed:bool sms_subscribed:bool tags:list[string] tier:string points:int",
    "orders": "id:string customer_id:string created_at:timestamp status:string total:decimal discount:decimal coupon:string channel:string",
    "order_items": "order_id:string product_id:string category:string quantity:int price:decimal",
    "events": "customer_id:string type:string at:timestamp product_id:string category:string value:string",
    "products": "id:string title:string category:string price:decimal tags:list[string]",
}


@cache
def default_schema():
    tables = {}
    for name, cols in _DEFAULT.items():
        columns = {}
        for item in cols.split():
            col, typ = item.split(":")
            columns[col] = ColumnSpec(name=col, type=t.parse_type(typ), source=col)
        tables[name] = TableSpec(name=name, source=name, columns=columns,
                                 time_column={"orders": "created_at", "events": "at"}.get(name))
    return Schema(tables=tables)


def schema_from_dict(data, origin="<schema>"):
    base = default_schema()
    tables = dict(base.tables)
    for tname, tdata in data.get("tables", {}).items():
        table = tables[tname]
        columns = dict(table.columns)
        for cname, cdata in tdata.get("columns", {}).items():
            if isinstance(cdata, str):
                columns[cname] = ColumnSpec(name=cname, type=columns[cname].type, source=cdata)
            else:
                typ = t.parse_type(cdata["type"]) if "type" in cdata else columns[cname].type
                columns[cname] = ColumnSpec(name=cname, type=typ, source=cdata.get("source", cname))
        tables[tname] = TableSpec(name=tname, source=tdata.get("source", tname), columns=columns,
                                  time_column=table.time_column)
    return Schema(tables=tables, timezone=data.get("timezone", "UTC"))


def load_schema(path):
    import tomllib
    with open(path, "rb") as f:
        return schema_from_dict(tomllib.load(f), str(path))
