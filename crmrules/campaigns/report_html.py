"""The campaign report as one self-contained HTML page (plotly's JavaScript inlined once, no network needed),
in the style of the segment profile's page.

`render_report_html(report, titles)` takes the report dict of `campaigns.report` and returns the page: a
heading, a table of every campaign's figures, and per campaign a chart of its daily messages (bars) and
conversions (lines), sent group and holdout side by side.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal

from crmrules.campaigns.report import days
from crmrules.profile_html import CSS, SEGMENT_COLOURS

__all__ = ["render_report_html"]

GROUP_COLOURS = {"sent": SEGMENT_COLOURS[0], "holdout": SEGMENT_COLOURS[1]}
CONVERSION_COLOURS = {"sent": "#1a7f4b", "holdout": "#b3261e"}
EXTRA_CSS = """
td.none { color: #9aa3b2; }
td { white-space: nowrap; }
tbody th .title { display: block; font-size: 13px; font-weight: 400; }
.statuses { color: #4a5566; font-size: 13px; margin: 4px 0 10px; }
.formula { color: #6b7686; font-size: 13px; margin: 10px 0 0; }
"""
# the table's columns: (report key, label, kind)
COLUMNS = (("sent", "Sent", "count"), ("holdout", "Held out", "count"),
           ("conversion_sent", "Conversion, sent", "rate"), ("conversion_holdout", "Conversion, holdout", "rate"),
           ("uplift", "Uplift", "rate"), ("uplift_ci", "95% interval", "interval"),
           ("revenue_sent", "Revenue / message, sent", "money"),
           ("revenue_holdout", "Revenue / message, holdout", "money"),
           ("incremental_revenue", "Incremental revenue", "money"), ("cost", "Cost", "money"),
           ("roi", "ROI", "ratio"))


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _slug(name: str) -> str:
    """A string safe as an HTML id and inside plotly's generated JavaScript."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", str(name))


def _format(value, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "interval":
        return f"{_format(value[0], 'rate')} … {_format(value[1], 'rate')}"
    number = Decimal(str(value))
    if kind == "rate":
        return f"{number * 100:,.2f}%"
    if kind == "ratio":
        return f"{number:,.2f}×"
    return f"{number:,.2f}"


def _table(report: dict, titles: dict) -> str:
    head = '<th scope="col">Campaign</th>' + "".join(f'<th scope="col">{_e(label)}</th>' for _, label, _ in COLUMNS)
    rows = []
    for name, row in report.get("campaigns", {}).items():
        title = f'<span class="title">{_e(titles[name])}</span>' if titles.get(name) else ""
        cells = [f'<th scope="row"><span class="name">{_e(name)}</span> {title}</th>']
        for key, _, kind in COLUMNS:
            raw = row.get(key)
            shown = "" if raw is None else (",".join(raw) if isinstance(raw, list) else raw)
            css = ' class="none"' if raw is None else ""
            cells.append(f'<td{css} data-value="{_e(shown)}">{_e(_format(raw, kind))}</td>')
        rows.append(f'<tr data-campaign="{_e(name)}">' + "".join(cells) + "</tr>")
    return "<table>\n<thead><tr>" + head + "</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _figure(series: list[dict], axis: list[str]):
    import plotly.graph_objects as go

    by_day = {slot["day"]: slot for slot in series}
    figure = go.Figure()
    for group in ("sent", "holdout"):
        figure.add_trace(go.Bar(
            name=f"{group} messages", x=axis, y=[by_day.get(d, {}).get(group, 0) for d in axis],
            marker_color=GROUP_COLOURS[group],
            hovertemplate=f"%{{x}}<br>%{{y:,}} {group} messages<extra></extra>"))
    for group in ("sent", "holdout"):
        figure.add_trace(go.Scatter(
            name=f"{group}: converted", x=axis, y=[by_day.get(d, {}).get(f"converted_{group}", 0) for d in axis],
            mode="lines+markers", line={"color": CONVERSION_COLOURS[group], "width": 2},
            hovertemplate=f"%{{x}}<br>%{{y:,}} {group} messages converted<extra></extra>"))
    figure.update_layout(
        template="plotly_white", barmode="group", bargap=0.2, height=360,
        margin={"l": 60, "r": 20, "t": 10, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
        yaxis={"title": {"text": "messages"}, "rangemode": "tozero"},
        xaxis={"type": "category", "automargin": True},
        font={"family": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif", "size": 13})
    return figure


def render_report_html(report: dict, titles: dict | None = None) -> str:
    """The campaign report (`campaigns.report.campaign_report`) as one self-contained HTML page."""
    import plotly.io as pio  # imported here so that `import crmrules` stays fast

    titles = titles or {}
    axis = days(report)
    charts, first = [], True
    for name, series in report.get("daily", {}).items():
        if not series:
            continue
        plot = pio.to_html(_figure(series, axis), full_html=False, include_plotlyjs=first,
                           div_id=f"plot-{_slug(name)}", default_width="100%", default_height="360px",
                           config={"displaylogo": False, "responsive": True, "displayModeBar": False})
        first = False
        statuses = report["campaigns"].get(name, {}).get("statuses", {})
        listed = ", ".join(f"{_e(status.replace('_', ' '))}: {count:,}" for status, count in statuses.items())
        charts.append(f'<section class="card chart" id="chart-{_slug(name)}">\n<h2>{_e(name)}'
                      + (f' <span class="title">{_e(titles[name])}</span>' if titles.get(name) else "")
                      + f'</h2>\n<p class="statuses">{listed}</p>\n'
                      f'<p class="note">Messages due each day (bars) and those that converted (lines).</p>\n'
                      f"{plot}\n</section>")
    as_of, window = report.get("as_of", ""), report.get("window", "")
    page_title = f"Campaign report (as of {as_of})"
    none = "" if charts else '<section class="card"><p>No sent or held-out messages to chart.</p></section>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(page_title)}</title>
<style>{CSS}{EXTRA_CSS}</style>
</head>
<body>
<main>
<header>
<h1>Campaign report</h1>
<p class="as-of">As of <time datetime="{_e(as_of)}">{_e(as_of)}</time>; a message converts with a paid order
within {_e(window)} after it is due.</p>
</header>
<section class="card summary" id="summary">
<h2>Sent against holdout</h2>
{_table(report, titles)}
<p class="formula">Uplift = conversion of the sent group − conversion of the holdout; its 95% interval is
Newcombe's hybrid score interval from each group's Wilson interval [lᵢ, uᵢ]: uplift − √((p₁−l₁)² + (u₂−p₂)²) to
uplift + √((u₁−p₁)² + (p₂−l₂)²). Incremental revenue = (revenue per sent message − revenue per
held-out message) × sent. ROI = (incremental revenue − cost) ÷ cost.</p>
</section>
<div class="charts">
{chr(10).join(charts)}{none}
</div>
</main>
</body>
</html>
"""
