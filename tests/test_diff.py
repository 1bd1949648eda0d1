"""`crmrules diff`: per segment, members before and after, who entered and who left."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import crmrules
from crmrules.cli import main

SHOP = "examples/shop/shop.crm"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    directory = tmp_path_factory.mktemp("shop") / "data"
    subprocess.run([sys.executable, "examples/shop/generate.py", str(directory), "--customers", "500"],
                   check=True, capture_output=True)
    return str(directory)


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """The shop's rules with `big_coat_buyers` loosened, `refunders` removed and `big_spenders` added."""
    text = Path(SHOP).read_text()
    text = text.replace("spent_once > 100 and", "spent_once > 50 and")
    text = text.replace('segment refunders "Returns a third of what they buy":\n'
                        '    refund_count >= 2 and refund_rate >= 0.33\n', "")
    text += "\nsegment big_spenders: total_spent > 500\n"
    path = tmp_path_factory.mktemp("rules") / "new.crm"
    path.write_text(text)
    return str(path)


def cli(*args):
    return CliRunner().invoke(main, list(args))


def test_two_rule_files_json(shop, edited):
    result = cli("diff", SHOP, edited, "--data", shop, "--as-of", "2026-06-30", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {"segments"}
    old = crmrules.load(SHOP).run(shop, as_of="2026-06-30").members
    new = crmrules.load(edited).run(shop, as_of="2026-06-30").members
    bcb = report["segments"]["big_coat_buyers"]
    assert set(bcb) == {"before", "after", "entered", "left"}
    assert bcb["before"] == len(old["big_coat_buyers"]) and bcb["after"] == len(new["big_coat_buyers"])
    assert bcb["entered"] == sorted(set(new["big_coat_buyers"]) - set(old["big_coat_buyers"]))
    assert bcb["entered"] and bcb["left"] == []  # loosened: some enter, nobody leaves
    # a segment built on it moves too; an untouched one does not
    assert report["segments"]["vip"]["entered"] == report["segments"]["vip"]["left"] == []
    refunders = report["segments"]["refunders"]
    assert refunders["after"] is None and refunders["before"] == len(old["refunders"])
    assert refunders["left"] == old["refunders"] and refunders["entered"] == []
    spenders = report["segments"]["big_spenders"]
    assert spenders["before"] is None and spenders["entered"] == new["big_spenders"]
    assert list(report["segments"])[-1] == "big_spenders"


def test_one_rule_file_at_two_dates(shop):
    result = cli("diff", SHOP, "--data", shop, "--as-of", "2026-05-31", "--as-of", "2026-06-30",
                 "--segment", "cart_abandoners", "--segment", "vip", "--backend", "sqlite", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["segments"]
    assert list(report) == ["cart_abandoners", "vip"]
    rules = crmrules.load(SHOP)
    before = rules.run(shop, as_of="2026-05-31", segments=["cart_abandoners"]).members["cart_abandoners"]
    after = rules.run(shop, as_of="2026-06-30", segments=["cart_abandoners"]).members["cart_abandoners"]
    row = report["cart_abandoners"]
    assert (row["before"], row["after"]) == (len(before), len(after))
    assert row["entered"] == sorted(set(after) - set(before)) and row["left"] == sorted(set(before) - set(after))
    assert row["entered"] or row["left"]


def test_table_and_members(shop, edited):
    result = cli("diff", SHOP, edited, "--data", shop, "--as-of", "2026-06-30", "--segment", "big_coat_buyers",
                 "--segment", "big_spenders", "--members")
    assert result.exit_code == 0, result.output
    report = json.loads(cli("diff", SHOP, edited, "--data", shop, "--as-of", "2026-06-30",
                            "--format", "json").output)["segments"]
    assert "big_coat_buyers" in result.output and "big_spenders" in result.output
    assert f"big_coat_buyers entered: {', '.join(report['big_coat_buyers']['entered'])}" in result.output
    assert "refunders" not in result.output


def test_bad_input(shop, edited):
    one_date = cli("diff", SHOP, "--data", shop, "--as-of", "2026-06-30")
    assert one_date.exit_code == 2 and "--as-of twice" in one_date.output
    two_dates = cli("diff", SHOP, edited, "--data", shop, "--as-of", "2026-06-01", "--as-of", "2026-06-30")
    assert two_dates.exit_code == 2
    unknown = cli("diff", SHOP, edited, "--data", shop, "--segment", "nope_nope")
    assert unknown.exit_code == 1 and "unknown segment `nope_nope`" in unknown.output
