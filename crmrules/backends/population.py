"""The population pass: where each `ntile` of a rule set cuts a customer base, for the in-memory engines.

The cuts (`Cut`, `Population`) and the ranking itself live in `backends/runtime.py`,
which both in-memory engines share; this is the convenience that ranks a list of
customer dicts with the generated-code engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from crmrules import ast
from crmrules.backends import runtime
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.memory import MemoryBackend
from crmrules.backends.runtime import Cut, Population
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext, evaluation_context


def ntiles(program: Program) -> list[ast.Ntile]:
    """Every distinct `ntile` the program's segments and attributes use."""
    return runtime.ntiles(program)


def population(program: Program, people: Iterable[dict], now: date | datetime | EvaluationContext) -> Population:
    """Rank `people` (customer dicts with their orders and events) for every `ntile` of the program."""
    ctx = now if isinstance(now, EvaluationContext) else evaluation_context(now, program.schema)
    prepared = [prepare_customer(person, program.schema) for person in people]
    return MemoryBackend().population(program, prepared, ctx)


__all__ = ["Cut", "Population", "ntiles", "population"]
