"""The supervisor service: keeps agent records true to what the workers do.

It consumes the town's Celery events (worker heartbeats, online, offline), keeps
`last_heartbeat` current, and turns an agent whose worker stopped heartbeating without
a clean shutdown into `error`, handing its work back (tinytown.ops.reclaim). One leader
per town holds a Redis lock with expiry; a second instance waits as standby and takes
over when the leader dies. It never consumes the supervisor mailbox: that inbox is
where agents report to the human conductor.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tinytown.core.errors import InvalidRecord, RedisUnreachable, TinytownError
from tinytown.core.models import Agent, AgentState, utcnow
from tinytown.core.settings import Settings
from tinytown.db import holds, leader, runtime, states
from tinytown.db.connection import connect
from tinytown.db.requeue import recover_agent
from tinytown.db.store import Store
from tinytown.db.task_writes import reoffer_role_tasks
from tinytown.supervisor import question_watch
from tinytown.supervisor.restarts import Restarts
from tinytown.supervisor.sight import Sight
from tinytown.system.private import go_private
from tinytown.system.processes import pid_alive

log = logging.getLogger("tinytown.supervisor")

class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = connect(settings, start=False)
        self.store = Store(self.redis, settings.town)
        self.me = f"{os.getpid()}@{socket.gethostname()}"
        self.lock_ttl = leader.LOCK_TTL_SECS
        self.stopping = threading.Event()
        self.leading_since: float | None = None
        self._seen: dict[str, datetime] = {}  # agent id -> newest heartbeat event
        self._ids: dict[str, str] = {}  # agent name -> id, refreshed every check
        self.host = socket.gethostname()
        self._receiver: Any = None
        self._warned: dict[str, float] = {}  # warning -> when it was last logged
        self._last_offer = time.monotonic()  # when role tasks were last re-offered
        # what counts as silence: time Redis could be seen (see sight.py); more than one
        # check period and a second between two contacts is a blind spell
        self.tick = min(1.0, settings.supervisor.heartbeat_timeout_secs / 4)
        self.sight = Sight(max_gap=self.tick + 1.0)
        self.restarts = Restarts(self.store, settings, self.host)  # local agents in error

    # --- leadership -------------------------------------------------------------

    def run(self) -> None:
        log.info("supervisor %s for town %s", self.me, self.settings.town)
        leader.register(self.store, self.me)
        try:
            self._run()
        finally:
            leader.unregister(self.store, self.me)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._try_to_lead()
            except RedisUnreachable as exc:  # an outage is waited out, not fatal
                self.leading_since = None
                self.sight.lost()
                log.warning("%s; retrying", exc)
                self.stopping.wait(1.0)
            except InvalidRecord as exc:  # a foreign leader key: said once a minute
                self._warn_once(str(exc))
                self.stopping.wait(1.0)

    def _try_to_lead(self) -> None:
        took = leader.try_to_lead(self.store, self.me, self.lock_ttl)
        if self.sight.contact():  # the first contact, or the first after an outage:
            started = leader.redis_started_at(self.store)  # Redis may have restarted
            if started is not None:
                self.sight.blind(0.0, started)
        if not took:
            self.stopping.wait(0.5)  # standby
            return
        log.info("leading")
        try:
            self._lead()
        finally:
            self.leading_since = None
            leader.release(self.store, self.me)

    def _lead(self) -> None:
        self.leading_since = time.monotonic()
        events = threading.Thread(target=self._consume_events, daemon=True)
        events.start()
        tick = self.tick
        last_renew = next_check = time.monotonic()  # the first check at once
        # at a fixed rate: a check that takes 100 ms (1,000 agents) does not stretch the
        # period, which bounds how late a silent agent is caught
        while not self.stopping.wait(max(0.0, next_check - time.monotonic())):
            next_check = max(next_check + tick, time.monotonic())
            if time.monotonic() - last_renew >= self.lock_ttl / 4:
                if not leader.renew(self.store, self.me, self.lock_ttl):
                    log.warning("lost the leader lock; standing by")
                    break
                last_renew = time.monotonic()
            try:
                self.check_agents()
                self._reoffer()
                question_watch.watch(self.store, self.settings)  # unanswered for too long
                for agent_id in holds.release_due(self.store, utcnow()):
                    log.info("agent %s: its usage limit has reset: resumed", agent_id)
            except RedisUnreachable as exc:  # blind until Redis answers again
                self.sight.lost()
                self._warn_once(f"check failed: {exc}")
                continue
            except TinytownError as exc:  # a bad key is set aside; said once a minute
                self._warn_once(f"check failed: {exc}")
            self.sight.contact()
        if self._receiver is not None:
            self._receiver.should_stop = True

    def _reoffer(self) -> None:
        """Role tasks whose job was lost (taken by a worker that froze or was cut off)
        are offered again, once a heartbeat limit after their last offer."""
        limit = self.settings.supervisor.heartbeat_timeout_secs
        if time.monotonic() - self._last_offer < limit:
            return
        self._last_offer = time.monotonic()
        for task_id in reoffer_role_tasks(self.store, limit):
            log.warning("task %s: its role job was lost; offered again", task_id)

    def _warn_once(self, message: str) -> None:
        """A warning about one bad key, not repeated every second (once a minute)."""
        now = time.monotonic()
        if now - self._warned.get(message, -3600.0) >= 60:
            self._warned[message] = now
            log.warning("%s", message)

    # --- events -----------------------------------------------------------------

    def _consume_events(self) -> None:
        from tinytown.celery_app import make_app

        app = make_app(self.settings)
        while not self.stopping.is_set() and self.leading_since is not None:
            try:
                with app.connection_for_read() as conn:
                    self._receiver = app.events.Receiver(conn, handlers={"*": self.on_event})
                    self._receiver.capture(limit=None, timeout=None, wakeup=False)
            except Exception as exc:  # broker hiccup: reconnect
                log.warning("event stream interrupted (%s); reconnecting", exc)
                self.stopping.wait(1.0)

    def _agent_for(self, hostname: str | None) -> str | None:
        """The agent id of a worker's hostname (name@host); names are cached per tick."""
        if not hostname or "@" not in hostname:
            return None
        name = hostname.split("@", 1)[0]
        known = self._ids.get(name)
        if known is not None:
            return known
        return self.store.name_owner(name)

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if not kind.startswith("worker-"):
            return
        agent_id = self._agent_for(event.get("hostname"))
        if agent_id is None:
            return
        # worker-offline is not a death: Celery sends it as a warm shutdown begins, and
        # the round it waits for may run for minutes. The worker's own beat (runtime
        # hash) and, on this host, its pid tell a death.
        if kind in ("worker-heartbeat", "worker-online"):
            self._seen[agent_id] = utcnow()  # written to the record by check_agents

    # --- crash detection ----------------------------------------------------------

    def check_agents(self) -> None:
        """One pass: refresh heartbeats, then recover agents whose worker is gone.

        A worker on this host whose process has exited is recovered at once; any
        other is recovered when its newest heartbeat (Celery's, or its own beat in the
        runtime hash) is older than the limit, counting only the time Redis could be
        seen (`sight`): a new leader judges at once what it can judge. The recovery
        never waits for a CLI to die (the kill goes on in a thread): the loop that
        renews the leader lock is never held up.
        """
        limit = self.settings.supervisor.heartbeat_timeout_secs
        agents = self.store.list_agents()
        self._ids = {a.name: a.id for a in agents}
        live = [a for a in agents if a.state in states.ALLOWED_LIVE]
        runtimes = runtime.read_many(self.store, [a.id for a in live], "pid", "host", "beat",
                                     "launch", "launched")
        self.sight.contact()  # before judging: a Redis that just froze is a blind spell
        self._refresh_heartbeats(live)
        for agent, (pid, host, beat, launch, launched) in zip(live, runtimes, strict=True):
            if agent.state == AgentState.STARTING and not pid:
                if runtime.failed_start(launch, launched):  # it died before it recorded itself
                    log.warning("agent %s: its worker exited as it started: error", agent.name)
                    recover_agent(self.store, agent, "its worker exited as it started",
                                  wait=False)
                continue  # its worker has not started yet (`--no-start`): not a crash
            elif pid and host == self.host and not pid_alive(int(pid)):
                log.warning("agent %s: worker process %s is gone: error", agent.name, pid)
                recover_agent(self.store, agent, f"worker process {pid} exited", wait=False)
            else:
                last = max(agent.last_heartbeat, self._seen.get(agent.id, agent.last_heartbeat),
                           runtime.beat_time(beat) or agent.last_heartbeat)
                silent = self.sight.silence(last.timestamp())
                if silent > limit:
                    log.warning("agent %s: no heartbeat for %.1fs: error", agent.name, silent)
                    recover_agent(self.store, agent,
                                  f"no heartbeat for {silent:.0f}s (limit {limit:g}s)", wait=False)
        self.restarts.tend(agents)  # with no host daemon, crashed local agents come back

    def _refresh_heartbeats(self, live: list[Agent]) -> None:
        """Write the newest heartbeats seen into the records, each at most every two
        intervals, all of them in one transaction."""
        every = 2 * self.settings.supervisor.heartbeat_interval_secs
        due = {a.id: seen for a in live
               if (seen := self._seen.get(a.id)) is not None
               and (seen - a.last_heartbeat).total_seconds() >= every}
        if due:
            self.store.update_agents(list(due), lambda a: _beat(a, due[a.id]))


def _beat(agent: Agent, when: datetime) -> None:
    agent.last_heartbeat = max(agent.last_heartbeat, when)


def run_supervisor(settings: Settings) -> int:
    go_private()
    supervisor = Supervisor(settings)

    def stop(signum: int, frame: Any) -> None:
        supervisor.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    supervisor.run()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tinytown.supervisor")
    parser.add_argument("--town", required=True, help="the town's root folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.load(Path(args.town))
    sys.exit(run_supervisor(settings))
