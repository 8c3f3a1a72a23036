"""The writes that move agents between hosts and bring them back: the one home of a
restart, a wake from cold, a move to another host and a crash-loop halt; and the list of
agents `tt down` stopped, which `tt up` brings back.

Each is one compare-and-set on the agent record (`states.transition` or
`Store.update_agent`), so hosts, the supervisor and clients racing on one agent cannot
both act: the loser sees InvalidTransition or a changed record and does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.client import Pipeline

from tinytown.core import keys, placement
from tinytown.core.errors import InvalidTransition
from tinytown.core.models import Agent, AgentState, Message, MessageBody, SpawnMode, utcnow
from tinytown.core.settings import AgentSettings
from tinytown.db import host_store, requeue, runtime, states
from tinytown.db.connection import texts
from tinytown.db.store import Store

log = logging.getLogger("tinytown.fleet")


def prepare_restart(store: Store, agent_id: str, reason: str,
                    change: Callable[[Agent], None] | None = None,
                    also: Callable[[Pipeline, Agent], None] | None = None) -> Agent:
    """A stopped, cold or errored agent goes back to `starting` (spawn mode resumed),
    its old processes on this host ended and forgotten; the caller starts its worker."""
    requeue.kill_local_processes(store, agent_id)  # a worker marked error may still run
    store.clear_stop(agent_id)
    runtime.forget_processes(store, agent_id)

    def resumed(a: Agent) -> None:
        a.spawn_mode = SpawnMode.RESUMED
        a.last_heartbeat = utcnow()
        a.current_task = None
        if change is not None:
            change(a)

    return states.transition(store, agent_id, AgentState.STARTING, reason=reason, change=resumed,
                             also=also)


def restarted(store: Store, agent: Agent, host: str, attempt: int, delay: float,
              crashed_at: float, by: str | None = None) -> Agent:
    """Its host (or, for an agent on no host, the supervisor: `by`) restarts an agent
    that crashed: counted, the crash remembered (for the crash-loop limit), a
    `restarted` event, in the state change's MULTI."""
    who = by or f"host {host}"

    def count(a: Agent) -> None:
        a.restarts += 1
        a.crashes = [*a.crashes[-19:], crashed_at]

    def event(pipe: Pipeline, a: Agent) -> None:
        extra = {"by": by} if by else {}
        store.add_event("restarted", a.id, pipe=pipe, name=a.name, host=host,
                        attempt=attempt, after=f"{delay:g}", **extra)

    return prepare_restart(store, agent.id, f"restarted by {who} (attempt {attempt})",
                           change=count, also=event)


def restartable(cfg: AgentSettings, agent: Agent) -> bool:
    """`[agent] restart = "on-failure"` and no crash loop has halted it."""
    return cfg.restart == "on-failure" and agent.halted is None


def heal(store: Store, cfg: AgentSettings, agent: Agent, due: dict[str, float], host: str,
         by: str | None = None, now: float | None = None) -> Agent | None:
    """The restart policy for an agent in `error`, shared by the host daemons (their
    agents) and the supervisor (agents on no host): restart it once its backoff from the
    crash has passed, or halt a crash loop. `due` is the caller's memory of when each
    agent's restart is due, kept across passes. Returns the agent, now `starting`, when
    the caller is to start its worker; None otherwise."""
    if not restartable(cfg, agent):
        return None
    who = by or f"host {host}"
    now = time.time() if now is None else now
    crashed = crashed_at(agent)
    recent = placement.recent_crashes(agent.crashes, cfg.crash_loop_window_secs, now)
    attempt = len(recent) + 1  # this crash included
    if attempt >= cfg.crash_loop_limit:
        why = (f"crash loop: {attempt} crashes within {cfg.crash_loop_window_secs:g}s"
               " (`[agent] crash_loop_limit`)")
        halt(store, agent, why)
        log.error("%s: %s: %s", who, agent.name, why)
        due.pop(agent.id, None)
        return None
    delay = placement.backoff(attempt, cfg.restart_backoff_secs, cfg.restart_backoff_max_secs)
    if now < due.setdefault(agent.id, crashed + delay):
        return None
    del due[agent.id]
    current = store.get_agent(agent.id)  # the pass's record may be stale: a restart by
    if current is None or current.state != AgentState.ERROR:  # hand must not lose its new worker
        return None
    try:
        back = restarted(store, agent, host, attempt, delay, crashed, by=by)
    except InvalidTransition:
        return None  # restarted meanwhile (by hand, or its worker came back)
    log.warning("%s: restarting %s (attempt %d, after %gs)", who, agent.name, attempt, delay)
    return back


