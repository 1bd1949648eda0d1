"""The HTML segment-profile report: its content, its escaping, that it is self-contained, and that a real
headless Chromium draws its charts.

The Chromium test is skipped when `chromium` is not installed, unless CRMRULES_REQUIRE_ENGINES=1 (as `.ci/run`
sets), where it fails instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from crmrules.profile_html import render_html

DIMENSIONS = ["source", "lifecycle", "subscription_status", "spend_band", "preferred_category", "country", "rfm_class"]

SUMMARY_VIP = {
    "customers": 120, "subscribers": 80, "buyers": 110, "orders": 400, "revenue": "51234.500000",
    "aov": "128.086250", "repurchase_rate": "0.727273", "avg_spend": "465.768182", "avg_frequency": "3.636364",
    "new_buyers": 30, "new_buyers_aov": "98.000000", "returning_buyers": 80, "returning_buyers_aov": "131.000000",
}
SUMMARY_DORMANT = {
    "customers": 80, "subscribers": 20, "buyers": 40, "orders": 52, "revenue": "7311.200000",
    "aov": "140.600000", "repurchase_rate": "0.300000", "avg_spend": "182.780000", "avg_frequency": "1.300000",
    "new_buyers": 0, "new_buyers_aov": None, "returning_buyers": 40, "returning_buyers_aov": "140.600000",
}

DIST_VIP = {
    "source": {"organic": 50, "ads": 40, "(none)": 30},
    "lifecycle": {"active": 90, "at_risk": 20, "new": 10},
    "subscription_status": {"subscribed": 80, "unsubscribed": 30, "never": 10},
    "spend_band": {"0-100": 5, "100-500": 55, "500+": 60},
    "preferred_category": {"shoes": 40, "bags & <hats>": 35, "(none)": 45},
    "country": {"FR": 60, "DE": 35, "IT": 25},
    "rfm_class": {"champions": 70, "loyal": 40, "at_risk": 10},
}
DIST_DORMANT = {
    "source": {"organic": 20, "ads": 45, "(none)": 15},
    "lifecycle": {"lapsed": 60, "at_risk": 20},
    "subscription_status": {"subscribed": 20, "unsubscribed": 50, "never": 10},
    "spend_band": {"0": 40, "0-100": 25, "100-500": 15},
    "preferred_category": {"shoes": 10, "bags & <hats>": 5, "(none)": 65},
    "country": {"FR": 30, "DE": 30, "ES": 20},
    "rfm_class": {"hibernating": 50, "at_risk": 30},
}

XSS_TITLE = "Spent <script>alert('x')</script> a lot & more"


def one_segment_profile() -> dict:
    return {
        "as_of": "2026-06-30",
        "segments": ["vip"],
        "titles": {"vip": XSS_TITLE},
        "summary": {"vip": SUMMARY_VIP},
        "distributions": {d: {"vip": DIST_VIP[d]} for d in DIMENSIONS},
    }


def two_segment_profile() -> dict:
    differences = {}
    for key, first in SUMMARY_VIP.items():
        second = SUMMARY_DORMANT[key]
        if first is None or second is None:
            differences[key] = None
        elif isinstance(first, int):
            differences[key] = second - first
        else:
            from decimal import Decimal

            differences[key] = f"{Decimal(second) - Decimal(first):.6f}"
    return {
        "as_of": "2026-06-30",
        "segments": ["vip", "dormant"],
        "titles": {"vip": XSS_TITLE, "dormant": None},
        "summary": {"vip": SUMMARY_VIP, "dormant": SUMMARY_DORMANT},
        "differences": differences,
        "distributions": {d: {"vip": DIST_VIP[d], "dormant": DIST_DORMANT[d]} for d in DIMENSIONS},
    }


PLOTLY_BANNER = re.compile(r"plotly\.js v\d+\.\d+\.\d+")


def without_plotlyjs(page: str) -> str:
    """The page less the inlined plotly.js library (whose own text mentions URLs, "Difference", ...)."""
    scripts = [m for m in re.finditer(r"<script\b[^>]*>.*?</script>", page, flags=re.DOTALL) if PLOTLY_BANNER.search(m[0])]
    assert len(scripts) == 1, "plotly.js should be inlined exactly once"
    return page[: scripts[0].start()] + page[scripts[0].end():]


def assert_self_contained(page: str) -> None:
    # plotly.js itself is inlined, exactly once, and nothing is loaded from elsewhere
    assert len(PLOTLY_BANNER.findall(page)) == 1
    assert len(page) > 1_000_000
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", page, flags=re.IGNORECASE)
    assert not [t for t in tags if re.search(r"\b(?:src|href)\s*=", t, flags=re.IGNORECASE)], tags
    assert not re.search(r"""<script[^>]*src\s*=\s*["']?(?:https?:)?//""", page, flags=re.IGNORECASE)
    rest = without_plotlyjs(page)
    assert "http://" not in rest and "https://" not in rest and "cdn.plot.ly" not in rest


