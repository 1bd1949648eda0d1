"""Check a campaign: its audience, trigger, conditions and action are typed like segments."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal

from crmrules import ast
from crmrules import types as t
from crmrules.compiler.known_values import known_values
from crmrules.compiler.resolve import Names, Scope, resolve
from crmrules.compiler.typecheck import typecheck
from crmrules.errors import CrmRulesError, RuleTypeError, RuleWarning, UnknownNameError, did_you_mean
from crmrules.schema import Schema
from crmrules.values import SCALE

# each action's declared arguments and their types; every one is required, and any other named
# argument is personalisation data stored with the message
ACTION_ARGUMENTS: dict[str, dict[str, t.Type]] = {
    "email": {"template": t.STRING}, "sms": {"template": t.STRING}, "popup": {"message": t.STRING},
    "coupon": {"code": t.STRING}, "webhook": {"url": t.STRING}, "award_points": {"points": t.INT},
}
ACTIONS = tuple(ACTION_ARGUMENTS)
EVENT_SCOPE = Scope("events", row_alias="event")


def check_campaign(decl: ast.CampaignDecl, names: Names, schema: Schema, attribute_types: dict[str, t.Type],
                   errors: list[CrmRulesError], warnings: list[CrmRulesError] | None = None,
                   finish: Callable[[ast.Expr], ast.Expr] = lambda expr: expr) -> ast.CampaignDecl | None:
    """The campaign with every expression resolved, typed and `finish`ed (optimised and lowered, as the
    pipeline does for segments), or None after appending errors (and what is only probably wrong to
    `warnings`)."""
    before = len(errors)
    warnings = warnings if warnings is not None else []

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
        if not local:
            for problem in known_values(node, schema, {}):
                (warnings if problem.severity == "warning" else local).append(problem)
        errors.extend(local)
        return finish(node) if not local else node

    trigger = decl.trigger
    match trigger:
        case ast.EventTrigger(event_type=name) if _is_date(name, names, schema, attribute_types):
            trigger = ast.DateTrigger(anchor=ast.Name(name=name, span=trigger.span), where=trigger.where,
                                      at=trigger.at, span=trigger.span)
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
    match trigger:
        case ast.EventTrigger(event_type=name, at=at):
            _check_event_type(name, trigger.span, names, schema, errors, warnings)
            if at is not None:
                errors.append(CrmRulesError("an event trigger fires when the event happens: it takes no `at`",
                                            trigger.span, "leave out `at HH:MM`, or trigger on a date", code="E0209"))
    action = decl.action
    if action.kind not in ACTIONS:
        errors.append(UnknownNameError(f"unknown action `{action.kind}`", action.span,
                                       did_you_mean(action.kind, ACTIONS) or f"actions: {', '.join(ACTIONS)}",
                                       code="E0202"))
    args = tuple(dataclasses.replace(a, value=expr(a.value, None, f"`{a.name}`")) for a in action.args)
    if action.kind in ACTIONS:
        _check_arguments(action, args, errors, warnings)
    _check_guard_rails(decl, errors)
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


def _check_arguments(action: ast.Action, args: tuple[ast.NamedArg, ...], errors: list[CrmRulesError],
                     warnings: list[CrmRulesError]) -> None:
    """Each declared argument given once with its type; a near miss of one is named as such."""
    declared = ACTION_ARGUMENTS[action.kind]
    given = {a.name: a for a in args}
    for name, wanted in declared.items():
        arg = given.get(name)
        if arg is None:
            near = [a.name for a in args if did_you_mean(a.name, [name])]
            hint = (f"did you mean `{name}` (you wrote `{near[0]}`)?" if near
                    else f"write {action.kind}({name}: ...)")
            errors.append(CrmRulesError(f"`{action.kind}` needs `{name}`", action.span, hint, code="E0208"))
        elif arg.value is not None and arg.value.type not in (wanted, t.NULL, None):
            errors.append(RuleTypeError(f"`{name}` of `{action.kind}` needs {wanted}, got {arg.value.type}",
                                        arg.value.span or arg.span))
    for arg in args:
        if arg.name not in declared and (hint := did_you_mean(arg.name, declared)):
            warnings.append(RuleWarning(f"`{arg.name}` is passed as personalisation data", arg.span,
                                        hint.replace("?", f" (`{action.kind}` reads `{arg.name}` as data)?"),
                                        code="W0202"))


def _check_guard_rails(decl: ast.CampaignDecl, errors: list[CrmRulesError]) -> None:
    """A cap lets at least one message through per a positive period; a quiet window is not empty."""
    if decl.cap is not None and (decl.cap.count < 1 or decl.cap.per.amount < 1):
        errors.append(CrmRulesError("a cap needs at least 1 message per a positive period", decl.cap.span,
                                    "write e.g. `cap: 1 per 30d`; leave `cap` out for no cap", code="E0209"))
    if decl.quiet is not None and decl.quiet.start == decl.quiet.end:
        errors.append(CrmRulesError("a quiet window needs a start and an end that differ", decl.quiet.span,
                                    "write e.g. `quiet: 22:00-08:00`", code="E0209"))
    if decl.wait is not None and decl.wait.amount < 0:
        errors.append(CrmRulesError("a wait cannot be negative", decl.span, code="E0209"))
    _check_money(decl, errors)


def _check_money(decl: ast.CampaignDecl, errors: list[CrmRulesError]) -> None:
    """A budget is positive and comes with the cost of a message; both are money the engines hold exactly."""
    if decl.budget is not None and decl.budget <= 0:
        errors.append(CrmRulesError("a budget must be more than 0", decl.span,
                                    "write e.g. `budget: 500`; leave `budget` out for no budget", code="E0211"))
    if decl.budget is not None and decl.cost is None:
        errors.append(CrmRulesError(f"campaign `{decl.name}` has a budget but no cost per message", decl.span,
                                    "add e.g. `cost: 0.05` (the money one message costs)", code="E0212"))
    for name in ("budget", "cost"):
        value = getattr(decl, name)
        if value is not None and value != value.quantize(Decimal(1).scaleb(-SCALE)):
            errors.append(CrmRulesError(f"`{name}: {value:f}` has more than {SCALE} decimal places", decl.span,
                                        f"money is exact to {SCALE} places: round it", code="E0213"))


def _check_event_type(name: str, span, names: Names, schema: Schema, errors: list[CrmRulesError],
                      warnings: list[CrmRulesError]) -> None:
    """`on NAME` is an event type: an unknown one is an error for a closed column, else a warning;
    a near miss of a date (`on brthday`) is named in the hint."""
    column = schema.column("events", "type")
    known = column.values if column is not None else frozenset()
    if not known or name in known:
        return
    dates = [n for n in schema.columns("customers") if schema.column("customers", n).type in t.TEMPORAL]
    hint = did_you_mean(name, [*known, *dates]) or f"event types: {', '.join(sorted(known))}"
    if column.closed:
        errors.append(UnknownNameError(f"`{name}` is neither a date nor an event type", span, hint, code="E0210"))
    else:
        warnings.append(RuleWarning(f"`{name}` is not a date nor a known event type", span,
                                    f"{hint} (add it to events.type `values` in a schema mapping if it is right)",
                                    code="W0302"))


def check_limit(decl: ast.LimitDecl, seen: dict[str, ast.LimitDecl], errors: list[CrmRulesError]) -> bool:
    """Whether `limit CHANNEL: N per D` names a channel once, lets a message through and has a period."""
    before = len(errors)
    if decl.channel not in ACTIONS:
        errors.append(UnknownNameError(f"unknown channel `{decl.channel}`", decl.span,
                                       did_you_mean(decl.channel, ACTIONS) or f"channels: {', '.join(ACTIONS)}",
                                       code="E0202"))
    elif decl.channel in seen:
        errors.append(CrmRulesError(f"`{decl.channel}` is limited twice", decl.span, "keep one `limit` per channel",
                                    code="E0105"))
    if decl.count < 1 or decl.per.amount < 1:
        errors.append(CrmRulesError("a limit needs at least 1 message per a positive period", decl.span,
                                    "write e.g. `limit email: 2 per 7d`", code="E0209"))
    return len(errors) == before
