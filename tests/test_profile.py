"""Segment profiles: the engine's one-query numbers against a direct pandas computation on the same files."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import crmrules

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
        return subprocess.run([sys.executable, "-m", "crmrules", *args], capture_output=True, text=True,
                              cwd=ROOT)

    rules = tmp_path / "r.crm"
    rules.write_text(RULES)
    result = crmrules_cli("profile", str(rules), "--segment", "pt", "--data", str(shop), "--as-of", "2026-06-30",
                          "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["segments"] == ["pt"]
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


def test_profile_is_the_same_on_postgres_and_spark(shop, postgres_url, spark, tmp_path):
    import psycopg

    from crmrules.backends.sql.datadir import load_directory
    from crmrules.backends.sql.transfer import to_postgres, to_spark

    rules = crmrules.load_text(RULES)
    expected = rules.profile(shop, "pt", vs="subscribers", backend="duckdb", as_of=AS_OF)
    loaded = load_directory(shop, rules.schema)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        to_postgres(loaded, rules.schema, connection, "profile_shop")
    url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}options=-csearch_path%3Dprofile_shop"
    assert rules.profile(url, "pt", vs="subscribers", as_of=AS_OF) == expected
    to_spark(loaded, rules.schema, spark, tmp_path)
    assert rules.profile(spark, "pt", vs="subscribers", backend="spark", as_of=AS_OF) == expected
