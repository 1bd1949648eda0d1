"""The catalogue on real data, checked against independent computations.

CDNOW (69,659 real purchases by 23,570 customers, 1997-01-01 .. 1998-06-30) comes
from the PyPI package `lifetimes==0.11.3` (a dev dependency); these tests skip
when it cannot be imported, except under CRMRULES_REQUIRE_ENGINES=1 (as
`.ci/run` sets), where they fail. `examples/cdnow/prepare.py` turns the file
into a data directory, one paid order per row, dated at 12:00. The expected
values are computed here with pandas straight from the raw file, not through
the engine or `prepare.py`:

* order_count: rows of the customer; total_spent: their dollar values summed
  in integer cents; days_since_last_order: calendar days from the latest
  purchase date to the as-of date 1998-06-30;
* rfm_r / rfm_f / rfm_m: the tie-respecting score over all customers (all have
  a paid order): 1 + floor(5 × (customers with a strictly worse value) ÷
  (customers)), worse being fewer orders, less spend, more days since the last
  order; equal values share a score, whatever their ids.

Then `lifetimes.utils.summary_data_from_transaction_data(freq="D")`, whose
conventions differ from the catalogue's:

* lifetimes merges a customer's rows of one day into one purchase, and its
  `frequency` is the number of *repeat* purchase days (distinct days - 1). The
  catalogue counts orders (rows), so order_count >= frequency + 1, with equality
  exactly for the customers who never bought twice on one day; the engine has no
  "distinct days" attribute to compare one for one.
* lifetimes' `recency` is the days from the first to the last purchase (0 for
  one-time buyers), not the catalogue's recency (days since the last order):
  it equals `days_between(first_order_at, last_order_at)`.
* lifetimes' `T` (days from the first purchase to the end of the observation
  period) equals the catalogue's days_since_first_order.

DuckDB, SQLite and the in-memory backend run on all 23,570 customers; SQLite
also on the first 3,000 (RFM recomputed over that smaller population). (These
tests found SQLite's FULL JOINs quadratic, ~150 s on the whole set; the SQLite
dialect now joins through a CTE of every id with left joins: a few seconds.)

Chinook (59 customers, 412 invoices; fictitious, MIT) is read from
examples/chinook/data (the extract of ../shared/realdata, with its licence);
`examples/chinook/prepare.py` maps invoices to paid orders and invoice lines to
items whose category is the track's genre name.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import crmrules

pd = pytest.importorskip("pandas")

ROOT = Path(__file__).resolve().parent.parent
CDNOW_DIR = ROOT / "examples" / "cdnow"
CHINOOK_DIR = ROOT / "examples" / "chinook"
# the MIT-licensed Chinook extract of ../shared/realdata, copied with its licence
CHINOOK_DATA = ROOT / "examples" / "chinook" / "data"

CDNOW_AS_OF = date(1998, 6, 30)
CHINOOK_AS_OF = date(2011, 12, 31)
SQLITE_SUBSET = 3000

ATTRIBUTES = ["order_count", "total_spent", "days_since_last_order", "rfm_r", "rfm_f", "rfm_m", "rfm_cell",
              "first_order_at", "last_order_at"]
RULES = "attribute span_days = days_between(first_order_at, last_order_at)\n"


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lifetimes():
    try:
        with warnings.catch_warnings():  # lifetimes sets an option that pandas 3 deprecates, on import
            warnings.simplefilter("ignore")
            import lifetimes
    except ImportError as error:
        if os.environ.get("CRMRULES_REQUIRE_ENGINES") == "1":
            pytest.fail(f"lifetimes is required (CRMRULES_REQUIRE_ENGINES=1) but cannot be imported: {error}")
        pytest.skip(f"lifetimes cannot be imported: {error}")
    return lifetimes


# ----------------------------------------------------------------- independent computation


def score(tiles: int, frame, value: str, better_is_smaller: bool = False):
    """1 + floor(tiles × (rows with a strictly worse value) ÷ rows): a Series of 1..tiles on the frame's index."""
    rows = len(frame)
    if better_is_smaller:  # worse = strictly larger: the rows above the last of its ties
        worse = rows - frame[value].rank(method="max")
    else:  # worse = strictly smaller: the rows below the first of its ties
        worse = frame[value].rank(method="min") - 1
    return (1 + (tiles * worse.astype(int)) // rows).astype(int)


def expected_values(orders, as_of: date) -> dict[str, dict]:
    """Catalogue attributes from a frame of paid orders: columns customer_id (text), day (date), cents (int)."""
    per = orders.groupby("customer_id").agg(order_count=("cents", "size"), cents=("cents", "sum"),
                                            first=("day", "min"), last=("day", "max")).reset_index()
    per = per.rename(columns={"customer_id": "id"})
    per["days_since_last_order"] = [(as_of - d).days for d in per["last"]]
    per["rfm_r"] = score(5, per, "days_since_last_order", better_is_smaller=True)
    per["rfm_f"] = score(5, per, "order_count")
    per["rfm_m"] = score(5, per, "cents")
    out = {}
    for row in per.itertuples(index=False):
        out[row.id] = {
            "order_count": int(row.order_count),
            "total_spent": Decimal(int(row.cents)) / 100,
            "days_since_last_order": int(row.days_since_last_order),
            "rfm_r": int(row.rfm_r), "rfm_f": int(row.rfm_f), "rfm_m": int(row.rfm_m),
            "rfm_cell": f"{row.rfm_r}{row.rfm_f}{row.rfm_m}",
            "first_order_at": row.first, "last_order_at": row.last,
        }
    return out


def cents(text: str) -> int:
    value = Decimal(text).scaleb(2)
    assert value == value.to_integral_value(), text
    return int(value)


def differences(got: dict[str, dict], expected: dict[str, dict], names: list[str]) -> list[str]:
    """Readable differences, one per customer and attribute (empty when equal)."""
    found = []
    for cid in sorted(set(got) | set(expected)):
        if cid not in got or cid not in expected:
            found.append(f"{cid}: {'missing from the engine' if cid not in got else 'unexpected customer'}")
            continue
        for name in names:
            if got[cid][name] != expected[cid][name]:
                found.append(f"{cid}.{name}: engine {got[cid][name]!r}, expected {expected[cid][name]!r}")
    return found


def assert_same(got, expected, names):
    found = differences(got, expected, names)
    assert not found, f"{len(found)} differences, first ones:\n" + "\n".join(found[:20])


# ------------------------------------------------------------------------------------ CDNOW


@pytest.fixture(scope="module")
def cdnow_raw():
    """The raw file as a frame: customer_id (text), day (date), cds (int), cents (int), one row per purchase."""
    lifetimes = _lifetimes()
    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
    raw = pd.read_csv(path, sep=r"\s+", dtype=str)
    assert list(raw.columns) == ["customer_id", "date", "number_of_cds", "dollar_value"]
    return pd.DataFrame({
        "customer_id": raw["customer_id"],
        "day": [date(int(d[:4]), int(d[4:6]), int(d[6:])) for d in raw["date"]],
        "cds": raw["number_of_cds"].astype(int),
        "cents": [cents(v) for v in raw["dollar_value"]],
    })


@pytest.fixture(scope="module")
def cdnow_data(tmp_path_factory, cdnow_raw):
    prepare = _module(CDNOW_DIR / "prepare.py", "cdnow_prepare").prepare
    return prepare(tmp_path_factory.mktemp("cdnow"))


@pytest.fixture(scope="module")
def cdnow_subset(tmp_path_factory, cdnow_raw):
    prepare = _module(CDNOW_DIR / "prepare.py", "cdnow_prepare").prepare
    return prepare(tmp_path_factory.mktemp("cdnow_subset"), customers=SQLITE_SUBSET)


@pytest.fixture(scope="module")
def cdnow_expected(cdnow_raw):
    expected = expected_values(cdnow_raw, CDNOW_AS_OF)
    for values in expected.values():  # prepare.py dates every order at 12:00
        values["first_order_at"] = datetime.combine(values["first_order_at"], time(12))
        values["last_order_at"] = datetime.combine(values["last_order_at"], time(12))
    return expected


@pytest.fixture(scope="module")
def cdnow_rules():
    return crmrules.load_text(RULES)


@pytest.fixture(scope="module")
def cdnow_duckdb(cdnow_rules, cdnow_data):
    return cdnow_rules.values(cdnow_data, [*ATTRIBUTES, "span_days", "days_since_first_order"], backend="duckdb",
                              as_of=CDNOW_AS_OF.isoformat())


def test_cdnow_shape(cdnow_raw, cdnow_data):
    assert len(cdnow_raw) == 69_659
    assert cdnow_raw["customer_id"].nunique() == 23_570
    assert len(cdnow_raw.drop_duplicates(["customer_id", "day"])) == 67_591
    assert (cdnow_raw["cents"] == 0).sum() == 80
    assert cdnow_raw["day"].min() == date(1997, 1, 1) and cdnow_raw["day"].max() == CDNOW_AS_OF
    lines = (cdnow_data / "orders.csv").read_text().splitlines()
    assert len(lines) == 69_660 and lines[1] == "00001-1,00001,1997-01-01T12:00:00,paid,11.77,web"


def test_cdnow_duckdb_matches_pandas_for_every_customer(cdnow_duckdb, cdnow_expected):
    assert len(cdnow_duckdb) == 23_570
    assert_same(cdnow_duckdb, cdnow_expected, ATTRIBUTES)


def test_cdnow_memory_matches_pandas_for_every_customer(cdnow_rules, cdnow_data, cdnow_expected):
    got = cdnow_rules.values(cdnow_data, ATTRIBUTES, backend="memory", as_of=CDNOW_AS_OF.isoformat())
    assert len(got) == 23_570
    assert_same(got, cdnow_expected, ATTRIBUTES)


def test_cdnow_sqlite_matches_pandas_on_a_subset(cdnow_rules, cdnow_subset, cdnow_raw):
    first = sorted(cdnow_raw["customer_id"].unique())[:SQLITE_SUBSET]
    expected = expected_values(cdnow_raw[cdnow_raw["customer_id"].isin(first)], CDNOW_AS_OF)
    for values in expected.values():
        values["first_order_at"] = datetime.combine(values["first_order_at"], time(12))
        values["last_order_at"] = datetime.combine(values["last_order_at"], time(12))
    got = cdnow_rules.values(cdnow_subset, ATTRIBUTES, backend="sqlite", as_of=CDNOW_AS_OF.isoformat())
    assert len(got) == SQLITE_SUBSET
    assert_same(got, expected, ATTRIBUTES)
    # the scores are over this population, not the whole one: some differ from the full run
    full = expected_values(cdnow_raw, CDNOW_AS_OF)
    assert any(full[cid]["rfm_cell"] != expected[cid]["rfm_cell"] for cid in first)


def test_cdnow_sqlite_matches_pandas_for_every_customer(cdnow_rules, cdnow_data, cdnow_expected):
    got = cdnow_rules.values(cdnow_data, ATTRIBUTES, backend="sqlite", as_of=CDNOW_AS_OF.isoformat())
    assert_same(got, cdnow_expected, ATTRIBUTES)


def test_cdnow_agrees_with_lifetimes(cdnow_raw, cdnow_duckdb):
    from lifetimes.utils import summary_data_from_transaction_data

    transactions = pd.DataFrame({"customer_id": cdnow_raw["customer_id"],
                                 "date": pd.to_datetime(cdnow_raw["day"].astype(str))})
    summary = summary_data_from_transaction_data(transactions, "customer_id", "date",
                                                 observation_period_end=CDNOW_AS_OF.isoformat(), freq="D")
    assert len(summary) == 23_570 and set(summary.index) == set(cdnow_duckdb)
    # customers who never bought twice on one day, from the raw rows
    same_day = cdnow_raw.groupby(["customer_id", "day"]).size()
    once_a_day = set(same_day.groupby(level="customer_id").max().loc[lambda s: s == 1].index)
    assert 0 < len(once_a_day) < 23_570
    problems = []
    for cid, row in summary.iterrows():
        got = cdnow_duckdb[cid]
        frequency, recency, age = int(row["frequency"]), int(row["recency"]), int(row["T"])
        if got["span_days"] != recency:
            problems.append(f"{cid}: span_days {got['span_days']}, lifetimes recency {recency}")
        if got["days_since_first_order"] != age:
            problems.append(f"{cid}: days_since_first_order {got['days_since_first_order']}, lifetimes T {age}")
        if got["order_count"] < frequency + 1 or (got["order_count"] == frequency + 1) != (cid in once_a_day):
            problems.append(f"{cid}: order_count {got['order_count']}, lifetimes frequency {frequency}")
    assert not problems, f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:20])
    # rows vs customer-days, in total
    assert sum(v["order_count"] for v in cdnow_duckdb.values()) == 69_659
    assert int(summary["frequency"].sum()) + len(summary) == 67_591


