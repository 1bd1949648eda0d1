"""Evaluate segments over a whole list of customers with the in-memory engine."""

from __future__ import annotations

from datetime import date, datetime

from crmrules.backends.memory import memory
from crmrules.backends.population import exists, ntiles, population
from crmrules.compiler.pipeline import Program
from crmrules.values import evaluation_instant


def run_memory(program: Program, people: list[dict], segments: list[str], now: date | datetime) -> dict[str, list[str]]:
    """Members of each segment; a customer known only from rows dated after `now` does not exist yet."""
    schema = program.schema
    id_of = schema.column("customers", "id").source
    instant = evaluation_instant(now, schema.timezone)
    ranked = population(program, people, instant) if ntiles(program) else None
    matchers = {name: memory(program, name).matches for name in segments}
    members: dict[str, list[str]] = {name: [] for name in segments}
    for person in people:
        if not exists(person, schema, instant):
            continue
        for name, matches in matchers.items():
            if matches(person, instant, population=ranked):
                members[name].append(str(person[id_of]))
    return {name: sorted(set(ids)) for name, ids in members.items()}
