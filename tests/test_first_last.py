"""`first(...)` and `last(...)`: the value of a customer's earliest or latest row.

Rows are ordered by the table's time column; rows at the same instant by the row id as
text (orders: `id`; events have no id, so by the value itself), then by the value.
Rows without a time or without a value do not count; null without rows. Hand-computed
on a small fixture on every engine, then against pandas on (a sample of) CDNOW.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from engines import ENGINES, EngineData

import crmrules
from crmrules.context import evaluation_context

AS_OF = date(2026, 6, 30)
RULES = crmrules.load_text("""
attribute first_total = first(orders.total)
attribute last_total = last(orders.total)
attribute first_paid = first(orders.total where status == "paid")
attribute last_paid_channel = last(orders.channel where status == "paid")
attribute first_doubled = first(orders: total * 2 where status != "cancelled")
attribute last_created = last(orders.created_at)
attribute first_event = first(events.type)
attribute last_event = last(events: type where type != "visit")
segment big_first: first(orders.total) >= 100 and last(orders.total) < first(orders.total)
""")
NAMES = ["first_total", "last_total", "first_paid", "last_paid_channel", "first_doubled", "last_created",
         "first_event", "last_event"]


def order(oid, at, total, status="paid", channel=None):
    return {"id": oid, "created_at": at, "total": total, "status": status, "channel": channel}


PEOPLE = [
    # two orders at the first instant: "a10" < "a9" as text; the latest one is after `now`, so invisible
    {"id": "ana", "orders": [order("a9", "2026-01-01T10:00:00", "90.00", channel="web"),
                             order("a10", "2026-01-01T10:00:00", "110.00", "cancelled", "app"),
                             order("a2", "2026-03-01T10:00:00", "50.00", channel="app"),
                             order("a3", "2026-03-01T10:00:00", "70.00", "pending", "shop"),
                             order("a4", "2026-07-02T10:00:00", "999.00", channel="shop")],
     "events": [{"type": "visit", "at": "2026-02-01T09:00:00"}, {"type": "view", "at": "2026-02-01T09:00:00"},
                {"type": "cart", "at": "2026-05-01T09:00:00"}, {"type": "view", "at": "2026-05-01T09:00:00"}]},
    # an undated order has no place in time; a null total does not count; the channel is null
    {"id": "bo", "orders": [order("b1", None, "500.00"), order("b2", "2025-05-05T00:00:00", None),
                            order("b3", "2025-06-05T00:00:00", "120.00", channel=None),
                            order("b4", "2025-07-05T00:00:00", "20.00", "refunded", "web")]},
    {"id": "cy"},  # no rows: all null
]
EXPECTED = {
    "ana": {"first_total": Decimal("110.00"), "last_total": Decimal("50.00"), "first_paid": Decimal("90.00"),
            "last_paid_channel": "app", "first_doubled": Decimal("180.00"),
            "last_created": datetime(2026, 3, 1, 10), "first_event": "view", "last_event": "cart"},
    "bo": {"first_total": Decimal("120.00"), "last_total": Decimal("20.00"), "first_paid": Decimal("120.00"),
           "last_paid_channel": None, "first_doubled": Decimal("240.00"),
           "last_created": datetime(2025, 7, 5), "first_event": None, "last_event": None},
    "cy": dict.fromkeys(NAMES),
}


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    data = EngineData(request.param, PEOPLE, crmrules.default_schema(), request)
    yield data
    data.close()


def test_first_and_last_on_every_engine(engine):
    program = RULES.program_for(attributes=NAMES, segments=["big_first"])
    ctx = evaluation_context(AS_OF, program.schema)
    got = engine.values(program, NAMES, ctx)
    assert {c: {n: (v.normalize() if isinstance(v, Decimal) else v) for n, v in row.items()}
            for c, row in got.items()} == {c: {n: (v.normalize() if isinstance(v, Decimal) else v)
                                               for n, v in row.items()} for c, row in EXPECTED.items()}
    assert engine.members(program, ["big_first"], ctx) == {"big_first": ["ana", "bo"]}


@pytest.mark.parametrize("text, code", [
    ("first(order_items.category)", "E0219"),  # items have no time of their own
    ("last(orders)", "E0205"),
    ("count(orders where first(items.price) > 1)", "E0206"),  # only per customer
    ("first(orders.created_at) + 1", "E0301"),
])
def test_first_last_errors(text, code):
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text(f"attribute x = {text}\n").program_for(attributes=["x"])
    assert caught.value.code == code


# ------------------------------------------------------------------------------- CDNOW
CUSTOMERS = 1500  # the first customers of the file: every engine in a few seconds


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    """(data directory of the first CUSTOMERS customers, raw rows of them as a pandas frame)."""
    pd = pytest.importorskip("pandas")
    from test_realdata import CDNOW_DIR, _lifetimes, _module

    lifetimes = _lifetimes()
    prepare = _module(CDNOW_DIR / "prepare.py", "cdnow_prepare_first_last").prepare
    data = prepare(tmp_path_factory.mktemp("cdnow_first_last"), customers=CUSTOMERS)
    raw = pd.read_csv(Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt", sep=r"\s+", dtype=str)
    raw["row_no"] = range(1, len(raw) + 1)  # prepare.py: the order id is <customer>-<1-based data row>
    return data, raw[raw["customer_id"].isin(sorted(set(raw["customer_id"]))[:CUSTOMERS])]


def test_first_last_against_pandas_on_cdnow(cdnow):
    data, raw = cdnow
    frame = raw.assign(order_id=raw["customer_id"] + "-" + raw["row_no"].astype(str),
                       total=[Decimal(v) for v in raw["dollar_value"]])
    # earliest date, then smallest id as text; latest date, then smallest id as text
    first = frame.sort_values(["customer_id", "date", "order_id"]).groupby("customer_id").first()["total"]
    last = frame.sort_values(["date", "order_id"], ascending=[False, True]).sort_values(
        "customer_id", kind="stable").groupby("customer_id").first()["total"]
    assert (frame.groupby(["customer_id", "date"]).size() > 1).sum() > 10  # many same-day ties are decided
    rules = crmrules.load_text("attribute f = first(orders.total)\nattribute l = last(orders.total)\n")
    for backend in ("memory", "duckdb", "sqlite"):
        got = rules.values(data, ["f", "l", "first_order_value", "last_order_value"], backend=backend,
                           as_of=date(1998, 6, 30))
        assert len(got) == CUSTOMERS
        wrong = [c for c, row in got.items() if (row["f"], row["l"]) != (first[c], last[c])
                 or (row["first_order_value"], row["last_order_value"]) != (row["f"], row["l"])]
        assert not wrong, (backend, wrong[:3], [got[c] for c in wrong[:3]])