def test_cdnow_example_segments(cdnow_data, cdnow_raw, cdnow_expected):
    rules = crmrules.load(CDNOW_DIR / "cdnow.crm")
    members = rules.run(cdnow_data, backend="duckdb", as_of=CDNOW_AS_OF.isoformat()).members
    e = cdnow_expected
    recent = cdnow_raw[cdnow_raw["day"] > CDNOW_AS_OF - timedelta(days=90)].groupby("customer_id").size()
    expected = {
        "loyal": [c for c, v in e.items() if v["rfm_r"] >= 3 and v["rfm_f"] >= 3 and v["rfm_m"] >= 3],
        "lapsed": [c for c, v in e.items() if v["days_since_last_order"] > 180 and v["order_count"] >= 2],
        "one_and_done": [c for c, v in e.items() if v["order_count"] == 1 and v["days_since_last_order"] > 365],
        "big_spenders": [c for c, v in e.items() if v["total_spent"] >= 500],
        "recent_regulars": list(recent[recent >= 3].index),
    }
    expected["lapsed_big_spenders"] = sorted(set(expected["big_spenders"]) & set(expected["lapsed"]))
    for name, ids in expected.items():
        assert ids, name
        assert list(members[name]) == sorted(ids), name


# ---------------------------------------------------------------------------------- Chinook



