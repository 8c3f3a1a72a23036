"""`WorkerRuntime`: one agent's worker, its lifecycle and its rounds.

Celery signals drive the agent's state (init -> starting, ready -> idle, shutdown ->
cold / stopped; wired in `tinytown.worker.app`). A round is one execution of the
`tinytown.round` task: it takes messages from the inbox into an in-flight list,
answers status requests and pings directly, runs the agent CLI once for the first
message that needs it, records the outcome and drops the in-flight list. Every Redis
write goes through `tinytown.db`; shutting the process down is a callable the
process passes in, so a test can drive rounds in-process.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec

from tinytown import keys, workspace
from tinytown.db import fleet, holds, hosts, runtime, states
from tinytown.db import rounds as round_steps
from tinytown.db.connection import connect
from tinytown.db.fence import Fence
from tinytown.db.store import Store
from tinytown.db.tasks import RESULT_LIMIT, claim
from tinytown.db.tasks import assign as assign_task
from tinytown.db.wakeup import enqueue_round, enqueue_task_job
from tinytown.errors import (
    EXIT_REDIS_UNREACHABLE,
    Fenced,
    LeaseHeld,
    RedisUnreachable,
    TinytownError,
)
from tinytown.launching import detached, worker_argv
from tinytown.models import (
    Agent,
    AgentState,
    Message,
    MessageBody,
    MessageType,
    SpawnMode,
    Task,
    utcnow,
)
from tinytown.outcomes import (
    CliReport,
    RunFacts,
    judge,
    read_report,
    usage_limit,
)
from tinytown.presets import CliCommand, resolve_cli, with_prompt_limit
from tinytown.private import private_dir
from tinytown.processes import kill_group
from tinytown.roles import queues_of
from tinytown.settings import Settings
from tinytown.usage import Usage, of_round, since_session_start
from tinytown.worker import mcp_setup, sessions, spend
from tinytown.worker.prompt import RoundInput, build_prompt
from tinytown.worker.runner import RunResult, Watchdog, run_cli
from tinytown.workspace import GitError

log = logging.getLogger("tinytown.worker")
S = AgentState
MAX_BATCH = 100


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
        self._commands: dict[str, CliCommand] = {}  # agent.cli -> its resolved command
        self._env = {k: v for k, v in os.environ.items() if k != "TINYTOWN_TASK_ID"}
        self._env.update({"TINYTOWN_TOWN": self.town, "TINYTOWN_TOWN_ROOT": str(settings.root)})
        self._shutdown = shutdown
        self.launched = launch is not None  # by `tt spawn` / `tt restart`, not by hand
        self.launch = launch or uuid.uuid4().hex  # by hand: a start of its own
        self.revive = revive
        self._closing = threading.Event()
        self._serving = False  # on_init recorded this process as the agent's worker
        self._stopped = threading.Event()  # worker_shutdown: no more beats
        self._cli_group: int | None = None  # the running CLI's process group
        self._cut_short = False  # the process is being stopped: the running round is cut
        self._ready = False
        self._spent: Usage | None = None  # what this job's rounds cost
        self.fence: Fence | None = None  # taken in on_init: this start's fencing token
        self.worktree: Path | None = None  # where its CLI runs (None: the town's folder)
        self._stale = threading.Event()  # a newer worker holds the agent: hands off
        self._idle_drained = False  # it drained itself, idle past idle_timeout_secs
        self._last_round: int | None = None  # the highest round number used (None: unread)

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
        self.fence = runtime.acquire(self.store, self.agent_id, self.hostname, self.launch,
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
        self._serving = True
        self._keep_left_work(agent)
        if agent.state.is_terminal:
            self.store.clear_stop(self.agent_id)
            states.transition(self.store, self.agent_id, S.STARTING, reason="worker started",
                              change=_clear_task, fence=self.fence)
        self.return_inflight()
        threading.Thread(target=self._beat, name="tinytown-beat", daemon=True).start()
        self.store.update_agent(self.agent_id, _beat, fence=self.fence)

    def _local_workspace(self, agent: Agent) -> Path | None:
        """Where the agent's CLI runs on this host: its worktree in this host's clone
        (`[workspace] repo`, else the repository the town's folder is in), made here when
        it is not (another host's agent, or a folder deleted by hand); a folder of the
        user's as given; None: the town's folder."""
        if not agent.branch:
            return Path(agent.workspace) if agent.workspace else None
        repo = Path(self.settings.workspace.repo) if self.settings.workspace.repo else \
            workspace.repo_root(self.settings.root)
        if repo is None:
            log.warning("%s: no git repository on this host: it works in the town's folder",
                        agent.name)
            return None
        path = self.settings.runtime_dir / "worktrees" / agent.name
        try:
            if workspace.ensure(repo, path, agent.branch, agent.base,
                                self.settings.workspace.push):
                log.warning("%s: its worktree made here, on %s", agent.name, agent.branch)
        except GitError as exc:
            log.warning("%s: its worktree could not be made here: %s", agent.name, exc)
            return None
        return path

    def _keep_left_work(self, agent: Agent) -> None:
        """What a dead predecessor's round left in the agent's worktree is committed as
        work in progress: the next round starts from it."""
        self.worktree = self._local_workspace(agent)
        if not (agent.branch and self.worktree) or not self.settings.workspace.auto_commit:
            return
        try:
            made = workspace.commit_all(
                self.worktree, agent.name,
                "WIP: left by a round whose worker stopped\n\nTinytown, at the next start"
                f" of {agent.name}")
        except GitError as exc:
            log.warning("%s: could not commit what its last round left: %s", agent.name, exc)
            return
        if made:
            log.warning("%s: committed what its last round left as %s", agent.name, made[:12])

    def on_ready(self, consumer: Any) -> None:
        """worker_ready: `idle` (or stay paused), and look at the inbox at once."""
        self._ready = True
        agent = self.store.require_agent(self.agent_id)
        if agent.state == S.PAUSED:
            for queue in self.queues:
                consumer.cancel_task_queue(queue)
        elif agent.state == S.STARTING:
            try:
                states.transition(self.store, self.agent_id, S.IDLE, reason="worker ready",
                                  fence=self.fence)
            except Fenced as exc:
                self.hand_off(exc)
                return
        elif agent.state == S.DRAINING or agent.state.is_terminal:
            self.request_shutdown()  # closed while starting (its remote shutdown came early)
            return
        enqueue_round(self.redis, self.town, self.agent_id, force=True)
        if self.settings.agent.idle_timeout_secs > 0:
            threading.Thread(target=self._idle_watch, daemon=True).start()

    def on_shutdown(self) -> None:
        """worker_shutdown: cold after a drain, stopped otherwise."""
        self._stopped.set()
        if not self._serving or self._stale.is_set():
            return  # stood down, or handed off: the agent is not ours to touch
        agent = self.store.get_agent(self.agent_id)
        assert self.fence is not None  # taken before _serving was set
        if not runtime.forget_mine(self.store, self.fence, self.agent_id):
            return  # a newer worker serves the agent now: its records are not ours
        if agent is None or agent.state.is_terminal:
            return
        new = S.COLD if agent.state == S.DRAINING else S.STOPPED
        reason = "drained" if new == S.COLD else "worker shut down"
        if self.store.stop_requested(self.agent_id):
            new, reason = S.STOPPED, "killed"
        elif not self._ready and new == S.STOPPED:
            new, reason = S.ERROR, "worker failed to start (see its worker.log)"
        try:
            states.transition(self.store, self.agent_id, new, reason=reason, fence=self.fence)
        except Exception:  # lost a race with the supervisor (or a newer worker): it stands
            log.exception("could not record the final state")
            return
        if new == S.COLD and self._idle_drained and self.store.inbox_len(self.agent_id):
            self._wake_again()

    def _wake_again(self) -> None:
        """Work arrived while the idle agent drained (its sender saw it draining, not cold,
        and woke nobody): the agent starts again, on its host or here. (After `tt close`
        work left in the inbox waits: only work that arrives later wakes the agent.)"""
        woken = fleet.wake(self.store, self.agent_id, "work arrived while it drained")
        if woken is None:
            return
        if woken.host is not None:
            hosts.nudge(self.redis, self.town, woken.host)
            return
        launch = runtime.launching(self.store, self.agent_id)
        detached(worker_argv(self.settings.root, launch, self.agent_id),
                 self.logs / "worker.log", self.settings.root)

    def on_shutting_down(self) -> None:
        """worker_shutting_down (a warm shutdown begins): after `tt close` the running
        round finishes; after anything else (`tt down`, `tt kill` of a paused agent, a
        SIGTERM from systemd) it is cut short: its CLI is stopped and its work handed
        back, to run again when the agent is restarted, whatever the CLI."""
        self._closing.set()
        agent = self.store.get_agent(self.agent_id)
        if agent is not None and agent.state == S.DRAINING:
            return
        self._cut_short = True
        group = self._cli_group
        if group is not None:
            threading.Thread(target=kill_group, args=(group,), daemon=True).start()

    def request_shutdown(self) -> None:
        """Warm shutdown of this worker: the running round (if any) finishes first."""
        self._closing.set()
        self._shutdown()

    def drain(self, reason: str) -> None:
        agent = self.store.require_agent(self.agent_id)
        if agent.state in (S.IDLE, S.WORKING, S.PAUSED, S.STARTING):
            try:
                states.transition(self.store, self.agent_id, S.DRAINING, reason=reason,
                                  fence=self.fence)
            except Fenced as exc:
                self.hand_off(exc)
                return
        self.request_shutdown()

    def hand_off(self, why: Exception) -> None:
        """A newer worker start holds the agent (this one froze, or lost its link, and
        was replaced): stop the CLI, write nothing more for the agent, and exit."""
        if self._stale.is_set():
            return
        self._stale.set()
        self._cut_short = True  # the running round, if any, records nothing
        log.warning("standing down: %s", why)
        group = self._cli_group
        if group is not None:
            threading.Thread(target=kill_group, args=(group,), daemon=True).start()
        self.request_shutdown()

    def _pass_on_wake(self) -> None:
        """A round job this stale worker took was meant for the agent's new worker (its
        wake flag stays set): queue another."""
        try:
            enqueue_round(self.redis, self.town, self.agent_id, force=True)
        except TinytownError:
            pass  # Redis is gone: the new worker's own start looks at the inbox

    def _beat(self) -> None:
        """The worker's own heartbeat in Redis, every heartbeat interval, for as long as
        the process serves the agent: through a warm shutdown that waits for a round
        (Celery's heartbeats stop when it begins), so the supervisor does not mistake a
        closing worker for a dead one. A frozen worker stops beating."""
        every = self.settings.supervisor.heartbeat_interval_secs
        lost_since: float | None = None
        fence = self.fence
        assert fence is not None  # the beat starts once the agent is taken over
        while not self._stopped.wait(min(every, self.settings.agent.redis_lost_secs / 3)):
            try:
                if not runtime.beat(self.store, fence, self.agent_id):
                    self.hand_off(Fenced("a newer worker start holds the agent"))
                    return
                lost_since = None
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
        while not self._closing.wait(min(1.0, limit / 4)):
            agent = self.store.get_agent(self.agent_id)
            if agent is None or agent.state.is_terminal:
                return
            idle_for = (utcnow() - agent.last_active_at).total_seconds()
            if agent.state == S.IDLE and idle_for >= limit:
                self._idle_drained = True
                self.drain(f"idle for {idle_for:.0f}s")
                return

    def return_inflight(self) -> None:
        round_steps.return_inflight(self.redis, self.town, self.agent_id, self.fence)

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
        if agent.state not in (S.IDLE, S.STARTING) or self._closing.is_set() or \
                self.store.stop_requested(self.agent_id):
            enqueue_task_job(self.redis, self.town, queue, task_id, description=description,
                             tags=tags)
            return None
        if task_id is None:
            if not (description or "").strip():
                log.warning("ignoring a tinytown.task job with neither task_id nor description")
                return None
            task = Task(description, tags=tags or [])
            assign_task(self.store, task, agent, wake=False, queue=queue)
        else:
            try:
                claimed = claim(self.store, task_id, agent, wake=False, queue=queue)
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
        self._spent = None
        try:
            self._round()
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
                states.transition(self.store, self.agent_id, S.ERROR,
                                  reason=f"round failed: {type(exc).__name__}: {exc}"[:300],
                                  fence=self.fence)
            except Fenced as stale:
                self.hand_off(stale)
            finally:
                self.request_shutdown()
        return self._spent.to_dict() if self._spent is not None else None

    def _after_outage(self) -> None:
        """Once Redis answers again, hand the round's messages back and carry on: the
        next round takes them (a task that already finished is not run again)."""
        lost_since = time.monotonic()
        while not self._closing.is_set():
            try:
                round_steps.after_outage(self.store, self.agent_id, self.fence)
                return
            except Fenced as exc:
                self.hand_off(exc)
                return
            except RedisUnreachable:
                if time.monotonic() - lost_since >= self.settings.agent.redis_lost_secs:
                    self._give_up()
                self._closing.wait(min(2.0, self.settings.agent.redis_lost_secs / 3))

    def _round(self) -> None:
        """Rounds until the inbox holds nothing actionable: one Celery job drains a
        backlog without a Celery hop (and its task events) per message."""
        while not self._closing.is_set():
            begun = round_steps.begin(self.store, self.agent_id, MAX_BATCH, self.fence)
            if begun.verdict == "stop":
                agent = self.store.get_agent(self.agent_id)
                if agent is not None and not agent.state.is_terminal:
                    states.transition(self.store, self.agent_id, S.STOPPED, reason="killed",
                                      fence=self.fence)
                self.request_shutdown()
                return
            agent = begun.agent
            if agent is None:  # pruned under us (or its record no longer parses)
                self.request_shutdown()
                return
            if begun.verdict != "take" or not begun.messages:
                return  # paused, draining or terminal: the inbox stays as it is
            messages = self.store.parse_messages(begun.messages)  # bad ones: dead letters
            if not self._handle(agent, messages, begun) and \
                    len(messages) == len(begun.messages):
                return  # only notes: they wait for the next actionable message

    def _handle(self, agent: Agent, messages: list[Message], begun: round_steps.Begun) -> bool:
        """Answer pings and status requests, run the CLI for the message that needs it;
        False when the batch held only notes (nothing was done)."""
        notes: list[Message] = []
        for_cli: Message | None = None
        shutdown = False
        replies = []
        for m in messages:
            if m.type in ("status_request", "ping"):
                body: MessageBody = (
                    MessageType.status_response(agent.state, agent.current_task)
                    if m.type == "status_request" else MessageType.pong())
                replies.append(Message(sender=self.agent_id, to=m.sender, body=body,
                                       priority=m.priority, correlation_id=m.id))
            elif m.type == "shutdown":
                shutdown = True
            elif m.needs_cli:
                for_cli = m
            else:
                notes.append(m)
        round_steps.answer(self.store, replies, self.fence)
        if for_cli is None or not self._run(agent, for_cli, notes, begun):
            round_steps.put_back_notes(self.store, self.agent_id, notes, self.fence)
        if shutdown:
            self.drain("shutdown message")
        return len(notes) < len(messages)

    def _run(
        self, agent: Agent, m: Message, notes: list[Message], begun: round_steps.Begun
    ) -> bool:
        """Run the agent CLI for `m`; False when there is nothing to run (its task was
        cancelled or is gone)."""
        task_id = str(getattr(m.body, "task_id", "")) if m.type == "task_assign" else None
        over = spend.over_budget(self.store, self.settings, agent, begun.town_budget,
                                 begun.town_budget_tokens)
        if over is not None:  # the CLI does not run: the work waits, the agent pauses
            if not holds.hold(self.store, self.agent_id, over, fence=self.fence):
                self.return_inflight()
            return True
        try:
            started = round_steps.start(self.store, self.agent_id, task_id,
                                        reason=f"round {agent.rounds_completed + 1}",
                                        seen=begun, fence=self.fence)
        except round_steps.CannotStart:  # paused or closed between our check and now
            self.return_inflight()
            return True
        if started is None:
            return False
        agent, task = started
        number = self._number(agent)
        command = self._command(agent.cli)
        usage_file = self.logs / f"round-{number}.usage.json"
        planned = sessions.plan(command, agent, self._parent(agent),
                                self._state_dir(agent, command), str(usage_file))
        prompt = build_prompt(self._round_input(agent, m, task, notes, planned.forked))
        before = self._head(agent)
        result = self._run_cli(agent, command, planned, prompt, number, task)
        if sessions.lost(command, planned, result.exit_code, result.output_tail) and \
                not self._cut_short:  # start a new session rather than fail for good
            log.warning("%s: session %s is gone: this round starts a new one", agent.name,
                        planned.session)
            planned = sessions.plan(command, _without_session(agent), None,
                                    self._state_dir(agent, command), str(usage_file))
            result = self._run_cli(agent, command, planned, prompt, number, task)
        if self._stale.is_set():
            raise Fenced("a newer worker start holds the agent: this round records nothing")
        commits = self._commit(agent, task, number, before,
                               wip=self._cut_short or result.timed_out)
        if self._cut_short:  # stopped by Tinytown: no outcome, the work waits
            round_steps.cut_short(self.store, self.agent_id, task.id if task else None,
                                  self.fence)
            return True
        report = read_report(command.output, result.stdout, result.output_tail, usage_file)
        verdict = judge(RunFacts(result.exit_code, result.timed_out, result.error,
                                 result.stdout, result.output_tail),
                        report, self.settings.agent.round_timeout_secs)
        # a limit counts only when the run ended on it (not one the CLI retried past)
        limited, resets = (False, None) if verdict[0] or result.timed_out else \
            usage_limit(report, result.output_tail, utcnow())
        if limited:  # not a failure: the work waits for the reset; what it used counts
            used, totals = self._usage(agent, command, planned, result, report.usage)
            self._spent = (self._spent or Usage()) + used
            continued = planned.session is not None and not planned.forked
            spend.at_usage_limit(self.store, self.settings, agent, command,
                                 task.id if task else None, resets, self.fence,
                                 used=used, number=number,
                                 totals=totals if continued else None)
            return True
        self._record(agent, m, task, prompt, result, report, number, command, planned,
                     commits, verdict)
        return True

    def _number(self, agent: Agent) -> int:
        """The round's number: past the agent's completed rounds and past every round
        this host has a log of. A round that ended at a usage limit, was cut short or
        lost its worker completed nothing, but its log stays: the next run of its work
        is a round of its own, in a log of its own."""
        if self._last_round is None:
            numbers = (re.fullmatch(r"round-(\d+)\.log", p.name) for p in
                       (self.logs.iterdir() if self.logs.is_dir() else ()))
            self._last_round = max((int(n.group(1)) for n in numbers if n), default=0)
        self._last_round = max(agent.rounds_completed, self._last_round) + 1
        return self._last_round

    def _head(self, agent: Agent) -> str | None:
        """The agent's branch head before its round (None: no branch of its own)."""
        if not (agent.branch and self.worktree):
            return None
        try:
            return workspace.head(self.worktree)
        except GitError as exc:
            log.warning("%s: cannot read its branch: %s", agent.name, exc)
            return None

    def _commit(self, agent: Agent, task: Task | None, number: int, before: str | None,
                wip: bool) -> list[str]:
        """Commit what the round changed on the agent's branch (work in progress when it
        was cut short); the commits the round made, the CLI's own included."""
        if before is None or self.worktree is None or \
                not self.settings.workspace.auto_commit:
            return []
        path = self.worktree
        title = f"task {task.id[:8]}: {task.description.strip().splitlines()[0][:60]}" \
            if task else f"round {number}"
        body = f"Tinytown round {number} of {agent.name}" + (f"\nTask: {task.id}" if task
                                                              else "")
        try:
            workspace.commit_all(path, agent.name, f"{'WIP: ' if wip else ''}{title}\n\n{body}")
            made = workspace.commits_since(path, before)
        except GitError as exc:
            log.warning("%s: could not commit its round: %s", agent.name, exc)
            return []
        if made and self.settings.workspace.push and agent.branch:
            try:
                workspace.push(path, self.settings.workspace.push, agent.branch)
            except GitError as exc:  # committed here all the same: the next push carries it
                log.warning("%s: could not push %s: %s", agent.name, agent.branch, exc)
        return made

    def _command(self, cli: str) -> CliCommand:
        command = self._commands.get(cli)
        if command is None:
            command = self._commands[cli] = resolve_cli(self.settings, cli)
        return command

    def _parent(self, agent: Agent) -> Agent | None:
        if agent.spawn_mode != "forkedcontext" or not agent.parent_agent_id or \
                agent.rounds_completed:
            return None
        return self.store.get_agent(agent.parent_agent_id)

    def _state_dir(self, agent: Agent, command: CliCommand) -> Path:
        """A folder of the agent's own that lasts across rounds (a CLI's chat history),
        made only for a CLI whose command line names it."""
        path = self._state_dir_of(agent.id)
        if any("{state}" in a for a in (*command.session_args, *command.fresh_args)):
            private_dir(path)
        return path

    def _state_dir_of(self, agent_id: str) -> Path:
        return self.settings.runtime_dir / "sessions" / agent_id

    def _round_input(
        self, agent: Agent, m: Message, task: Task | None, notes: list[Message],
        forked: bool = False,
    ) -> RoundInput:
        """What the prompt is built from; a fork the CLI made itself needs no transcript."""
        inherited: list[dict[str, str]] = []
        parent_name = ""
        if agent.spawn_mode == "forkedcontext" and agent.parent_agent_id and \
                agent.rounds_completed == 0 and not forked:
            raw = self.store.recent_context(agent.parent_agent_id,
                                            self.settings.agent.context_rounds)
            inherited = [json.loads(x) for x in raw]
            parent = self.store.get_agent(agent.parent_agent_id)
            parent_name = parent.name if parent else "?"
        names = {keys.SUPERVISOR_ID: "supervisor"}
        for sender in {m.sender, *(n.sender for n in notes)} - names.keys():
            found = self.store.get_agent(sender)
            names[sender] = found.name if found else sender
        return RoundInput(agent=agent, town=self.town, actionable=m, task=task, notes=notes,
                          inherited=inherited, parent_name=parent_name, sender_names=names)

    def _run_cli(self, agent: Agent, command: CliCommand, planned: sessions.SessionPlan,
                 prompt: str, number: int, task: Task | None) -> RunResult:
        env = dict(self._env)
        env.update({
            "TINYTOWN_AGENT_ID": agent.id, "TINYTOWN_AGENT_NAME": agent.name,
            "TINYTOWN_ROUND": str(number),
        })
        if task is not None:
            env["TINYTOWN_TASK_ID"] = task.id
        argv = planned.argv
        if self.settings.agent.mcp:
            argv = mcp_setup.configure(command, argv, env, self.settings.root, agent,
                                       task.id if task else None, self._state_dir_of(agent.id))

        def started(pid: int) -> None:
            self.watchdog.guard(pid)  # its process group dies with this worker
            self._cli_group = pid
            if self._cut_short:  # the shutdown began just before the CLI did
                threading.Thread(target=kill_group, args=(pid,), daemon=True).start()
            assert self.fence is not None
            if not runtime.cli_started(self.store, self.fence, self.agent_id, pid, number):
                self.hand_off(Fenced("a newer worker start holds the agent"))
            # written once the CLI runs: not on the way from a message to its CLI
            prompt_log.write_text(prompt)

        prompt_log = self.logs / f"round-{number}.prompt"
        log_path = self.logs / f"round-{number}.log"
        too_large = with_prompt_limit(command, prompt)
        if too_large is not None:
            prompt_log.write_text(prompt)
            return RunResult(None, "", error=too_large)
        with log_path.open("a") as log:  # the round log says which session it works in
            log.write(f"tinytown: round {number} of {agent.name}; {planned.describe()}\n")
        began = time.monotonic()
        try:
            result = run_cli(
                replace(command, argv=argv), prompt,
                cwd=self.worktree or self.settings.root, env=env,
                log_path=log_path,
                timeout=self.settings.agent.round_timeout_secs, on_start=started,
            )
        finally:
            self._cli_group = None
            self.watchdog.release()
        result.secs = time.monotonic() - began
        if result.error:  # it never started
            prompt_log.write_text(prompt)
        return result

    def _record(
        self, agent: Agent, m: Message, task: Task | None, prompt: str, result: RunResult,
        report: CliReport, number: int, command: CliCommand, planned: sessions.SessionPlan,
        commits: list[str], verdict: tuple[bool, str, str],
    ) -> None:
        ok, output, error = verdict  # `judge`'s
        session = sessions.left(command, planned, report, self._state_dir_of(self.agent_id))
        if session:
            with (self.logs / f"round-{number}.log").open("a") as log:
                log.write(f"\ntinytown: the CLI's session is {session}\n")
        reply = None
        if task is None and m.type == "query":
            answer = MessageType.informational((output if ok else error)[-RESULT_LIMIT:])
            reply = Message(sender=self.agent_id, to=m.sender, body=answer, correlation_id=m.id)
        outcome = round_steps.Outcome(
            number=number, ok=ok, output=output, error=error, reply=reply,
            context=json.dumps({"round": number, "prompt": prompt[-2000:],
                                "output": output[-2000:]}),
            context_rounds=self.settings.agent.context_rounds, session_id=session,
            commits=commits, secs=result.secs,
        )
        outcome.usage, outcome.session_usage = self._usage(agent, command, planned, result,
                                                           report.usage)
        self._spent = (self._spent or Usage()) + outcome.usage
        after = round_steps.finish(self.store, self.agent_id, task.id if task else None, outcome,
                                   self.fence)
        max_rounds = after.extra.get("max_rounds")  # set by `tt spawn --max-rounds`
        if max_rounds and after.rounds_completed >= int(max_rounds):
            self.drain(f"max rounds ({max_rounds}) reached")


    def _usage(self, agent: Agent, command: CliCommand, planned: sessions.SessionPlan,
               result: RunResult, reported: dict[str, Any]) -> tuple[Usage, dict[str, Any] |
                                                                     None]:
        """The round's usage (and, for a CLI that reports a session's totals, those)."""
        if result.error:  # it never started: nothing was spent
            return Usage(rounds=1), None
        totals = None
        if command.usage_totals and reported:
            totals = reported
            continued = planned.session is not None and not planned.forked
            reported = since_session_start(reported, agent.session_usage if continued
                                           else None)
        price = self.settings.prices.get(command.name)
        return of_round(reported, msgspec.to_builtins(price) if price else None), totals


class StandDown(BaseException):
    """Raised in worker_init when the agent is no longer this worker's to serve.

    A BaseException, so Celery's signal dispatch (which logs an Exception and goes on)
    lets it end the start-up; the process then exits without touching the agent, with
    `code` (0: killed, closed or superseded meanwhile; 1: another worker serves it).
    """

    def __init__(self, reason: str, code: int = 0) -> None:
        super().__init__(reason)
        self.code = code


def _without_session(agent: Agent) -> Agent:
    """The agent as if it had no session to continue (a copy, for planning the run)."""
    return msgspec.structs.replace(agent, session_id=None, spawn_mode=SpawnMode.FRESH)


def _clear_task(agent: Agent) -> None:
    agent.current_task = None


def _beat(agent: Agent) -> None:
    agent.last_heartbeat = utcnow()