def test_one_segment_page():
    page = render_html(one_segment_profile())

    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Segment profile: vip (as of 2026-06-30)</title>" in page
    assert "2026-06-30" in page
    for dimension in DIMENSIONS:
        assert page.count(f'id="chart-{dimension}"') == 1, dimension
    # summary values, formatted, with the raw value kept alongside
    for shown in ["120", "80", "110", "400", "51,234.50", "128.09", "72.7%", "465.77", "3.64", "98.00", "131.00"]:
        assert f">{shown}</td>" in page, shown
    assert 'data-value="51234.500000"' in page
    assert "Difference" not in without_plotlyjs(page)
    # the title is escaped wherever it appears, never raw
    assert "<script>alert(" not in page
    assert html_escaped(XSS_TITLE) in page
    assert "bags & <hats>" not in page
    assert_self_contained(page)


def test_two_segment_page():
    page = render_html(two_segment_profile())

    assert "<title>Segment comparison: vip vs dormant (as of 2026-06-30)</title>" in page
    for dimension in DIMENSIONS:
        assert page.count(f'id="chart-{dimension}"') == 1, dimension
    assert "Difference" in without_plotlyjs(page)
    rows = dict(re.findall(r'<tr data-metric="(\w+)">(.*?)</tr>', page))
    assert set(rows) == set(SUMMARY_VIP)
    cells = {metric: re.findall(r"<td[^>]*>(.*?)</td>", row) for metric, row in rows.items()}
    assert cells["customers"] == ["120", "80", "-40"]
    assert cells["revenue"] == ["51,234.50", "7,311.20", "-43,923.30"]
    assert cells["aov"] == ["128.09", "140.60", "+12.51"]
    assert cells["repurchase_rate"] == ["72.7%", "30.0%", "-42.7 pp"]
    assert cells["new_buyers_aov"] == ["98.00", "—", "—"]
    assert cells["returning_buyers_aov"] == ["131.00", "140.60", "+9.60"]
    assert 'class="diff up"' in page and 'class="diff down"' in page
    # grouped bars: one trace per segment in each chart, in the two segment colours
    assert page.count('"barmode":"group"') == len(DIMENSIONS)
    assert page.count('"color":"#636efa"') == len(DIMENSIONS)
    assert page.count('"color":"#EF553B"') == len(DIMENSIONS)
    assert "<script>alert(" not in page
    assert html_escaped(XSS_TITLE) in page
    assert_self_contained(page)


def test_user_strings_are_escaped():
    profile = two_segment_profile()
    profile["segments"] = ["a<b&c", 'q"uote']
    profile["titles"] = {"a<b&c": "<img src=x onerror=alert(1)>", 'q"uote': "fine"}
    profile["summary"] = {"a<b&c": SUMMARY_VIP, 'q"uote': SUMMARY_DORMANT}
    profile["distributions"] = {
        d: {"a<b&c": DIST_VIP[d], 'q"uote': DIST_DORMANT[d]} for d in DIMENSIONS
    }
    profile["distributions"]["country"]["a<b&c"] = {"<b>bold</b>": 3, "FR": 5}
    page = render_html(profile)

    assert "a&lt;b&amp;c" in page and "q&quot;uote" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<title>Segment comparison: a&lt;b&amp;c vs q&quot;uote (as of 2026-06-30)</title>" in page
    # category values reach plotly html-escaped (plotly shows the entities as text) and JSON-escaped
    assert "<b>bold</b>" not in page
    assert '"&lt;b&gt;bold&lt;' in page  # then plotly's JSON escape of /
    assert_self_contained(page)


