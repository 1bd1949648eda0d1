"""The campaign report: each campaign's sent group against its holdout, computed next to the data.

A message is *sent* when its status is `ready`, `sending` or `delivered`, *held out* when `holdout`; the
report covers the messages due at or before its instant (`as_of`). A message *converts* when its
customer places a paid order (as the catalogue's `total_spent` counts orders) within the window after
its due instant, with the half-open window of `within`: `due < created_at <= due + window` (an order at the
very instant of the message does not count, one exactly a window later does). Orders dated after the
report's instant are invisible, as everywhere. The counting runs in SQL on the data's engine
(`report_sql.py`); here the counts become figures:

- `conversion_sent`, `conversion_holdout`: converted ÷ messages of the group (null for an empty group);
- `uplift` = conversion_sent − conversion_holdout; `relative_uplift` = uplift ÷ conversion_holdout;
- `uplift_ci`: the 95 % confidence interval of the uplift, Newcombe's hybrid score interval (1998, method 10)
  built from each group's Wilson score interval [lᵢ, uᵢ] (z = 1.959963984540054):
  [uplift − √((p₁ − l₁)² + (u₂ − p₂)²), uplift + √((u₁ − p₁)² + (p₂ − l₂)²)]; null when a group is empty.
  Unlike the Wald interval it stays inside [−1, 1] and keeps a width at 0 % or 100 % and in small groups;
- `revenue_sent`, `revenue_holdout`: revenue per message of the group, the revenue of a message being the
  totals of its converting orders (an order inside the windows of two messages counts for each);
- `incremental_revenue` = (revenue_sent − revenue_holdout) × sent;
- `cost` = sent × the cost of one message: the campaign's `cost:` field, else the `--cost` of its
  channel, else 0; `roi` = (incremental_revenue − cost) ÷ cost, null when the cost is 0.

Rates and money are decimal strings at the language's scale (6 places, half away from zero), as the
profile prints them, rounded once from exact intermediate figures; counts are integers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

from crmrules import ast
from crmrules.campaigns.budget import SPENDING
from crmrules.campaigns.messages import STATUSES
from crmrules.campaigns.outbox import open_outbox
from crmrules.campaigns.report_sql import run_report_query, stamp_text
from crmrules.compiler.pipeline import Program
from crmrules.context import EvaluationContext
from crmrules.errors import CrmRulesError, UnsupportedFeatureError
from crmrules.values import SCALE, shift

# the 97.5 % quantile of the standard normal distribution, to the digits of a double
Z_95 = Decimal("1.959963984540054")
_QUANTUM = Decimal(1).scaleb(-SCALE)
GROUPS = ("sent", "holdout")


def parse_window(text: str | ast.Duration) -> ast.Duration:
    """`14d`, `48h`, `1mo`: a positive duration of the language; a clear error otherwise."""
    if isinstance(text, ast.Duration):
        duration = text
    else:
        from crmrules.grammar import parse_expression

        try:
            node = parse_expression(str(text).strip(), "--window")
        except CrmRulesError:
            node = None
        duration = node.value if isinstance(node, ast.Literal) and isinstance(node.value, ast.Duration) else None
        if duration is None:
            raise CrmRulesError(f"`{text}` is not a duration", None, "write e.g. 14d, 48h or 1mo", code="E0002")
    if duration.amount <= 0:
        raise CrmRulesError(f"the window must be positive, not {duration}", None, "write e.g. 14d", code="E0002")
    return duration


def parse_costs(text: str | dict | None) -> dict[str, Decimal]:
    """`email=0.002,sms=0.04,coupon=5` (or a dict): the cost of one message per channel."""
    if not text:
        return {}
    pairs = text.items() if isinstance(text, dict) else (part.partition("=")[::2] for part in str(text).split(","))
    costs = {}
    for channel, value in pairs:
        channel = str(channel).strip()
        try:
            amount = Decimal(str(value).strip())
        except ArithmeticError:
            amount = None
        if not channel or amount is None or not amount.is_finite() or amount < 0:
            raise CrmRulesError(f"`{channel}={value}` is not a channel's cost", None,
                                "write e.g. email=0.002,sms=0.04,coupon=5", code="E0002")
        costs[channel] = amount
    return costs


def _rate(a, b) -> Decimal | None:
    """a ÷ b at full precision (null for b = 0): figures are rounded once, when shown."""
    if not b:
        return None
    with localcontext() as context:
        context.prec = 50
        return Decimal(a) / Decimal(b)


def _round(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_QUANTUM, rounding=ROUND_HALF_UP)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(_round(value))


def wilson_interval(converted: int, messages: int) -> tuple[Decimal, Decimal]:
    """The 95 % Wilson score interval of converted ÷ messages (messages > 0), unrounded:
    (2k + z² ∓ z·√(z² + 4k(n − k)/n)) ÷ (2(n + z²)), to 50 digits."""
    with localcontext() as context:
        context.prec = 50
        k, n, square = Decimal(converted), Decimal(messages), Z_95 * Z_95
        spread = Z_95 * (square + 4 * k * (n - k) / n).sqrt()
        return (2 * k + square - spread) / (2 * (n + square)), (2 * k + square + spread) / (2 * (n + square))


def uplift_interval(converted: tuple[int, int], messages: tuple[int, int]) -> tuple[Decimal, Decimal] | None:
    """The 95 % Newcombe hybrid score interval of p₁ − p₂ (see the module's docstring), or None when a group is
    empty: each side of the uplift widens by the two groups' Wilson distances that pull the difference that way."""
    (k1, k2), (n1, n2) = converted, messages
    if not n1 or not n2:
        return None
    with localcontext() as context:
        context.prec = 50
        p1, p2 = Decimal(k1) / n1, Decimal(k2) / n2
        (l1, u1), (l2, u2) = wilson_interval(k1, n1), wilson_interval(k2, n2)
        below = ((p1 - l1) ** 2 + (u2 - p2) ** 2).sqrt()
        above = ((u1 - p1) ** 2 + (p2 - l2) ** 2).sqrt()
        return _round(p1 - p2 - below), _round(p1 - p2 + above)


def figures(sent: int, holdout: int, converted: tuple[int, int], revenue: tuple[Decimal, Decimal],
            unit_cost: Decimal) -> dict:
    """The report's figures of one campaign from its counts (see the module's docstring)."""
    conv_sent, conv_holdout = _rate(converted[0], sent), _rate(converted[1], holdout)
    uplift = conv_sent - conv_holdout if conv_sent is not None and conv_holdout is not None else None
    relative = _rate(uplift, conv_holdout) if uplift is not None else None
    rev_sent, rev_holdout = _rate(revenue[0], sent), _rate(revenue[1], holdout)
    incremental = (rev_sent - rev_holdout) * sent if rev_sent is not None and rev_holdout is not None else None
    cost = unit_cost * sent
    roi = _rate(incremental - cost, cost) if incremental is not None else None
    interval = uplift_interval(converted, (sent, holdout))
    return {"sent": sent, "holdout": holdout, "converted_sent": converted[0], "converted_holdout": converted[1],
            "conversion_sent": _text(conv_sent), "conversion_holdout": _text(conv_holdout),
            "uplift": _text(uplift), "relative_uplift": _text(relative),
            "uplift_ci": None if interval is None else [str(interval[0]), str(interval[1])],
            "revenue_sent": _text(rev_sent), "revenue_holdout": _text(rev_holdout),
            "incremental_revenue": _text(incremental), "cost": _text(cost), "roi": _text(roi)}


def outbox_rows(box) -> list[tuple]:
    """(id, campaign, customer_id, channel, due_at, status) of every message of an outbox: what the report
    reads, without the action arguments (a lean read of a large outbox through its own connection)."""
    cursor = box.connection.execute("SELECT id, campaign, customer_id, channel, due_at, status FROM outbox")
    return cursor.fetchall()


def message_rows(messages, ctx: EvaluationContext, window: ast.Duration) -> tuple[list[tuple], dict, dict]:
    """The rows of the messages table (sent and held-out messages due by the report's instant) from
    `outbox_rows`, the statuses of every message due by then, {campaign: channel}."""
    rows, statuses, channels = [], defaultdict(Counter), {}
    edges: dict[object, tuple] = {}  # due_at as stored -> (due instant, its day, its text, the window's end)
    for key, campaign, customer, channel, stored, status in messages:
        edge = edges.get(stored)
        if edge is None:
            due = stored if isinstance(stored, datetime) else datetime.fromisoformat(stored)
            edge = edges[stored] = (due, due.date().isoformat(), stamp_text(due), stamp_text(shift(due, window, 1)))
        if edge[0] > ctx.instant:
            continue
        statuses[campaign][status] += 1
        channels.setdefault(campaign, channel)
        group = "sent" if status in SPENDING else "holdout" if status == "holdout" else None
        if group is not None:
            rows.append((key, campaign, customer, group, edge[1], edge[2], edge[3]))
    return rows, statuses, channels


def campaign_report(program: Program, data, outbox, ctx: EvaluationContext, window: str | ast.Duration = "14d",
                    cost: str | dict | None = None, backend: str | None = None,
                    warnings: list[str] | None = None) -> dict:
    """The report of every campaign of `program` (which has the catalogue's `total_spent`) and of any other
    campaign with messages in `outbox`: {"as_of", "window", "campaigns": {name: figures}, "daily"}."""
    from crmrules.backends.dispatch import open_data

    duration = parse_window(window)
    costs = parse_costs(cost)
    warnings = warnings if warnings is not None else []
    box = open_outbox(outbox, create=False) if not hasattr(outbox, "messages") else outbox
    try:
        messages = outbox_rows(box)
    finally:
        if box is not outbox:
            box.close()
    rows, statuses, channels = message_rows(messages, ctx, duration)
    with open_data(program, data, backend, warnings) as (engine, handle):
        if engine.takes != "sql":
            raise UnsupportedFeatureError("the campaign report runs on a SQL backend", None,
                                          "use --backend duckdb, sqlite, postgres or spark", code="E0402")
        counted = run_report_query(handle, program, ctx, duration, rows)
    names = list(program.campaigns) + sorted(set(statuses) - set(program.campaigns))
    for name in names:
        if name not in program.campaigns:
            warnings.append(f"campaign `{name}` has messages in the outbox but is not in the rules: reported "
                            "with the --cost of its channel")
    totals: dict[str, dict[str, list]] = {n: {g: [0, 0, Decimal(0)] for g in GROUPS} for n in names}
    daily: dict[str, dict[str, dict]] = {n: {} for n in names}
    for name, group, day, count, converted, revenue in counted:
        mine = totals[name][group]
        mine[0] += count
        mine[1] += converted
        mine[2] += revenue or 0
        slot = daily[name].setdefault(day, {"day": day, "sent": 0, "holdout": 0, "converted_sent": 0,
                                             "converted_holdout": 0})
        slot[group] += count
        slot[f"converted_{group}"] += converted
    campaigns = {}
    for name in names:
        decl = program.campaigns.get(name)
        channel = decl.action.kind if decl is not None else channels.get(name)
        unit = decl.cost if decl is not None and decl.cost is not None else costs.get(channel, Decimal(0))
        sent, held = totals[name]["sent"], totals[name]["holdout"]
        shown = figures(sent[0], held[0], (sent[1], held[1]), (sent[2], held[2]), unit)
        order = {status: index for index, status in enumerate(STATUSES)}
        shown["statuses"] = dict(sorted(statuses.get(name, {}).items(), key=lambda kv: order.get(kv[0], 99)))
        campaigns[name] = shown
    return {"as_of": _shown(ctx.as_of), "window": str(duration), "campaigns": campaigns,
            "daily": {name: [daily[name][day] for day in sorted(daily[name])] for name in names}}


def _shown(value: date | datetime) -> str:
    return value.isoformat()


def days(report: dict) -> list[str]:
    """Every day of the report's daily series, gaps filled, in order."""
    found = sorted({slot["day"] for series in report.get("daily", {}).values() for slot in series})
    if not found:
        return []
    first, last = date.fromisoformat(found[0]), date.fromisoformat(found[-1])
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


__all__ = ["campaign_report", "days", "figures", "parse_costs", "parse_window", "uplift_interval",
           "wilson_interval"]
