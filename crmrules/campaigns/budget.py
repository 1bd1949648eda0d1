"""Campaign budgets: `budget: 500` with `cost: 0.05` sends while the cost of the campaign's sent messages
stays within the budget.

A message *spends* when it is sent: status `ready`, `sending` or `delivered` (a holdout costs nothing, nor
does a message that failed). At its due instant, after the caps and the channel limit, a message of a
campaign with a budget is `over_budget` when one more send would take the spending past the budget:
`(sent + 1) × cost > budget`. The check comes before the holdout draw, so the holdout group stops with the
sent group and the two stay comparable in the report.

What has been spent is read from the outbox (its spending messages of that campaign), never kept in a
counter of its own: a run killed and run again, a second process, or a deliverer marking messages `failed`
all see the same figure. A run reads it once per step under the step's transaction and counts its own
decisions on top; the streaming engine (the outbox's only writer) reads it once and keeps it up to date.
Messages due at the same instant are decided in the planner's order (priority, declaration order, customer
id), so which messages still fit is the same in every mode.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

SPENDING = ("ready", "sending", "delivered")


class Budgets:
    """The spending of each campaign with a budget, for the planner's checks at due instants."""

    def __init__(self, campaigns, outbox, flush: Callable[[], None], keep: Callable[[], bool]):
        # campaign name -> (budget, cost per message)
        self.limits: dict[str, tuple[Decimal, Decimal]] = {
            c.name: (c.decl.budget, c.decl.cost) for c in campaigns if c.decl.budget is not None}
        self.outbox = outbox
        self._flush = flush  # the planner's pending writes, which a read must see
        self._keep = keep  # whether counts read once stay right (the planner is the outbox's only writer)
        self._sent: dict[str, int] = {}

    def begin(self) -> None:
        """A new step: counts are read again from the outbox (other processes may have written since)."""
        if self._sent and not self._keep():
            self._sent.clear()

    def over(self, name: str) -> bool:
        """Whether one more send of campaign `name` would take its spending past its budget."""
        limit = self.limits.get(name)
        if limit is None:
            return False
        budget, cost = limit
        return (self.sent(name) + 1) * cost > budget

    def sent(self, name: str) -> int:
        """How many messages of campaign `name` spend (`SPENDING`), its pending writes included."""
        count = self._sent.get(name)
        if count is None:
            self._flush()
            by_status = self.outbox.summary(campaign=name).get(name, {})
            count = self._sent[name] = sum(by_status.get(status, 0) for status in SPENDING)
        return count

    def note(self, name: str, status: str) -> None:
        """A message of `name` was just given `status`."""
        if status in SPENDING and name in self._sent:
            self._sent[name] += 1

    def spent(self, name: str) -> Decimal:
        """The money campaign `name` has spent: its sent messages times its cost."""
        limit = self.limits.get(name)
        return Decimal(0) if limit is None else self.sent(name) * limit[1]


__all__ = ["SPENDING", "Budgets"]
