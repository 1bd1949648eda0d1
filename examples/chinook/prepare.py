"""Turn the Chinook CSV extract into a crmrules data directory in the default schema.

    python examples/chinook/prepare.py OUTDIR [--source examples/chinook/data]

`schema.toml` beside this file maps the raw extract's column names, which is
enough for rules on customers and invoice totals. It cannot give what the
catalogue needs: the catalogue's purchase attributes (``order_count``,
``total_spent``, ``rfm_*``, ...) count orders whose ``status`` is ``paid``,
and Chinook has no status column; and an item's ``category`` has to come from
a join (invoice line -> track -> genre). This script writes plain CSVs in the
default schema instead, so the whole catalogue works on them with no mapping:

* ``customers.csv``: ``id`` = ``customer_id``, ``first_name``,
  ``last_name``, ``email``, ``country``, ``city`` (empty fields stay null).
* ``orders.csv``: one order per invoice: ``id`` = ``invoice_id``,
  ``customer_id``, ``created_at`` = ``invoice_date`` (a date: midnight),
  ``status`` = ``paid`` (every invoice is a sale), ``total``.
* ``order_items.csv``: one item per invoice line: ``order_id`` =
  ``invoice_id``, ``product_id`` = ``track_id``, ``category`` = the genre
  name of the track, ``quantity``, ``price`` = ``unit_price``.
* ``products.csv``: one product per track: ``id``, ``title``, ``category``
  (genre name), ``price``.

Standard library only. The extract (MIT, see data/LICENSE-CHINOOK.txt) is in
``examples/chinook/data``, copied from the workplace's shared real-data folder;
its customers and invoices are fictitious, generated at random by Chinook's author.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

DEFAULT_SOURCE = Path(__file__).resolve().parent / "data"


def _read(source: Path, name: str) -> list[dict[str, str]]:
    with (source / f"chinook_{name}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write(path: Path, header: list[str], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def prepare(out: str | Path, source: str | Path = DEFAULT_SOURCE) -> Path:
    """Write customers.csv, orders.csv, order_items.csv and products.csv into `out`."""
    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    genres = {row["genre_id"]: row["name"] for row in _read(source, "genres")}
    tracks = _read(source, "tracks")
    genre_of = {row["track_id"]: genres.get(row["genre_id"], "") for row in tracks}
    _write(out / "customers.csv", ["id", "first_name", "last_name", "email", "country", "city"],
           ([c["customer_id"], c["first_name"], c["last_name"], c["email"], c["country"], c["city"]]
            for c in _read(source, "customers")))
    _write(out / "orders.csv", ["id", "customer_id", "created_at", "status", "total"],
           ([i["invoice_id"], i["customer_id"], i["invoice_date"], "paid", i["total"]]
            for i in _read(source, "invoices")))
    _write(out / "order_items.csv", ["order_id", "product_id", "category", "quantity", "price"],
           ([line["invoice_id"], line["track_id"], genre_of[line["track_id"]], line["quantity"], line["unit_price"]]
            for line in _read(source, "invoice_lines")))
    _write(out / "products.csv", ["id", "title", "category", "price"],
           ([t["track_id"], t["name"], genre_of[t["track_id"]], t["unit_price"]] for t in tracks))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the data directory to write")
    parser.add_argument("--source", default=str(DEFAULT_SOURCE), help="the Chinook CSV extract (chinook_*.csv)")
    args = parser.parse_args(argv)
    print(f"wrote {prepare(args.out, args.source)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
