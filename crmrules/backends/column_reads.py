"""How generated code reads a field: the read itself, and the inline check of its Python type.

`matches` reads the customer's own fields by subscript (`c['age']`), which costs about
half of `c.get('age')`; a field the customer lacks raises KeyError, and the slow path
(`fill_missing`) evaluates again with the missing fields as null, so a missing field
still reads as null (the work before the missing read is done twice, so a rule over orders,
events or rankings keeps `.get`: its time goes there). Other tables' rows and the other
compiled functions keep `.get` too.
Every read is typed: `type(x) is int` and friends, so cheap that each read has one; a
value of another type takes the slow path, which converts it or names the field.

The batch engine (`memory_batches`) reads rows straight from DuckDB, whose views over the
files already converted every column to the schema's type: its code reads tuples by
position (`positions`) and trusts their types (`trusted`), so a read is one subscript.
Decimals come as their exact text, made a Decimal where read: Python does that four times
faster than DuckDB's conversion, and a row no condition reaches never pays for it.
"""

from __future__ import annotations

from collections.abc import Mapping

from crmrules import ast
from crmrules import types as t
from crmrules.backends.customer_data import type_test
from crmrules.errors import DataError


class ColumnReads:
    """The part of the code generator that reads fields; mixed into `memory._Generator`."""

    subscript = False  # whether reads of the customer's own fields are subscripts (set by `memory`)
    customer_keys: set[str]  # the customer's fields read by subscript: what `fill_missing` fills
    row_tables: dict[str, str]  # row variable -> its table
    # rows are tuples: table -> field -> its index (every field the code reads must have one)
    positions: dict[str, dict[str, int]] | None = None
    trusted = False  # values already have their column's Python type: no type test on reads
    rows_visible = False  # the rows given are only those visible at now (see memory.compile_values)
    # customer-level aggregates and rankings DuckDB computed (the batch engine's folded query, see
    # memory_folded): node -> the customer field holding its value
    folded: dict | None = None

    def read(self, row: str, key: str) -> str:
        """Code reading field `key` of `row`: null when the row lacks it."""
        if self.positions is not None:
            return f"{row}[{self.positions[self.row_tables.get(row, 'customers')][key]}]"
        if row == "c" and self.subscript:
            self.customer_keys.add(key)
            return f"c[{key!r}]"
        return f"{row}.get({key!r})"

    def column(self, node: ast.Column, row: str) -> str:
        """A column's value, or a jump to the slow path when it holds another Python type than its own."""
        if self.trusted:
            column = self.schema.column(node.table, node.name)
            return self.as_read(self.read(row, column.source), column.type)
        var, test = self.typed(node, row)
        return f"({var} if {test} or {var} is None else _bad())"

    def as_read(self, code: str, value_type: t.Type, aggregated: bool = False) -> str:
        """A trusted value as the engine holds it: a decimal's exact text made a Decimal, an aggregated
        list sorted (as `runtime.agg_distinct` gives it), anything else as it is."""
        if value_type == t.DECIMAL:
            var = self.temp()
            return f"(None if ({var} := {code}) is None else Decimal({var}))"
        if value_type.is_list and aggregated:
            var = self.temp()
            return f"(None if ({var} := {code}) is None else sorted({var}))"
        return code

    def folded_value(self, node: ast.Expr, build) -> str:
        """A customer-level aggregate or ranking: read where the folded query put it, else `build()`."""
        key = None if self.folded is None else self.folded.get(node)
        if key is None:
            return build()
        return self.as_read(self.read("c", key), node.type, aggregated=True)

    def typed(self, node: ast.Column, row: str) -> tuple[str, str]:
        """A local that the test assigns the column's value to, and the test: true for a value of the
        column's type, so cheap that every read has one (`type(x) is str`); else false (caller's check)."""
        column = self.schema.column(node.table, node.name)
        var = self.temp()
        if self.trusted:
            return var, f"(({var} := {self.column(node, row)}) is not None)"
        return var, type_test(column.type, f"({var} := {self.read(row, column.source)})", var)

    def present(self, node: ast.Expr, row: str, code: str | None = None) -> tuple[str, str]:
        """A local holding `node`'s value and a test true when it is not null: a column's also checks its
        type (false for null, the slow path for a wrong type); `code` is the value's code when not plain."""
        if code is None and isinstance(node, ast.Column) and not self.trusted:
            var, test = self.typed(node, row)
            return var, f"({test} or {var} is not None and _bad())"
        var = self.temp()
        return var, f"({var} := {self.value(node, row) if code is None else code}) is not None"


def plain(customer) -> dict:
    """The customer as a plain dict, for subscripts: a dict subclass's `__missing__` (a defaultdict's
    default) must not answer for a missing field, which reads as null."""
    if isinstance(customer, Mapping):
        return dict(customer)
    raise DataError(f"a customer must be a mapping of fields, got {type(customer).__name__}")


def fill_missing(customer: dict, keys: frozenset[str], error: KeyError) -> dict:
    """The customer with each of `keys` it lacks as null (the subscripts' slow path)."""
    missing = keys - customer.keys()
    if not missing:  # the KeyError came from elsewhere: not a missing field
        raise error
    return {**dict.fromkeys(missing), **customer}
