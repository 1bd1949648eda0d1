"""The compile caches never give a stale answer: parsed texts, checked catalogue declarations, kept SQL subtrees,
SQL row filters."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from helpers import EXTRA_COLUMNS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rulegen import conditions
from sqlglot import exp

import crmrules
from crmrules.backends.sql import compile_memo, dialect_named, members_query, render
from crmrules.backends.sql.compile_memo import SHARED, clear_compile_memo
from crmrules.backends.sql.planner import members_select, segments_select
from crmrules.backends.sql.query_cache import clear_query_cache
from crmrules.backends.sql.row_filters import implies, reduced, without
from crmrules.compiler.catalogue_cache import CATALOGUE_CACHE, schema_key
from crmrules.context import evaluation_context
from crmrules.grammar import parse
from crmrules.grammar.parser import clear_parse_cache
from crmrules.schema import default_schema, schema_from_dict

AS_OF = date(2026, 6, 30)


def sql_of(text: str, schema=None, dialect: str = "duckdb") -> str:
    rules = crmrules.load_text(text, schema=schema)
    return members_query(rules.program, "s", dialect, evaluation_context(AS_OF, rules.program.schema), pretty=False)


def cold_sql_of(text: str, schema=None, dialect: str = "duckdb") -> str:
    clear_parse_cache()
    CATALOGUE_CACHE.clear()
    clear_query_cache()
    return sql_of(text, schema, dialect)


def test_a_redefined_attribute_changes_what_the_catalogue_uses():
    plain = sql_of("segment s: aov > 50")
    assert "'paid'" in plain and "'pending'" not in plain
    # aov = total_spent / order_count: the user's order_count reaches aov through the catalogue
    redefined = sql_of('attribute order_count = count(orders where status == "pending")\nsegment s: aov > 50')
    assert "'pending'" in redefined
    assert redefined == cold_sql_of('attribute order_count = count(orders where status == "pending")\n'
                                    "segment s: aov > 50")
    # and the catalogue's own aov is still the one checked before
    assert sql_of("segment s: aov > 50") == plain == cold_sql_of("segment s: aov > 50")


def test_a_redefined_function_or_type_reaches_the_catalogue_declarations_using_it():
    """Functions are written out where they are called and types are read by the checker: a catalogue
    declaration reaching the user's name is checked again, not taken from the cache."""
    plain = sql_of("segment s: visited_never_ordered")  # a template: did("visit") and count(orders) == 0
    redefined = sql_of('function did(kind, within: ever, at_least: 1) = any(events where category == "unboxing")\n'
                       "segment s: visited_never_ordered")
    assert "'unboxing'" in redefined and "'unboxing'" not in plain
    with pytest.raises(crmrules.CrmRulesError, match="order_count"):
        sql_of('attribute order_count = "many"\nsegment s: aov > 50')
    assert sql_of("segment s: visited_never_ordered") == plain


def test_a_redefined_setting_reaches_the_catalogue_declarations_using_it():
    plain = sql_of('segment s: promo_sensitivity == "high"')
    redefined = sql_of('attribute promo_high_ratio = 0.875\nsegment s: promo_sensitivity == "high"')
    assert "0.875" in redefined and "0.875" not in plain
    assert sql_of('segment s: promo_sensitivity == "high"') == plain


def test_schemas_share_nothing_but_equal_content():
    renamed = {"tables": {"orders": {"columns": {"total": {"source": "amount"}}}}}
    theirs = sql_of("segment s: aov > 50", schema=renamed)
    ours = sql_of("segment s: aov > 50")
    assert '"amount"' in theirs and '"amount"' not in ours
    assert sql_of("segment s: aov > 50", schema=renamed) == theirs == cold_sql_of("segment s: aov > 50", renamed)
    # a customers column of that name replaces the catalogue attribute
    column = {"tables": {"customers": {"columns": {"total_spent": {"type": "decimal"}}}}}
    assert '"c"."total_spent"' in sql_of("segment s: total_spent > 5", schema=column)
    assert '"c"."total_spent"' not in sql_of("segment s: total_spent > 5")
    # equal content, equal key; any difference, another key
    assert schema_key(schema_from_dict(renamed)) == schema_key(schema_from_dict(renamed))
    assert schema_key(schema_from_dict(renamed)) != schema_key(default_schema())
    other_zone = {"timezone": "Europe/Lisbon"}
    assert schema_key(schema_from_dict(other_zone)) != schema_key(default_schema())


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "sqlite", "spark"])
def test_compiling_again_gives_the_same_text(dialect: str):
    """Nothing a compile does changes what a later compile reads (trees are built per query, ASTs are frozen)."""
    rules = ['segment s: rfm_cell == "555" and clv > 100', 'segment s: spent_once > 100 and prefers("coat")',
             ('segment s: count(orders where any(items where category == "coat") and created_at within 365d) >= 2 '
              'and avg(orders.total where any(items where category == "coat")) > 150'),
             'segment s: did("add_to_cart", within: 30d) and not ordered(within: 30d)']
    first = {text: cold_sql_of(text, dialect=dialect) for text in rules}
    for _ in range(2):
        for text in rules:
            assert sql_of(text, dialect=dialect) == first[text]
    assert {text: cold_sql_of(text, dialect=dialect) for text in reversed(rules)} == first


