"""The catalogue from the command line and the API: listings, the reference page, rfm, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import crmrules as crmrules_cli

import crmrules
from crmrules.stdlib.reference import markdown

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "catalogue"


def test_reference_page_is_current():
    assert (ROOT / "docs" / "reference.md").read_text() == markdown(), \
        "regenerate it: crmrules attributes --format markdown > docs/reference.md"


def test_attributes_and_templates_listings():
    listed = json.loads(crmrules_cli("attributes", "--format", "json").stdout)
    names = {item["name"] for item in listed}
    assert {"aov", "rfm_class", "clv", "lifecycle", "preferred_category", "promo_sensitivity"} <= names
    assert any(item["name"].startswith("did(type, within: ever, at_least: 1)") for item in listed)
    assert sum(1 for item in listed if item["kind"] in ("attribute", "column")) >= 47
    groups = {item["group"] for item in listed}
    assert groups == {"profile", "orders", "store behaviour", "product preference", "promotion sensitivity",
                      "customer value"}
    orders_only = json.loads(crmrules_cli("attributes", "--group", "orders", "--format", "json").stdout)
    assert {item["group"] for item in orders_only} == {"orders"}
    templates = json.loads(crmrules_cli("templates", "--format", "json").stdout)
    assert sum(1 for item in templates if item["kind"] == "template") >= 12
    assert "dormant_for(days: dormant_days)" in {item["name"] for item in templates}
    wrong = crmrules_cli("attributes", "--group", "order")
    assert wrong.returncode == 1 and "did you mean `orders`?" in wrong.stderr


def test_unknown_catalogue_names_get_suggestions(tmp_path):
    rules = tmp_path / "r.crm"
    rules.write_text('segment a: dormnt and lifecyle == "new"\nsegment b: bougth("coat")\n')
    result = crmrules_cli("check", str(rules))
    assert result.returncode == 1
    for hint in ("did you mean `dormant`?", "did you mean `lifecycle`?", "did you mean `bought`?"):
        assert hint in result.stderr
    with pytest.raises(crmrules.CrmRulesError, match="unknown segment `rfm_importnt_value`") as caught:
        crmrules.load_text("").segment("rfm_importnt_value")
    assert "rfm_important_value" in caught.value.hint


def test_templates_usable_by_name_and_settings_redefinable(tmp_path):
    people = json.loads((FIXTURES / "people.json").read_text())
    (tmp_path / "customers.jsonl").write_text("".join(
        json.dumps({k: v for k, v in p.items() if k not in ("orders", "events")}) + "\n" for p in people))
    (tmp_path / "orders.jsonl").write_text("".join(
        json.dumps({**{k: v for k, v in o.items() if k != "items"}, "customer_id": p["id"]}) + "\n"
        for p in people for o in p.get("orders", [])))
    rules = crmrules.load_text("attribute lost_days = 400\nsegment mine: repeat_buyers\n")
    result = rules.run(tmp_path, as_of="2026-06-30", segments=["mine", "dormant", "lost"])
    # cy's last paid order is 365 days old: lost by the catalogue's 180 days, still dormant by this file's 400
    assert result.members == {"mine": ["ana", "cy", "dee"], "dormant": ["cy"], "lost": []}
    assert crmrules.load_text("").run(tmp_path, as_of="2026-06-30", segments=["dormant", "lost"]).members == \
        {"dormant": [], "lost": ["cy"]}
    assert any("no events file" in w for w in result.warnings) is False  # nothing here reads events
    warned = crmrules.load_text("segment v: did(\"visit\")\n").run(tmp_path, as_of="2026-06-30")
    assert any("no events file" in w and "events is empty for v" in w for w in warned.warnings), warned.warnings


def test_rfm_command(tmp_path):
    (tmp_path / "orders.csv").write_text("id,customer_id,created_at,status,total\n" + "".join(
        f"o{i},c{i % 7},2026-0{1 + i % 6}-10 10:00:00,paid,{10 + i}\n" for i in range(30)))
    result = crmrules_cli("rfm", "--data", str(tmp_path), "--as-of", "2026-06-30", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scored"] == 7 and report["customers"] == 7
    assert sum(cut["customers"] for cut in report["scores"]["m"].values()) == 7
    # spends 90, 94, 98, 102, 106, 120, 125: k = 0..6 customers below, 1 + 5·k // 7 = 1, 1, 2, 3, 3, 4, 5
    assert [cut["customers"] for cut in report["scores"]["m"].values()] == [2, 1, 2, 1, 1]
    assert report["scores"]["m"]["3"] == {"min": "102.000000", "max": "106.000000", "customers": 2}
    assert sum(report["classes"].values()) == 7
    table = crmrules_cli("rfm", "--data", str(tmp_path), "--as-of", "2026-06-30")
    assert table.returncode == 0 and "cut points" in table.stdout
    memory = crmrules_cli("rfm", "--data", str(tmp_path), "--as-of", "2026-06-30", "--format", "json",
                          "--backend", "memory")
    assert json.loads(memory.stdout) == report


def test_campaigns_and_tests_can_name_catalogue_segments(tmp_path):
    rules = tmp_path / "r.crm"
    rules.write_text('campaign winback:\n    audience: dormant and lifecycle == "lost"\n    trigger: daily at 09:00\n'
                     '    action: email(template: "winback")\n\n'
                     'test repeat_buyers:\n    given customer {id: "c1"}\n    as of 2026-06-30\n    expect out\n')
    result = crmrules_cli("test", str(rules))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 passed, 0 failed"


def test_the_parsed_catalogue_is_cached_between_processes_and_survives_a_bad_cache(tmp_path, monkeypatch):
    from crmrules.stdlib import prelude

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fresh = prelude.__wrapped__()
    (cached,) = (tmp_path / "crmrules").glob("prelude-*.pickle")
    assert prelude.__wrapped__() == fresh
    cached.write_bytes(b"not a pickle")
    assert prelude.__wrapped__() == fresh
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    (tmp_path / "file").write_text("a file where the cache directory should be")
    assert prelude.__wrapped__() == fresh
