"""`tt usage` and budgets: what the town's rounds cost, grouped, and the caps on it."""

from __future__ import annotations

from typing import Any

from tinytown.core.errors import TinytownError, UsageError
from tinytown.core.models import Agent, utcnow
from tinytown.core.usage_rules import TOKEN_FIELDS, Usage, agent_budget_usd, town_budget_usd
from tinytown.core.validate import parse_since, validate_usd
from tinytown.db import usage_store
from tinytown.ops.context import TownContext
from tinytown.ops.references import resolve

GROUPS = ("agent", "task", "role", "day")


def report(town: TownContext, agent_ref: str | None = None, task_id: str | None = None,
           since: str | None = None, by: str = "agent") -> dict[str, Any]:
    """Tokens and cost of the rounds (of one agent or task, from `since`), grouped."""
    if by not in GROUPS:
        raise UsageError(f"--by {by!r}: give one of {', '.join(GROUPS)}")
    agent_id = resolve(town, agent_ref).id if agent_ref else None
    task = town.store.require_task(task_id) if task_id else None
    start = parse_since(since, utcnow()) if since else None
    rows: dict[str, dict[str, Any]] = {}
    total = Usage()
    for entry in usage_store.round_entries(town.store, start):
        if (agent_id and entry.get("agent") != agent_id) or \
                (task and entry.get("task") != task.id):
            continue
        usage = _entry_usage(entry)
        total = total + usage
        key, label = _group(entry, by)
        row = rows.setdefault(key, {"key": key, "name": label, "usage": Usage()})
        row["usage"] = row["usage"] + usage
    out_rows = [{"key": r["key"], "name": r["name"], **_totals(r["usage"])}
                for r in rows.values()]
    return {"by": by, "since": start.isoformat() if start else None,
            "agent": agent_id, "task": task.id if task else None, "rows": out_rows,
            "total": _totals(total)}


def _totals(usage: Usage) -> dict[str, Any]:
    """A row of the report: its sums, and a cost that no round has known is null (not
    0.0, which reads as free)."""
    text = usage.cost_text()
    return {**usage.to_dict(), "cost_usd": None if text == "unknown" else usage.cost_usd,
            "cost_known": usage.cost_known, "cost": text}


def _entry_usage(entry: dict[str, Any]) -> Usage:
    if entry.get("unknown") == "1":
        return Usage(rounds=1, unknown_rounds=1)
    usage = Usage(rounds=1, **{k: int(entry.get(k) or 0) for k in TOKEN_FIELDS})
    if entry.get("cost_usd"):
        usage.cost_usd = float(entry["cost_usd"])
    else:
        usage.uncosted_rounds = 1
    return usage


def _group(entry: dict[str, Any], by: str) -> tuple[str, str]:
    if by == "agent":
        return entry.get("agent", ""), entry.get("name", "")
    if by == "task":
        return entry.get("task") or "-", entry.get("task") or "(no task)"
    if by == "role":
        return entry.get("role") or "-", entry.get("role") or "(no role)"
    day = (entry.get("time") or "")[:10]
    return day, day


def budget_status(town: TownContext) -> dict[str, Any]:
    """The town's budgets and usage, and each agent's (`cost_known`: false when some of
    its rounds' cost is unknown, which a USD budget does not count)."""
    spent = usage_store.town_totals(town.store)
    agents = []
    for agent in town.store.list_agents():
        if agent.agent_type.value != "worker":
            continue
        cap = agent_budget(town, agent.budget_usd)
        used = agent.usage or Usage()
        agents.append({"name": agent.name, "id": agent.id, "budget_usd": cap,
                       "budget_tokens": agent.budget_tokens, "spent_usd": used.cost_usd,
                       "spent_tokens": used.tokens, "cost": used.cost_text(),
                       "cost_known": not cost_unknown(town, agent), "hold": agent.hold})
    return {"town": {"budget_usd": town_budget(town),
                     "budget_tokens": usage_store.town_budget_tokens(town.store),
                     "spent_usd": spent.cost_usd, "spent_tokens": spent.tokens,
                     "cost": spent.cost_text()}, "agents": agents}


def town_budget(town: TownContext) -> float | None:
    return town_budget_usd(usage_store.town_budget(town.store), town.settings.budget)


def agent_budget(town: TownContext, own: float | None) -> float | None:
    return agent_budget_usd(own, town.settings.budget)


class Keep:
    """`set_budget`'s "leave this budget as it is" (None removes it)."""


KEEP = Keep()


def set_budget(town: TownContext, target: str, usd: float | None | Keep = KEEP,
               tokens: int | None | Keep = KEEP) -> dict[str, Any]:
    """`tt budget set AGENT|town [USD] [--tokens N]` (None: no cap of its own; a USD
    cap falls back to tinytown.toml's). `unpriced`: the agents it covers whose cost is
    unknown (their CLI reports no cost and [prices.<cli>] has none), which a USD budget
    does not hold, and a token budget does."""
    if isinstance(usd, float | int):
        validate_usd(usd)
    if isinstance(tokens, int) and tokens < 1:
        raise UsageError(f"--tokens {tokens}: give a number of tokens, 1 or more")
    if target == "town":
        if not isinstance(usd, Keep):
            usage_store.set_town_budget(town.store, usd)
        if not isinstance(tokens, Keep):
            usage_store.set_town_budget_tokens(town.store, tokens)
        covered = [a for a in town.store.list_agents() if a.agent_type.value == "worker"]
        out: dict[str, Any] = {"town": town.name, "budget_usd": town_budget(town),
                               "budget_tokens": usage_store.town_budget_tokens(town.store)}
    else:
        agent = resolve(town, target)

        def change(a: Agent) -> None:
            if not isinstance(usd, Keep):
                a.budget_usd = usd
            if not isinstance(tokens, Keep):
                a.budget_tokens = tokens

        agent = town.store.update_agent(agent.id, change)
        covered = [agent]
        out = {"agent": agent.name, "budget_usd": agent_budget(town, agent.budget_usd),
               "budget_tokens": agent.budget_tokens}
    out["unpriced"] = [a.name for a in covered if cost_unknown(town, a)]
    return out


def cost_unknown(town: TownContext, agent: Agent) -> bool:
    """Whether a USD budget misses some of the agent's cost: rounds that ran without
    one, or (before its first round) a CLI that reports none with no [prices.<cli>]."""
    if agent.usage is not None and agent.usage.rounds:
        return not agent.usage.cost_known
    from tinytown.agent_clis import registry
    from tinytown.core.presets import resolve_cli

    try:
        command = resolve_cli(town.settings, agent.cli)
    except TinytownError:
        return True
    reader = registry.by_output(command.output)
    return not (reader is not None and reader.reports_cost) and \
        command.name not in town.settings.prices
