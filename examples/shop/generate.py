"""Generate a seeded demo shop: customers, orders with items, events and products, as CSV files.

    python examples/shop/generate.py [OUTDIR] [--customers 10000] [--seed 7] [--as-of 2026-06-30]

The shop sells coats, dresses, shoes, skincare and face cream, each with its
season; customers come from several channels and countries, some subscribe,
some buy often, some once, some drift away, some only buy with a coupon, and
some only browse, search, favourite and leave things in their carts.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

CATEGORIES = {"coat": (79, 260), "dress": (35, 140), "shoes": (45, 180), "skincare": (9, 60), "face_cream": (15, 70)}
COUNTRIES = [("PT", "Porto"), ("PT", "Lisboa"), ("ES", "Madrid"), ("FR", "Paris"), ("DE", "Berlin"),
             ("US", "Boston"), ("BR", "São Paulo"), ("CN", "Shanghai")]
SOURCES = ["organic", "ads", "social", "referral", "email"]
TIERS = ["bronze", "silver", "gold"]
EVENT_TYPES = ["visit", "view", "add_to_cart", "favorite", "search", "checkout", "email_open", "email_click"]
SEARCHES = {"coat": ["winter coat", "wool coat", "parka"], "dress": ["red dress", "summer dress", "linen dress"],
            "shoes": ["sneakers", "boots", "sandals"], "skincare": ["serum", "sunscreen", "cleanser"],
            "face_cream": ["face cream", "night cream", "moisturiser"]}
# the season each category sells best in (months)
SEASONS = {"coat": (11, 12, 1, 2), "dress": (5, 6, 7, 8), "shoes": (3, 4, 9, 10)}


def _timestamp(rng: random.Random, start: datetime, end: datetime) -> datetime:
    seconds = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randrange(max(seconds, 1)))


def generate(out: Path, customers: int = 10_000, seed: int = 7, as_of: date = date(2026, 6, 30)) -> None:
    """Write customers.csv, orders.csv, order_items.csv, events.csv and products.csv into `out`."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    end = datetime.combine(as_of, time(23, 59))
    opened = end - timedelta(days=3 * 365)
    products = []
    for index in range(60):
        category = list(CATEGORIES)[index % len(CATEGORIES)]
        low, high = CATEGORIES[category]
        products.append({"id": f"p{index:03d}", "title": f"{category.replace('_', ' ')} {index}",
                         "category": category, "price": Decimal(rng.randrange(low * 100, high * 100)) / 100,
                         "tags": json.dumps(rng.sample(["new", "sale", "eco", "bestseller"], rng.randrange(3)))})
    writers = {}
    files = {}
    columns = {
        "customers": ["id", "email", "phone", "first_name", "last_name", "gender", "birthday", "country", "city",
                      "language", "source", "registered_at", "email_subscribed", "sms_subscribed", "tags", "tier",
                      "points"],
        "orders": ["id", "customer_id", "created_at", "status", "total", "discount", "coupon", "channel"],
        "order_items": ["order_id", "product_id", "category", "quantity", "price"],
        "events": ["customer_id", "type", "at", "product_id", "category", "value"],
        "products": ["id", "title", "category", "price", "tags"],
    }
    for name, header in columns.items():
        files[name] = (out / f"{name}.csv").open("w", newline="", encoding="utf-8")
        writers[name] = csv.DictWriter(files[name], fieldnames=header)
        writers[name].writeheader()
    for product in products:
        writers["products"].writerow(product)
    order_number = 0
    for number in range(customers):
        customer_id = f"{number:05d}"
        country, city = rng.choice(COUNTRIES)
        registered = _timestamp(rng, opened, end)
        # a few heavy buyers, many occasional ones, and browsers who never buy
        kind = rng.choices(["browser", "once", "occasional", "loyal"], weights=[30, 30, 30, 10])[0]
        favourite = rng.choice(list(CATEGORIES))
        # some people only buy with a coupon, most sometimes, some never
        coupon_rate = rng.choices([0.0, 0.2, 0.75], weights=[35, 50, 15])[0]
        # a third of the repeat buyers drift away: their orders stop well before today
        last_active = end if kind == "loyal" or rng.random() < 0.66 else registered + (end - registered) * rng.random()
        writers["customers"].writerow({
            "id": customer_id, "email": f"c{number}@example.com" if rng.random() < 0.95 else "",
            "phone": f"+351 9{rng.randrange(10**7, 10**8)}" if rng.random() < 0.6 else "",
            "first_name": rng.choice(["Ana", "Bo", "Chen", "Dara", "Eli", "Fatima", "Gus"]),
            "last_name": rng.choice(["Silva", "Smith", "Wang", "Müller", "Dubois"]),
            "gender": rng.choice(["female", "male", "female", ""]),
            "birthday": date(rng.randrange(1950, 2008), rng.randrange(1, 13), rng.randrange(1, 29)).isoformat()
            if rng.random() < 0.8 else "",
            "country": country, "city": city, "language": country.lower(), "source": rng.choice(SOURCES),
            "registered_at": registered.isoformat(sep=" "), "email_subscribed": str(rng.random() < 0.6).lower(),
            "sms_subscribed": str(rng.random() < 0.3).lower(),
            "tags": json.dumps(rng.sample(["vip", "coat_lover", "newsletter", "b2b"], rng.randrange(3))),
            "tier": rng.choices(TIERS, weights=[60, 30, 10])[0], "points": rng.randrange(0, 5000),
        })
        orders = {"browser": 0, "once": 1, "occasional": rng.randrange(2, 5), "loyal": rng.randrange(5, 15)}[kind]
        for _ in range(orders):
            order_number += 1
            order_id = f"o{order_number:07d}"
            created = _timestamp(rng, registered, last_active)
            # seasonality: coats sell in winter, dresses in summer, shoes in spring and autumn
            in_season = [c for c, months in SEASONS.items() if created.month in months]
            if in_season and rng.random() < 0.4:
                favourite_now = in_season[0]
            else:
                favourite_now = favourite if rng.random() < 0.6 else rng.choice(list(CATEGORIES))
            total = Decimal(0)
            for _ in range(rng.choices([1, 2, 3], weights=[60, 30, 10])[0]):
                product = rng.choice([p for p in products if p["category"] == favourite_now])
                quantity = rng.choices([1, 2], weights=[85, 15])[0]
                total += product["price"] * quantity
                writers["order_items"].writerow({"order_id": order_id, "product_id": product["id"],
                                                 "category": product["category"], "quantity": quantity,
                                                 "price": product["price"]})
            coupon = rng.choice(["WELCOME10", "SALE20", "BACK15"]) if rng.random() < coupon_rate else ""
            discount = (total * Decimal("0.15")).quantize(Decimal("0.01")) if coupon else Decimal("0.00")
            writers["orders"].writerow({
                "id": order_id, "customer_id": customer_id, "created_at": created.isoformat(sep=" "),
                "status": rng.choices(["paid", "pending", "cancelled", "refunded"], weights=[85, 4, 5, 6])[0],
                "total": total - discount, "discount": discount, "coupon": coupon,
                "channel": rng.choice(["web", "app", "store"])})
        for _ in range(rng.randrange(0, 25)):
            category = favourite if rng.random() < 0.5 else rng.choice(list(CATEGORIES))
            event_type = rng.choices(EVENT_TYPES, weights=[30, 30, 10, 6, 8, 4, 8, 4])[0]
            writers["events"].writerow({
                "customer_id": customer_id, "type": event_type, "at": _timestamp(rng, registered, end).isoformat(sep=" "),
                "product_id": rng.choice(products)["id"], "category": category,
                "value": rng.choice(SEARCHES[category]) if event_type == "search" else ""})
    for handle in files.values():
        handle.close()


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(Path(__file__).parent / "data"))
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", default="2026-06-30")
    args = parser.parse_args()
    generate(Path(args.out), args.customers, args.seed, date.fromisoformat(args.as_of))
    print(f"wrote a demo shop of {args.customers:,} customers to {args.out}")


if __name__ == "__main__":
    main()
