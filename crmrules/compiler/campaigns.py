"""Check a campaign: its audience, trigger, conditions and action are typed like segments."""

from __future__ import annotations

import dataclasses

from crmrules import ast
from crmrules import types as t
from crmrules.compiler.resolve import Names, Scope, resolve
from crmrules.compiler.typecheck import typecheck
from crmrules.errors import CrmRulesError, RuleTypeError, UnknownNameError, did_you_mean
from crmrules.schema import Schema

ACTIONS = ("email", "sms", "coupon", "popup", "webhook", "award_points")
EVENT_SCOPE = Scope("events", row_alias="event")


def check_campaign(decl: ast.CampaignDecl, names: Names, schema: Schema,
                   attribute_types: dict[str, t.Type], errors: list[CrmRulesError]) -> ast.CampaignDecl | None:
    """The campaign with every expression resolved and typed, or None after appending errors."""
    before = len(errors)

    def expr(node: ast.Expr | None, expected: set[t.Type] | None, what: str,
             scope: Scope = Scope()) -> ast.Expr | None:
        if node is None:
            return None
        local: list[CrmRulesError] = []
        node = resolve(node, names, scope, local)
        if not local:
            node = typecheck(node, schema, attribute_types, local)
        if not local and expected is not None and node.type not in expected | {t.NULL}:
            wanted = " or ".join(sorted(map(str, expected)))
            local.append(RuleTypeError(f"{what} needs {wanted}, got {node.type}", node.span))
        errors.extend(local)
        return node

    trigger = decl.trigger
    match trigger:
        case ast.EventTrigger(event_type=name) if _is_date(name, names, schema, attribute_types):
            trigger = ast.DateTrigger(anchor=ast.Name(name=name, span=trigger.span), where=trigger.where,
                                      span=trigger.span)
    match trigger:
        case ast.EventTrigger():
            trigger = dataclasses.replace(trigger, where=expr(trigger.where, {t.BOOL}, "a trigger's `where`",
                                                              EVENT_SCOPE))
        case ast.DateTrigger() | ast.AfterTrigger():
            trigger = dataclasses.replace(trigger, anchor=expr(trigger.anchor, set(t.TEMPORAL), "a date trigger"),
                                          where=expr(trigger.where, {t.BOOL}, "a trigger's `where`"))
        case ast.ChangeTrigger():
            subject = expr(trigger.subject, None, "a `when` trigger")
            value = expr(trigger.value, None, "a `when` trigger")
            if subject is not None and subject.type is not None:
                if trigger.kind == ast.ChangeKind.TRUE and subject.type != t.BOOL:
                    errors.append(RuleTypeError(f"`when` needs a condition (bool), got {subject.type}",
                                                subject.span, "or write `when x becomes v` / `reaches v`"))
                elif value is not None and value.type is not None and t.unify(subject.type, value.type) is None:
                    errors.append(RuleTypeError(f"cannot compare {subject.type} with {value.type}", value.span))
                elif trigger.kind == ast.ChangeKind.REACHES and not t.is_orderable(subject.type):
                    errors.append(RuleTypeError(f"`reaches` needs a number or date, got {subject.type}",
                                                subject.span))
            trigger = dataclasses.replace(trigger, subject=subject, value=value)
    action = decl.action
    if action.kind not in ACTIONS:
        errors.append(UnknownNameError(f"unknown action `{action.kind}`", action.span,
                                       did_you_mean(action.kind, ACTIONS) or f"actions: {', '.join(ACTIONS)}",
                                       code="E0202"))
    args = tuple(dataclasses.replace(a, value=expr(a.value, None, f"`{a.name}`")) for a in action.args)
    checked = dataclasses.replace(
        decl, trigger=trigger, action=dataclasses.replace(action, args=args),
        audience=expr(decl.audience, {t.BOOL}, "an audience"),
        unless=expr(decl.unless, {t.BOOL}, "`unless`"))
    return checked if len(errors) == before else None


def _is_date(name: str, names: Names, schema: Schema, attribute_types: dict[str, t.Type]) -> bool:
    column = schema.column("customers", name)
    if column is not None:
        return column.type in t.TEMPORAL
    return attribute_types.get(name) in t.TEMPORAL
