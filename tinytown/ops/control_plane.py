"""The control plane: interrupt, resume, close, kill, restart, prune, stop, down, up.

State changes go through tinytown.db.states; the worker is told through Celery remote
control (cancel_consumer / add_consumer / shutdown) addressed to its hostname, or, for
kill, through the stop flag its next round checks.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

from tinytown.core.errors import InvalidTransition, TinytownError
from tinytown.core.models import Agent, AgentState, AgentType, utcnow
from tinytown.core.roles import queues_of
from tinytown.core.urls import redact, redis_url
from tinytown.db import fleet, holds, host_store, leader, question_store, requeue, runtime, states
from tinytown.db.wakeup import enqueue_round
from tinytown.ops.context import TownContext, worker_status
from tinytown.ops.starting import start_supervisor, start_worker
from tinytown.system.logs import round_logs, tail
from tinytown.system.processes import pid_alive

if TYPE_CHECKING:
    from celery import Celery


def _celery(town: TownContext) -> Celery:
    from tinytown.celery_app import make_app

    return make_app(town.settings)


def _queues(town: TownContext, agent: Agent) -> list[str]:
    return queues_of(town.name, agent, town.settings.known_roles())


def interrupt(town: TownContext, agent_id: str) -> Agent:
    """Pause: the worker stops consuming its queue; a running round finishes."""
    agent = states.transition(town.store, agent_id, AgentState.PAUSED,
                              expect=(AgentState.IDLE, AgentState.WORKING, AgentState.STARTING),
                              reason="tt interrupt")
    alive, hostname = worker_status(town, agent)
    if alive:
        control = _celery(town).control
        for queue in _queues(town, agent):
            control.cancel_consumer(queue, destination=[hostname], reply=True, timeout=2)
    return agent


def resume(town: TownContext, agent_id: str) -> Agent:
    """Consume again; waiting work proceeds."""
    agent = states.transition(town.store, agent_id, AgentState.IDLE, expect=(AgentState.PAUSED,),
                              reason="tt resume", change=holds.clear,
                              also=lambda pipe, a: holds.forget(town.store, pipe, a.id))
    alive, hostname = worker_status(town, agent)
    if alive:
        control = _celery(town).control
        for queue in _queues(town, agent):
            control.add_consumer(queue, destination=[hostname], reply=True, timeout=2)
    enqueue_round(town.store.r, town.name, agent.id)
    return agent


def close(town: TownContext, agent_id: str) -> Agent:
    """Drain: the running round finishes, no new one starts, the worker exits: cold."""
    agent = states.transition(town.store, agent_id, AgentState.DRAINING,
                              expect=(AgentState.IDLE, AgentState.WORKING, AgentState.PAUSED,
                                      AgentState.STARTING),
                              reason="tt close")
    alive, hostname = worker_status(town, agent)
    if alive:
        _celery(town).control.shutdown(destination=[hostname])
    else:
        agent = states.transition(town.store, agent_id, AgentState.COLD, reason="no worker running")
    return agent


def kill(town: TownContext, agent_id: str) -> Agent:
    """Stop at the start of the next round (at once when idle). Nothing queued is deleted."""
    agent = town.store.require_agent(agent_id)
    if agent.state.is_terminal:
        raise InvalidTransition(f"agent {agent.name!r} is already {agent.state.value}")
    town.store.set_stop(agent_id)
    alive, hostname = worker_status(town, agent)
    if not alive:
        return states.transition(town.store, agent_id, AgentState.STOPPED,
                                 reason="killed (no worker)")
    enqueue_round(town.store.r, town.name, agent_id, force=True)
    # no round will come: ask the worker itself
    if agent.state in (AgentState.PAUSED, AgentState.STARTING):
        _celery(town).control.shutdown(destination=[hostname])
    return town.store.require_agent(agent_id)


def restart(town: TownContext, agent_id: str) -> Agent:
    """Bring a stopped, cold or errored agent back: same id, spawn mode `resumed`."""
    agent = town.store.require_agent(agent_id)
    if not agent.state.is_terminal:
        alive, _ = worker_status(town, agent)
        if alive:
            raise InvalidTransition(
                f"agent {agent.name!r} is {agent.state.value}: only a stopped, cold or errored"
                " agent can be restarted"
            )
        requeue.recover_agent(town.store, agent, "restarted with no worker running")

    def reset(a: Agent) -> None:  # by hand: the crash-loop count starts afresh
        a.halted = None
        a.crashes = []

    agent = fleet.prepare_restart(town.store, agent_id, "tt restart", change=reset)
    if agent.host is not None:  # placed on a host daemon: it starts the worker
        from tinytown.ops.hosting import start_placed

        start_placed(town, agent)
        return agent
    start_worker(town.store, town.settings, agent)
    return agent


def stop_all(town: TownContext) -> list[Agent]:
    """Kill every live agent of the town."""
    killed = []
    for agent in town.store.list_agents():
        if not agent.state.is_terminal:
            try:
                killed.append(kill(town, agent.id))
            except InvalidTransition:
                pass
    return killed


def _wait_terminal(town: TownContext, agent_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(agent_ids)
    while pending and time.monotonic() < deadline:
        for agent_id in list(pending):
            agent = town.store.get_agent(agent_id)
            if agent is None or agent.state.is_terminal:
                pending.discard(agent_id)
        time.sleep(0.05)


def prune(town: TownContext, all_agents: bool = False, force: bool = False,
          delete_branches: bool = False) -> dict[str, Any]:
    """Remove terminal agents' records, inboxes and runtime keys, and their worktrees
    (their branches stay unless `delete_branches`).

    An agent with pending messages, or with work not committed in its worktree, is kept
    unless `force`, so nothing is dropped by accident; unfinished tasks of pruned
    agents are reported.
    """
    from tinytown.ops import workspaces

    if all_agents:
        killed = stop_all(town)
        _wait_terminal(town, [a.id for a in killed], 15)
    report: dict[str, Any] = {"pruned": [], "kept": [], "unfinished_tasks": []}
    tasks = town.store.list_tasks()
    for agent in town.store.list_agents():
        if not agent.state.is_terminal:
            report["kept"].append({"name": agent.name, "reason": f"{agent.state.value}"})
            continue
        pending = town.store.inbox_len(agent.id)
        if pending and not force:
            report["kept"].append({"name": agent.name,
                                   "reason": f"{pending} pending message(s); --force drops them"})
            continue
        keep = workspaces.can_remove(agent, force)
        if keep is not None:
            report["kept"].append({"name": agent.name, "reason": keep})
            continue
        workspaces.remove(town, agent, force, delete_branches)
        town.store.delete_agent(agent)
        report["pruned"].append(agent.name)
        report["unfinished_tasks"] += [
            t.id for t in tasks if t.assigned_to == agent.id and not t.state.is_terminal
        ]
    return report


def down(town: TownContext) -> dict[str, Any]:
    """Stop workers, supervisors and (for the embedded default) the town's Redis. The
    agents it stops while live are remembered for `tt up`."""
    running = [a.id for a in town.store.list_agents() if worker_status(town, a)[0]]
    killed = stop_all(town)
    fleet.remember_down(town.store, [a.id for a in killed])
    host = socket.gethostname()
    _stop_host_daemons(town, host)  # before they restart anything: their agents are stopped
    lingering = []
    for agent in town.store.list_agents():
        pid = runtime.local_pid(town.store, agent.id)
        if pid is not None and pid_alive(pid):
            # warm shutdown: a running round is cut short and its task handed back
            # (it runs again after a restart); the worker records its final state
            os.kill(pid, signal.SIGTERM)
            lingering.append(pid)
    _wait_pids(lingering, 15)
    _wait_terminal(town, [a.id for a in killed], 15)  # workers on other hosts
    workers = len(running)
    stopping = []
    for owner in leader.running(town.store):
        owner_pid, _, owner_host = owner.partition("@")
        if owner_host == host and owner_pid.isdigit() and pid_alive(int(owner_pid)):
            os.kill(int(owner_pid), signal.SIGTERM)
            stopping.append(int(owner_pid))
    _wait_pids(stopping, 10)
    leader.prune_dead(town.store, host)  # killed ones never unregistered
    supervisors = len(stopping)
    stopped_redis = False
    if town.settings.embedded:
        from tinytown.db.embedded import EmbeddedRedis

        town.close()
        stopped_redis = EmbeddedRedis(town.settings.runtime_dir).stop()
    return {"workers": workers, "supervisor": supervisors > 0, "redis": stopped_redis,
            "embedded": town.settings.embedded}


def up(town: TownContext, all_agents: bool = False) -> dict[str, Any]:
    """Bring the town back after `tt down`: its Redis (connecting started it), a
    supervisor unless one leads, and the agents `tt down` stopped while they were live
    (`all_agents`: every stopped or errored agent; a cold one stays cold, as work wakes
    it). Idempotent: what runs already is left alone and reported."""
    report: dict[str, Any] = {"redis": "started" if town.store.r.tt_started else "running",
                              "started": [], "already": [], "failed": []}
    owner = leader.leader(town.store)
    if owner:
        report["supervisor"] = f"running (leader {owner})"
    elif leader.claim_launch(town.store):
        report["supervisor"] = f"started (pid {start_supervisor(town.settings)})"
    else:
        report["supervisor"] = "starting (by another command)"
    remembered = fleet.down_list(town.store)
    agents = {a.id: a for a in town.store.list_agents() if a.agent_type == AgentType.WORKER}
    wanted = ([a for a in agents.values() if a.state in (AgentState.STOPPED, AgentState.ERROR)]
              if all_agents else [agents[i] for i in remembered if i in agents])
    report["already"] = sorted(a.name for a in agents.values() if not a.state.is_terminal)
    for agent in sorted(wanted, key=lambda a: a.name):
        if not agent.state.is_terminal:
            continue
        try:
            restart(town, agent.id)
            report["started"].append(agent.name)
        except TinytownError as exc:
            report["failed"].append({"name": agent.name, "error": str(exc)})
    failed = {f["name"] for f in report["failed"]}
    fleet.forget_down(town.store, [i for i in remembered
                                   if i not in agents or agents[i].name not in failed])
    return report


def _stop_host_daemons(town: TownContext, machine: str) -> None:
    """The host daemons on this machine stop (warmly: their agents are stopped already)."""
    stopping = []
    for h in host_store.read_all(town.store):
        if h.machine == machine and h.pid and pid_alive(h.pid):
            os.kill(h.pid, signal.SIGTERM)
            stopping.append(h.pid)
    _wait_pids(stopping, 15)


def _wait_pids(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def supervisor_status(town: TownContext) -> str:
    owner = leader.leader(town.store)
    return f"leader {owner}" if owner else "not running"


def town_status(town: TownContext, deep: bool = False) -> dict[str, Any]:
    agents = town.store.list_agents()
    inbox = town.store.inbox_lens([a.id for a in agents])
    report: dict[str, Any] = {
        "town": town.name,
        "root": str(town.settings.root),
        "redis": redact(redis_url(town.settings)),
        "supervisor": supervisor_status(town),
        "agents": [{**a.to_wire(), "inbox_len": inbox[a.id]} for a in agents],
        "inbox": inbox,
        "questions": question_store.count(town.store),  # open ones (`tt inbox`)
    }
    if deep:
        report["deep"] = [_deep(town, a) for a in agents]
    return report


def _deep(town: TownContext, agent: Agent) -> dict[str, Any]:
    rt = runtime.read(town.store, agent.id)
    uptime = "-"
    if rt.get("started_at") and rt.get("pid"):
        from datetime import datetime

        started = datetime.fromisoformat(rt["started_at"])
        uptime = f"{(utcnow() - started).total_seconds():.0f}s"
    events = [
        f"{e['time']} {e['kind']} {e.get('old', '')}{' -> ' if e.get('new') else ''}"
        f"{e.get('new', '')} {e.get('reason', '')}".rstrip()
        for e in town.store.read_events(5, agent.id)
    ]
    logs = round_logs(town.settings.logs_dir / agent.name)
    log_tail = tail(logs[-1], 2000).splitlines()[-10:] if logs else []
    return {"name": agent.name, "rounds": agent.rounds_completed, "uptime": uptime,
            "session": agent.session.value, "session_id": agent.session_id,
            "hold": agent.hold, "halted": agent.halted, "events": events,
            "log_tail": log_tail}

