"""Campaigns that run: triggers that fire, guard rails that hold, a durable outbox.

`run_batch` and `simulate` (engine.py) over a SQL engine or customer dicts; `CampaignEngine` for
apps (streaming, in memory). The planner (planner.py) is the same for all three; the clock
(clock.py) holds the calendar rules; evaluators.py asks the data; messages.py and outbox.py keep
the messages.
"""

from crmrules.campaigns.engine import CampaignEngine, run_batch, simulate

__all__ = ["CampaignEngine", "run_batch", "simulate"]
