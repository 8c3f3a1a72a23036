"""What an agent's worker knows, in two objects: the process's and the round's.

`WorkerState` is everything that changes while the process serves its agent (its
fencing token, whether it is closing, cut short, handed off, the running CLI's group).
Three threads read it: Celery's (the rounds), the heartbeat and the idle watch, and
the signal handlers; the flags two threads wait on are `threading.Event`s. It lives
apart from `WorkerRuntime` (`worker/lifecycle.py`) so that a round reads and sets
these flags without holding the lifecycle it could call back into.

`WorkerContext` is what a round needs of its worker: fixed at start, plus that state.
`RoundContext` is one round: the steps of `worker/pipeline.py` fill it in turn, so a
step hands the next one the context, not ten arguments.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tinytown.core.models import Agent, CheckRun, Message, Task, TaskState
from tinytown.core.outcomes import CliReport
from tinytown.core.presets import CliCommand, resolve_cli
from tinytown.core.settings import Settings
from tinytown.core.usage_rules import Usage
from tinytown.db import rounds
from tinytown.db.fence import Fence
from tinytown.db.store import Store
from tinytown.system.processes import kill_group
from tinytown.worker import sessions
from tinytown.worker.runner import RunResult, Watchdog


@dataclass
class WorkerState:
    """The worker's changing state, one field per fact, in one place: the lifecycle
    and the round's steps share it instead of calling each other."""

    closing: threading.Event = field(default_factory=threading.Event)  # shutdown begun
    stopped: threading.Event = field(default_factory=threading.Event)  # no more beats
    stale: threading.Event = field(default_factory=threading.Event)  # a newer worker holds it
    serving: bool = False  # on_init recorded this process as the agent's worker
    ready: bool = False  # worker_ready came: a stop now is not a failed start
    cut_short: bool = False  # the process is being stopped: the running round is cut
    idle_drained: bool = False  # it drained itself, idle past idle_timeout_secs
    cli_group: int | None = None  # the running CLI's process group
    cli_task: str | None = None  # the task the running CLI works on
    task_cancelled: bool = False  # that task was cancelled: the CLI is stopped, work WIP
    fence: Fence | None = None  # taken in on_init: this start's fencing token
    worktree: Path | None = None  # where its CLI runs (None: the town's folder)
    last_round: int | None = None  # the highest round number used (None: unread)
    job_usage: Usage | None = None  # what this Celery job's rounds used (its result)

    def stop_cancelled(self, store: Store) -> None:
        """The running CLI's task was cancelled (`tt task cancel`, `tt mission cancel`):
        stop the CLI; the round commits its work as work in progress and records no
        outcome over the cancellation. (Called from the heartbeat thread.)"""
        task_id = self.cli_task
        if task_id is None or self.cli_group is None or self.task_cancelled:
            return
        task = store.get_task(task_id)
        if task is not None and task.state == TaskState.CANCELLED and \
                self.cli_task == task_id:
            self.task_cancelled = True
            self.stop_cli()

    def stop_cli(self) -> None:
        """Kill the running CLI's group, if one runs (off this thread: it waits)."""
        group = self.cli_group
        if group is not None:
            threading.Thread(target=kill_group, args=(group,), daemon=True).start()


@dataclass
class WorkerContext:
    """What a round needs of its worker: its agent, town, logs, watchdog and state."""

    settings: Settings
    store: Store
    agent_id: str
    logs: Path
    watchdog: Watchdog
    state: WorkerState
    env: dict[str, str] = field(default_factory=dict)  # the CLI's, before the round's own
    commands: dict[str, CliCommand] = field(default_factory=dict)  # agent.cli -> resolved

    def __post_init__(self) -> None:
        if not self.env:
            self.env = {k: v for k, v in os.environ.items() if k != "TINYTOWN_TASK_ID"}
            self.env.update({"TINYTOWN_TOWN": self.settings.town,
                             "TINYTOWN_TOWN_ROOT": str(self.settings.root)})

    def command(self, cli: str) -> CliCommand:
        """The agent CLI's resolved command, resolved once per CLI name."""
        command = self.commands.get(cli)
        if command is None:
            command = self.commands[cli] = resolve_cli(self.settings, cli)
        return command

    def state_dir_of(self, agent_id: str) -> Path:
        return self.settings.runtime_dir / "sessions" / agent_id

    def return_inflight(self) -> None:
        """The round's in-flight messages back to the inbox: they run later."""
        rounds.return_inflight(self.store.r, self.settings.town, self.agent_id,
                               self.state.fence)


@dataclass
class RoundContext:
    """One round of the agent CLI, for one actionable message: what each step of the
    pipeline found, for the steps after it (a field is set by the step named beside
    it, and read only after that step ran)."""

    worker: WorkerContext
    agent: Agent  # as `begin` read it; as `start` wrote it, once started
    message: Message  # the actionable one
    notes: list[Message]  # informational messages the prompt carries along
    begun: rounds.Begun
    task_id: str | None = None  # the task a `task_assign` names
    ran: bool = True  # False: nothing to run (its task was cancelled or is gone)
    drain: str | None = None  # why the agent drains after this round (max rounds)
    fenced: bool = False  # run: a newer worker held the agent as the CLI started
    check: CheckRun | None = None  # check: the check gate's run (None: none ran)
    task: Task | None = field(init=False)  # start
    number: int = field(init=False)  # start
    command: CliCommand = field(init=False)  # start
    usage_file: Path = field(init=False)  # start: where a CLI may write its counts
    planned: sessions.SessionPlan = field(init=False)  # session
    prompt: str = field(init=False)  # prompt
    before: str | None = field(init=False)  # workspace: the branch head before the run
    run_env: dict[str, str] = field(init=False)  # mcp
    argv: list[str] = field(init=False)  # mcp
    result: RunResult = field(init=False)  # run
    commits: list[str] = field(init=False)  # commit
    report: CliReport = field(init=False)  # report
    verdict: tuple[bool, str, str] = field(init=False)  # report: `judge`'s
    limited: bool = field(init=False)  # report: the run ended at a usage limit
    resets: datetime | None = field(init=False)  # report: when that limit resets
    used: Usage = field(init=False)  # usage
    totals: dict[str, Any] | None = field(init=False)  # usage: the session's, reported

    @property
    def task_ref(self) -> str | None:
        return self.task.id if self.task else None
