"""The segment-profile report as one self-contained HTML page (plotly's JavaScript inlined, no network needed).

`render_html(profile)` takes the JSON-serialisable profile dict (one segment, or two side by side) and returns
the page: a heading, a summary table (with a difference column for two segments) and one bar chart per
distribution, in % of the segment's customers with the counts in the hover text.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["render_html"]

# plotly's default colorway, set explicitly so each segment keeps its colour in every chart
SEGMENT_COLOURS = ("#636efa", "#EF553B")

# summary metrics in display order: key -> (label, kind); unknown metrics are appended after these
METRICS: dict[str, tuple[str, str]] = {
    "customers": ("Customers", "count"),
    "subscribers": ("Subscribers", "count"),
    "buyers": ("Buyers", "count"),
    "orders": ("Orders", "count"),
    "revenue": ("Revenue", "money"),
    "aov": ("Average order value", "money"),
    "repurchase_rate": ("Repurchase rate", "rate"),
    "avg_spend": ("Average spend per buyer", "money"),
    "avg_frequency": ("Average orders per buyer", "number"),
    "new_buyers": ("New buyers", "count"),
    "new_buyers_aov": ("New buyers' AOV", "money"),
    "returning_buyers": ("Returning buyers", "count"),
    "returning_buyers_aov": ("Returning buyers' AOV", "money"),
    # with a period: the paid orders placed within it
    "period_sales": ("Sales in the period", "money"),
    "period_orders": ("Orders in the period", "count"),
    "period_aov": ("AOV in the period", "money"),
    "period_buyers": ("Buyers in the period", "count"),
    "period_repurchase_rate": ("Repurchase rate in the period (2+ orders)", "rate"),
    "period_new_buyers": ("New buyers in the period (first order ever)", "count"),
    "period_new_sales": ("New buyers' sales in the period", "money"),
    "period_returning_buyers": ("Returning buyers in the period (ordered before)", "count"),
    "period_returning_sales": ("Returning buyers' sales in the period", "money"),
}

DIMENSIONS: dict[str, str] = {
    "source": "Acquisition source",
    "lifecycle": "Lifecycle stage",
    "subscription_status": "Subscription status",
    "spend_band": "Spend band",
    "preferred_category": "Preferred category",
    "country": "Country",
    "rfm_class": "RFM class",
}
# dimensions whose values have a natural order (the profile lists every distribution largest first)
LIFECYCLE_ORDER = ("prospect", "new", "active", "at_risk", "dormant", "lost")
MAX_CATEGORIES = 20  # past this many values, the smallest are summed into "(other)"
OTHER = "(other)"

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 32px 40px 48px; background: #f6f7fb; color: #1f2733;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       font-size: 15px; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; }
header { margin-bottom: 24px; }
h1 { font-size: 26px; margin: 0 0 8px; font-weight: 650; }
h2 { font-size: 18px; margin: 0 0 12px; font-weight: 600; }
.segments { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 0; padding: 0; list-style: none; }
.segments li { display: flex; align-items: baseline; gap: 8px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; align-self: center; }
.name { font-weight: 600; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.title { color: #4a5566; }
.as-of { color: #6b7686; margin: 8px 0 0; }
section.card { background: #fff; border: 1px solid #e3e6ee; border-radius: 10px; padding: 20px 24px;
               margin-bottom: 20px; box-shadow: 0 1px 2px rgba(20, 30, 50, 0.04); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 7px 12px; border-bottom: 1px solid #edf0f5; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { font-weight: 600; color: #4a5566; border-bottom: 2px solid #dfe3eb; vertical-align: bottom; }
thead th .title { display: block; font-weight: 400; font-size: 13px; }
tbody tr:hover { background: #f8f9fc; }
td.diff { color: #4a5566; }
td.diff.up { color: #1a7f4b; }
td.diff.down { color: #b3261e; }
.charts { display: grid; grid-template-columns: 1fr; gap: 20px; }
.chart .note { color: #6b7686; font-size: 13px; margin: -6px 0 8px; }
"""


