"""Turn the CDNOW transactions into a crmrules data directory.

    python examples/cdnow/prepare.py OUTDIR [--customers N]

The CDNOW master file (every purchase, 1997-01-01 .. 1998-06-30, by the 23,570
customers whose first purchase at the CD retailer CDNOW came in Q1 1997; 69,659
rows) ships inside the PyPI package ``lifetimes==0.11.3`` as
``lifetimes/datasets/CDNOW_master.txt``. The data has no licence of its own, so
it is not copied into this repository: this script reads it from the installed
package (``pip install lifetimes==0.11.3``; only the file is read, the package
is not imported) and checks its sha256.

What is written into OUTDIR (the data must not be committed: `examples/cdnow/data`
is ignored by git, or use a directory outside the repository):

* ``customers.csv``: ``id`` only, the 5-digit zero-padded ids kept as text
  (``"00042"``); CDNOW has no customer attributes.
* ``orders.csv``: one order per row of the file. ``id`` is
  ``<customer_id>-<row_no>`` where ``row_no`` is the 1-based data row number
  in the file (the header is row 0), ``created_at`` is the purchase date at
  12:00 (the file has dates only; noon keeps the day the same in any store time
  zone within 12 hours of UTC), ``status`` is ``paid`` (every row is a
  purchase), ``total`` is ``dollar_value`` unchanged (80 rows are 0.00: they
  are still paid orders and count in ``order_count``), and ``channel`` is
  ``web``.
* ``order_items.csv``: one item per order, ``product_id`` empty (the file has
  no products), ``category`` ``cd``, ``quantity`` = ``number_of_cds`` and
  ``price`` = ``dollar_value / number_of_cds`` rounded half-up to cents
  (empty when ``number_of_cds`` is 0, which no row of the file has), so ``price * quantity`` can differ from
  the order total by a few cents: use ``orders.total`` for money.

Order identity -- a row is an order. The file has no order id and a customer
can have several rows on one date (69,659 rows, but only 67,591 distinct
customer-days). crmrules counts every row: ``order_count`` is the number of
rows. ``lifetimes`` (``summary_data_from_transaction_data``) instead
collapses a customer's rows of one day into a single purchase and reports
``frequency`` = distinct purchase days - 1 (repeat purchases), so for every
customer ``order_count >= frequency + 1``, with equality exactly for the
customers who never bought twice on one day. Dates and spend are not affected:
``first_order_at``/``last_order_at`` fall on the same days in both, and
lifetimes' ``recency`` (days from first to last purchase) equals
``days_between(first_order_at, last_order_at)``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

CDNOW_SHA256 = "eff6889ed364c5199d6eacbbeb7a6d559971df4406ac876f322c373f00a072ef"
CENT = Decimal("0.01")


def cdnow_path(package: str = "lifetimes") -> Path:
    """Where CDNOW_master.txt is inside the installed package (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not installed: pip install lifetimes==0.11.3")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "CDNOW_master.txt"


def read_cdnow(package: str = "lifetimes") -> list[dict]:
    """The rows of CDNOW_master.txt in file order: row_no (1-based), customer_id (text),
    date (ISO), number_of_cds (int), dollar_value (Decimal)."""
    data = cdnow_path(package).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != CDNOW_SHA256:
        raise RuntimeError(f"CDNOW_master.txt: unexpected sha256 {digest}")
    lines = data.decode("ascii").splitlines()
    header = lines[0].split()
    if header != ["customer_id", "date", "number_of_cds", "dollar_value"]:
        raise RuntimeError(f"CDNOW_master.txt: unexpected header {header}")
    rows = []
    for row_no, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        customer_id, day, cds, dollars = line.split()
        rows.append({"row_no": row_no, "customer_id": customer_id, "date": f"{day[:4]}-{day[4:6]}-{day[6:8]}",
                     "number_of_cds": int(cds), "dollar_value": Decimal(dollars)})
    return rows


def prepare(out: str | Path, customers: int | None = None, package: str = "lifetimes") -> Path:
    """Write customers.csv, orders.csv and order_items.csv into `out` (created if needed).
    `customers`: keep only the first N customers by id (all by default)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_cdnow(package)
    ids = sorted({row["customer_id"] for row in rows})
    if customers is not None:
        kept = set(ids[:customers])
        ids = ids[:customers]
        rows = [row for row in rows if row["customer_id"] in kept]
    with (out / "customers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id"])
        writer.writerows([customer_id] for customer_id in ids)
    with (out / "orders.csv").open("w", newline="", encoding="utf-8") as orders, \
            (out / "order_items.csv").open("w", newline="", encoding="utf-8") as items:
        order_writer = csv.writer(orders, lineterminator="\n")
        item_writer = csv.writer(items, lineterminator="\n")
        order_writer.writerow(["id", "customer_id", "created_at", "status", "total", "channel"])
        item_writer.writerow(["order_id", "product_id", "category", "quantity", "price"])
        for row in rows:
            order_id = f"{row['customer_id']}-{row['row_no']}"
            order_writer.writerow([order_id, row["customer_id"], f"{row['date']}T12:00:00", "paid",
                                   format(row["dollar_value"], "f"), "web"])
            cds = row["number_of_cds"]
            price = (row["dollar_value"] / cds).quantize(CENT, ROUND_HALF_UP) if cds > 0 else ""
            item_writer.writerow([order_id, "", "cd", cds, price])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the data directory to write (outside the repository)")
    parser.add_argument("--customers", type=int, default=None, help="keep only the first N customers by id")
    args = parser.parse_args(argv)
    out = prepare(args.out, args.customers)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