def test_the_checked_catalogue_is_the_same_after_other_checks():
    rules = crmrules.load_text("segment s: clv > 100")
    body = rules.program.attributes["clv"].body
    snapshot = repr(body)
    crmrules.load_text("attribute aov = 1\nsegment s: clv > 100")
    crmrules.load_text("segment s: clv > 100 and aov > 5")
    assert repr(crmrules.load_text("segment s: clv > 100").program.attributes["clv"].body) == snapshot


@pytest.mark.parametrize("dialect", ["duckdb", "sqlite"])
def test_query_texts_are_kept_by_content_not_by_python_equality(dialect: str):
    """`Literal(1) == Literal(1.0)` in Python: the query cache keys bodies by repr, so an int and a decimal
    literal (scaled differently on SQLite) never share a text; nor do two instants or two dialects."""
    texts = ["segment s: points > 1", "segment s: points > 1.0", "segment s: points > 1 and aov > 2",
             "segment s: points > 1.0 and aov > 2.0"]
    cold = {text: cold_sql_of(text, dialect=dialect) for text in texts}
    for text in [*texts, *reversed(texts)]:
        assert sql_of(text, dialect=dialect) == cold[text]
    rules = crmrules.load_text("segment s: ordered(within: 30d)")
    one, two = (members_query(rules.program, "s", dialect, evaluation_context(day, rules.program.schema))
                for day in (date(2026, 6, 30), date(2026, 7, 1)))
    assert one != two and "2026-07-01" in two
    assert rules.segment("s").sql(dialect, date(2026, 6, 30)) == one


def test_parsed_texts_are_reused_only_for_the_same_text_and_name():
    text = "segment s: order_count > 1"
    assert parse(text, "a.crm") is parse(text, "a.crm")
    assert parse(text, "b.crm") is not parse(text, "a.crm")
    assert parse(text, "b.crm").declarations[0].span.source.name == "b.crm"
    with pytest.raises(crmrules.CrmRulesError):
        parse("segment s: order_count >", "bad.crm")
    with pytest.raises(crmrules.CrmRulesError):
        parse("segment s: order_count >", "bad.crm")  # errors are not kept: raised again


def test_learned_values_are_part_of_the_key():
    schema = default_schema()
    plain = CATALOGUE_CACHE.entries(schema, None, True, True)
    learned = CATALOGUE_CACHE.entries(schema, {("events", "type"): frozenset({"unboxing"})}, True, True)
    assert plain is not learned
    assert CATALOGUE_CACHE.entries(schema, None, True, True) is plain


# ---------------------------------------------------------------- kept SQL subtrees (compile_memo)
CATALOGUE_RULES = ['rfm_cell == "555" and clv > {n}', 'spent_once > {n} and prefers("coat")', "aov > {n}",
                   'clv > {n} and rfm_cell == "555"', "clv > {n} and clv < {n} + 100 and order_count >= 1",
                   'did("add_to_cart", within: 30d) and not ordered(within: 30d) and points > {n}',
                   "count(orders where total > {n}) >= 2 and aov > 5 and ntile(4, clv, among: clv > 0) == 4",
                   'avg(orders.total where any(items where category == "coat")) > {n} and order_count > 1']
DIALECTS = ["duckdb", "postgres", "sqlite", "spark", "bigquery", "snowflake", "trino", "clickhouse"]


def texts_of(rules: list[str], schema=None, dialect: str = "duckdb", pretty: bool = True,
             day: date = AS_OF) -> list[str]:
    """Each rule's members query, then all of them in one segments query."""
    # built and printed each time (members_query would find the text of the same rules kept by content)
    sql = dialect_named(dialect)
    out = []
    for rule in rules:
        program = crmrules.load_text(f"segment s: {rule}", schema=schema).program
        out.append(render(members_select(program, "s", sql, evaluation_context(day, program.schema)), sql, pretty))
    program = crmrules.load_text("\n".join(f"segment s{i}: {rule}" for i, rule in enumerate(rules)),
                                 schema=schema).program
    out.append(render(segments_select(program, list(program.segments)[:len(rules)], sql,
                                      evaluation_context(day, program.schema)), sql, pretty))
    return out


def cold_texts_of(rules: list[str], **options) -> list[str]:
    """`texts_of` with every kept tree and text forgotten before each query."""
    out = []
    for rule in rules:
        clear_query_cache()
        out.append(texts_of([rule], **options)[0])
    clear_query_cache()
    return [*out, texts_of(rules, **options)[-1]]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("pretty", [False, True])
def test_kept_subtrees_give_the_text_of_a_fresh_compile(dialect: str, pretty: bool):
    """New rule texts over the same catalogue names, compiled one after another with the memo warm (and in
    another order), give exactly the text each gives compiled alone with every cache empty."""
    rules = [rule.format(n=n) for n in (7, 250) for rule in CATALOGUE_RULES]
    cold = cold_texts_of(rules, dialect=dialect, pretty=pretty)
    clear_query_cache()
    for _ in range(2):
        assert texts_of(rules, dialect=dialect, pretty=pretty) == cold
    assert texts_of(list(reversed(rules)), dialect=dialect, pretty=pretty) == cold[-2::-1] + [
        cold_texts_of(list(reversed(rules)), dialect=dialect, pretty=pretty)[-1]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(conditions(), min_size=2, max_size=4))