def test_shares_are_of_the_segments_customers_and_long_tails_are_grouped():
    profile = one_segment_profile()
    profile["distributions"] = {"country": {"vip": {f"C{i:02d}": 30 - i for i in range(25)} | {"(none)": 1}}}
    page = render_html(profile)

    assert 'id="chart-country"' in page and 'id="chart-source"' not in page
    data = re.search(r'"x":\[(.*?)\],"y":\[(.*?)\]', page)
    xs = [x.strip('"') for x in data.group(1).split(",")]
    ys = [float(y) for y in data.group(2).split(",")]
    assert len(xs) == 20 and xs[0] == "C00" and xs[-1] == "(other)"
    assert ys[0] == pytest.approx(100 * 30 / 120)  # % of the segment's 120 customers
    assert ys[-1] == pytest.approx(100 * (sum(30 - i for i in range(19, 25)) + 1) / 120)


def test_lifecycle_and_spend_bands_in_their_natural_order_other_values_largest_first():
    profile = two_segment_profile()
    # as crmrules.profile lists them: largest first
    profile["distributions"] = {
        "spend_band": {"vip": {"200-499": 50, "1000+": 30, "0": 20, "50-199": 15, "1-49": 5},
                       "dormant": {"0": 60, "500-999": 20}},
        "lifecycle": {"vip": {"active": 60, "lost": 30, "new": 20, "prospect": 10}, "dormant": {"dormant": 80}},
        "country": {"vip": {"FR": 60, "(none)": 50, "DE": 10}, "dormant": {"DE": 70, "ES": 10}},
    }
    page = render_html(profile)

    def axis(dimension):
        chart = re.search(rf'id="chart-{dimension}".*?</section>', page, flags=re.DOTALL).group(0)
        return [x.strip('"') for x in re.search(r'"x":\[(.*?)\]', chart).group(1).split(",")]

    assert axis("spend_band") == ["0", "1-49", "50-199", "200-499", "500-999", "1000+"]
    assert axis("lifecycle") == ["prospect", "new", "active", "dormant", "lost"]
    assert axis("country") == ["DE", "FR", "ES", "(none)"]


def test_period_figures_and_numeric_distributions():
    profile = two_segment_profile()
    period = {"period_sales": "1234.500000", "period_orders": 10, "period_aov": "123.450000", "period_buyers": 8,
              "period_repurchase_rate": "0.250000", "period_new_buyers": 3, "period_new_sales": "300.000000",
              "period_returning_buyers": 5, "period_returning_sales": "934.500000"}
    for name in profile["segments"]:
        profile["summary"][name] = {**profile["summary"][name], **period}
    profile["differences"] |= {key: 0 if isinstance(value, int) else "0.000000" for key, value in period.items()}
    profile["period"] = {"length": "30d", "after": "2026-05-31T23:59:59.999999", "until": "<b>"}
    profile["ordinal"] = ["age", "total_spent"]
    profile["distributions"] = {
        "age": {"vip": {"30–39": 50, "20–29": 40, "(none)": 30}, "dormant": {"40–49": 80}},
        "total_spent": {"vip": {"[500, 1000)": 70, "[0, 500)": 50}, "dormant": {"[1000, 1500)": 80}},
        "tier": {"vip": {"silver": 20, "gold": 110}, "dormant": {"silver": 80}},
    }
    page = render_html(profile)

    rows = dict(re.findall(r'<tr data-metric="(\w+)">(.*?)</tr>', page))
    assert set(period) <= set(rows)
    assert "Repurchase rate in the period (2+ orders)" in rows["period_repurchase_rate"]
    assert ">25.0%</td>" in rows["period_repurchase_rate"] and ">1,234.50</td>" in rows["period_sales"]
    assert 'id="period">Period: 30d, orders placed after' in page and "&lt;b&gt;" in page and "<b>" not in page

    def axis(dimension):
        chart = re.search(rf'id="chart-{dimension}".*?</section>', page, flags=re.DOTALL).group(0)
        return json.loads("[" + re.search(r'"x":\[(.*?)\]', chart).group(1) + "]")

    # numbers in their order, not largest first
    assert axis("age") == ["20–29", "30–39", "40–49", "(none)"]
    assert axis("total_spent") == ["[0, 500)", "[500, 1000)", "[1000, 1500)"]
    assert axis("tier") == ["gold", "silver"]


