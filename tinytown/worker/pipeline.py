"""A round: take a batch from the inbox, answer what needs no CLI, run the pipeline.

`one_round` takes messages from the inbox into the in-flight list (`db/rounds.begin`),
answers pings and status requests at once, and runs the agent CLI for the first
message that needs it through `PIPELINE`, the round's steps in order
(`worker/steps.py`):

    budget -> start -> session -> prompt -> workspace -> mcp -> run -> commit
    -> cut_short -> report -> usage -> limit -> check -> record

Informational messages the CLI did not read go back to the inbox. The round decides
nothing about the worker's life: it returns a `RoundResult` (take another batch, wait
for a wake-up, the agent was killed or is gone, drain it) that the lifecycle
(`worker/lifecycle.py`) acts on. A newer worker holding the agent is raised as `Fenced`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from tinytown.core.models import AnyBody, Message, MessageBody
from tinytown.db import rounds
from tinytown.worker import steps
from tinytown.worker.state import RoundContext, WorkerContext

MAX_BATCH = 100

Step = Callable[[RoundContext], bool]

PIPELINE: tuple[Step, ...] = (
    steps.budget,  # before: the budget check (a hold instead of a run)
    steps.start,  # the agent working, the task running, the round's number
    steps.session,  # the CLI session continued, forked or started
    steps.prompt,
    steps.workspace,  # the branch head before the run
    steps.mcp,  # before: the MCP server configured for the agent
    steps.run,
    steps.commit,  # after: the round's commits (work in progress when cut short)
    steps.cut_short,  # stopped by Tinytown: the work waits, nothing recorded
    steps.report,  # the CLI's report, the verdict, a usage limit
    steps.usage,  # after: what the round cost, counted whatever it came to
    steps.limit,  # after: the usage-limit hold (instead of an outcome)
    steps.check,  # after: the task's check gate, run in the worktree
    steps.record,  # the outcome, in one transaction
)


class Next(enum.Enum):
    """What the worker does after a round."""

    MORE = "more"  # take the next batch (a backlog drains in one Celery job)
    WAIT = "wait"  # nothing actionable left (or paused, draining): wait for a wake-up
    KILLED = "killed"  # the stop flag was set: the agent stops, the worker exits
    GONE = "gone"  # the agent's record is gone (pruned) or unreadable: the worker exits


@dataclass(frozen=True)
class RoundResult:
    """What the lifecycle acts on after a round: what next, and why it drains (if it
    does: max rounds reached, a shutdown message; in that order)."""

    next: Next
    drains: tuple[str, ...] = ()


def one_round(w: WorkerContext) -> RoundResult:
    """Take a batch, answer pings and status requests, run the CLI for the message
    that needs it; put back the notes it did not read."""
    begun = rounds.begin(w.store, w.agent_id, MAX_BATCH, w.state.fence)
    if begun.verdict == "stop":
        return RoundResult(Next.KILLED)
    agent = begun.agent
    if agent is None:  # pruned under us (or its record no longer parses)
        return RoundResult(Next.GONE)
    if begun.verdict != "take" or not begun.messages:
        return RoundResult(Next.WAIT)  # paused, draining or terminal: the inbox stays
    messages = w.store.parse_messages(begun.messages)  # bad ones: dead letters
    notes: list[Message] = []
    for_cli: Message | None = None
    shutdown = False
    replies = []
    for m in messages:
        if m.type in ("status_request", "ping"):
            body: AnyBody = (
                MessageBody.status_response(agent.state, agent.current_task)
                if m.type == "status_request" else MessageBody.pong())
            replies.append(Message(sender=w.agent_id, to=m.sender, body=body,
                                   priority=m.priority, correlation_id=m.id))
        elif m.type == "shutdown":
            shutdown = True
        elif m.needs_cli:
            for_cli = m
        else:
            notes.append(m)
    rounds.answer(w.store, replies, w.state.fence)
    drains: list[str] = []
    ran = False
    if for_cli is not None:
        task_id = str(getattr(for_cli.body, "task_id", "")) \
            if for_cli.type == "task_assign" else None
        r = run_pipeline(RoundContext(w, agent, for_cli, notes, begun, task_id))
        ran = r.ran
        if r.drain is not None:
            drains.append(r.drain)
    if not ran:  # the CLI did not read them: they wait for the next actionable message
        rounds.put_back_notes(w.store, w.agent_id, notes, w.state.fence)
    if shutdown:
        drains.append("shutdown message")
    # only notes (every message parsed): they wait, and so does the worker
    more = len(notes) < len(messages) or len(messages) != len(begun.messages)
    return RoundResult(Next.MORE if more else Next.WAIT, tuple(drains))


def run_pipeline(r: RoundContext) -> RoundContext:
    """The steps in order, until one ends the round."""
    for step in PIPELINE:
        if not step(r):
            break
    return r
