"""Segment profiles: the engine's one-query numbers against a direct pandas computation on the same files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crmrules
from crmrules.profile import MAX_EXACT, _bins

pd = pytest.importorskip("pandas")
ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 6, 30)
RULES = 'segment pt: country == "PT"\nsegment subscribers: email_subscribed\n'


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shop")
    subprocess.run([sys.executable, str(ROOT / "examples/shop/generate.py"), str(out), "--customers", "600",
                    "--seed", "3"], check=True, capture_output=True)
    return out


def pandas_view(shop: Path) -> pd.DataFrame:
    """One row per customer with what a profile reads, computed with pandas alone."""
    customers = pd.read_csv(shop / "customers.csv", dtype=str, keep_default_na=False, na_values=[""])
    orders = pd.read_csv(shop / "orders.csv", dtype=str, keep_default_na=False, na_values=[""])
    items = pd.read_csv(shop / "order_items.csv", dtype=str, keep_default_na=False, na_values=[""])
    end = datetime(2026, 6, 30, 23, 59, 59, 999999)
    orders["created_at"] = pd.to_datetime(orders["created_at"])
    orders = orders[orders["created_at"] <= end]
    orders["cents"] = orders["total"].map(lambda v: int(Decimal(v) * 100))
    paid = orders[orders["status"] == "paid"]
    per = paid.groupby("customer_id").agg(order_count=("id", "size"), cents=("cents", "sum"),
                                          last=("created_at", "max"), first=("created_at", "min"))
    view = customers.set_index("id").join(per, how="left")
    view["order_count"] = view["order_count"].fillna(0).astype(int)
    view["cents"] = view["cents"].fillna(0).astype(int)
    view["subscribed"] = (view["email_subscribed"] == "true") | (view["sms_subscribed"] == "true")
    days = (pd.Timestamp(AS_OF) - view["last"].dt.normalize()).dt.days
    first_days = (pd.Timestamp(AS_OF) - view["first"].dt.normalize()).dt.days

    def lifecycle(row_days, count, first):
        if count == 0:
            return "prospect"
        if row_days >= 180:
            return "lost"
        if row_days >= 60:
            return "dormant"
        if row_days >= 30:
            return "at_risk"
        return "new" if count == 1 and first < 30 else "active"

    view["lifecycle"] = [lifecycle(d, c, f) for d, c, f in zip(days, view["order_count"], first_days)]
    bands = [(0, "0"), (5000, "1-49"), (20000, "50-199"), (50000, "200-499"), (100000, "500-999")]
    view["spend_band"] = [next((label for limit, label in bands if (c <= 0 if limit == 0 else c < limit)), "1000+")
                          for c in view["cents"]]
    email, sms = view["email_subscribed"] == "true", view["sms_subscribed"] == "true"
    view["subscription_status"] = [("email+sms" if s else "email") if e else ("sms" if s else "none")
                                   for e, s in zip(email, sms)]
    lines = items.merge(orders[["id", "customer_id"]], left_on="order_id", right_on="id")
    lines = lines[lines["category"].notna()]
    lines["spend"] = [Decimal(p) * int(q) for p, q in zip(lines["price"], lines["quantity"])]
    by_category = lines.groupby(["customer_id", "category"])["spend"].sum().reset_index()
    by_category = by_category.sort_values(["customer_id", "spend", "category"], ascending=[True, False, True])
    view["preferred_category"] = by_category.drop_duplicates("customer_id").set_index("customer_id")["category"]
    return view


def money(cents: int, count: int) -> str | None:
    if not count:
        return None
    return str((Decimal(cents) / 100 / count).quantize(Decimal("0.000001"), rounding="ROUND_HALF_UP"))


@pytest.mark.parametrize("backend", ["duckdb", "sqlite"])
def test_profile_matches_pandas(shop, backend):
    rules = crmrules.load_text(RULES)
    profile = rules.profile(shop, "pt", vs="subscribers", backend=backend, as_of=AS_OF)
    view = pandas_view(shop)
    members = {"pt": view[view["country"] == "PT"], "subscribers": view[view["email_subscribed"] == "true"]}
    for name, rows in members.items():
        buyers = rows[rows["order_count"] > 0]
        new, returning = rows[rows["order_count"] == 1], rows[rows["order_count"] >= 2]
        orders, cents = int(rows["order_count"].sum()), int(rows["cents"].sum())
        got = profile["summary"][name]
        assert got["customers"] == len(rows)
        assert got["subscribers"] == int(rows["subscribed"].sum())
        assert got["buyers"] == len(buyers)
        assert got["orders"] == orders
        assert got["revenue"] == str((Decimal(cents) / 100).quantize(Decimal("0.000001")))
        assert got["aov"] == money(cents, orders)
        assert got["avg_spend"] == money(cents, len(buyers))
        assert got["new_buyers"] == len(new) and got["returning_buyers"] == len(returning)
        assert got["new_buyers_aov"] == money(int(new["cents"].sum()), len(new))
        assert got["returning_buyers_aov"] == money(int(returning["cents"].sum()), int(returning["order_count"].sum()))
        rate = Decimal(len(returning)) / len(buyers)
        assert got["repurchase_rate"] == str(rate.quantize(Decimal("0.000001"), rounding="ROUND_HALF_UP"))
        for dimension in ("source", "country", "subscription_status", "spend_band", "lifecycle", "preferred_category"):
            counts = rows[dimension].fillna("(none)").value_counts().to_dict()
            assert profile["distributions"][dimension][name] == {k: int(v) for k, v in counts.items()}, dimension
    differences = profile["differences"]
    assert differences["customers"] == profile["summary"]["subscribers"]["customers"] - len(members["pt"])


def test_profile_cli_json_and_html(shop, tmp_path):
    def crmrules_cli(*args):
        return subprocess.run([sys.executable, "-m", "crmrules", *args], check=False, capture_output=True, text=True,
                              cwd=ROOT)

    rules = tmp_path / "r.crm"
    rules.write_text(RULES)
    result = crmrules_cli("profile", str(rules), "--segment", "pt", "--data", str(shop), "--as-of", "2026-06-30",
                          "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["segments"] == ["pt"]
    result = crmrules_cli("profile", str(rules), "--segment", "pt", "--data", str(shop), "--as-of", "2026-06-30",
                          "--format", "json", "--period", "30d", "--by", "tier", "--by", "age", "--backend", "memory")
    assert result.returncode == 0, result.stderr
    report_json = json.loads(result.stdout)
    assert report_json["period"]["length"] == "30d" and "period_new_buyers" in report_json["summary"]["pt"]
    assert set(report_json["distributions"]) >= {"tier", "age", "lifecycle"}
    report = tmp_path / "pt.html"
    result = crmrules_cli("profile", str(rules), "--segment", "pt", "--vs", "dormant", "--data", str(shop),
                          "--as-of", "2026-06-30", "--format", "html", "-o", str(report))
    assert result.returncode == 0, result.stderr
    assert "chart-lifecycle" in report.read_text()
    result = crmrules_cli("profile", str(rules), "--segment", "nobody", "--data", str(shop))
    assert result.returncode == 1 and "unknown segment `nobody`" in result.stderr
    table = crmrules_cli("profile", "--segment", "dormant", "--data", str(shop), "--as-of", "2026-06-30")
    assert table.returncode == 0, table.stderr
    assert "repurchase rate" in table.stdout and "lifecycle" in table.stdout
    table = crmrules_cli("profile", "--segment", "dormant", "--data", str(shop), "--as-of", "2026-06-30",
                         "--period", "4w", "--by", "tier")
    assert table.returncode == 0, table.stderr
    assert "within 4w (after 2026-06-02)" in table.stdout and "老成交" in table.stdout and "tier" in table.stdout
    wrong = crmrules_cli("profile", "--segment", "dormant", "--data", str(shop), "--period", "soon")
    assert wrong.returncode == 1 and "`soon` is not a period" in wrong.stderr and "Traceback" not in wrong.stderr


PERIOD_START = datetime(2026, 5, 31, 23, 59, 59, 999999)  # 30d before the end of 2026-06-30, open edge


def pandas_period(shop: Path) -> pd.DataFrame:
    """Per customer, the paid orders placed within the 30 days ending 2026-06-30 and whether the first paid
    order ever is among them, with pandas alone."""
    orders = pd.read_csv(shop / "orders.csv", dtype=str, keep_default_na=False, na_values=[""])
    orders["created_at"] = pd.to_datetime(orders["created_at"])
    paid = orders[(orders["status"] == "paid") & (orders["created_at"] <= datetime(2026, 6, 30, 23, 59, 59, 999999))]
    paid = paid.assign(cents=paid["total"].map(lambda v: int(Decimal(v) * 100)))
    first = paid.groupby("customer_id")["created_at"].min()
    inside = paid[paid["created_at"] > PERIOD_START]
    per = inside.groupby("customer_id").agg(period_orders=("id", "size"), period_cents=("cents", "sum"))
    per["first_inside"] = first.reindex(per.index) > PERIOD_START
    return per


@pytest.mark.parametrize("backend", ["duckdb", "sqlite", "memory"])
def test_period_figures_match_pandas(shop, backend):
    rules = crmrules.load_text(RULES)
    profile = rules.profile(shop, "pt", vs="subscribers", backend=backend, as_of=AS_OF, period="30d")
    view, period = pandas_view(shop), pandas_period(shop)
    assert profile["period"] == {"length": "30d", "after": "2026-05-31T23:59:59.999999",
                                 "until": "2026-06-30T23:59:59.999999"}
    members = {"pt": view[view["country"] == "PT"], "subscribers": view[view["email_subscribed"] == "true"]}
    for name, rows in members.items():
        mine = period[period.index.isin(rows.index)]
        new, returning = mine[mine["first_inside"]], mine[~mine["first_inside"]]
        got = profile["summary"][name]
        assert got["period_buyers"] == len(mine) > 0
        assert got["period_orders"] == int(mine["period_orders"].sum())
        assert got["period_sales"] == str((Decimal(int(mine["period_cents"].sum())) / 100).quantize(Decimal("0.000001")))
        assert got["period_aov"] == money(int(mine["period_cents"].sum()), int(mine["period_orders"].sum()))
        repeat = Decimal(int((mine["period_orders"] >= 2).sum())) / len(mine)
        assert got["period_repurchase_rate"] == str(repeat.quantize(Decimal("0.000001"), rounding="ROUND_HALF_UP"))
        assert got["period_new_buyers"] == len(new) and got["period_returning_buyers"] == len(returning)
        assert got["period_new_buyers"] + got["period_returning_buyers"] == got["period_buyers"]
        assert Decimal(got["period_new_sales"]) == Decimal(int(new["period_cents"].sum())) / 100
        assert Decimal(got["period_returning_sales"]) == Decimal(int(returning["period_cents"].sum())) / 100
        # the lifetime figures are still there, unchanged by the period
        assert got["orders"] == int(rows["order_count"].sum())


@pytest.mark.parametrize("backend", ["duckdb", "sqlite", "memory"])
def test_distributions_by_any_attribute(shop, backend):
    rules = crmrules.load_text(RULES + "attribute big_spender = total_spent >= 500\n")
    by = ["tier", "age", "order_count", "total_spent", "big_spender", "city"]
    profile = rules.profile(shop, "pt", vs="subscribers", backend=backend, as_of=AS_OF, by=by)
    view = pandas_view(shop)
    members = {"pt": view[view["country"] == "PT"], "subscribers": view[view["email_subscribed"] == "true"]}
    assert profile["by"] == by and set(profile["ordinal"]) == {"age", "order_count", "total_spent"}
    for name, rows in members.items():
        got = {d: profile["distributions"][d][name] for d in by}
        for dimension in by:
            assert sum(got[dimension].values()) == len(rows), dimension
        assert got["tier"] == {k: int(v) for k, v in rows["tier"].fillna("(none)").value_counts().items()}
        assert got["big_spender"] == {k: int(v) for k, v in
                                      (rows["cents"] >= 50000).map({True: "true", False: "false"}).value_counts().items()}
        # few whole numbers: each value, in order
        counts = rows["order_count"].value_counts()
        assert got["order_count"] == {str(k): int(counts[k]) for k in sorted(counts.index)}
        # money in round bins [a, b), in order, each customer in the bin holding their spend
        edges = [(Decimal(m[1]), Decimal(m[2])) for m in
                 (re.fullmatch(r"\[(\d+), (\d+)\)", key) for key in got["total_spent"])]
        assert edges == sorted(edges) and all(b - a == edges[0][1] - edges[0][0] for a, b in edges)
        for (low, high), count in zip(edges, got["total_spent"].values()):
            assert count == int(((rows["cents"] >= low * 100) & (rows["cents"] < high * 100)).sum())
    city = profile["distributions"]["city"]["subscribers"]
    assert len(city) <= 11 and list(city.values())[:-1] == sorted(list(city.values())[:-1], reverse=True)


def test_profile_is_the_same_on_every_engine(shop):
    rules = crmrules.load_text(RULES)
    asked = {"vs": "subscribers", "as_of": AS_OF, "period": "30d", "by": ["tier", "age", "total_spent", "rfm_f"]}
    expected = rules.profile(shop, "pt", backend="memory", **asked)
    for backend in ("duckdb", "sqlite", "interpreter"):
        assert rules.profile(shop, "pt", backend=backend, **asked) == expected, backend


def test_segments_named_like_the_profile_own_columns(shop):
    rules = crmrules.load_text('segment by_0: country == "PT"\nsegment period_orders: email_subscribed\n'
                               'segment pt: country == "PT"\nsegment subscribers: email_subscribed\n')
    asked = {"as_of": AS_OF, "period": "30d", "by": ["tier", "age"]}
    got = rules.profile(shop, "by_0", vs="period_orders", backend="duckdb", **asked)
    assert got == rules.profile(shop, "by_0", vs="period_orders", backend="memory", **asked)
    expected = rules.profile(shop, "pt", vs="subscribers", backend="duckdb", **asked)
    assert got["summary"]["by_0"] == expected["summary"]["pt"]
    assert got["distributions"]["age"]["period_orders"] == expected["distributions"]["age"]["subscribers"]


def test_period_and_by_mistakes_are_clear(shop):
    rules = crmrules.load_text(RULES)
    with pytest.raises(crmrules.CrmRulesError, match="`30x` is not a period") as error:
        rules.profile(shop, "pt", as_of=AS_OF, period="30x")
    assert error.value.code == "E0002"
    with pytest.raises(crmrules.CrmRulesError, match="unknown name `tierr`"):
        rules.profile(shop, "pt", as_of=AS_OF, by=["tierr"])
    with pytest.raises(crmrules.CrmRulesError, match="cannot group by `tags`"):
        rules.profile(shop, "pt", as_of=AS_OF, by=["tags"])
    with pytest.raises(crmrules.CrmRulesError, match="cannot group by `first_order_at`"):
        rules.profile(shop, "pt", as_of=AS_OF, by=["first_order_at"])


@settings(max_examples=300, deadline=None)
@given(st.integers(-10**6, 10**6), st.integers(0, 10**6), st.booleans(), st.integers(0, 6))
def test_bins_cover_every_value_once(low, width, whole, places):
    scale = Decimal(1) if whole else Decimal(10) ** -places
    low, high = Decimal(low) * scale, (Decimal(low) + width) * scale
    bins = _bins(low, high, MAX_EXACT + 1, whole)
    assert 1 <= len(bins) <= 11 and bins[-1][0] is None
    edges = [edge for edge, _ in bins[:-1]]
    assert edges == sorted(edges) and (not edges or edges[0] > low and edges[-1] <= high)
    assert len({label for _, label in bins}) == len(bins)


def test_profile_is_the_same_on_postgres_and_spark(shop, postgres_url, spark, tmp_path):
    import psycopg

    from crmrules.backends.sql.datadir import load_directory
    from crmrules.backends.sql.transfer import to_postgres, to_spark

    rules = crmrules.load_text(RULES)
    asked = {"vs": "subscribers", "as_of": AS_OF, "period": "30d", "by": ["tier", "age", "total_spent"]}
    expected = rules.profile(shop, "pt", backend="duckdb", **asked)
    loaded = load_directory(shop, rules.schema)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        to_postgres(loaded, rules.schema, connection, "profile_shop")
    url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}options=-csearch_path%3Dprofile_shop"
    assert rules.profile(url, "pt", **asked) == expected
    to_spark(loaded, rules.schema, spark, tmp_path)
    # Spark plans slowly: the period and a text distribution (one query; a numeric one adds the bounds query)
    asked["by"] = ["tier"]
    expected = rules.profile(shop, "pt", backend="duckdb", **asked)
    assert rules.profile(spark, "pt", backend="spark", **asked) == expected
