"""`tt usage` and budgets: what the town's rounds cost, grouped, and the caps on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinytown.db import usage as round_usage
from tinytown.errors import UsageError
from tinytown.models import utcnow
from tinytown.usage import TOKEN_FIELDS, Usage
from tinytown.validate import parse_since, validate_usd

if TYPE_CHECKING:
    from tinytown.ops.town import Town

GROUPS = ("agent", "task", "role", "day")


def report(town: Town, agent_ref: str | None = None, task_id: str | None = None,
           since: str | None = None, by: str = "agent") -> dict[str, Any]:
    """Tokens and cost of the rounds (of one agent or task, from `since`), grouped."""
    if by not in GROUPS:
        raise UsageError(f"--by {by!r}: give one of {', '.join(GROUPS)}")
    agent_id = town.resolve(agent_ref).id if agent_ref else None
    task = town.store.require_task(task_id) if task_id else None
    start = parse_since(since, utcnow()) if since else None
    rows: dict[str, dict[str, Any]] = {}
    total = Usage()
    for entry in round_usage.round_entries(town.store, start):
        if (agent_id and entry.get("agent") != agent_id) or \
                (task and entry.get("task") != task.id):
            continue
        usage = _entry_usage(entry)
        total = total + usage
        key, label = _group(entry, by)
        row = rows.setdefault(key, {"key": key, "name": label, "usage": Usage()})
        row["usage"] = row["usage"] + usage
    out_rows = [{"key": r["key"], "name": r["name"], **r["usage"].to_dict(),
                 "cost": r["usage"].cost_text()} for r in rows.values()]
    return {"by": by, "since": start.isoformat() if start else None,
            "agent": agent_id, "task": task.id if task else None, "rows": out_rows,
            "total": {**total.to_dict(), "cost": total.cost_text()}}


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


def budget_status(town: Town) -> dict[str, Any]:
    """The town's budget and spend, and each agent's."""
    spent = round_usage.town_totals(town.store)
    agents = []
    for agent in town.list_agents():
        if agent.agent_type.value != "worker":
            continue
        cap = agent_budget(town, agent.budget_usd)
        used = agent.usage or Usage()
        agents.append({"name": agent.name, "id": agent.id, "budget_usd": cap,
                       "spent_usd": used.cost_usd, "cost": used.cost_text(),
                       "hold": agent.hold})
    return {"town": {"budget_usd": town_budget(town), "spent_usd": spent.cost_usd,
                     "cost": spent.cost_text()}, "agents": agents}


def town_budget(town: Town) -> float | None:
    recorded = round_usage.town_budget(town.store)
    return recorded if recorded is not None else town.settings.budget.town_usd


def agent_budget(town: Town, own: float | None) -> float | None:
    return own if own is not None else town.settings.budget.agent_usd


def set_budget(town: Town, target: str, usd: float | None) -> dict[str, Any]:
    """`tt budget set AGENT|town USD` (None: back to tinytown.toml's)."""
    if usd is not None:
        validate_usd(usd)
    if target == "town":
        round_usage.set_town_budget(town.store, usd)
        return {"town": town.name, "budget_usd": town_budget(town)}
    agent = town.resolve(target)
    town.store.update_agent(agent.id, lambda a: setattr(a, "budget_usd", usd))
    return {"agent": agent.name, "budget_usd": agent_budget(town, usd)}
