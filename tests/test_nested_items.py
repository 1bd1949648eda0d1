"""Aggregates over an order's own items inside a per-order value: `first(orders: top(items.category ...))`.

One level only: from the customer, `orders: VALUE` (and `orders where ...`) may aggregate the items of
that order with `count`, `sum`, `min`, `max`, `avg`, `distinct`, `any`, `none` and `top`. The items are
the order's, so they exist exactly when their order does (an order placed after `now` and its items
count nowhere). Hand-computed on a small fixture on every engine: ties (to the smallest value, as
`top` decides them everywhere), unpaid first orders, orders without items, orders after `now`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from engines import ENGINES, EngineData

import crmrules
from crmrules.context import evaluation_context

AS_OF = date(2026, 6, 30)
RULES = crmrules.load_text("""
attribute first_cat = first(orders: top(items.category by price * quantity) where status == "paid")
attribute last_cat = last(orders: top(items.category) where status == "paid")
attribute paid_lines = sum(orders: count(items) where status == "paid")
attribute biggest_basket = max(orders: sum(items: price * quantity))
attribute coat_led = count(orders where top(items.category by price * quantity) == "coat")
attribute dearest_first = first(orders: max(items.price where quantity > 0))
attribute fullest = max(orders: avg(items.quantity))
segment coat_first: first_cat == "coat"
""")
NAMES = ["first_cat", "last_cat", "paid_lines", "biggest_basket", "coat_led", "dearest_first", "fullest"]


def item(category, price, quantity=1):
    return {"category": category, "price": price, "quantity": quantity, "product_id": f"p-{category}"}


def order(oid, at, items, status="paid"):
    return {"id": oid, "created_at": at, "total": "1.00", "status": status,
            "items": [dict(i, order_id=oid) for i in items]}


PEOPLE = [
    # the first order is cancelled: the first paid one is led by coats (2 × 30 = 60 > 50)
    {"id": "ana", "orders": [order("a0", "2026-01-01T10:00:00", [item("hat", "500.00")], "cancelled"),
                             order("a1", "2026-01-05T10:00:00", [item("shoes", "50.00"), item("coat", "30.00", 2)]),
                             order("a2", "2026-03-01T10:00:00", [item("bag", "1000.00")])]},
    # a tie (20 = 2 × 10) goes to the smallest value: "belt"; the later order is a coat order, but pending
    {"id": "bo", "orders": [order("b1", "2026-02-01T00:00:00", [item("shirt", "20.00"), item("belt", "10.00", 2)]),
                            order("b2", "2026-02-02T00:00:00", [item("coat", "90.00")], "pending")]},
    # the first paid order has no items: its value is null, so (as every aggregate skips nulls) the next one counts
    {"id": "cy", "orders": [order("c1", "2026-01-01T00:00:00", []),
                            order("c2", "2026-02-01T00:00:00", [item("toy", "5.00"), item("toy", "6.00")])]},
    # the only paid order is placed after `now`: invisible, and its items with it
    {"id": "di", "orders": [order("d0", "2026-01-01T00:00:00", [item("hat", "9.00")], "cancelled"),
                            order("d9", "2026-07-05T00:00:00", [item("coat", "999.00", 3)])]},
    # a null price weighs nothing (its weight comes last), a null category is no value; quantity 0 is no price
    {"id": "ed", "orders": [order("e1", "2026-04-01T00:00:00", [item("sock", None, 5), item(None, "100.00"),
                                                                 item("cap", "3.00"), item("gem", "70.00", 0)])]},
    {"id": "fy"},  # no rows
]
EXPECTED = {
    "ana": {"first_cat": "coat", "last_cat": "bag", "paid_lines": 3, "biggest_basket": Decimal(1000),
            "coat_led": 1, "dearest_first": Decimal(500), "fullest": Decimal("1.5")},
    "bo": {"first_cat": "belt", "last_cat": "belt", "paid_lines": 2, "biggest_basket": Decimal(90),
           "coat_led": 1, "dearest_first": Decimal(20), "fullest": Decimal("1.5")},
    "cy": {"first_cat": "toy", "last_cat": "toy", "paid_lines": 2, "biggest_basket": Decimal(11),
           "coat_led": 0, "dearest_first": Decimal(6), "fullest": Decimal(1)},
    "di": {"first_cat": None, "last_cat": None, "paid_lines": 0, "biggest_basket": Decimal(9),
           "coat_led": 0, "dearest_first": Decimal(9), "fullest": Decimal(1)},
    "ed": {"first_cat": "cap", "last_cat": "cap", "paid_lines": 4, "biggest_basket": Decimal(103),
           "coat_led": 0, "dearest_first": Decimal(100), "fullest": Decimal("1.75")},
    "fy": {"first_cat": None, "last_cat": None, "paid_lines": 0, "biggest_basket": None, "coat_led": 0,
           "dearest_first": None, "fullest": None},
}


def _normal(rows):
    return {c: {n: (v.normalize() if isinstance(v, Decimal) else v) for n, v in row.items()} for c, row in rows.items()}


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    data = EngineData(request.param, PEOPLE, crmrules.default_schema(), request)
    yield data
    data.close()


def test_nested_item_aggregates_on_every_engine(engine):
    program = RULES.program_for(attributes=NAMES, segments=["coat_first"])
    ctx = evaluation_context(AS_OF, program.schema)
    assert _normal(engine.values(program, NAMES, ctx)) == _normal(EXPECTED)
    assert engine.members(program, ["coat_first"], ctx) == {"coat_first": ["ana"]}


def test_first_purchase_category_in_the_catalogue(engine):
    program = RULES.program_for(attributes=["first_purchase_category"])
    ctx = evaluation_context(AS_OF, program.schema)
    got = engine.values(program, ["first_purchase_category"], ctx)
    assert {c: row["first_purchase_category"] for c, row in got.items()} == {
        c: row["first_cat"] for c, row in EXPECTED.items()}


@pytest.mark.parametrize("text, code", [
    ("count(orders where first(items.price) > 1)", "E0206"),  # items have no time; first/last rank per customer
    ("sum(orders: count(events))", "E0203"),  # an order's own items only
    ("sum(orders: sum(items: count(orders)))", "E0203"),  # one level only
    ("top(events: top(items.category))", "E0203"),
])
def test_nested_errors(text, code):
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text(f"attribute x = {text}\n").program_for(attributes=["x"])
    assert caught.value.code == code
