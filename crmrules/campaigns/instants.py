"""What the planner works with: each campaign prepared for evaluation, and the values of one instant.

`Campaign` holds a checked campaign's expressions and timing; `InstantValues` asks the evaluator,
once per instant, for every expression the planner needs then (for everyone, or for the customers
of that instant's events) and answers lookups from what it got.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from crmrules import ast
from crmrules import types as t
from crmrules.campaigns import clock
from crmrules.campaigns.evaluators import event_filter
from crmrules.compiler.pipeline import Program
from crmrules.values import _FIXED, shift

# what consent each channel needs: a subscription flag that is true and an address that is not null
CONSENT = {"email": ("email_subscribed", "email"), "sms": ("sms_subscribed", "phone")}

# rows hold values by a small number per distinct expression: hashing a tree on every lookup is slow
_KEY_BY_ID: dict[int, int] = {}
_KEY_BY_EXPR: dict[ast.Expr, int] = {}
_KEPT: list[ast.Expr] = []


def _key(expr: ast.Expr) -> int:
    key = _KEY_BY_ID.get(id(expr))
    if key is None:
        key = _KEY_BY_ID[id(expr)] = _KEY_BY_EXPR.setdefault(expr, len(_KEY_BY_EXPR))
        _KEPT.append(expr)  # keeps the id from being reused by another object
    return key


# {identities of a list of expressions: (those expressions, kept so no identity is reused; `_unique` of them)}
_UNIQUE: dict[tuple, tuple] = {}


def _unique(exprs: Iterable[ast.Expr], known: set[int] = frozenset()) -> dict[int, ast.Expr]:
    """{key: expression} of these expressions, each distinct one once, literals and `known` keys left out
    (not to be changed: the same dict answers the same list again)."""
    if known:
        return _distinct(exprs, known)
    exprs = tuple(exprs)  # the planner asks the same few lists again and again: remembered by identity
    ids = tuple(map(id, exprs))
    found = _UNIQUE.get(ids)
    if found is None:
        if len(_UNIQUE) > 10_000:
            _UNIQUE.clear()
        found = _UNIQUE[ids] = (exprs, _distinct(exprs, known))
    return found[1]


def _distinct(exprs: Iterable[ast.Expr], known: set[int]) -> dict[int, ast.Expr]:
    out: dict[int, ast.Expr] = {}
    for expr in exprs:
        if expr.__class__ is not ast.Literal:
            key = _key(expr)
            if key not in known and key not in out:
                out[key] = expr
    return out


def value_of(row: dict | None, expr: ast.Expr | None):
    if expr is None:
        return None
    if isinstance(expr, ast.Literal):
        return expr.value
    return None if row is None else row.get(_key(expr))


def holds(row: dict | None, expr: ast.Expr | None) -> bool:
    """An optional condition: absent is true; otherwise it must be true (not unknown)."""
    return expr is None or (row is not None and value_of(row, expr) is True)


def any_of(conditions: list[ast.Expr]) -> ast.Expr:
    unique = list(dict.fromkeys(conditions))
    return unique[0] if len(unique) == 1 else ast.Or(operands=tuple(unique), type=t.BOOL)


class Campaign:
    """A checked campaign with what the planner reads of it worked out once."""

    def __init__(self, program: Program, decl: ast.CampaignDecl, order: int):
        self.name, self.decl, self.order = decl.name, decl, order
        self.priority = decl.priority or 0
        self.channel = decl.action.kind
        self.audience, self.unless = decl.audience, decl.unless
        self.args = decl.action.args
        trigger = decl.trigger
        self.trigger = trigger
        self.kind = {ast.EventTrigger: "event", ast.ScheduleTrigger: "schedule", ast.DateTrigger: "date",
                     ast.AfterTrigger: "after", ast.ChangeTrigger: "when"}[type(trigger)]
        self.where = getattr(trigger, "where", None)
        schema = program.schema
        self.consent: tuple[ast.Expr, ast.Expr] | None = None
        if self.channel in CONSENT:
            flag, address = CONSENT[self.channel]
            self.consent = (ast.Column(table="customers", name=flag, type=schema.column("customers", flag).type),
                            ast.Column(table="customers", name=address,
                                       type=schema.column("customers", address).type))
        self.due_exprs = tuple(e for e in (self.unless, self.audience, *(self.consent or ()),
                                           *(a.value for a in self.args)) if e is not None)
        self.condition = self.anchor = self.recurring = None
        self.event_holds = None
        match trigger:
            case ast.ChangeTrigger(kind=kind, subject=subject, value=value):
                op = {ast.ChangeKind.BECOMES: ast.CompareOp.EQ, ast.ChangeKind.REACHES: ast.CompareOp.GE}.get(kind)
                self.condition = subject if op is None else ast.Compare(op=op, left=subject, right=value, type=t.BOOL)
            case ast.DateTrigger(anchor=anchor):
                self.recurring = clock.recurring_anchor(anchor)
                self.anchor = self.recurring[0] if self.recurring else anchor
            case ast.AfterTrigger(anchor=anchor):
                self.anchor = anchor
            case ast.EventTrigger(where=where):
                self.event_holds = event_filter(program, where)

        wait = decl.wait
        # a wait of fixed length as a timedelta (months and years move by the calendar: `shift`)
        self._wait = timedelta() if wait is None else (
            timedelta(seconds=_FIXED[wait.unit] * wait.amount) if wait.unit in _FIXED else None)
        self._quiet = decl.quiet
        self._audience_only = (self.audience,) if self.audience is not None else ()
        self._all_checks = (*self._audience_only, *self.due_exprs)

    def due_at(self, fired: datetime) -> datetime:
        """The due instant of a message fired at `fired`: after the wait, out of the quiet window."""
        due = fired + self._wait if self._wait is not None else shift(fired, self.decl.wait, 1)
        return due if self._quiet is None else clock.quiet_shift(due, self._quiet)

    def firing_exprs(self, instant: datetime) -> tuple[ast.Expr, ...]:
        """The audience, and when a message fired at `instant` is due at once, what its checks read."""
        return self._all_checks if self.due_at(instant) == instant else self._audience_only


class InstantValues:
    """Values of customer-level expressions as of one instant, asked of the evaluator in as few calls
    as possible: `prime` for everyone at once, `get` for ids (only what is not known yet)."""

    def __init__(self, evaluator, instant: datetime):
        self.evaluator, self.instant = evaluator, instant
        self.rows: dict[str, dict] = {}
        self.everyone: set[int] = set()  # known for every customer (absent from rows: does not exist)
        self.some: dict[str, set[int]] = {}  # known for these customers (existence included)
        self.everyone_checked = False  # whether every customer's existence is known

    def _evaluate(self, exprs: list[ast.Expr], ids=None, where=None, keys=None) -> dict:
        got = self.evaluator.values(self.instant, exprs, ids=ids, where=where)
        keys = [_key(e) for e in exprs] if keys is None else keys
        rows = self.rows
        for customer, found in got.items():
            row = rows.get(customer)
            if row is None:
                rows[customer] = dict(zip(keys, found))
            else:
                row.update(zip(keys, found))
        return got

    def prime(self, exprs: Iterable[ast.Expr], where: ast.Expr | None = None) -> None:
        """Evaluate for every customer (for whom `where` is true), in one call."""
        unique = _unique(exprs)
        got = self._evaluate(list(unique.values()), where=where, keys=list(unique))
        keys = set(unique)
        if where is None:
            self.everyone.update(keys)
            self.everyone_checked = True
        else:
            for customer in got:
                self.some.setdefault(customer, set()).update(keys)

    def get(self, ids: Iterable[str], exprs: Iterable[ast.Expr]) -> dict[str, dict | None]:
        """{id: row or None (no such customer at the instant)}, evaluating only what is missing."""
        ids = list(dict.fromkeys(ids))
        everyone, some = self.everyone, self.some
        wanted = _unique(exprs, everyone)
        missing = []
        for customer in ids:
            have = some.get(customer)
            # never asked about: known only when everyone was, and nothing more is wanted
            if not (self.everyone_checked and not wanted if have is None else have.issuperset(wanted)):
                missing.append(customer)
        if missing:
            asked = {k: e for k, e in wanted.items() if not all(k in some.get(i, ()) for i in missing)}
            self._evaluate(list(asked.values()), ids=missing, keys=list(asked))
            for customer in missing:
                have = some.get(customer)
                if have is None:
                    some[customer] = set(asked)
                else:
                    have.update(asked)
        rows = self.rows
        return {key: rows.get(key) for key in ids}

    def rows_holding(self, condition: ast.Expr | None) -> Iterable[tuple[str, dict]]:
        """The primed rows where `condition` is true (all of them without one)."""
        for key, row in self.rows.items():
            if holds(row, condition):
                yield key, row
