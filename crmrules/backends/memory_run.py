"""Evaluate segments over a whole list of customers with the in-memory engine."""

from __future__ import annotations

from datetime import date, datetime

from crmrules.backends.memory import memory
from crmrules.compiler.pipeline import Program
from crmrules.values import evaluation_instant


def run_memory(program: Program, people: list[dict], segments: list[str], now: date | datetime) -> dict[str, list[str]]:
    """Members of each segment; a customer known only from rows dated after `now` does not exist yet."""
    schema = program.schema
    id_of = schema.column("customers", "id").source
    instant = evaluation_instant(now, schema.timezone)
    registered = {p[id_of] for p in people if _in_customers(p, schema)}
    matchers = {name: memory(program, name).matches for name in segments}
    members: dict[str, list[str]] = {name: [] for name in segments}
    for person in people:
        if person[id_of] not in registered and not _has_visible_rows(person, schema, instant):
            continue
        for name, matches in matchers.items():
            if matches(person, instant):
                members[name].append(str(person[id_of]))
    return {name: sorted(set(ids)) for name, ids in members.items()}


def _in_customers(person: dict, schema) -> bool:
    # rows built only from orders or events carry nothing but the id and those lists
    return any(k not in ("orders", "events", schema.column("customers", "id").source) for k in person)


def _has_visible_rows(person: dict, schema, instant: datetime) -> bool:
    for key, table, column in (("orders", "orders", "created_at"), ("events", "events", "at")):
        source = schema.column(table, column).source
        if any(row.get(source) is None or row[source] <= instant for row in person.get(key) or ()):
            return True
    return False
