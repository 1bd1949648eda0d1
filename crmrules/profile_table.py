"""A segment profile printed as terminal tables with rich."""

from __future__ import annotations

from decimal import Decimal

METRICS = (("customers", "customers"), ("subscribers", "subscribers (email or SMS)"), ("buyers", "buyers"),
           ("orders", "paid orders"), ("revenue", "revenue"), ("aov", "AOV (客单价)"),
           ("repurchase_rate", "repurchase rate (复购率)"), ("avg_spend", "average spend per buyer"),
           ("avg_frequency", "average paid orders per buyer"), ("new_buyers", "new buyers (1 order)"),
           ("new_buyers_aov", "new buyers' AOV"), ("returning_buyers", "returning buyers (2+ orders)"),
           ("returning_buyers_aov", "returning buyers' AOV"))
# with --period: the figures of the paid orders placed within it (近30日)
PERIOD_METRICS = (("period_sales", "sales"), ("period_orders", "paid orders"), ("period_aov", "AOV"),
                  ("period_buyers", "buyers"), ("period_repurchase_rate", "repurchase rate (2+ orders)"),
                  ("period_new_buyers", "new buyers (新成交: first order ever)"),
                  ("period_new_sales", "new buyers' sales"),
                  ("period_returning_buyers", "returning buyers (老成交: ordered before)"),
                  ("period_returning_sales", "returning buyers' sales"))


def print_profile(profile: dict, console=None) -> None:
    """Print the summary and every distribution; names and values from the data are shown as they are
    (never read as markup, control characters escaped), and never cut when stdout is not a terminal."""
    from rich.table import Table

    from crmrules.cli.common import cell
    from crmrules.cli.common import console as stdout_console

    console = console or stdout_console()
    segments = profile["segments"]
    summary = Table(title=cell(f"profile of {' vs '.join(segments)} as of {profile['as_of']}"))
    summary.add_column("metric")
    for name in segments:
        summary.add_column(cell(name), justify="right")
    if len(segments) == 2:
        summary.add_column("difference", justify="right")
    period = profile.get("period")
    rows = [(key, label) for key, label in METRICS]
    if period is not None:
        rows += [(None, f"within {period['length']} (after {period['after'][:10]})")]
        rows += [(key, f"  {label}") for key, label in PERIOD_METRICS]
    for key, label in rows:
        if key is None:
            summary.add_section()
            summary.add_row(cell(label), *([""] * (len(summary.columns) - 1)))
            continue
        cells = [_show(key, profile["summary"][name][key]) for name in segments]
        if len(segments) == 2:
            cells.append(_show(key, profile["differences"][key], signed=True))
        summary.add_row(label, *cells)
    console.print(summary)
    for dimension, per_segment in profile["distributions"].items():
        table = Table(title=cell(dimension.replace("_", " ")))
        table.add_column(cell(dimension))
        for name in segments:
            table.add_column(cell(name), justify="right")
        keys = list(dict.fromkeys(k for name in segments for k in per_segment[name]))
        for key in keys:
            cells = []
            for name in segments:
                count = per_segment[name].get(key, 0)
                total = profile["summary"][name]["customers"] or 1
                cells.append(f"{count:,} ({100 * count / total:.1f}%)")
            table.add_row(cell(key), *cells)
        console.print(table)


def _show(key: str, value, signed: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:+,}" if signed else f"{value:,}"
    number = Decimal(value)
    if key.endswith("repurchase_rate"):
        return f"{number * 100:+.1f} pp" if signed else f"{number * 100:.1f}%"
    return f"{number:+,.2f}" if signed else f"{number:,.2f}"
