"""`WorkerRuntime`: one agent's worker process, its life from start to exit.

Celery signals drive the agent's state (init -> starting, ready -> idle, shutdown ->
cold / stopped; wired in `tinytown.worker.agent_worker`). This module holds what spans rounds:
the lease (a fencing token taken at start), the heartbeat, handing off to a newer
worker, riding out a Redis outage, draining (idle, `tt close`, max rounds), shutdown,
and the jobs Celery runs (`tinytown.round`, `tinytown.task` from a role queue). A
round itself is `worker/pipeline.py`: it returns a `RoundResult` that the loop here
acts on, and never calls back into this module. Every Redis write goes through
`tinytown.db`; shutting the process down is a callable the process passes in, so a
test can drive rounds in-process.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinytown.core import keys
from tinytown.core.errors import (
    EXIT_REDIS_UNREACHABLE,
    Fenced,
    LeaseHeld,
    RedisUnreachable,
    TinytownError,
)
from tinytown.core.models import Agent, AgentState, Task, utcnow
from tinytown.core.roles import queues_of
from tinytown.core.settings import Settings
from tinytown.db import fleet, rounds, runtime, states, task_writes
from tinytown.db.connection import connect
from tinytown.db.fence import Fence
from tinytown.db.store import Store
from tinytown.db.wakeup import enqueue_round, enqueue_task_job
from tinytown.system.launching import detached, worker_argv
from tinytown.system.processes import kill_group
from tinytown.worker import commits
from tinytown.worker.pipeline import Next, one_round
from tinytown.worker.runner import Watchdog
from tinytown.worker.state import WorkerContext, WorkerState

log = logging.getLogger("tinytown.worker")


class WorkerRuntime:
    """Everything one agent's worker process knows; the rounds run through it.

    `shutdown` ends the process warmly (a running round finishes first): the worker
    process passes Celery's warm shutdown, a test passes whatever it wants to see.
    """

    def __init__(self, settings: Settings, agent: Agent, shutdown: Callable[[], None],
                 launch: str | None = None, revive: bool = False) -> None:
        self.settings = settings
        self.agent_id = agent.id
        self.name = agent.name
        self.town = settings.town
        self.redis = connect(settings, start=False)
        self.store = Store(self.redis, settings.town)
        self.host = socket.gethostname()
        self.hostname = f"{agent.name}@{self.host}"
        self.queue = keys.agent_queue(self.town, agent.id)
        self.queues = queues_of(self.town, agent, settings.known_roles())
        self.logs = settings.logs_dir / agent.name
        self.watchdog = Watchdog()
        self._shutdown = shutdown
        self.launched = launch is not None  # by `tt spawn` / `tt restart`, not by hand
        self.launch = launch or uuid.uuid4().hex  # by hand: a start of its own
        self.revive = revive
        self.state = WorkerState()
        self.context = WorkerContext(settings, self.store, agent.id, self.logs,
                                     self.watchdog, self.state)

    @property
    def fence(self) -> Fence | None:
        """This start's fencing token (taken in on_init)."""
        return self.state.fence

    @property
    def worktree(self) -> Path | None:
        """Where the agent's CLI runs on this host (None: the town's folder)."""
        return self.state.worktree

    # --- lifecycle (Celery signals) -------------------------------------------------

    def unwanted(self, agent: Agent) -> str | None:
        """Why this worker must not serve the agent, if it must not: the agent was
        killed or closed while the worker started (a start by hand revives it), or a
        newer start superseded this one."""
        if agent.state.is_terminal and not self.revive:
            return f"the agent is {agent.state.value}"
        launch = runtime.current_launch(self.store, self.agent_id)
        if self.launched and launch is not None and launch != self.launch:
            return "a newer worker start superseded this one"
        return None

    def held_elsewhere(self) -> str | None:
        """Which live worker serves the agent, if another one does (a second is refused)."""
        serving = runtime.holder(runtime.read(self.store, self.agent_id),
                                 self.settings.supervisor.heartbeat_timeout_secs)
        return None if serving is None else runtime.refusal(serving)

    def take_over(self) -> None:
        """Hold the agent: a new epoch, refused (LeaseHeld) while another worker lives."""
        self.state.fence = runtime.acquire(self.store, self.agent_id, self.hostname,
                                           self.launch,
                                           self.settings.supervisor.heartbeat_timeout_secs)

    def on_init(self) -> None:
        """worker_init: take the agent over, back to `starting`, recover what a dead
        predecessor left; stand down (StandDown) without touching the agent when it is
        no longer ours or another worker serves it."""
        try:
            agent = self.store.require_agent(self.agent_id)
            reason = self.unwanted(agent)
            if reason is not None:
                raise StandDown(reason)
            rt = runtime.read(self.store, self.agent_id)
            self.take_over()
        except RedisUnreachable as exc:  # Celery would log it and start anyway
            raise StandDown(str(exc)) from None
        except LeaseHeld as exc:
            raise StandDown(str(exc), code=1) from None
        if rt.get("cli_pgid") and rt.get("host") == self.host:
            kill_group(int(rt["cli_pgid"]))  # a CLI orphaned by a crashed predecessor
        self.state.serving = True
        self.state.worktree = commits.local_workspace(self.settings, agent)
        commits.keep_left_work(self.settings, agent, self.state.worktree)
        if agent.state.is_terminal:
            self.store.clear_stop(self.agent_id)
            states.transition(self.store, self.agent_id, AgentState.STARTING,
                              reason="worker started", change=_clear_task, fence=self.fence)
        self.return_inflight()
        threading.Thread(target=self._heartbeat, name="tinytown-beat", daemon=True).start()
        self.store.update_agent(self.agent_id, _stamp_heartbeat, fence=self.fence)

    def on_ready(self, consumer: Any) -> None:
        """worker_ready: `idle` (or stay paused), and look at the inbox at once."""
        self.state.ready = True
        agent = self.store.require_agent(self.agent_id)
        if agent.state == AgentState.PAUSED:
            for queue in self.queues:
                consumer.cancel_task_queue(queue)
        elif agent.state == AgentState.STARTING:
            try:
                states.transition(self.store, self.agent_id, AgentState.IDLE,
                                  reason="worker ready", fence=self.fence)
            except Fenced as exc:
                self.hand_off(exc)
                return
        elif agent.state == AgentState.DRAINING or agent.state.is_terminal:
            self.request_shutdown()  # closed while starting (its remote shutdown came early)
            return
        enqueue_round(self.redis, self.town, self.agent_id, force=True)
        if self.settings.agent.idle_timeout_secs > 0:
            threading.Thread(target=self._idle_watch, daemon=True).start()

    def on_shutdown(self) -> None:
        """worker_shutdown: cold after a drain, stopped otherwise."""
        self.state.stopped.set()
        if not self.state.serving or self.state.stale.is_set():
            return  # stood down, or handed off: the agent is not ours to touch
        agent = self.store.get_agent(self.agent_id)
        assert self.fence is not None  # taken before serving was set
        if not runtime.forget_mine(self.store, self.fence, self.agent_id):
            return  # a newer worker serves the agent now: its records are not ours
        if agent is None or agent.state.is_terminal:
            return
        new = AgentState.COLD if agent.state == AgentState.DRAINING else AgentState.STOPPED
        reason = "drained" if new == AgentState.COLD else "worker shut down"
        if self.store.stop_requested(self.agent_id):
            new, reason = AgentState.STOPPED, "killed"
        elif not self.state.ready and new == AgentState.STOPPED:
            new, reason = AgentState.ERROR, "worker failed to start (see its worker.log)"
        try:
            states.transition(self.store, self.agent_id, new, reason=reason, fence=self.fence)
        except Exception:  # lost a race with the supervisor (or a newer worker): it stands
            log.exception("could not record the final state")
            return
        if new == AgentState.COLD and self.state.idle_drained and \
                self.store.inbox_len(self.agent_id):
            self._wake_again(agent)

    def _wake_again(self, agent: Agent) -> None:
        """Work arrived while the idle agent drained (its sender saw it draining, not cold,
        and woke nobody): the agent starts again, on its host or here. (After `tt close`
        work left in the inbox waits: only work that arrives later wakes the agent.)"""
        fleet.wake_cold(self.store, agent, "work arrived while it drained",
                        self.settings.supervisor.heartbeat_timeout_secs,
                        lambda woken: detached(
                            worker_argv(self.settings.root,
                                        runtime.launching(self.store, woken.id), woken.id),
                            self.logs / "worker.log", self.settings.root))

    def on_shutting_down(self) -> None:
        """worker_shutting_down (a warm shutdown begins): after `tt close` the running
        round finishes; after anything else (`tt down`, `tt kill` of a paused agent, a
        SIGTERM from systemd) it is cut short: its CLI is stopped and its work handed
        back, to run again when the agent is restarted, whatever the CLI."""
        self.state.closing.set()
        agent = self.store.get_agent(self.agent_id)
        if agent is not None and agent.state == AgentState.DRAINING:
            return
        self.state.cut_short = True
        self.state.stop_cli()

    def request_shutdown(self) -> None:
        """Warm shutdown of this worker: the running round (if any) finishes first."""
        self.state.closing.set()
        self._shutdown()

    def drain(self, reason: str) -> None:
        agent = self.store.require_agent(self.agent_id)
        if agent.state in (AgentState.IDLE, AgentState.WORKING, AgentState.PAUSED,
                           AgentState.STARTING):
            try:
                states.transition(self.store, self.agent_id, AgentState.DRAINING,
                                  reason=reason, fence=self.fence)
            except Fenced as exc:
                self.hand_off(exc)
                return
        self.request_shutdown()

    def hand_off(self, why: Exception) -> None:
        """A newer worker start holds the agent (this one froze, or lost its link, and
        was replaced): stop the CLI, write nothing more for the agent, and exit."""
        if self.state.stale.is_set():
            return
        self.state.stale.set()
        self.state.cut_short = True  # the running round, if any, records nothing
        log.warning("standing down: %s", why)
        self.state.stop_cli()
        self.request_shutdown()

    def _pass_on_wake(self) -> None:
        """A round job this stale worker took was meant for the agent's new worker (its
        wake flag stays set): queue another."""
        try:
            enqueue_round(self.redis, self.town, self.agent_id, force=True)
        except TinytownError:
            pass  # Redis is gone: the new worker's own start looks at the inbox

    def _heartbeat(self) -> None:
        """The worker's own heartbeat in Redis, every heartbeat interval, for as long as
        the process serves the agent: through a warm shutdown that waits for a round
        (Celery's heartbeats stop when it begins), so the supervisor does not mistake a
        closing worker for a dead one. A frozen worker stops beating."""
        every = self.settings.supervisor.heartbeat_interval_secs
        lost_since: float | None = None
        fence = self.fence
        assert fence is not None  # the beat starts once the agent is taken over
        while not self.state.stopped.wait(min(every, self.settings.agent.redis_lost_secs / 3)):
            try:
                if not runtime.beat(self.store, fence, self.agent_id):
                    self.hand_off(Fenced("a newer worker start holds the agent"))
                    return
                lost_since = None
                self.state.stop_cancelled(self.store)  # its round's task was cancelled
            except TinytownError as exc:  # an outage: the next beat tries again
                log.warning("could not write the heartbeat: %s", exc)
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since >= self.settings.agent.redis_lost_secs:
                    self._give_up()

    def _give_up(self) -> None:
        """Redis has been out of reach for `redis_lost_secs`: the town is down. Exit at
        once (a warm shutdown would wait on the dead broker); the in-flight messages
        stay in Redis, and the next start or the supervisor hands them back."""
        log.error("the town's Redis has been unreachable for %gs: exiting",
                  self.settings.agent.redis_lost_secs)
        logging.shutdown()
        os._exit(EXIT_REDIS_UNREACHABLE)

    def _idle_watch(self) -> None:
        limit = self.settings.agent.idle_timeout_secs
        while not self.state.closing.wait(min(1.0, limit / 4)):
            agent = self.store.get_agent(self.agent_id)
            if agent is None or agent.state.is_terminal:
                return
            idle_for = (utcnow() - agent.last_active_at).total_seconds()
            if agent.state == AgentState.IDLE and idle_for >= limit:
                self.state.idle_drained = True
                self.drain(f"idle for {idle_for:.0f}s")
                return

    def return_inflight(self) -> None:
        self.context.return_inflight()

    # --- tasks from role queues and plain Celery clients ------------------------------

    def take_task(
        self,
        queue: str,
        task_id: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
    ) -> str | None:
        """Claim a pending task (or create one), put it in our inbox and run a round now.

        An agent that cannot take work hands the job back to the same queue, so another
        agent of the role (or this one, later) gets it: it is never dropped.
        """
        agent = self.store.require_agent(self.agent_id)
        if agent.state not in (AgentState.IDLE, AgentState.STARTING) or \
                self.state.closing.is_set() or self.store.stop_requested(self.agent_id):
            enqueue_task_job(self.redis, self.town, queue, task_id, description=description,
                             tags=tags)
            return None
        if task_id is None:
            if not (description or "").strip():
                log.warning("ignoring a tinytown.task job with neither task_id nor description")
                return None
            task = Task(description, tags=tags or [])
            task_writes.assign(self.store, task, agent, wake=False, queue=queue)
        else:
            try:
                claimed = task_writes.claim(self.store, task_id, agent, wake=False, queue=queue)
            except TinytownError:
                log.warning("ignoring a job for unknown task %s", task_id)
                return None
            if claimed is None:
                return None  # a duplicate job, or taken meanwhile
            task = claimed
        self.run_round(self.agent_id)  # busy now: the next role job goes to a free agent
        return task.id

    # --- rounds ---------------------------------------------------------------------

    def run_round(self, agent_id: str) -> dict[str, Any] | None:
        """Rounds for the agent's inbox; what they cost (the Celery task's result, which
        Flower shows), None when no CLI ran."""
        if agent_id != self.agent_id:
            log.warning("ignoring a round for agent %s: this worker runs %s", agent_id,
                        self.agent_id)
            return None
        self.state.job_usage = None
        try:
            self._rounds()
        except Fenced as exc:
            self.hand_off(exc)
            self._pass_on_wake()
        except RedisUnreachable as exc:
            log.warning("Redis went away during a round (%s); waiting for it", exc)
            self._after_outage()
        except Exception as exc:
            log.exception("round failed")
            try:
                self.return_inflight()
                states.transition(self.store, self.agent_id, AgentState.ERROR,
                                  reason=f"round failed: {type(exc).__name__}: {exc}"[:300],
                                  fence=self.fence)
            except Fenced as stale:
                self.hand_off(stale)
            finally:
                self.request_shutdown()
        used = self.state.job_usage
        return used.to_dict() if used is not None else None

    def _after_outage(self) -> None:
        """Once Redis answers again, hand the round's messages back and carry on: the
        next round takes them (a task that already finished is not run again)."""
        lost_since = time.monotonic()
        while not self.state.closing.is_set():
            try:
                rounds.after_outage(self.store, self.agent_id, self.fence)
                return
            except Fenced as exc:
                self.hand_off(exc)
                return
            except RedisUnreachable:
                if time.monotonic() - lost_since >= self.settings.agent.redis_lost_secs:
                    self._give_up()
                self.state.closing.wait(min(2.0, self.settings.agent.redis_lost_secs / 3))

    def _rounds(self) -> None:
        """Rounds until the inbox holds nothing actionable: one Celery job drains a
        backlog without a Celery hop (and its task events) per message. Each round says
        what comes next (`RoundResult`); the worker's life is decided here."""
        while not self.state.closing.is_set():
            result = one_round(self.context)
            for reason in result.drains:
                self.drain(reason)
            if result.next == Next.KILLED:
                agent = self.store.get_agent(self.agent_id)
                if agent is not None and not agent.state.is_terminal:
                    states.transition(self.store, self.agent_id, AgentState.STOPPED,
                                      reason="killed", fence=self.fence)
                self.request_shutdown()
                return
            if result.next == Next.GONE:
                self.request_shutdown()
                return
            if result.next == Next.WAIT:
                return


class StandDown(BaseException):
    """Raised in worker_init when the agent is no longer this worker's to serve.

    A BaseException, so Celery's signal dispatch (which logs an Exception and goes on)
    lets it end the start-up; the process then exits without touching the agent, with
    `code` (0: killed, closed or superseded meanwhile; 1: another worker serves it).
    """

    def __init__(self, reason: str, code: int = 0) -> None:
        super().__init__(reason)
        self.code = code


def _clear_task(agent: Agent) -> None:
    agent.current_task = None


def _stamp_heartbeat(agent: Agent) -> None:
    agent.last_heartbeat = utcnow()
