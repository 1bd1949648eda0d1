"""End-to-end tests of the `crmrules` command, run as a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "shop" / "shop.crm"
CUSTOMERS = ROOT / "examples" / "shop" / "customers.json"


def crmrules(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("crmrules", path=str(Path(sys.executable).parent)) or "crmrules"
    return subprocess.run([exe, *args], capture_output=True, text=True, input=stdin, cwd=cwd,
                          env={**os.environ, "NO_COLOR": "1"})


def test_check_ok():
    result = crmrules("check", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: 14 segments, 2 attributes, 6 campaigns, 6 tests")


def test_check_reports_every_error_with_exit_1(tmp_path):
    rules = tmp_path / "bad.crm"
    rules.write_text('segment a: spnt > 1\nsegment b: points > "x"\nsegment c: (\n')
    result = crmrules("check", str(rules))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{rules}:3:12: error[E0102]" in result.stderr
    assert result.stderr.rstrip().endswith("1 error")  # syntax errors stop the check phase
    rules.write_text('segment a: spnt > 1\nsegment b: points > "x"\n')
    result = crmrules("check", str(rules))
    assert f"{rules}:1:12: error[E0201]: unknown attribute `spnt`" in result.stderr
    assert "= help: did you mean `points`?" in result.stderr
    assert f"{rules}:2:12: error[E0301]: cannot compare int with string" in result.stderr
    assert "2 errors" in result.stderr


def test_eval_prints_true_or_false():
    result = crmrules("eval", str(EXAMPLE), "--segment", "big_coat_buyers", "--customer", str(CUSTOMERS),
                      "--as-of", "2026-06-30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["00042\ttrue", "00043\tfalse"]
    one = json.dumps({"id": "x", "orders": [{"total": 101.5, "status": "paid", "created_at": "2026-01-01",
                                             "items": [{"category": "coat"}]}]})
    result = crmrules("eval", str(EXAMPLE), "--segment", "big_coat_buyers", "--customer", "-",
                      "--as-of", "2026-06-30", stdin=one)
    assert result.stdout == "true\n"
    # as of a day before that order, it does not exist yet
    result = crmrules("eval", str(EXAMPLE), "--segment", "big_coat_buyers", "--customer", "-",
                      "--as-of", "2025-12-31", stdin=one)
    assert result.stdout == "false\n"


@pytest.mark.parametrize(("customer", "message"), [
    ('{"orders": [{"total": "lots"}]}', "customer.orders[0].total: expected decimal, got string 'lots'"),
    ('{"orders": [{"total": 1,}]}', "-:1:25: malformed JSON"),
    ('{"email_subscribed": "yes"}', "customer.email_subscribed: expected bool, got string 'yes'"),
])
def test_eval_bad_customer_data(customer, message):
    result = crmrules("eval", str(EXAMPLE), "--segment", "dormant", "--customer", "-", "--as-of", "2026-06-30",
                      stdin=customer)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_eval_usage_errors_exit_2():
    assert crmrules("eval", str(EXAMPLE)).returncode == 2
    result = crmrules("eval", str(EXAMPLE), "--segment", "dormnt", "--customer", str(CUSTOMERS),
                      "--as-of", "2026-06-30")
    assert result.returncode == 1
    assert "did you mean `dormant`?" in result.stderr
    result = crmrules("eval", str(EXAMPLE), "--segment", "dormant", "--customer", str(CUSTOMERS),
                      "--as-of", "yesterday")
    assert result.returncode == 1
    assert "`yesterday` is not a date or timestamp" in result.stderr


def test_missing_file_is_one_clear_line(tmp_path):
    result = crmrules("check", str(tmp_path / "nope.crm"))
    assert result.returncode == 1
    assert "cannot read" in result.stderr and "Traceback" not in result.stderr


def test_fmt_check_and_rewrite(tmp_path):
    rules = tmp_path / "messy.crm"
    rules.write_text("segment   a :  points>1   and(tier=='gold')\n")
    result = crmrules("fmt", "--check", str(rules))
    assert result.returncode == 1
    assert "would reformat" in result.stderr
    assert crmrules("fmt", str(rules)).returncode == 0
    assert rules.read_text() == 'segment a:\n    points > 1 and tier == "gold"\n'
    assert crmrules("fmt", "--check", str(rules)).returncode == 0
    assert crmrules("fmt", "--check", str(EXAMPLE)).returncode in (0, 1)


def test_test_command(tmp_path):
    result = crmrules("test", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "6 passed, 0 failed"
    failing = tmp_path / "failing.crm"
    failing.write_text("segment rich: points > 100\n\ntest rich:\n    given customer {points: 5}\n"
                       "    as of 2026-01-01\n    expect in\n")
    result = crmrules("test", str(failing))
    assert result.returncode == 1
    assert f"{failing}:4:5: FAIL rich case 1" in result.stderr
    assert "0 passed, 1 failed" in result.stdout


def test_schema_option_maps_column_names(tmp_path):
    schema = tmp_path / "schema.toml"
    schema.write_text('[tables.customers.columns]\nid = "client_id"\nvip_score = { type = "int" }\n')
    rules = tmp_path / "r.crm"
    rules.write_text("segment vip: vip_score >= 10\n")
    result = crmrules("eval", str(rules), "--schema", str(schema), "--segment", "vip", "--customer", "-",
                      "--as-of", "2026-01-01", stdin='{"client_id": "7", "vip_score": 12}')
    assert result.stdout == "true\n", result.stderr
