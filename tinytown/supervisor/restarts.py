"""Agents that heal without a host daemon: the supervisor leader restarts the local
agents that crashed.

A local agent is one on no host (`agent.host` is None: spawned with no host daemon
running) whose worker ran on the supervisor's machine (its runtime hash's `host`).
With `[agent] restart = "on-failure"` (the default) such an agent in `error` is
restarted with the host daemons' policy, `fleet.heal`: after an exponential backoff
from its crash, unless `crash_loop_limit` crashes within `crash_loop_window_secs`
halt it. Agents placed on a host are their host's to restart; an agent whose worker
ran on another machine is left alone (this machine may lack its clone, its CLI or its
credentials): `tt restart` there, or a host daemon, brings it back.

The worker is started detached (as `tt restart` does) from a thread of its own, so a
slow start never holds up the leader's loop, which renews its lock.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import threading

from tinytown.core.errors import TinytownError
from tinytown.core.models import Agent, AgentState, AgentType
from tinytown.core.settings import Settings
from tinytown.db import fleet, requeue, runtime
from tinytown.db.store import Store
from tinytown.system.launching import detached, worker_argv

log = logging.getLogger("tinytown.supervisor")


class Restarts:
    """The supervisor's memory of the restarts it has pending (when each is due)."""

    def __init__(self, store: Store, settings: Settings, machine: str | None = None) -> None:
        self.store = store
        self.settings = settings
        self.machine = machine or socket.gethostname()
        self.due: dict[str, float] = {}  # agent id -> when its restart is due

    def tend(self, agents: list[Agent]) -> None:
        """One pass over the records just read: restart (or halt) the local agents in
        `error` whose time has come."""
        cfg = self.settings.agent
        crashed = [a for a in agents if a.state == AgentState.ERROR and a.host is None
                   and a.agent_type == AgentType.WORKER and fleet.restartable(cfg, a)]
        self.due = {k: v for k, v in self.due.items() if k in {a.id for a in crashed}}
        if not crashed:
            return
        where = runtime.read_many(self.store, [a.id for a in crashed], "host")
        for agent, (host,) in zip(crashed, where, strict=True):
            if host != self.machine:
                continue  # never ran here (or a restored record): not ours to start
            if self.store.stop_requested(agent.id):
                continue  # it died while being killed (`tt kill`, `tt down`): it stays down
            back = fleet.heal(self.store, cfg, agent, self.due, self.machine,
                              by=f"the supervisor on {self.machine}")
            if back is not None:
                self.launch(back)

    def launch(self, agent: Agent) -> threading.Thread:
        """Start the agent's worker, detached, off the caller's thread; a start that
        fails is a crash like any other (`error` again, counted by the next restart)."""
        launch = runtime.launching(self.store, agent.id)
        argv = worker_argv(self.settings.root, launch, agent.id)
        log_path = self.settings.logs_dir / agent.name / "worker.log"

        def start() -> None:
            try:
                pid = detached(argv, log_path, self.settings.root)
                log.info("restarted %s's worker (pid %d)", agent.name, pid)
                try:  # so that a start that dies before it records itself is seen
                    runtime.launched(self.store, agent.id, launch, pid)
                except TinytownError:
                    pass  # Redis went away this moment: this start is not watched
            except (OSError, subprocess.SubprocessError, TinytownError) as exc:
                log.error("could not restart %s's worker: %s", agent.name, exc)
                try:
                    requeue.recover_agent(self.store, agent,
                                           f"its worker could not be started: {exc}")
                except TinytownError:
                    pass  # Redis is away: the starting agent is judged once it is back

        thread = threading.Thread(target=start, name=f"restart-{agent.name}", daemon=True)
        thread.start()
        return thread
