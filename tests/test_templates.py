"""The templates on the demo shop: each one's member count equals the number docs/catalogue.md gives.

The counts are read from the table of the doc's "Templates" section, so the doc cannot drift from the
definitions; every template must have a row. The demo shop is generated here (seed 7, 10,000 customers,
as `make demo` does), evaluated once on DuckDB as of 2026-06-30 with the catalogue's own settings.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

import crmrules
from crmrules.stdlib.reference import items

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "catalogue.md"
ROW = re.compile(r"^\| `(?P<template>[^`]+)` \| (?P<count>[\d,]+) \|$")


def documented() -> dict[str, int]:
    """Template (or function call) -> members, from the table of the Templates section."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Templates\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            rows[match["template"]] = int(match["count"].replace(",", ""))
    return rows


COUNTS = documented()


@pytest.fixture(scope="module")
def members() -> dict[str, int]:
    """The members of every documented row on the demo shop: templates by name, calls as segments."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        subprocess.run([sys.executable, str(ROOT / "examples/shop/generate.py"), directory], check=True,
                       capture_output=True)
        calls = {name: f"t{i}" for i, name in enumerate(COUNTS) if "(" in name}
        rules = crmrules.load_text("".join(f"segment {segment} = {call}\n" for call, segment in calls.items()))
        names = [calls.get(name, name) for name in COUNTS]
        result = rules.run(directory, backend="duckdb", as_of="2026-06-30", segments=names)
    counts = result.counts()
    return {name: counts[calls.get(name, name)] for name in COUNTS}


def test_every_template_and_template_function_is_documented():
    templates = {item.name for item in items() if item.kind == "template"}
    assert templates <= set(COUNTS), f"add a row to docs/catalogue.md for: {sorted(templates - set(COUNTS))}"
    functions = {item.name.split("(")[0] for item in items() if item.kind == "function" and item.group == "templates"}
    assert "repeat_buyers_of" in functions and any(name.startswith("repeat_buyers_of(") for name in COUNTS)


@pytest.mark.parametrize("template", list(COUNTS))
def test_template_count_on_the_demo_shop(members, template):
    table = "\n".join(f"| `{name}` | {count:,} |" for name, count in members.items())
    assert members[template] == COUNTS[template], f"docs/catalogue.md says {COUNTS[template]:,}; today:\n{table}"


def test_dormant_and_lost_are_the_lifecycle_stages():
    # with both settings redefined, the two never overlap, cover every buyer from dormant_days on, and
    # dormant is exactly the lifecycle stage
    rules = crmrules.load_text('segment both = dormant & lost\nsegment stage_dormant: lifecycle == "dormant"\n'
                               'attribute dormant_days = 90\nattribute lost_days = 120\n')
    as_of = date(2026, 6, 30)
    people = [{"id": f"c{days}", "orders": [{"id": f"o{days}", "total": 10, "status": "paid",
                                             "created_at": (as_of - timedelta(days=days)).isoformat()}]}
              for days in range(0, 180, 3)]
    result = rules.run(people, backend="memory", as_of=as_of,
                       segments=["both", "dormant", "stage_dormant", "lost"])
    assert result.members["both"] == []
    assert result.members["dormant"] == result.members["stage_dormant"] != []
    assert {int(i[1:]) for i in result.members["dormant"]} == set(range(90, 120, 3))
    assert {int(i[1:]) for i in result.members["lost"]} == set(range(120, 180, 3))
