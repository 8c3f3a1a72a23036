"""The town's side of its host daemons (`tt host`): placing a new agent, waking a cold
one where it can run, listing and draining hosts.

With no live host daemon a town works as it always did: workers start here, detached.
With hosts, a client only records where an agent goes (its `host`) and nudges that
host; the host starts, watches and restarts the worker (`tinytown.host`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tinytown.core import placement
from tinytown.core.errors import Refused, UsageError
from tinytown.core.models import Agent, AgentState
from tinytown.db import fleet, host_store
from tinytown.ops.context import TownContext
from tinytown.ops.starting import start_worker

log = logging.getLogger("tinytown")
LOCAL = "local"  # `--host local`: a worker here, as without host daemons


def _timeout(town: TownContext) -> float:
    return town.settings.supervisor.heartbeat_timeout_secs


def place(town: TownContext, agent: Agent, host: str | None, labels: list[str]) -> None:
    """Decide where a new agent runs (`agent.host`): `host` named, "auto" (the least
    loaded live host that has its CLI and the labels), "local", or None: auto when a
    host daemon is live, local otherwise. Refuses (Refused) a placement that
    cannot be met, with why, host by host."""
    agent.host_labels = sorted(set(labels))
    if host == LOCAL:
        if labels:
            raise UsageError("--on needs a host daemon: it does not go with --host local")
        return
    known = host_store.read_all(town.store)
    live = [h for h in known if h.live(_timeout(town))]
    if host is None and not live:
        if labels:
            raise Refused("--on LABEL needs a live host daemon (`tt host --labels ...`):"
                          " none is running")
        return  # today's behaviour: a worker here
    agents = town.store.list_agents()
    if host is None or host == "auto":
        chosen = placement.choose(live, agent.cli, labels, agents, _timeout(town))
        if chosen is None:
            reasons = placement.why_none(known, agent.cli, labels, agents, _timeout(town))
            wants = f"cli {agent.cli!r}" + (f", labels {','.join(labels)}" if labels else "")
            raise Refused(f"no host can run {agent.name} ({wants}): {reasons};"
                          " `--host local` starts it here")
        agent.host = chosen.name
        return
    named = next((h for h in known if h.name == host), None)
    if named is None:
        raise Refused(f"no host named {host!r}: `tt hosts` lists them")
    why: str | None = "gone (no heartbeat)"
    if named.live(_timeout(town)):
        why = placement.unfit(named, agent.cli, labels, agents)
    if why is not None:
        raise Refused(f"host {host!r} cannot run {agent.name}: {why}")
    agent.host = host


def start_placed(town: TownContext, agent: Agent) -> None:
    """An agent in `starting` placed on a host: that host starts it. When its host is
    gone or draining it goes to another that can run it, or starts here when none can."""
    target = fleet.host_for(town.store, agent, _timeout(town))
    if target != agent.host:
        fleet.move(town.store, agent.id, agent.host, target)
    if target is None:
        log.warning("%s: no live host can run it; starting it here", agent.name)
        start_worker(town.store, town.settings, agent)
    else:
        host_store.nudge(town.store.r, town.name, target)


def wake(town: TownContext, agent: Agent, why: str) -> bool:
    """Work arrived for a cold agent: start it where it can run (its host, another
    host, or here with no host daemon). False when it was not cold any more."""
    if agent.state != AgentState.COLD:
        return False
    return fleet.wake_cold(town.store, agent, why, _timeout(town),
                           lambda woken: start_worker(town.store, town.settings, woken)
                           ) is not None


def report(town: TownContext) -> list[dict[str, Any]]:
    """Every registered host: state, load, capacity, labels, CLIs and its agents."""
    agents = town.store.list_agents()
    now = time.time()
    out = []
    for h in host_store.read_all(town.store):
        mine = [a for a in agents if a.host == h.name]
        out.append({
            "name": h.name, "machine": h.machine, "pid": h.pid,
            "state": h.status(_timeout(town), now), "load": placement.load(h.name, agents),
            "max_agents": h.max_agents, "labels": h.labels, "clis": h.clis,
            "beat_age_secs": round(now - h.beat, 1),
            "agents": [{"name": a.name, "state": a.state.value} for a in mine],
        })
    return out


def drain(town: TownContext, name: str) -> dict[str, Any]:
    """Host `name` takes no new agents and moves its agents elsewhere (each finishes
    its round first)."""
    known = {h.name: h for h in host_store.read_all(town.store)}
    if name not in known:
        raise Refused(f"no host named {name!r}: `tt hosts` lists them")
    host_store.set_draining(town.store, name, True)
    host_store.nudge(town.store.r, town.name, name)
    return {"name": name, "draining": True,
            "agents": [a.name for a in town.store.list_agents() if a.host == name]}
