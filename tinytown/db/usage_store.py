"""What rounds cost, in Redis: the one home of those writes and their readers.

A round's usage is summed onto its task and its agent (their `usage` fields, in the
round's finishing transaction), onto the town (`tt:<town>:usage`, HINCRBY and
HINCRBYFLOAT in the same MULTI) and kept as an entry of `tt:<town>:rounds` (who, which
task, which role, tokens, cost; "unknown" when the CLI reported nothing), which `tt
usage` groups by agent, task, role or day.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tinytown.core import keys
from tinytown.core.errors import WrongType
from tinytown.core.models import Agent, Task, format_timestamp, utcnow
from tinytown.core.usage_rules import ROUND_BUCKETS, TOKEN_FIELDS, Usage
from tinytown.db.connection import text, text_map
from tinytown.db.store import Store

ROUNDS_MAXLEN = 200_000  # a few months of a busy town's rounds; totals never trim


def queue_round(store: Store, pipe: Any, agent: Agent, task: Task | None, number: int,
                usage: Usage) -> None:
    """Queue on `pipe`: the round's usage onto the town's totals and its stream."""
    town_key = keys.usage(store.town)
    for field in (*TOKEN_FIELDS, "rounds", "unknown_rounds", "uncosted_rounds"):
        if getattr(usage, field):
            pipe.hincrby(town_key, field, getattr(usage, field))
    if usage.cost_usd:
        pipe.hincrbyfloat(town_key, "cost_usd", usage.cost_usd)
    entry = {"agent": agent.id, "name": agent.name, "role": agent.role_id or "",
             "task": task.id if task else "", "round": number,
             "time": format_timestamp(utcnow()),
             "unknown": int(bool(usage.unknown_rounds))}
    if not usage.unknown_rounds:
        entry.update({k: getattr(usage, k) for k in TOKEN_FIELDS})
        entry["cost_usd"] = "" if usage.uncosted_rounds else repr(usage.cost_usd)
    pipe.xadd(keys.rounds(store.town), entry, maxlen=ROUNDS_MAXLEN, approximate=True)
    shown = {k: v for k, v in entry.items() if k not in ("agent", "time", "unknown")}
    store.add_event("round", agent.id, pipe=pipe,
                    **({**shown, "cost_usd": "unknown"} if usage.unknown_rounds else shown))


def queue_timing(store: Store, pipe: Any, secs: float, ok: bool) -> None:
    """Queue on `pipe`: the round's duration into the town's cumulative histogram
    (`tt:<town>:roundstats`: count, failed, sum_ms, le_<bound>), kept for /metrics."""
    key = keys.round_stats(store.town)
    pipe.hincrby(key, "count", 1)
    pipe.hincrby(key, "sum_ms", int(secs * 1000))
    if not ok:
        pipe.hincrby(key, "failed", 1)
    for bound in ROUND_BUCKETS:
        if secs <= bound:
            pipe.hincrby(key, f"le_{bound}", 1)


def round_timings(store: Store) -> dict[str, int]:
    """The histogram `queue_timing` keeps ({} before the first round)."""
    try:
        raw = text_map(store.r.hgetall(keys.round_stats(store.town)))
    except WrongType:
        store.set_aside(keys.round_stats(store.town))
        return {}
    return {k: int(v) for k, v in raw.items() if v.lstrip("-").isdigit()}


def town_totals(store: Store) -> Usage:
    try:
        raw = text_map(store.r.hgetall(keys.usage(store.town)))
    except WrongType:
        store.set_aside(keys.usage(store.town))
        return Usage()
    out = Usage()
    for field in out.__struct_fields__:
        try:
            value = float(raw.get(field) or 0)
        except ValueError:
            continue
        setattr(out, field, value if field == "cost_usd" else int(value))
    return out


def town_budget(store: Store) -> float | None:
    """The budget `tt budget set town` recorded (None: none; tinytown.toml's applies)."""
    try:
        value = text(store.r.get(keys.budget(store.town)))
    except WrongType:
        store.set_aside(keys.budget(store.town))
        return None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def set_town_budget(store: Store, usd: float | None) -> None:
    if usd is None:
        store.r.delete(keys.budget(store.town))
    else:
        store.r.set(keys.budget(store.town), repr(usd))


def town_budget_tokens(store: Store) -> int | None:
    """The token budget `tt budget set town --tokens N` recorded (None: none)."""
    try:
        value = text(store.r.get(keys.budget_tokens(store.town)))
    except WrongType:
        store.set_aside(keys.budget_tokens(store.town))
        return None
    return int(value) if value and value.isdigit() else None


def set_town_budget_tokens(store: Store, tokens: int | None) -> None:
    if tokens is None:
        store.r.delete(keys.budget_tokens(store.town))
    else:
        store.r.set(keys.budget_tokens(store.town), str(tokens))


def round_entries(store: Store, since: datetime | None = None) -> list[dict[str, Any]]:
    """The rounds' usage entries, oldest first (from `since` on)."""
    start = "-" if since is None else str(int(since.astimezone(UTC).timestamp() * 1000))
    out = []
    try:
        found = store.r.xrange(keys.rounds(store.town), min=start, max="+")
    except WrongType:
        store.set_aside(keys.rounds(store.town))
        return []
    for entry_id, fields in found or []:
        entry: dict[str, Any] = dict(text_map(fields or {}))
        entry["id"] = text(entry_id)
        out.append(entry)
    return out