def test_profile_needs_one_or_two_segments():
    profile = one_segment_profile()
    for segments in ([], ["a", "b", "c"]):
        profile["segments"] = segments
        with pytest.raises(ValueError):
            render_html(profile)


def test_import_crmrules_does_not_load_plotly():
    code = "import sys, crmrules, crmrules.profile_html; assert 'plotly' not in sys.modules, 'plotly loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


# --- a real browser ------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,4000", "--virtual-time-budget=5000",
]


def chromium_or_skip() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CRMRULES_REQUIRE_ENGINES") == "1":
        pytest.fail("chromium is required (CRMRULES_REQUIRE_ENGINES=1) but not installed (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium) - the browser rendering test needs it")


def run_chromium(chromium: str, profile_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *args],
        check=False, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )


def count_near(image, colour: tuple[int, int, int], tolerance: int = 16) -> int:
    """How many pixels are within `tolerance` of `colour` on every channel."""
    colours = image.getcolors(maxcolors=image.width * image.height)
    return sum(n for n, pixel in colours if all(abs(a - b) <= tolerance for a, b in zip(pixel, colour)))


def test_chromium_draws_the_charts(tmp_path):
    chromium = chromium_or_skip()
    from PIL import Image

    page = tmp_path / "profile.html"
    page.write_text(render_html(two_segment_profile()), encoding="utf-8")
    url = page.resolve().as_uri()
    png = tmp_path / "profile.png"

    started = time.monotonic()
    shot = run_chromium(chromium, tmp_path / "chromium-profile-1", f"--screenshot={png}", url)
    seconds = time.monotonic() - started
    assert shot.returncode == 0, shot.stderr[-3000:]
    assert png.exists() and png.stat().st_size > 10_000, shot.stderr[-3000:]
    assert seconds < 60, f"the screenshot took {seconds:.1f}s"

    image = Image.open(png).convert("RGB")
    assert image.size == (1280, 4000)
    # bars in plotly's first two default colours: a blank page, or charts whose JS did not run, has ~none
    # (the legend swatches in the heading are 12x12 px)
    blue = count_near(image, (0x63, 0x6E, 0xFA))
    red = count_near(image, (0xEF, 0x55, 0x3B))
    assert blue > 50_000, f"only {blue} pixels of the first segment's bar colour"
    assert red > 50_000, f"only {red} pixels of the second segment's bar colour"
    # and the page is mostly light (background, cards), not a black or error page
    light = count_near(image, (0xF6, 0xF7, 0xFB), 10) + count_near(image, (0xFF, 0xFF, 0xFF), 10)
    assert light > image.width * image.height // 3

    dom = run_chromium(chromium, tmp_path / "chromium-profile-2", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-3000:]
    # plotly.js ran: it draws 3 <svg class="main-svg"> layers into each chart's plot div
    assert dom.stdout.count('<svg class="main-svg"') >= len(DIMENSIONS)
    for dimension in DIMENSIONS:
        chart = re.search(rf'id="chart-{dimension}".*?</section>', dom.stdout, flags=re.DOTALL)
        assert chart and '<svg class="main-svg"' in chart.group(0), dimension
        assert 'class="point"' in chart.group(0), dimension  # the bars themselves
