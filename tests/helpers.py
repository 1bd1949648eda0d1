"""Helpers the tests share."""

from __future__ import annotations

from datetime import date

import crmrules

EXTRA_COLUMNS = {"tables": {"customers": {"columns": {
    "age": {"type": "int"}, "score": {"type": "decimal"}, "nickname": {"type": "string"},
    "vip": {"type": "bool"}, "seen_at": {"type": "timestamp"},
}}}}


def member(condition: str, customer: dict, now=date(2026, 6, 30), rules: str = "") -> bool:
    """Whether `customer` is in a one-off segment `condition` (with extra test columns)."""
    rule_set = crmrules.load_text(f"{rules}\nsegment s: {condition}\n", schema=EXTRA_COLUMNS)
    return rule_set.segment("s").matches(customer, now)