def halt(store: Store, agent: Agent, why: str) -> Agent:
    """No more restarts: the agent stays `error` with the reason, told to the
    supervisor's mailbox."""
    def mark(a: Agent) -> None:
        a.halted = why

    def tell(pipe: Pipeline, a: Agent) -> None:
        store.add_event("crash_loop", a.id, pipe=pipe, name=a.name, reason=why)
        store.push_message(Message(sender=a.id, to=keys.SUPERVISOR_ID,
                                   body=MessageBody.informational(
                                       f"{a.name} is not restarted again: {why}"
                                       f" (`tt restart {a.name}` tries again)")), pipe)

    return store.update_agent(agent.id, mark, also=tell)


def wake(store: Store, agent_id: str, reason: str, host: str | None = None) -> Agent | None:
    """A cold agent has work: `starting` (placed on `host` when given), or None when it
    was not cold any more (someone else woke it, or it was killed)."""
    def place(a: Agent) -> None:
        if host is not None:
            a.host = host
        a.spawn_mode = SpawnMode.RESUMED

    try:
        return states.transition(store, agent_id, AgentState.STARTING,
                                 expect=(AgentState.COLD,), reason=reason, change=place)
    except InvalidTransition:
        return None


def host_for(store: Store, agent: Agent, timeout: float) -> str | None:
    """The host an agent should start on now: its own while it is live, not draining
    and has its CLI, else the best other live one (`placement.choose`); None when no
    live host can run it (it then starts where the caller is)."""
    known = [h for h in host_store.read_all(store) if h.live(timeout)]
    if not known:
        return None  # no host daemon: not worth reading the agents
    mine = next((h for h in known if h.name == agent.host), None)
    if mine is not None and not mine.draining and agent.cli not in mine.lacks:
        return mine.name
    chosen = placement.choose(known, agent.cli, agent.host_labels, store.list_agents(),
                              timeout, exclude=[agent.host] if agent.host else [])
    return chosen.name if chosen else None


def wake_cold(store: Store, agent: Agent, reason: str, timeout: float,
              start_here: Callable[[Agent], object] | None) -> Agent | None:
    """Work arrived for a cold agent (a client's message or task, work that came while
    it drained, a draining host moving it): `starting` on the host `host_for` picks,
    which is nudged; with no live host that can run it, started by `start_here` (the
    caller's way to start a worker on its machine), or, with no `start_here`, left
    cold for whoever gives it work next. The woken record; None when it was not cold
    any more (someone else woke it, or it was killed) or was left cold."""
    target = host_for(store, agent, timeout)
    if target is None and start_here is None:
        return None
    woken = wake(store, agent.id, reason, host=target)
    if woken is None:
        return None
    if target is not None:
        host_store.nudge(store.r, store.town, target)
        return woken
    if woken.host is not None:
        move(store, agent.id, woken.host, None)
        woken.host = None
    assert start_here is not None
    start_here(woken)
    return woken


def move(store: Store, agent_id: str, from_host: str | None, to_host: str | None) -> bool:
    """Place the agent on `to_host` if it is still on `from_host` (False otherwise)."""
    moved: list[bool] = []

    def change(a: Agent) -> None:
        moved.append(a.host == from_host)
        if moved[-1]:
            a.host = to_host

    def event(pipe: Pipeline, a: Agent) -> None:
        if moved[-1]:
            store.add_event("moved", a.id, pipe=pipe, name=a.name, old=from_host or "",
                            new=to_host or "")

    store.update_agent(agent_id, change, also=event)
    return bool(moved and moved[-1])


def remember_down(store: Store, agent_ids: list[str]) -> None:
    """`tt down` stops these live agents: remembered (added to any earlier list, so a
    second `tt down` of a town already down forgets nothing) for `tt up`."""
    if agent_ids:
        store.r.sadd(keys.down_agents(store.town), *agent_ids)


def down_list(store: Store) -> list[str]:
    """The agents `tt down` stopped while they were live, not yet brought back."""
    return sorted(texts(store.r.smembers(keys.down_agents(store.town))))


def forget_down(store: Store, agent_ids: list[str]) -> None:
    """These are up again (or gone): no longer for `tt up` to start."""
    if agent_ids:
        store.r.srem(keys.down_agents(store.town), *agent_ids)


def crashed_at(agent: Agent) -> float:
    """When the agent went into `error` (its last state change), as Unix seconds."""
    return agent.last_active_at.timestamp()
