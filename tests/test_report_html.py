"""`crmrules campaigns report` on the command line (table, json, html, bad input) and its HTML page, drawn by a
real headless Chromium (skipped without chromium unless CRMRULES_REQUIRE_ENGINES=1, as the profile page's test)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from test_profile_html import (
    assert_self_contained,
    chromium_or_skip,
    count_near,
    run_chromium,
)

from crmrules.campaigns.messages import Message
from crmrules.campaigns.outbox import open_outbox
from crmrules.campaigns.report_html import render_report_html
from crmrules.cli import main

RULES = """
campaign promo "Spring <promo> & more":
    trigger: daily at 09:00
    action: email(template: "promo")
    holdout: 20%
    budget: 100
    cost: 0.5
campaign nudge:
    trigger: daily at 10:00
    action: sms(template: "nudge")
"""
START = datetime(2026, 6, 1, 9)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A data directory and an outbox: 40 customers messaged daily for 6 days, a fifth held out, some buying
    the next day."""
    base = tmp_path_factory.mktemp("report")
    data = base / "data"
    data.mkdir()
    (base / "rules.crm").write_text(RULES)
    customers = ["id,registered_at"] + [f"c{i:02d},2026-01-01T00:00:00" for i in range(40)]
    (data / "customers.csv").write_text("\n".join(customers) + "\n")
    orders, messages = ["id,customer_id,created_at,status,total"], []
    for day in range(6):
        due = START + timedelta(days=day)
        for i in range(40):
            campaign, channel = ("promo", "email") if i % 4 else ("nudge", "sms")
            status = "holdout" if i % 5 == 0 else "over_budget" if day == 5 and i > 30 else "delivered"
            messages.append(Message(id=f"{day}-{i}", campaign=campaign, customer_id=f"c{i:02d}", channel=channel,
                                    args={}, fired_at=due, due_at=due, status=status, updated_at=due))
            if (i + day) % 3 == 0:
                at = due + timedelta(hours=5 + i % 7)
                orders.append(f"o{day}-{i},c{i:02d},{at.isoformat()},paid,{10 + i}.50")
    (data / "orders.csv").write_text("\n".join(orders) + "\n")
    with open_outbox(base / "outbox.db") as outbox:
        outbox.insert_many(messages)
    return base


def invoke(shop, *args: str):
    return CliRunner().invoke(main, ["campaigns", "report", str(shop / "rules.crm"), "--data", str(shop / "data"),
                                     "--outbox", str(shop / "outbox.db"), "--as-of", "2026-06-30", *args])


def test_json_on_the_command_line(shop):
    result = invoke(shop, "--format", "json", "--window", "1d", "--cost", "sms=0.04")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"as_of", "window", "campaigns"} <= set(report) and report["window"] == "1d"
    promo = report["campaigns"]["promo"]
    assert promo["statuses"] == {"delivered": 138, "holdout": 36, "over_budget": 6}
    assert promo["sent"] == 138 and promo["holdout"] == 36
    assert promo["cost"] == "69.000000"  # its own cost: 138 × 0.5
    nudge = report["campaigns"]["nudge"]
    assert nudge["cost"] == f"{nudge['sent'] * 0.04:.6f}"  # --cost of its channel
    assert sum(slot["sent"] for slot in report["daily"]["promo"]) == 138


def test_table_and_files(shop, tmp_path):
    result = invoke(shop)
    assert result.exit_code == 0, result.output
    assert "promo" in result.output and "nudge" in result.output and "over budget" in result.output
    out = tmp_path / "report.json"
    assert invoke(shop, "--format", "json", "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())["as_of"] == "2026-06-30"


@pytest.mark.parametrize("window", ["0d", "soon", "-1d"])
def test_a_window_that_is_not_positive_is_a_usage_error(shop, window):
    result = invoke(shop, "--window", window)
    assert result.exit_code == 2, result.output
    assert "--window" in result.output and "Traceback" not in result.output


def test_bad_cost_and_missing_outbox_are_one_clear_error(shop, tmp_path):
    result = invoke(shop, "--cost", "email=free")
    assert result.exit_code == 1 and "email=free" in result.output
    result = CliRunner().invoke(main, ["campaigns", "report", str(shop / "rules.crm"), "--data", str(shop / "data"),
                                       "--outbox", str(tmp_path / "none.db")])
    assert result.exit_code == 1 and "no outbox" in result.output and not (tmp_path / "none.db").exists()


def test_the_page(shop, tmp_path):
    out = tmp_path / "report.html"
    result = invoke(shop, "--format", "html", "-o", str(out), "--window", "1d")
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>Campaign report (as of 2026-06-30)</title>" in page
    assert page.count('id="chart-promo"') == 1 and page.count('id="chart-nudge"') == 1
    rows = dict(re.findall(r'<tr data-campaign="(\w+)">(.*?)</tr>', page))
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows["promo"])
    assert cells[:2] == ["138", "36"] and cells[9] == "69.00"
    # the 95% interval column shows the JSON's Newcombe interval as percentages, and the page names its method
    shown = re.findall(r'<td data-value="([^"]*)">([^<]*)</td>', rows["promo"])[5]
    low, high = (Decimal(x) * 100 for x in shown[0].split(","))
    assert shown[1] == f"{low:,.2f}% … {high:,.2f}%" and "Wilson interval" in page
    assert "Spring &lt;promo&gt; &amp; more" in page and "Spring <promo>" not in page
    assert_self_contained(page)


def test_an_empty_report_is_a_page_without_charts():
    page = render_report_html({"as_of": "2026-06-30", "window": "14d", "campaigns": {}, "daily": {}})
    assert "No sent or held-out messages" in page and "plotly" not in page


def test_chromium_draws_the_charts(shop, tmp_path):
    chromium = chromium_or_skip()
    from PIL import Image

    page = tmp_path / "report.html"
    assert invoke(shop, "--format", "html", "-o", str(page), "--window", "1d").exit_code == 0
    url = page.resolve().as_uri()
    png = tmp_path / "report.png"
    shot = run_chromium(chromium, tmp_path / "chromium-1", f"--screenshot={png}", url)
    assert shot.returncode == 0 and png.exists(), shot.stderr[-3000:]
    image = Image.open(png).convert("RGB")
    # the bars of the sent group and of the holdout, in their two colours
    assert count_near(image, (0x63, 0x6E, 0xFA)) > 10_000
    assert count_near(image, (0xEF, 0x55, 0x3B)) > 2_000
    dom = run_chromium(chromium, tmp_path / "chromium-2", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-3000:]
    for name in ("promo", "nudge"):
        chart = re.search(rf'id="chart-{name}".*?</section>', dom.stdout, flags=re.DOTALL)
        assert chart and '<svg class="main-svg"' in chart.group(0), name
        assert 'class="point"' in chart.group(0) and "scatterlayer" in chart.group(0), name