def render_html(profile: dict) -> str:
    """The segment profile (one segment, or two compared) as one self-contained HTML page."""
    import plotly.io as pio  # imported here so that `import crmrules` stays fast

    segments = [str(s) for s in profile.get("segments") or []]
    if not 1 <= len(segments) <= 2:
        raise ValueError(f"a profile has one or two segments, not {len(segments)}")
    as_of = profile.get("as_of")
    titles = profile.get("titles") or {}
    summary = profile.get("summary") or {}

    charts = []
    first = True
    ordinal = set(profile.get("ordinal") or ())  # `--by` numbers: values in their numeric order
    for dimension, per_segment in _ordered_dimensions(profile.get("distributions") or {}):
        figure = _bar_chart(dimension, per_segment, segments, summary, ordinal)
        plot = pio.to_html(
            figure,
            full_html=False,
            include_plotlyjs=first,  # the whole library inline, once, before the first chart
            div_id=f"plot-{_slug(dimension)}",
            default_width="100%",
            default_height="380px",
            config={"displaylogo": False, "responsive": True, "displayModeBar": False},
        )
        first = False
        label = DIMENSIONS.get(dimension, dimension.replace("_", " ").capitalize())
        charts.append(
            f'<section class="card chart" id="chart-{_slug(dimension)}">\n'
            f"<h2>{_e(label)}</h2>\n"
            f'<p class="note">Share of each segment\'s customers, in %; hover a bar for the count.</p>\n'
            f"{plot}\n</section>"
        )

    if len(segments) == 1:
        heading = f"Segment profile: {_e(segments[0])}"
        page_title = f"Segment profile: {segments[0]}"
    else:
        heading = f"Segment comparison: {_e(segments[0])} vs {_e(segments[1])}"
        page_title = f"Segment comparison: {segments[0]} vs {segments[1]}"
    if as_of:
        page_title += f" (as of {as_of})"

    segment_items = "\n".join(
        f'<li><span class="swatch" style="background:{SEGMENT_COLOURS[i]}"></span>'
        f'<span class="name">{_e(name)}</span>'
        + (f'<span class="title">{_e(titles[name])}</span>' if titles.get(name) else "")
        + "</li>"
        for i, name in enumerate(segments)
    )
    as_of_line = f'<p class="as-of">As of <time datetime="{_e(as_of)}">{_e(as_of)}</time></p>' if as_of else ""
    period = profile.get("period")
    if isinstance(period, dict):
        as_of_line += (f'<p class="as-of" id="period">Period: {_e(period.get("length"))}, orders placed after '
                       f'<time datetime="{_e(period.get("after"))}">{_e(period.get("after"))}</time> until '
                       f'<time datetime="{_e(period.get("until"))}">{_e(period.get("until"))}</time></p>')
    no_charts = "" if charts else '<section class="card"><p>No distributions in this profile.</p></section>'

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(page_title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>{heading}</h1>
<ul class="segments">
{segment_items}
</ul>
{as_of_line}
</header>
<section class="card summary" id="summary">
<h2>Summary</h2>
{_summary_table(segments, titles, summary, profile.get("differences") or {})}
</section>
<div class="charts">
{chr(10).join(charts)}{no_charts}
</div>
</main>
</body>
</html>
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _slug(name: str) -> str:
    """A string safe as an HTML id and inside plotly's generated JavaScript."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", str(name))


def _ordered_dimensions(distributions: dict) -> list[tuple[str, dict]]:
    known = [(d, distributions[d]) for d in DIMENSIONS if d in distributions]
    return known + [(str(d), v) for d, v in distributions.items() if d not in DIMENSIONS]


# --- the summary table ---------------------------------------------------------------------------------------


def _summary_table(segments: list[str], titles: dict, summary: dict, differences: dict) -> str:
    keys = list(METRICS)
    for name in segments:
        keys += [k for k in summary.get(name) or {} if k not in keys]
    two = len(segments) == 2

    head = ['<th scope="col">Metric</th>']
    for name in segments:
        title = f'<span class="title">{_e(titles[name])}</span>' if titles.get(name) else ""
        head.append(f'<th scope="col"><span class="name">{_e(name)}</span>{title}</th>')
    if two:
        head.append(f'<th scope="col">Difference<span class="title">'
                    f'{_e(segments[1])} − {_e(segments[0])}</span></th>')

    rows = []
    for key in keys:
        if not any(key in (summary.get(name) or {}) for name in segments):
            continue
        label, kind = METRICS.get(key, (key.replace("_", " ").capitalize(), "number"))
        cells = [f'<th scope="row">{_e(label)}</th>']
        for name in segments:
            raw = (summary.get(name) or {}).get(key)
            cells.append(f'<td data-value="{_e("" if raw is None else raw)}">{_format(raw, kind)}</td>')
        if two:
            raw = differences.get(key)
            number = _decimal(raw)
            trend = "" if number is None or number == 0 else (" up" if number > 0 else " down")
            cells.append(
                f'<td class="diff{trend}" data-value="{_e("" if raw is None else raw)}">'
                f"{_format(raw, kind, signed=True)}</td>"
            )
        rows.append(f'<tr data-metric="{_e(key)}">' + "".join(cells) + "</tr>")

    return (
        '<table>\n<thead><tr>' + "".join(head) + "</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
    )


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _format(value: Any, kind: str, signed: bool = False) -> str:
    """A metric for display: counts with separators, money and averages with 2 decimals, rates in %."""
    number = _decimal(value)
    if number is None:
        return "—" if value is None else _e(value)
    sign = "+" if signed and number > 0 else ""
    if kind == "count" and number == number.to_integral_value():
        return f"{sign}{int(number):,}"
    if kind == "rate":
        return f"{sign}{number * 100:,.1f}" + (" pp" if signed else "%")
    return f"{sign}{number:,.2f}"


# --- the charts ----------------------------------------------------------------------------------------------


def _bar_chart(dimension: str, per_segment: dict, segments: list[str], summary: dict, ordinal: set = frozenset()):
    import plotly.graph_objects as go

    counts = {name: _counts(per_segment.get(name) or {}) for name in segments}
    categories = _categories(dimension, counts, dimension in ordinal)
    figure = go.Figure()
    for i, name in enumerate(segments):
        seg_counts = dict(counts[name])
        if OTHER in categories and OTHER not in seg_counts:
            kept = set(categories)
            seg_counts[OTHER] = sum(c for v, c in seg_counts.items() if v not in kept)
        total = _total(summary.get(name) or {}, seg_counts)
        ys = [seg_counts.get(c, 0) for c in categories]
        shares = [100.0 * y / total if total else 0.0 for y in ys]
        figure.add_trace(
            go.Bar(
                name=_e(name),
                x=[_e(c) for c in categories],
                y=shares,
                customdata=[[y, total] for y in ys],
                marker_color=SEGMENT_COLOURS[i],
                hovertemplate=(
                    f"<b>{_e(name)}</b><br>%{{x}}<br>%{{y:.1f}}% of customers<br>"
                    "%{customdata[0]:,} of %{customdata[1]:,}<extra></extra>"
                ),
            )
        )
    figure.update_layout(
        template="plotly_white",
        barmode="group",
        bargap=0.25,
        bargroupgap=0.05,
        height=380,
        margin={"l": 60, "r": 20, "t": 10, "b": 60},
        showlegend=len(segments) == 2,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
        yaxis={"title": {"text": "% of customers"}, "ticksuffix": "%", "rangemode": "tozero"},
        xaxis={"type": "category", "automargin": True},
        font={"family": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif", "size": 13},
        hoverlabel={"align": "left"},
    )
    return figure


def _counts(values: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for value, count in values.items():
        number = _decimal(count)
        out[str(value)] = int(number) if number is not None else 0
    return out


def _total(segment_summary: dict, counts: dict[str, int]) -> int:
    customers = _decimal(segment_summary.get("customers"))
    if customers is not None and customers > 0:
        return int(customers)
    return sum(counts.values())


def _categories(dimension: str, counts: dict[str, dict[str, int]], numeric: bool = False) -> list[str]:
    """The values on the x axis: in their natural order for lifecycle stages, spend bands and numbers (bins by
    their lower bound), else the largest first (over both segments); "(none)" last."""
    order: list[str] = []
    totals: dict[str, int] = {}
    for seg_counts in counts.values():
        for value, count in seg_counts.items():
            if value not in totals:
                order.append(value)
                totals[value] = 0
            totals[value] += count
    order.sort(key=lambda v: (v in ("(none)", OTHER), _rank("spend_band" if numeric else dimension, v), -totals[v]))
    if len(order) > MAX_CATEGORIES:
        keep = sorted(order, key=lambda v: -totals[v])[: MAX_CATEGORIES - 1]
        order = [v for v in order if v in keep] + [OTHER]
    return order


def _rank(dimension: str, value: str) -> tuple:
    """Where an ordinal dimension's value goes: a lifecycle stage's position, a spend band's lower bound."""
    if dimension == "lifecycle":
        return (LIFECYCLE_ORDER.index(value),) if value in LIFECYCLE_ORDER else (len(LIFECYCLE_ORDER),)
    if dimension == "spend_band":
        bound = re.match(r"\[?\s*(-?\d+(?:\.\d+)?)", value)
        return (0, Decimal(bound.group(1))) if bound else (1, Decimal(0))
    return ()
