"""Hypothesis strategies for well-typed rules (as source text) and customers to evaluate them on.

Values are drawn from small pools full of boundaries (equal amounts, 100 vs
100.00 vs 100.01, timestamps exactly on window edges, nulls, empty histories)
so that generated rules often sit right on the cases backends get wrong.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

NOW = date(2026, 6, 30)
END_OF_DAY = datetime(2026, 6, 30, 23, 59, 59, 999999)

INTS = st.sampled_from([0, 1, 2, 5, 18, 30, 100, -3])
MONEY = st.sampled_from([Decimal("0"), Decimal("0.10"), Decimal("0.20"), Decimal("99.99"), Decimal("100"),
                         Decimal("100.00"), Decimal("100.01"), Decimal("150.5"), Decimal("-5"),
                         # every digit money holds, and halves that rounding to tens must take away from zero
                         Decimal("100.123457"), Decimal("-125"), Decimal("125.000000")])
STRINGS = st.sampled_from(["coat", "dress", "paid", "refunded", "PT", "", "Coat", "view", "add_to_cart",
                           # code-point order (B < a < é), ASCII-only regex classes, a no-break space
                           "B", "a", "école", "é", "z_9", "\u00a0"])
TIMESTAMPS = st.sampled_from([
    END_OF_DAY, END_OF_DAY - timedelta(days=30), END_OF_DAY - timedelta(days=30) + timedelta(microseconds=1),
    datetime(2026, 6, 1), datetime(2026, 5, 31, 23, 59, 59), datetime(2026, 7, 1), datetime(2025, 12, 31),
    datetime(2026, 6, 30, 0, 0), datetime(2020, 2, 29, 12)])
DATES = st.sampled_from([date(2000, 2, 29), date(2026, 6, 30), date(2026, 6, 1), date(1990, 1, 1)])
DURATIONS = st.sampled_from(["1d", "7d", "30d", "2w", "1mo", "6mo", "1y", "12h"])


def _nullable(values):
    return st.one_of(st.none(), values)


# ---------------------------------------------------------------- data
def orders_strategy():
    item = st.fixed_dictionaries({"category": _nullable(STRINGS), "quantity": _nullable(INTS),
                                  "price": _nullable(MONEY)})
    order = st.fixed_dictionaries({
        "id": st.sampled_from(["o1", "o2", "o3"]), "status": _nullable(st.sampled_from(["paid", "refunded"])),
        "total": _nullable(MONEY), "discount": _nullable(MONEY), "created_at": _nullable(TIMESTAMPS),
        "coupon": _nullable(STRINGS), "items": st.lists(item, max_size=3)})
    return st.lists(order, max_size=4)


def events_strategy():
    event = st.fixed_dictionaries({"type": _nullable(st.sampled_from(["view", "add_to_cart", "visit"])),
                                   "at": _nullable(TIMESTAMPS), "category": _nullable(STRINGS)})
    return st.lists(event, max_size=4)


def customers(ids=st.sampled_from(["00001", "00002", "c3"])):
    """One customer dict with orders (with items) and events, using default and extra test columns."""
    return st.fixed_dictionaries({
        "id": ids, "country": _nullable(STRINGS), "gender": _nullable(st.sampled_from(["female", "male"])),
        "points": _nullable(INTS), "email_subscribed": _nullable(st.booleans()),
        "tags": _nullable(st.lists(_nullable(STRINGS), max_size=3)), "birthday": _nullable(DATES),
        "registered_at": _nullable(TIMESTAMPS), "age": _nullable(INTS), "score": _nullable(MONEY),
        "vip": _nullable(st.booleans()), "orders": orders_strategy(), "events": events_strategy()})


# --------------------------------------------------------------- rules
def _lit_int():
    return INTS.map(str)


def _lit_money():
    return MONEY.map(str)


def _lit_string():
    return STRINGS.map(lambda s: '"' + s + '"')


def _lit_ts():
    return TIMESTAMPS.map(lambda ts: ts.isoformat())


def _order_condition():
    atoms = st.one_of(
        st.tuples(st.sampled_from(["total", "discount"]), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
                  _lit_money()).map(" ".join),
        # `status` is a closed column: a literal outside its values is an error, so draw from them
        st.tuples(st.just("status"), st.sampled_from(["==", "!="]),
                  st.sampled_from(['"paid"', '"refunded"', '"pending"'])).map(" ".join),
        st.tuples(st.just("coupon"), st.sampled_from(["==", "!="]), _lit_string()).map(" ".join),
        DURATIONS.map(lambda d: f"created_at within {d}"),
        st.sampled_from(["total is null", "coupon is not null", "created_at is null"]),
        _lit_string().map(lambda s: f"any(items where category == {s})"),
        # an order's own items, aggregated per order
        _lit_string().map(lambda s: f"top(items.category by price * quantity) == {s}"),
        _lit_money().map(lambda m: f"sum(items: price * quantity) > {m}"),
    )
    return st.recursive(atoms, lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: f"({p[0]} and {p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]} or {p[1]})"),
        inner.map(lambda p: f"not ({p})")), max_leaves=3)


def _event_condition():
    return st.one_of(
        st.sampled_from(['type == "view"', 'type == "add_to_cart"', "type is null"]),
        DURATIONS.map(lambda d: f"at within {d}"),
        st.tuples(_lit_string(), DURATIONS).map(lambda p: f"(category == {p[0]} and at within {p[1]})"))


def _numeric_value():
    where = _order_condition().map(lambda c: f" where {c}")
    maybe_where = st.one_of(st.just(""), where)
    return st.one_of(
        st.sampled_from(["points", "age", "score"]),
        maybe_where.map(lambda w: f"count(orders{w})"),
        st.tuples(st.sampled_from(["sum", "avg", "min", "max", "first", "last"]),
                  st.sampled_from(["total", "discount"]), maybe_where).map(lambda p: f"{p[0]}(orders.{p[1]}{p[2]})"),
        _event_condition().map(lambda c: f"count(events where {c})"),
        _lit_string().map(lambda s: f"count(order_items where category == {s})"),
        # arithmetic, division and modulo in every combination of int and decimal
        # (decimal × decimal is left out: SQLite refuses it rather than round)
        st.tuples(st.sampled_from(["points", "age", "score", "sum(orders.total)", "count(orders)",
                                   "avg(orders.total)", "max(orders.discount)"]),
                  st.sampled_from(["+", "-", "/", "%"]),
                  st.sampled_from(["points", "score", "3", "0", "2.5", "-1", "count(orders)"])).map(" ".join),
        st.tuples(st.sampled_from(["points", "age", "score", "sum(orders.total)"]),
                  st.sampled_from(["2", "-3", "points", "count(events)"])).map(lambda p: f"{p[0]} * {p[1]}"),
        # per-row values and population ranks
        st.tuples(st.sampled_from(["sum", "max", "avg", "count"]), _lit_string()).map(
            lambda p: f"{p[0]}(order_items: price * quantity where category != {p[1]})"),
        st.sampled_from(["ntile(3, points)", "ntile(2, sum(orders.total), among: count(orders) > 0)",
                         "ntile(4, max(orders.created_at), among: points > 1)", "ntile(5, score, among: vip)",
                         "ntile(2, count(events)) + ntile(3, age)", "score(3, points)",
                         "score(5, sum(orders.total), among: count(orders) > 0)", "score(4, -age, among: vip)",
                         "score(2, max(orders.created_at)) + ntile(2, max(orders.created_at))",
                         # ranked by a key that orders alike (the date, either way round)
                         "score(5, -days_since(max(orders.created_at)), among: count(orders) > 0)",
                         "ntile(3, days_since(registered_at)) + score(2, -days_since(birthday))",
                         "ntile(2, -score, among: vip) + score(3, -(-points))"]),
        st.sampled_from(["sum(order_items.quantity)", "max(order_items.price)", "days_since(registered_at)",
                         "days_since(max(orders.created_at))", "points + age", "score - points",
                         "points * 2", "score / 3", "age % 7", "-points", "coalesce(age, points, 0)",
                         "abs(score)", "round(score, 1)", "length(tags)", "month(birthday)",
                         'bucket("split", 3)', "days_until(anniversary(birthday))", 'days_until("02-29")',
                         "first(events: length(type))", "last(orders: total - discount where status != \"paid\")",
                         "max(orders: sum(items: price * quantity))", "sum(orders: count(items where quantity > 1))",
                         "first(orders: max(items.price) where status == \"paid\")",
                         # rounding to tens and past any digit a decimal holds; `%` by a fraction
                         "round(score, -1)", "round(score, -2)", "round(score, 100)", "round(score, -100)",
                         "score % 0.5", "score % 0.000001"]),
    )


def conditions():
    """Well-typed conditions over the default schema plus the test columns."""
    comparison = st.tuples(_numeric_value(), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
                           st.one_of(_lit_int(), _lit_money(), _numeric_value())).map(" ".join)
    atoms = st.one_of(
        comparison,
        st.tuples(_numeric_value(), _lit_int(), _lit_int()).map(lambda p: f"{p[0]} between {p[1]} and {p[2]}"),
        st.sampled_from(["vip", "email_subscribed", "points is null", "age is not null", "vip is null",
                         '"coat" in tags', '"coat" not in tags', 'tags contains "PT"',
                         'country in ["PT", "coat", ""]', 'country not in ["PT"]',
                         'lower(country) starts_with "c"', 'country contains "o"', 'country matches "^[A-Z]"',
                         'country matches "^\\\\w+$"', 'country matches "\\\\s"', 'country matches "^[\\\\w]*$"',
                         'country < "a"', 'country >= "é"', 'country > "Z"', 'min(orders.coupon) < "b"',
                         'gender == "female"', "birthday > 2000-01-01", "registered_at within 30d",
                         "birthday + 1y <= today", "registered_at > 2026-06-01",
                         "if(vip, points, age) > 1", 'top(order_items.category by price * quantity) == "coat"',
                         'top(events.category) == "coat"', "top(orders.status by total) is null",
                         'first(orders: top(items.category by price * quantity) where status == "paid") == "coat"',
                         'last(orders: top(items.category)) < "c"',
                         'top(orders.coupon where created_at within 30d) < "d"',
                         'concat(text(points), coalesce(country, "-")) == "5PT"', 'text(count(orders)) == "2"']),
        _order_condition().map(lambda c: f"any(orders where {c})"),
        _order_condition().map(lambda c: f"none(orders where {c})"),
        _event_condition().map(lambda c: f"any(events where {c})"),
        st.tuples(_lit_string()).map(lambda s: f"{s[0]} in distinct(order_items.category)"),
        DURATIONS.map(lambda d: f"max(orders.created_at) within {d}"),
    )
    return st.recursive(atoms, lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: f"({p[0]} and {p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]} or {p[1]})"),
        inner.map(lambda p: f"not ({p})"),
        inner.map(lambda p: f"({p}) is null"),
    ), max_leaves=4)