def test_generated_rules_compile_alike_with_the_memo_warm_or_cold(rules):
    """Any rules, compiled after each other (sharing what they can), give the texts of cold compiles."""
    options = {"schema": EXTRA_COLUMNS, "dialect": "duckdb", "pretty": False}
    warm = texts_of(rules, **options)
    assert texts_of(rules, **options) == warm
    assert cold_texts_of(rules, **options) == warm


def test_nothing_kept_leaks_into_another_dialect_schema_or_day():
    """The same rule under another dialect, schema or `now` compiles as it does with nothing kept."""
    rules = [rule.format(n=9) for rule in CATALOGUE_RULES]
    renamed = {"tables": {"orders": {"columns": {"total": {"source": "amount"}}}}}
    variants = [{"dialect": "duckdb"}, {"dialect": "postgres"}, {"dialect": "sqlite"},
                {"schema": renamed}, {"day": date(2026, 7, 1)}, {"day": date(2026, 7, 1), "schema": renamed}]
    warm = []
    for options in variants:
        warm.append(texts_of(rules, **options))
    for options, texts in zip(variants, warm):
        assert cold_texts_of(rules, **options) == texts
    assert len({tuple(texts) for texts in warm}) == len(variants)


def test_a_full_memo_starts_again_and_still_gives_the_same_text(monkeypatch):
    """Past its budget of kept nodes a context's memo is emptied between queries: the texts do not change."""
    rules = [rule.format(n=n) for n in (3, 4) for rule in CATALOGUE_RULES]
    expected = cold_texts_of(rules)
    monkeypatch.setattr(compile_memo, "_NODES", 500)
    clear_compile_memo()
    assert texts_of(rules) == expected == texts_of(list(reversed(rules)))[-2::-1] + [expected[-1]]


def test_a_kept_tree_appears_once_per_query_and_is_never_changed():
    """An attribute used twice is one kept tree and one copy; printing and compiling again change nothing."""
    clear_compile_memo()
    duckdb = dialect_named("duckdb")
    program = crmrules.load_text("segment s: clv > 5 and clv < 500 and rfm_cell == \"555\"").program
    ctx = evaluation_context(AS_OF, program.schema)
    first = members_select(program, "s", duckdb, ctx)
    nodes = list(first.walk())
    assert len({id(node) for node in nodes}) == len(nodes)  # no node twice in one tree
    assert any(node.meta_get(SHARED) for node in nodes)
    text = render(first, duckdb, pretty=False)
    again = members_select(program, "s", duckdb, ctx)
    assert render(again, duckdb, pretty=False) == text == render(first.copy(), duckdb, pretty=False)
    clear_query_cache()
    assert render(members_select(program, "s", duckdb, ctx), duckdb, pretty=False) == text


# ---------------------------------------------------------------- row filters, on every truth assignment
ATOMS = [exp.column(name) for name in "abcd"]
conjunctions = st.lists(st.sampled_from(range(4)), min_size=1, max_size=3).map(
    lambda picks: exp.and_(*(ATOMS[i].copy() for i in picks), copy=False))


def truth(condition: exp.Expression, values: dict[str, bool | None]) -> bool | None:
    """SQL's three-valued value of an AND/OR/TRUE tree of atoms."""
    condition = condition.unnest()
    if isinstance(condition, exp.Column):
        return values[condition.name]
    if isinstance(condition, exp.Boolean):
        return condition.this
    a, b = truth(condition.this, values), truth(condition.expression, values)
    if isinstance(condition, exp.And):
        return False if False in (a, b) else None if None in (a, b) else True
    return True if True in (a, b) else None if None in (a, b) else False


ASSIGNMENTS = [dict(zip("abcd", combo)) for combo in itertools.product([True, False, None], repeat=4)]


@given(st.lists(conjunctions, min_size=1, max_size=5))
def test_reduced_conditions_keep_the_same_rows(conditions):
    kept = reduced(conditions)
    assert kept and all(any(k is c for c in conditions) for k in kept)
    for values in ASSIGNMENTS:
        assert (any(truth(c, values) is True for c in conditions)
                == any(truth(k, values) is True for k in kept))


@given(conjunctions, conjunctions)
def test_implies_is_never_wrong(condition, other):
    if implies(condition, other):
        assert all(truth(other, v) is True for v in ASSIGNMENTS if truth(condition, v) is True)


@given(conjunctions, st.sampled_from(range(4)))
def test_a_hit_known_true_is_left_out_without_changing_the_condition(condition, atom):
    hit = ATOMS[atom]
    reduced_tree = without(condition.copy(), hit, exp.true())
    for values in ASSIGNMENTS:
        if values["abcd"[atom]] is True:
            assert truth(reduced_tree, values) == truth(condition, values)
