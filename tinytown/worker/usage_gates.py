"""Before a round, its budget; after it, the provider's usage limit.

An agent whose usage (or whose town's) has reached its budget, in USD or in tokens,
runs no CLI: it is held,
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

from datetime import timedelta

from tinytown.core.errors import TinytownError
from tinytown.core.models import Agent, AgentState, format_timestamp, utcnow
from tinytown.core.presets import resolve_cli
from tinytown.core.settings import Settings
from tinytown.core.usage_rules import (
    Usage,
    agent_budget_usd,
    budget_text,
    cost_usd_text,
    town_budget_usd,
)
from tinytown.db import holds, usage_store
from tinytown.db.store import Store
from tinytown.worker.state import RoundContext


def over_budget(store: Store, settings: Settings, agent: Agent, recorded: str | None,
                recorded_tokens: str | None = None) -> str | None:
    """Why the agent may not run a round now, if its or its town's budget is spent:
    in USD, or in tokens (input, cached and output: a CLI that reports no cost is
    capped by these). `recorded`, `recorded_tokens`: the town's budgets as the round's
    first step read them (no round trip of its own on the way to every CLI); the
    town's usage is read only under a cap."""
    used = agent.usage or Usage()
    cap = agent_budget_usd(agent.budget_usd, settings.budget)
    resume = f"then `tt resume {agent.name}`"
    if cap is not None and used.cost_usd >= cap:
        return (f"budget: spent {cost_usd_text(used.cost_usd, cap)} of {budget_text(cap)}"
                f" (raise it with `tt budget set {agent.name} USD`, {resume})")
    if agent.budget_tokens is not None and used.tokens >= agent.budget_tokens:
        return (f"token budget: spent {used.tokens} of {agent.budget_tokens} tokens (raise"
                f" it with `tt budget set {agent.name} --tokens N`, {resume})")
    town_cap = town_budget_usd(_number(recorded), settings.budget)
    town_tokens = _number(recorded_tokens)
    if town_cap is None and town_tokens is None:
        return None
    town = usage_store.town_totals(store)
    if town_cap is not None and town.cost_usd >= town_cap:
        return (f"town budget: spent {cost_usd_text(town.cost_usd, town_cap)} of"
                f" {budget_text(town_cap)} (raise it with `tt budget set town USD`, {resume})")
    if town_tokens is not None and town.tokens >= town_tokens:
        return (f"town token budget: spent {town.tokens} of {int(town_tokens)} tokens"
                f" (raise it with `tt budget set town --tokens N`, {resume})")
    return None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def at_usage_limit(r: RoundContext) -> None:
    """Hold the round's agent, and every live agent of the same account, until the
    reset; what the round that ended at the limit used is counted all the same (with
    the session's totals, for a CLI that reports those, when the round continued it)."""
    store, settings, agent = r.worker.store, r.worker.settings, r.agent
    continued = r.planned.session is not None and not r.planned.forked
    totals = r.totals if continued else None
    until = r.resets or utcnow() + timedelta(seconds=settings.budget.usage_limit_backoff_secs)
    account = r.command.account_key
    reason = f"usage limit of {account}; resumes at {format_timestamp(until)}"
    holds.hold(store, agent.id, reason, r.task_ref, until, r.worker.state.fence, used=r.used,
               number=r.number, session_usage=totals)
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
