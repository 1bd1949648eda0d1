"""Fuzzing: any rule text and any data file give a clean result or a CrmRulesError, never another
exception, and never change a file. Bounded (a few hundred examples) so it runs in every CI run."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crmrules

TOKENS = ["segment", "attribute", "function", "campaign", "limit", "test", "s", "a", "f", ":", "=", "(", ")", "[",
          "]", "{", "}", ",", ".", "and", "or", "not", "in", "is", "null", "true", "false", "between", "within", "ever",
          "matches", "contains", "starts_with", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "|", "&",
          "count", "sum", "avg", "min", "max", "any", "none", "distinct", "top", "orders", "events", "items", "where",
          "total", "status", "points", "tags", "birthday", "email", "created_at", "at", "type", "now", "today", "ntile",
          "did", "bought", "ordered", "rfm_r", "lifecycle", "total_spent", "days_since", "round", "coalesce", "if",
          "0", "1", "100", "-5", "1.5", "99999999999999999999999", '"paid"', '"coat"', '"(a+)+$"', '"vip"', "30d",
          "2h", "1000y", "2026-01-31", "2026-01-31T09:00", "09:00", "trigger", "action", "audience", "daily", "on",
          "email(template: \"x\")", "cap", "per", "quiet", "holdout", "%", "\n", "\n    ", "#", "\\", "'", "\x00", "é"]
rule_texts = st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join) | st.text(max_size=200)

CELLS = ["", "1", "-1", "1.5", "1e400", "NaN", "paid", "2026-06-01", "2026-06-01T10:00:00+02:00", "99999-01-01",
         "[\"vip\"]", "vip", "true", "yes", "\"", "a,b", "\ufeffid", "00042", "é", "\x00"]
csv_files = st.lists(st.lists(st.sampled_from(CELLS), min_size=1, max_size=6), min_size=0, max_size=6).map(
    lambda rows: "\n".join(",".join(row) for row in rows))
HEADERS = {"customers": ["id,points,tags,registered_at,email_subscribed", "points", "\ufeffid,birthday", "id,id"],
           "orders": ["id,customer_id,created_at,status,total", "customer_id,total", "id"]}
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
PEOPLE = [{"id": "c1", "points": 5, "tags": ["vip"], "orders": [{"id": "o1", "total": 10, "status": "paid"}]},
          {"id": "c2"}]


@SETTINGS
@given(rule_texts)
def test_any_rule_text_checks_cleanly_and_runs_cleanly(text):
    try:
        rules = crmrules.load_text(text)
    except crmrules.CrmRulesError:
        return
    for name, _ in rules.segments:
        try:
            rules.run(PEOPLE, backend="memory", as_of=date(2026, 6, 30), segments=[name])
        except crmrules.CrmRulesError:
            pass


def fingerprint(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).digest(), p.stat().st_mtime_ns) for p in directory.iterdir()}


@SETTINGS
@given(st.sampled_from(HEADERS["customers"]), csv_files, st.sampled_from(HEADERS["orders"]), csv_files,
       st.sampled_from(["duckdb", "sqlite", "memory"]))
def test_any_data_file_reads_cleanly_and_is_never_changed(tmp_path_factory, customers_header, customers,
                                                          orders_header, orders, backend):
    directory = tmp_path_factory.mktemp("data")
    (directory / "customers.csv").write_text(customers_header + "\n" + customers, encoding="utf-8")
    (directory / "orders.csv").write_text(orders_header + "\n" + orders, encoding="utf-8")
    before = fingerprint(directory)
    rules = crmrules.load_text('segment s: points > 1 or count(orders where status == "paid") > 0\n'
                               "segment t: \"vip\" in tags and birthday is null\n")
    try:
        rules.run(directory, backend=backend, as_of=date(2026, 6, 30))
    except crmrules.CrmRulesError:
        pass
    assert fingerprint(directory) == before
