"""Before a round, its budget; after it, the provider's usage limit.

An agent whose spend (or whose town's) has reached its budget runs no CLI: it is held,
paused with the reason, its work queued (`tt budget set` and `tt resume` carry on). A
round that crosses the budget finishes: the next one is held, so a budget is overshot
by at most one round per agent. A round that ends at the provider's usage limit is not
a failure: its task goes back to `assigned`, the agent and every live agent of the same
account pause until the limit resets (or `[budget] usage_limit_backoff_secs` when the
CLI does not say when), and the supervisor resumes them then. Only a run that ended on
the limit counts (one the CLI retried past and finished is an ordinary round), and what
the limited round used is counted like any round's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tinytown.db import holds
from tinytown.db import usage as round_usage
from tinytown.db.fence import Fence
from tinytown.db.store import Store
from tinytown.errors import TinytownError
from tinytown.models import Agent, AgentState, format_timestamp, utcnow
from tinytown.presets import CliCommand, resolve_cli
from tinytown.settings import Settings
from tinytown.usage import Usage


def over_budget(store: Store, settings: Settings, agent: Agent, recorded: str | None
                ) -> str | None:
    """Why the agent may not run a round now, if its or its town's budget is spent.
    `recorded`: the town's budget as the round's first step read it (no round trip
    of its own on the way to every CLI); the town's spend is read only under a cap."""
    cap = agent.budget_usd if agent.budget_usd is not None else settings.budget.agent_usd
    spent = agent.usage.cost_usd if agent.usage else 0.0
    if cap is not None and spent >= cap:
        return (f"budget: spent ${spent:.4f} of ${cap:.2f} (raise it with `tt budget set"
                f" {agent.name} USD`, then `tt resume {agent.name}`)")
    town_cap = _number(recorded)
    if town_cap is None:
        town_cap = settings.budget.town_usd
    if town_cap is not None:
        town_spent = round_usage.town_totals(store).cost_usd
        if town_spent >= town_cap:
            return (f"town budget: spent ${town_spent:.4f} of ${town_cap:.2f} (raise it"
                    f" with `tt budget set town USD`, then `tt resume {agent.name}`)")
    return None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def at_usage_limit(store: Store, settings: Settings, agent: Agent, command: CliCommand,
                   task_id: str | None, resets: datetime | None, fence: Fence | None,
                   used: Usage | None = None, number: int = 0,
                   totals: dict[str, Any] | None = None) -> None:
    """Hold the agent, and every live agent of the same account, until the reset; what
    the round that ended at the limit used (round `number`) is counted all the same
    (`totals`: the continued session's, for a CLI that reports those)."""
    until = resets or utcnow() + timedelta(seconds=settings.budget.usage_limit_backoff_secs)
    account = command.account_key
    reason = f"usage limit of {account}; resumes at {format_timestamp(until)}"
    holds.hold(store, agent.id, reason, task_id, until, fence, used=used, number=number,
               session_usage=totals)
    for other in store.list_agents():
        if other.id == agent.id or other.state not in holds.HOLDABLE or \
                other.state == AgentState.STARTING:
            continue
        try:
            same = resolve_cli(settings, other.cli).account_key == account
        except TinytownError:
            continue
        if same:
            holds.hold(store, other.id, reason, None, until)
