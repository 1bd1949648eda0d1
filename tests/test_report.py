"""The campaign report: figures against a hand-computed fixture and against an independent pandas computation on
generated data, on DuckDB, SQLite and PostgreSQL (the counting runs in SQL there); the JSON shape; bad input."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import crmrules
from crmrules.campaigns.messages import STATUSES, Message
from crmrules.campaigns.outbox import open_outbox
from crmrules.campaigns.report import figures, parse_window, uplift_interval
from crmrules.errors import CrmRulesError
from crmrules.values import divide

RULES = crmrules.load_text("""
campaign promo "Spring promo":
    trigger: daily at 09:00
    action: email(template: "promo")
    holdout: 10%
campaign other:
    trigger: daily at 09:00
    action: sms(template: "other")
    cost: 1
""")
KEYS = {"sent", "holdout", "converted_sent", "converted_holdout", "conversion_sent", "conversion_holdout", "uplift",
        "uplift_ci", "revenue_sent", "revenue_holdout", "incremental_revenue", "cost", "roi", "statuses"}
DUE = datetime(2026, 6, 10, 10)


def message(campaign: str, customer: str, due: datetime, status: str, channel: str = "email") -> Message:
    return Message(id=f"{campaign}-{customer}-{due:%m%d}", campaign=campaign, customer_id=customer, channel=channel,
                   args={}, fired_at=due, due_at=due, status=status, updated_at=due)


def order(number: int, at: datetime, total: str, status: str = "paid") -> dict:
    return {"id": f"o{number}", "created_at": at.isoformat(), "status": status, "total": total}


def person(customer: str, *orders: dict) -> dict:
    return {"id": customer, "registered_at": "2026-01-01T00:00:00", "orders": list(orders)}


# (window 2d, as of 2026-06-30): every edge of the conversion window, each group, statuses that are neither
PEOPLE = [
    person("c1", order(1, DUE, "100"), order(2, DUE + timedelta(hours=23), "50")),  # at the due instant: no
    person("c2", order(3, DUE + timedelta(days=2), "30"),  # exactly a window later: yes
           order(4, DUE + timedelta(days=2, seconds=1), "999")),  # just past it: no
    person("c3", order(5, DUE + timedelta(days=1), "70", "pending"), order(6, DUE - timedelta(days=1), "80")),
    person("c4", order(7, datetime(2026, 6, 21), "40"), order(8, datetime(2026, 6, 21, 12), "60")),
    person("c5", order(9, DUE + timedelta(days=1), "20")),
    person("c6"),
    person("c9", order(10, DUE + timedelta(hours=1), "500")),  # failed: not sent, its order counts for nothing
    person("c11", order(11, datetime(2026, 7, 1, 9), "15")),  # after the report's instant: invisible
]
MESSAGES = [
    message("promo", "c1", DUE, "ready"), message("promo", "c2", DUE, "delivered"),
    message("promo", "c3", DUE, "sending"), message("promo", "c4", datetime(2026, 6, 20, 10), "ready"),
    message("promo", "c11", datetime(2026, 6, 29, 10), "ready"),
    message("promo", "c5", DUE, "holdout"), message("promo", "c6", DUE, "holdout"),
    message("promo", "c7", DUE, "capped"), message("promo", "c8", DUE, "no_consent"),
    message("promo", "c9", DUE, "failed"), message("promo", "c10", datetime(2026, 7, 5, 9), "scheduled"),
    message("other", "c1", datetime(2026, 6, 15, 9), "ready", "sms"),
    message("gone", "c2", datetime(2026, 6, 15, 9), "ready"),
]


def outbox_with(path, messages) -> str:
    with open_outbox(path) as outbox:
        outbox.insert_many(messages)
    return str(path)


Z = 1.959963984540054


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval in its centre ± half-width form (the code solves the quadratic instead)."""
    p, shrink = k / n, 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / shrink
    half = Z / shrink * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Newcombe (1998), method 10: the difference of two proportions from their Wilson intervals."""
    (l1, u1), (l2, u2), p1, p2 = wilson(k1, n1), wilson(k2, n2), k1 / n1, k2 / n2
    return (p1 - p2 - math.hypot(p1 - l1, u2 - p2), p1 - p2 + math.hypot(u1 - p1, p2 - l2))


def expected_promo_interval() -> list[str]:
    low, high = newcombe(3, 5, 1, 2)
    return [f"{low:.6f}", f"{high:.6f}"]


@pytest.fixture(scope="module")
def postgres_data(postgres_url):
    """A PostgreSQL URL whose search path reaches a schema holding `people` (made per call)."""
    import psycopg
    from datasets import load_people

    from crmrules.backends.customer_data import prepare_customer
    from crmrules.backends.sql.transfer import to_postgres

    connection = psycopg.connect(postgres_url, autocommit=True)
    made = []

    def load(people: list[dict], name: str) -> str:
        schema = RULES.schema
        loaded = load_people([prepare_customer(p, schema) for p in people], schema)
        to_postgres(loaded, schema, connection, name)
        loaded.connection.close()
        made.append(name)
        return f"{postgres_url}?options=-csearch_path%3D{name}"

    yield load
    for name in made:
        connection.execute(f'DROP SCHEMA "{name}" CASCADE')
    connection.close()


def data_for(engine: str, people: list[dict], request, name: str):
    if engine == "postgres":
        return request.getfixturevalue("postgres_data")(people, name), None
    return people, engine


@pytest.mark.parametrize("engine", ["duckdb", "sqlite", "postgres"])
def test_hand_computed_figures(engine, tmp_path, request):
    outbox = outbox_with(tmp_path / "outbox.db", MESSAGES)
    data, backend = data_for(engine, PEOPLE, request, "report_fixture")
    warnings = []
    report = RULES.campaign_report(data, outbox, as_of="2026-06-30", window="2d", backend=backend,
                                   cost="email=0.5,sms=0.04", warnings=warnings)
    assert report["as_of"] == "2026-06-30" and report["window"] == "2d"
    assert list(report["campaigns"]) == ["promo", "other", "gone"]
    promo = report["campaigns"]["promo"]
    assert KEYS <= set(promo)
    # sent: c1 (50; not the order at the due instant), c2 (30, at due + 2d; not the one a second later), c3 (a
    # pending and an earlier order: no), c4 (40 + 60), c11 (its order is after the report's instant: no)
    assert {k: promo[k] for k in KEYS - {"uplift_ci"}} == {
        "sent": 5, "holdout": 2, "converted_sent": 3, "converted_holdout": 1,
        "conversion_sent": "0.600000", "conversion_holdout": "0.500000", "uplift": "0.100000",
        "revenue_sent": "36.000000", "revenue_holdout": "10.000000",
        "incremental_revenue": "130.000000", "cost": "2.500000", "roi": "51.000000",
        "statuses": {"ready": 3, "sending": 1, "delivered": 1, "failed": 1, "holdout": 2, "capped": 1,
                     "no_consent": 1}}
    assert promo["relative_uplift"] == "0.200000"
    assert promo["uplift_ci"] == expected_promo_interval()
    # the campaign's own `cost: 1` comes before --cost sms; no holdout: no uplift, no interval, no ROI
    assert report["campaigns"]["other"] == {
        "sent": 1, "holdout": 0, "converted_sent": 0, "converted_holdout": 0, "conversion_sent": "0.000000",
        "conversion_holdout": None, "uplift": None, "relative_uplift": None, "uplift_ci": None,
        "revenue_sent": "0.000000", "revenue_holdout": None, "incremental_revenue": None, "cost": "1.000000",
        "roi": None, "statuses": {"ready": 1}}
    # a campaign no longer in the rules: reported by name, with its channel's --cost, and a warning
    assert report["campaigns"]["gone"]["cost"] == "0.500000"
    assert (report["campaigns"]["gone"]["sent"], report["campaigns"]["gone"]["converted_sent"]) == (1, 0)
    assert any("`gone`" in w for w in warnings)
    assert report["daily"]["promo"][0] == {"day": "2026-06-10", "sent": 3, "holdout": 2, "converted_sent": 2,
                                           "converted_holdout": 1}


def test_the_window_is_half_open_at_both_edges(tmp_path):
    outbox = outbox_with(tmp_path / "outbox.db", [message("promo", "c1", DUE, "ready")])

    def converted(at: datetime) -> int:
        people = [person("c1", order(1, at, "10"))]
        return RULES.campaign_report(people, outbox, as_of="2026-06-30", window="1d",
                                     backend="duckdb")["campaigns"]["promo"]["converted_sent"]

    assert converted(DUE) == 0
    assert converted(DUE + timedelta(microseconds=1)) == 1
    assert converted(DUE + timedelta(days=1)) == 1
    assert converted(DUE + timedelta(days=1, microseconds=1)) == 0


def test_an_empty_outbox_reports_every_campaign_with_zeros(tmp_path):
    outbox = outbox_with(tmp_path / "outbox.db", [])
    report = RULES.campaign_report(PEOPLE, outbox, as_of="2026-06-30", backend="sqlite")
    assert set(report["campaigns"]) == {"promo", "other"}
    promo = report["campaigns"]["promo"]
    assert (promo["sent"], promo["conversion_sent"], promo["uplift_ci"], promo["cost"], promo["statuses"]) == \
        (0, None, None, "0.000000", {})


def test_bad_input():
    for text in ("0d", "abc", "-3d", "14"):
        with pytest.raises(CrmRulesError):
            parse_window(text)
    assert str(parse_window(" 48h ")) == "48h"
    with pytest.raises(CrmRulesError):
        RULES.campaign_report(PEOPLE, "/nonexistent/outbox.db", window="1d")
    with pytest.raises(CrmRulesError):
        RULES.campaign_report(PEOPLE, ":memory:", cost="email=cheap")
    with pytest.raises(CrmRulesError):
        RULES.campaign_report(PEOPLE, ":memory:", backend="memory")


def test_the_interval_formula():
    # Newcombe (1998), Table II, method 10, to the paper's 4 places: (56/70, 48/80) ... (10/10, 10/10)
    published = {(56, 70, 48, 80): (0.0524, 0.3339), (9, 10, 3, 10): (0.1705, 0.8090),
                 (6, 7, 2, 7): (0.0582, 0.8062), (5, 56, 0, 29): (-0.0381, 0.1926),
                 (0, 10, 0, 20): (-0.1611, 0.2775), (10, 10, 10, 10): (-0.2775, 0.2775)}
    for (k1, n1, k2, n2), interval in published.items():
        low, high = uplift_interval((k1, k2), (n1, n2))
        assert (float(low), float(high)) == pytest.approx(interval, abs=5e-5)
        assert (float(low), float(high)) == pytest.approx(newcombe(k1, n1, k2, n2), abs=1e-6)
    # to 6 places, checked against scipy's Wilson intervals (binomtest(...).proportion_ci(method="wilson"))
    # combined by hand: the fixture's promo, and the demo's vip_welcome (all 2 held-out customers converted,
    # where the Wald interval was a misleading -70.2 % ... -51.0 %)
    assert uplift_interval((3, 1), (5, 2)) == (Decimal("-0.448425"), Decimal("0.594108"))
    assert uplift_interval((39, 2), (99, 2)) == (Decimal("-0.696618"), Decimal("0.058892"))
    assert uplift_interval((0, 0), (0, 5)) is None and uplift_interval((1, 0), (3, 0)) is None


# n up to 10⁶: there a group at 0 % or 100 % keeps a Wilson width of z²/(n + z²) > 3.8e-6, wider than the
# 6-place rounding can close
counts = st.integers(1, 1_000_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@given(counts, counts)
def test_the_interval_is_a_difference_of_proportions(sent, holdout):
    (k1, n1), (k2, n2) = sent, holdout
    low, high = uplift_interval((k1, k2), (n1, n2))
    uplift = Decimal(figures(n1, n2, (k1, k2), (Decimal(0), Decimal(0)), Decimal(0))["uplift"])
    assert -1 <= low <= uplift <= high <= 1
    if k1 in (0, n1) or k2 in (0, n2):
        assert low < high
    assert (float(low), float(high)) == pytest.approx(newcombe(k1, n1, k2, n2), abs=2e-6)


# ------------------------------------------------------------------------------------- against pandas
def generated(seed: int) -> tuple[list[dict], list[Message]]:
    rng = random.Random(seed)
    start = datetime(2026, 6, 1)
    people, messages = [], []
    for index in range(120):
        key = f"p{index:03d}"
        orders = [order(index * 100 + n, start + timedelta(minutes=rng.randrange(0, 40 * 24 * 60)),
                        f"{rng.randrange(100, 30000) / 100:.2f}", rng.choice(["paid", "paid", "pending", "refunded"]))
                  for n in range(rng.randrange(0, 9))]
        if orders and rng.random() < 0.2:  # an order at the very instant of a message
            due = datetime.fromisoformat(orders[0]["created_at"])
        else:
            due = start + timedelta(hours=rng.randrange(0, 34 * 24))
        people.append(person(key, *orders))
        for n in range(rng.randrange(0, 3)):
            campaign = rng.choice(["promo", "other"])
            status = rng.choice(["ready", "delivered", "sending", "holdout", "holdout", "capped", "failed"])
            moment = due + timedelta(days=3 * n)
            messages.append(Message(id=f"{key}-{n}", campaign=campaign, customer_id=key,
                                    channel="email" if campaign == "promo" else "sms", args={}, fired_at=moment,
                                    due_at=moment, status=status, updated_at=moment))
    return people, messages


def pandas_report(people: list[dict], messages: list[Message], as_of: datetime, window: timedelta) -> dict:
    """The figures computed independently, with pandas, from the same rows (money in integer cents)."""
    import pandas as pd

    orders = pd.DataFrame([{"customer_id": p["id"], "at": pd.Timestamp(o["created_at"]), "status": o["status"],
                            "cents": round(Decimal(o["total"]) * 100)} for p in people for o in p["orders"]],
                          columns=["customer_id", "at", "status", "cents"])
    rows = pd.DataFrame([{"id": m.id, "campaign": m.campaign, "customer_id": m.customer_id, "status": m.status,
                          "due": pd.Timestamp(m.due_at)} for m in messages])
    rows = rows[rows["due"] <= pd.Timestamp(as_of)]
    rows = rows[rows["status"].isin(["ready", "sending", "delivered", "holdout"])]
    rows["group"] = rows["status"].map(lambda s: "holdout" if s == "holdout" else "sent")
    paid = orders[(orders["status"] == "paid") & (orders["at"] <= pd.Timestamp(as_of))]
    joined = rows.merge(paid, on="customer_id", how="left")
    inside = joined[(joined["at"] > joined["due"]) & (joined["at"] <= joined["due"] + window)]
    per_message = inside.groupby("id")["cents"].agg(["count", "sum"])
    rows = rows.join(per_message, on="id").fillna({"count": 0, "sum": 0})
    found = {}
    for (campaign, group), part in rows.groupby(["campaign", "group"]):
        found[(campaign, group)] = (len(part), int((part["count"] > 0).sum()), int(part["sum"].sum()))
    return found


@pytest.mark.parametrize("engine", ["duckdb", "sqlite", "postgres"])
@pytest.mark.parametrize("seed", [1, 2])
def test_figures_agree_with_pandas_on_generated_data(engine, seed, tmp_path, request):
    people, messages = generated(seed)
    outbox = outbox_with(tmp_path / "outbox.db", messages)
    data, backend = data_for(engine, people, request, f"report_generated_{seed}")
    report = RULES.campaign_report(data, outbox, as_of="2026-06-28", window="5d", backend=backend, cost="email=0.25")
    expected = pandas_report(people, messages, datetime(2026, 6, 28, 23, 59, 59, 999999), timedelta(days=5))
    checked = 0
    for name in ("promo", "other"):
        row = report["campaigns"][name]
        for group in ("sent", "holdout"):
            count, converted, cents = expected.get((name, group), (0, 0, 0))
            assert (row[group], row[f"converted_{group}"]) == (count, converted), (name, group)
            revenue = divide(Decimal(cents) / 100, count)
            assert row[f"revenue_{group}"] == (None if revenue is None else str(revenue)), (name, group)
            checked += converted
        statuses = {s: sum(1 for m in messages if m.campaign == name and m.status == s
                           and m.due_at <= datetime(2026, 6, 28, 23, 59, 59)) for s in STATUSES}
        assert row["statuses"] == {s: n for s, n in statuses.items() if n}
    assert checked > 5  # the data does convert: the comparison is not vacuous
    for name in ("promo", "other"):
        (n1, k1, _), (n2, k2, _) = (expected.get((name, group), (0, 0, 0)) for group in ("sent", "holdout"))
        shown = report["campaigns"][name]["uplift_ci"]
        if not n1 or not n2:
            assert shown is None
        else:
            assert [float(x) for x in shown] == pytest.approx(newcombe(k1, n1, k2, n2), abs=1e-6), name
    assert report["campaigns"]["promo"]["uplift_ci"] is not None  # both groups exist: not vacuous either
    promo = report["campaigns"]["promo"]
    assert promo["cost"] == str(Decimal("0.25") * promo["sent"] + Decimal("0.000000"))


def test_a_postgres_outbox(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS report_outbox CASCADE")
        connection.execute("CREATE SCHEMA report_outbox")
    url = postgres_url + "?options=-csearch_path%3Dreport_outbox"
    outbox_with(url, MESSAGES)
    report = RULES.campaign_report(PEOPLE, url, as_of="2026-06-30", window="2d", backend="duckdb",
                                   cost="email=0.5")
    promo = report["campaigns"]["promo"]
    assert (promo["sent"], promo["converted_sent"], promo["revenue_sent"], promo["roi"]) == (5, 3, "36.000000",
                                                                                            "51.000000")
