"""Literals checked against the values a column or attribute is known to hold."""

from __future__ import annotations

import pytest

import crmrules


def test_a_literal_outside_an_open_column_is_a_warning_with_a_suggestion():
    rules = crmrules.load_text('segment s: did("add_to_cartt") or count(events where type == "view") > 0')
    [warning] = rules.program.warnings
    assert warning.code == "W0301" and warning.severity == "warning"
    assert "add_to_cart" in warning.hint
    assert warning.render().splitlines()[0] == '<rules>:1:16: warning[W0301]: "add_to_cartt" is not a known ' \
                                               "value of events.type"


def test_a_mapping_file_extends_an_open_column_and_replaces_a_closed_one():
    schema = {"tables": {"events": {"columns": {"type": {"values": ["game_start"]}}},
                         "orders": {"columns": {"status": {"values": ["ok", "void"]}}}}}
    rules = crmrules.load_text('segment s: did("game_start") and any(orders where status == "void")', schema=schema)
    assert rules.program.warnings == []
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text('segment s: any(orders where status == "paid")', schema=schema)
    assert caught.value.code == "E0304"


def test_values_are_only_listed_for_string_columns():
    with pytest.raises(crmrules.SchemaError):
        crmrules.load_text("segment s: true", schema={"tables": {"orders": {"columns": {
            "total": {"values": ["1"]}}}}})
    with pytest.raises(crmrules.SchemaError):
        crmrules.load_text("segment s: true", schema={"tables": {"customers": {"columns": {
            "tier": {"closed": True}}}}})


def test_attribute_values_are_read_off_its_definition():
    rules = "attribute band = if(points > 100, \"gold\", if(points > 10, \"silver\", null))\n"
    crmrules.load_text(rules + 'segment s: band == "gold"')
    with pytest.raises(crmrules.CrmRulesError) as caught:
        crmrules.load_text(rules + 'segment s: band == "glod"')
    assert caught.value.code == "E0304" and "gold" in caught.value.hint
    # an attribute that can give any string is not checked
    crmrules.load_text('attribute nick = coalesce(first_name, "x")\nsegment s: nick == "anything"')