@pytest.fixture(scope="module")
def chinook_data(tmp_path_factory):
    prepare = _module(CHINOOK_DIR / "prepare.py", "chinook_prepare").prepare
    return prepare(tmp_path_factory.mktemp("chinook"), CHINOOK_DATA)


@pytest.fixture(scope="module")
def chinook_invoices():
    invoices = pd.read_csv(CHINOOK_DATA / "chinook_invoices.csv", dtype=str)
    return pd.DataFrame({"invoice_id": invoices["invoice_id"], "customer_id": invoices["customer_id"],
                         "day": [date.fromisoformat(d) for d in invoices["invoice_date"]],
                         "cents": [cents(v) for v in invoices["total"]]})


@pytest.mark.parametrize("backend", ["duckdb", "sqlite", "memory"])
def test_chinook_matches_pandas(backend, chinook_data, chinook_invoices):
    names = ["order_count", "total_spent", "days_since_last_order", "rfm_m"]
    expected = expected_values(chinook_invoices, CHINOOK_AS_OF)
    customers = pd.read_csv(CHINOOK_DATA / "chinook_customers.csv", dtype=str)["customer_id"]
    assert set(expected) == set(customers)  # every customer has invoices
    got = crmrules.load_text("").values(chinook_data, names, backend=backend, as_of=CHINOOK_AS_OF.isoformat())
    assert len(got) == 59
    assert_same(got, expected, names)
    # spend ties are many and equal spend shares a score: how ids sort ("10" before "9" as text, after it as
    # numbers) moves nobody, and each score holds customers of one spend range
    numeric = expected_values(chinook_invoices.assign(customer_id=chinook_invoices["customer_id"].str.zfill(2)),
                              CHINOOK_AS_OF)
    assert all(expected[c]["rfm_m"] == numeric[c.zfill(2)]["rfm_m"] for c in expected)
    spends = {}
    for values in got.values():
        spends.setdefault(values["total_spent"], set()).add(values["rfm_m"])
    assert all(len(scores) == 1 for scores in spends.values())


