"""Every rule file under examples/ checks, formats canonically and passes its own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import crmrules

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").rglob("*.crm"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_checks_and_passes_its_tests(path: Path):
    # an example with its own column names keeps its mapping beside it
    mapping = path.parent / "schema.toml"
    rules = crmrules.load(path, schema=mapping if mapping.exists() else None)
    results = rules.run_tests()
    assert results, f"{path.name} has no test blocks"
    assert all(r.passed for r in results), [r for r in results if not r.passed]
