"""Golden SQL: each fixture rule compiled for every dialect, re-parsed by sqlglot, compared to its golden file.

Regenerate with `pytest --update-goldens` after a deliberate change, and read the diff.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlglot
from helpers import EXTRA_COLUMNS

import crmrules
from crmrules.backends.sql import DIALECTS, members_query
from crmrules.context import evaluation_context

GOLDEN = Path(__file__).parent / "golden" / "sql"
AS_OF = date(2026, 6, 30)
CASES = {
    "profile": '(points > 100 and "coat" in tags and days_since(registered_at) < 30) or '
               '(age < 20 and gender == "female")',
    "cart_no_order": 'count(events where type == "add_to_cart" and at within 30d) > 0 and '
                     "count(orders where created_at within 30d) == 0",
    "coat_repeaters": 'count(orders where any(items where category == "coat") and created_at within 365d) >= 2 '
                      'and avg(orders.total where any(items where category == "coat")) > 150',
    "text_and_lists": 'lower(country) starts_with "p" and email contains "@" and email matches "(?i)^a" '
                      'and "coat" in distinct(order_items.category) and length(tags) > 1',
    "dates": "birthday + 1y <= today and registered_at within 6mo and month(birthday) == 6 "
             "and days_between(birthday, registered_at) > 3650",
    "money": "sum(orders.total where status == \"paid\") / count(orders) > 10.5 and round(score, 1) == 2.5 "
             "and score % 2 == 1 and -score < 0",
    "set_algebra": "(adults | subscribers) - vips",
    "marketer": 'bucket("ab", 3) == 0 and days_until(anniversary(birthday)) < 7 and days_until("09-01") <= 30 '
                'and first(orders.total where status == "paid") > 100 and last(orders.channel) == "app"',
    # rankings sort a key that orders customers alike: the date of the latest order, points the other way
    "rankings": 'score(5, -days_since(max(orders.created_at)), among: count(orders) > 0) >= 4 '
                'and ntile(4, sum(orders.total), among: age >= 18) == 1 and ntile(3, -points) <= 2',
    "nested_items": 'first(orders: top(items.category by price * quantity) where status == "paid") == "coat" '
                    'and max(orders: sum(items: price * quantity) where top(items.category) != "bag") > 100',
}
RULES = ("segment adults: age >= 18\nsegment subscribers: email_subscribed\nsegment vips: vip\n")


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_sql(case: str, dialect: str, update_goldens: bool):
    rules = crmrules.load_text(f"{RULES}segment s: {CASES[case]}\n", schema=EXTRA_COLUMNS)
    try:
        sql = members_query(rules.program, "s", dialect, evaluation_context(AS_OF, rules.program.schema)) + "\n"
    except crmrules.UnsupportedFeatureError as error:
        sql = f"-- unsupported: {error.message}\n"
    else:
        # the emitted text must parse back in its own dialect
        sqlglot.parse_one(sql, read=DIALECTS[dialect].sqlglot_name)
    golden = GOLDEN / case / f"{dialect}.sql"
    if update_goldens or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(sql)
    assert sql == golden.read_text()


def test_unsupported_construct_names_dialect_and_span():
    rules = crmrules.load_text("segment s: score * score > 1", schema=EXTRA_COLUMNS)
    with pytest.raises(crmrules.UnsupportedFeatureError) as caught:
        members_query(rules.program, "s", "sqlite", evaluation_context(AS_OF, rules.program.schema))
    assert "sqlite" in caught.value.message
    # the span of the construct the dialect cannot express: `score * score`
    assert caught.value.span is not None