def test_chinook_genre_categories(chinook_data, chinook_invoices):
    lines = pd.read_csv(CHINOOK_DATA / "chinook_invoice_lines.csv", dtype=str)
    tracks = pd.read_csv(CHINOOK_DATA / "chinook_tracks.csv", dtype=str)
    genres = pd.read_csv(CHINOOK_DATA / "chinook_genres.csv", dtype=str)
    joined = (lines.merge(tracks[["track_id", "genre_id"]], on="track_id")
              .merge(genres.rename(columns={"name": "genre"}), on="genre_id")
              .merge(chinook_invoices[["invoice_id", "customer_id"]], on="invoice_id"))
    assert len(joined) == len(lines) == 2240
    rock_invoices = joined[joined["genre"] == "Rock"].groupby("customer_id")["invoice_id"].nunique()
    rules = crmrules.load_text('segment rock_fans: bought("Rock", at_least: 3)\n'
                               'attribute genres = distinct(order_items.category)\n')
    members = rules.run(chinook_data, backend="duckdb", as_of=CHINOOK_AS_OF.isoformat()).members
    assert list(members["rock_fans"]) == sorted(rock_invoices[rock_invoices >= 3].index)
    got = rules.values(chinook_data, ["genres"], backend="duckdb", as_of=CHINOOK_AS_OF.isoformat())
    for cid, genres_of in joined.groupby("customer_id")["genre"]:
        assert got[cid]["genres"] == sorted(set(genres_of)), cid
