"""What every engine offers: the `Backend` protocol that memory, the interpreter and SQL implement.

`data` is what `backends.dispatch.open_data` yields for the engine: for the
in-memory engines a list of customer dicts already in the schema's Python types
(see `customer_data.prepare_customer`); for a SQL engine an `SqlHandle`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from crmrules import ast
    from crmrules.compiler.pipeline import Program
    from crmrules.context import EvaluationContext


@runtime_checkable
class Backend(Protocol):
    """An engine that evaluates a checked program on opened data, as of one context."""

    name: str
    # "rows": the engine takes customer dicts; "sql": a database connection (an SqlHandle)
    takes: str

    def members(self, program: Program, data: object, segments: Sequence[str],
                ctx: EvaluationContext) -> dict[str, list[str]]:
        """The sorted ids of each segment's members among the customers that exist at `ctx.instant`."""

    def values(self, program: Program, data: object, names: Sequence[str],
               ctx: EvaluationContext) -> dict[str, dict[str, object]]:
        """The named attributes of every existing customer: {id: {name: value}}."""

    def node_values(self, program: Program, data: object, customer_id: str, expr: ast.Expr,
                    ctx: EvaluationContext) -> dict[ast.Expr, object]:
        """The value of `expr` and of each of its customer-level sub-expressions for one customer
        (true/false/None for conditions, numbers, dates, lists), keyed by node."""


@runtime_checkable
class StreamedCustomers(Protocol):
    """Customers too many to hold as a list (`memory_batches.CustomerChunks`): iterable as customer dicts, and
    evaluating a program's segments or attributes itself, chunk by chunk. The in-memory engines hand a
    whole-base question to it instead of walking every customer."""

    def __iter__(self): ...

    def members(self, program: Program, segments: Sequence[str], ctx: EvaluationContext) -> dict[str, list[str]]:
        """As `Backend.members`, over the streamed customers."""

    def values(self, program: Program, names: Sequence[str], ctx: EvaluationContext) -> dict[str, dict]:
        """As `Backend.values`, over the streamed customers."""
