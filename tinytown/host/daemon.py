"""What a host daemon does, once a second and whenever it is nudged: keep its agents'
workers running.

For each agent placed on it (`agent.host`), by state:

- `starting` with no live worker: start one (a child of the daemon);
- `error` (its worker died: the daemon saw it exit, or the supervisor declared it
  dead): restart it after an exponential backoff, unless `[agent] restart = "never"`
  or it crashed `crash_loop_limit` times within `crash_loop_window_secs`, which halts
  it (`crash loop`, told to the supervisor's mailbox).

(A cold agent is woken by whoever gives it work, through `tinytown.db.fleet.wake_cold`:
moves it to `starting` and nudges its host.)

An agent whose host is gone (no beat within the heartbeat timeout) or draining, and
that needs a worker, is taken over by the live host `placement.choose` picks: every
host computes the same choice, and the move is a compare-and-set. A draining host
closes its agents (each finishes its round), then moves each one that was serving to
another host, where it starts again; cold ones simply move.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from tinytown.agent_clis import registry
from tinytown.core import placement
from tinytown.core.errors import HostNameTaken, InvalidTransition, TinytownError
from tinytown.core.models import Agent, AgentState, AgentType
from tinytown.core.presets import resolve_cli
from tinytown.core.settings import Settings
from tinytown.db import fleet, host_store, leader, requeue, runtime, states
from tinytown.db.connection import connect
from tinytown.db.store import Store
from tinytown.system.launching import child, detached, supervisor_argv, worker_argv
from tinytown.system.processes import pid_alive

log = logging.getLogger("tinytown.host")
_SERVING = (AgentState.STARTING, AgentState.IDLE, AgentState.WORKING, AgentState.PAUSED)


def installed_clis(settings: Settings) -> tuple[list[str], list[str]]:
    """The agent CLIs (every CLI's presets, plug-ins' included, and `[agent_clis]`
    entries) whose program is on PATH here, and those whose program is not."""
    presets = {name for known in registry.everything() for name in known.cli.presets}
    found: list[str] = []
    lacking: list[str] = []
    for name in sorted({*presets, *settings.agent_clis}):
        try:
            command = resolve_cli(settings, name)
        except TinytownError:
            continue
        path = {**os.environ, **command.env}.get("PATH")
        (found if shutil.which(command.argv[0], path=path) else lacking).append(name)
    return found, lacking


@dataclass
class HostDaemon:
    settings: Settings
    name: str
    max_agents: int = 0
    labels: list[str] = field(default_factory=list)
    tick_secs: float = 1.0

    def __post_init__(self) -> None:
        self.store = Store(connect(self.settings, start=False), self.settings.town)
        self.machine = socket.gethostname()
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.next_try: dict[str, float] = {}  # agent -> when its restart is due
        self.evacuating: set[str] = set()  # agents closed to move elsewhere
        self.nudged = threading.Event()
        self.stopping = threading.Event()
        self.draining = False
        self.start_at_once = 2 * (os.cpu_count() or 1)  # workers starting at one time
        self._agents: list[Agent] = []  # the tick's records
        self._starting: set[str] = set()  # agents whose worker this host is starting
        self._deferred = False  # a start waits for a free slot
        self.replaced = False  # another daemon holds the name now: leave its record be
        self.timeout = self.settings.supervisor.heartbeat_timeout_secs

    # --- life -----------------------------------------------------------------------

    def claim(self) -> None:
        """Register at start; refused (HostNameTaken) while a live daemon elsewhere, or
        another process here, holds the name."""
        other = host_store.read(self.store, self.name)
        if other is not None and other.live(self.timeout) and (
                other.machine != self.machine or pid_alive(other.pid)):
            raise HostNameTaken(f"host {self.name!r} runs on {other.machine} (pid {other.pid}):"
                                " pick another --name, or stop that one first")
        self.register()

    def _mine(self, record: placement.HostInfo) -> bool:
        return record.pid == os.getpid() and record.machine == self.machine

    def register(self) -> None:
        now = time.time()
        clis, lacks = installed_clis(self.settings)
        host_store.register(self.store, placement.HostInfo(
            name=self.name, machine=self.machine, pid=os.getpid(), max_agents=self.max_agents,
            labels=self.labels, clis=clis, lacks=lacks, started=now, beat=now))
        self._ensure_supervisor()

    def _ensure_supervisor(self) -> None:
        """Agents heal only if someone notices they died: a supervisor (a standby when
        one leads elsewhere is not started; the leader's lock fails over)."""
        if self.settings.supervisor.autostart and leader.claim_launch(self.store):
            detached(supervisor_argv(self.settings.root),
                     self.settings.logs_dir / "supervisor.log", self.settings.root)

    def run(self) -> None:
        """Tend the agents until `stop()`; an outage is waited out."""
        while not self.stopping.is_set():
            try:
                self.tick()
            except TinytownError as exc:
                log.warning("host %s: %s", self.name, exc)
            # while starts wait for a free slot, look again soon: a worker that became
            # ready does not tell its host
            self.nudged.wait(0.2 if self._deferred else self.tick_secs)
            self.nudged.clear()

    def stop(self) -> None:
        self.stopping.set()
        self.nudged.set()

    # --- one pass ---------------------------------------------------------------------

    def tick(self) -> None:
        known = host_store.read_all(self.store)
        me = next((h for h in known if h.name == self.name), None)
        if me is not None and not self._mine(me):  # it froze, was taken for gone, replaced
            log.error("host %s: another daemon (pid %d on %s) took the name over: stopping",
                      self.name, me.pid, me.machine)
            self.replaced = True
            self.stop()
            os.kill(os.getpid(), signal.SIGTERM)  # the Celery worker's warm shutdown
            return
        if me is None:
            self.register()  # its record was lost (a Redis restart, `tt reset`)
            known = host_store.read_all(self.store)
        else:
            host_store.beat(self.store, self.name)
        self.draining = bool(me and me.draining)
        agents = [a for a in self.store.list_agents() if a.agent_type == AgentType.WORKER]
        self._reap(agents)
        self._agents = agents
        self._starting = {a.id for a in agents if a.state == AgentState.STARTING and a.id in
                          self.children and self.children[a.id].poll() is None}
        self._deferred = False
        for agent in agents:
            if agent.host != self.name and not self._adopt(agent, known, agents):
                continue
            self._tend(agent, known, agents)

    def _reap(self, agents: list[Agent]) -> None:
        """Workers of ours that exited: one whose agent still counts as live died."""
        by_id = {a.id: a for a in agents}
        for agent_id, proc in list(self.children.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.children[agent_id]
            agent = by_id.get(agent_id)
            if code == 0 or agent is None or agent.state not in states.ALLOWED_LIVE:
                continue  # it stopped as asked, or stood down for a newer start
            if runtime.holder(runtime.read(self.store, agent_id), self.timeout) is not None:
                continue  # another worker serves it (this one was refused, or stood down)
            got = requeue.recover_agent(self.store, agent,
                                         f"its worker exited ({_exit(code)}) on host {self.name}")
            if got is not None:
                log.warning("host %s: %s's worker died (%s)", self.name, agent.name, _exit(code))
                by_id[agent_id] = got
                agents[agents.index(agent)] = got

    def _needs_worker(self, agent: Agent) -> bool:
        return agent.state == AgentState.STARTING or (
            agent.state == AgentState.ERROR and self._restartable(agent))

    def _adopt(self, agent: Agent, known: list[placement.HostInfo], agents: list[Agent]
               ) -> bool:
        """Take over an agent whose host is gone or draining, if this is the host the
        choice falls on; True when it is ours now."""
        if agent.host is None or self.draining or not self._needs_worker(agent):
            return False
        owner = next((h for h in known if h.name == agent.host), None)
        if owner is not None and owner.status(self.timeout) == "live":
            return False
        chosen = placement.choose(known, agent.cli, agent.host_labels, agents, self.timeout,
                                  exclude=[agent.host])
        if chosen is None or chosen.name != self.name:
            return False
        if not fleet.move(self.store, agent.id, agent.host, self.name):
            return False
        log.warning("host %s: took %s over from host %s (%s)", self.name, agent.name,
                    agent.host, "gone" if owner is None or not owner.live(self.timeout)
                    else "draining")
        agent.host = self.name
        return True

    def _tend(self, agent: Agent, known: list[placement.HostInfo], agents: list[Agent]
              ) -> None:
        if self.draining:
            self._evacuate(agent, known, agents)
        elif agent.state == AgentState.STARTING:
            if not self._running(agent):
                self._launch(agent)
        elif agent.state == AgentState.ERROR:
            self._heal(agent)

    # --- workers ------------------------------------------------------------------------

    def _running(self, agent: Agent) -> bool:
        proc = self.children.get(agent.id)
        if proc is not None and proc.poll() is None:
            return True
        return runtime.holder(runtime.read(self.store, agent.id), self.timeout) is not None

    def _launch(self, agent: Agent) -> None:
        """Start the agent's worker, unless the host is full, or already starting as
        many workers as the machine starts well at once (a stampede of Python imports
        would stretch every start past the heartbeat limit): it waits a tick."""
        if self.max_agents and placement.load(self.name, self._agents) > self.max_agents:
            log.warning("host %s is full: %s waits", self.name, agent.name)
            return
        if len(self._starting) >= self.start_at_once:
            self._deferred = True
            return
        self._starting.add(agent.id)
        launch = runtime.launching(self.store, agent.id)
        self.children[agent.id] = child(worker_argv(self.settings.root, launch, agent.id),
                                        self.settings.logs_dir / agent.name / "worker.log",
                                        self.settings.root)
        log.info("host %s: started %s (pid %d)", self.name, agent.name,
                 self.children[agent.id].pid)

    def _restartable(self, agent: Agent) -> bool:
        return fleet.restartable(self.settings.agent, agent)

    def _heal(self, agent: Agent) -> None:
        """Restart a crashed agent after its backoff, or halt a crash loop (the policy
        is `fleet.heal`, which the supervisor applies to agents on no host)."""
        restarted = fleet.heal(self.store, self.settings.agent, agent, self.next_try, self.name)
        if restarted is not None:
            self._launch(restarted)

    # --- draining -----------------------------------------------------------------------

    def _evacuate(self, agent: Agent, known: list[placement.HostInfo],
                  agents: list[Agent]) -> None:
        """Draining: close a serving agent (its round finishes), then move it."""
        if agent.state == AgentState.STARTING and not self._running(agent):
            self._move_away(agent, known, agents)
        elif agent.state in _SERVING:
            try:
                states.transition(self.store, agent.id, AgentState.DRAINING,
                                  reason=f"host {self.name} draining")
            except InvalidTransition:
                return
            self.evacuating.add(agent.id)
            self._signal(agent, signal.SIGTERM)
        elif agent.state in (AgentState.COLD, AgentState.ERROR):
            self._move_away(agent, known, agents)

    def _move_away(self, agent: Agent, known: list[placement.HostInfo],
                   agents: list[Agent]) -> None:
        """To the best other host (or to none: it then starts where work wakes it); one
        that was serving starts there at once."""
        chosen = placement.choose(known, agent.cli, agent.host_labels, agents, self.timeout,
                                  exclude=[self.name])
        if chosen is None and agent.state == AgentState.STARTING:
            return  # it waits for a host that can run it (one that starts adopts it)
        if not fleet.move(self.store, agent.id, self.name, chosen.name if chosen else None):
            return
        if agent.id in self.evacuating and agent.state == AgentState.COLD and chosen is not None:
            agent.host = chosen.name  # moved: it wakes there, or stays cold
            fleet.wake_cold(self.store, agent, f"moved from host {self.name}", self.timeout, None)
        elif chosen is not None:
            host_store.nudge(self.store.r, self.store.town, chosen.name)
        self.evacuating.discard(agent.id)

    def _signal(self, agent: Agent, sig: int) -> None:
        proc = self.children.get(agent.id)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)  # the keeper passes it on to the worker
            return
        pid = runtime.local_pid(self.store, agent.id)
        if pid is not None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def evacuate_all(self, timeout: float) -> None:
        """The daemon stops: drain as `tt host drain` does, waiting up to `timeout` for
        the agents' rounds; then forget the host."""
        if self.replaced:
            return  # the agents are the new daemon's
        host_store.set_draining(self.store, self.name, True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.tick()
            except TinytownError as exc:
                log.warning("host %s: %s", self.name, exc)
            mine = [a for a in self.store.list_agents() if a.host == self.name
                    and a.state in (*_SERVING, AgentState.DRAINING)]
            if not mine:
                break
            time.sleep(0.2)
        else:
            log.warning("host %s: agents still running after %gs; they go on, unwatched",
                        self.name, timeout)
        host_store.unregister(self.store, self.name)


def _exit(code: int) -> str:
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
