"""Gates in Redis: what a task's round comes to once its gates are counted, and a
person's approval or rejection of a task that awaits it.

Gate order after the author's round ends well: check -> review -> approve ->
completed. A task completes (and releases its dependents) only after its last gate.
The review itself is tinytown/db/review_gate.py (its verdict moves the task on to
approve or completed). `decide` runs in the round's finishing transaction
(`rounds.finish`), on the task read under WATCH: the check's outcome, the task's next
state and, when the check failed with fix rounds left, the follow-up round (a
`task_assign` at the head of its agent's inbox, its `follow_up` the failing command
and the output's tail) are all written in that one MULTI, so a kill between steps
never completes a task whose check failed and never loses the follow-up. A round
re-run after a kill runs its check again.

`approve` completes a task that awaits approval through `task_writes.finish_task` (the
one completion path: its dependents and its mission advance in the same
transaction); `reject` sends it back to its agent, same session, with the note as a
follow-up round, or fails it (`fail=True`).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import InvalidTransition, Refused
from tinytown.core.models import CheckRun, Message, MessageBody, Priority, Task, TaskState, utcnow
from tinytown.db import review_gate
from tinytown.db.store import Store
from tinytown.db.task_writes import RESULT_LIMIT, finish_task, queue_assignment
from tinytown.db.wakeup import enqueue_round

FOLLOW_UP_TAIL = 8 * 1024  # of a failed check's output, in the follow-up round's prompt
RECORD_TAIL = 2000  # of it on the task record (`last_check.tail`); the log has it all


@dataclass
class Decision:
    """What a round's end makes of its task: `state` is COMPLETED, FAILED, IN_REVIEW
    (its review task is queued by `review_gate.queue_into_review`), AWAITING_APPROVAL or
    ASSIGNED (a follow-up round for the same agent); `text` its result or error."""

    state: TaskState
    text: str

    @property
    def follow_up(self) -> bool:
        return self.state == TaskState.ASSIGNED


def decide(task: Task, ok: bool, output: str, error: str, check: CheckRun | None
           ) -> Decision:
    """The task's next state after a round (pure; `apply` writes it in memory)."""
    if not ok:
        return Decision(TaskState.FAILED, error)
    gates = task.gates
    if gates is not None and gates.check:
        if check is None:  # ended well but its check did not run: it does not pass
            check = CheckRun(gates.check, passed=False, tail="the check did not run")
        if not check.passed:
            if task.fix_rounds < gates.max_fix_rounds:
                return Decision(TaskState.ASSIGNED, follow_up_text(check))
            return Decision(TaskState.FAILED, f"check failed after {task.fix_rounds} fix"
                            f" rounds: {_tail(check.tail, RESULT_LIMIT - 100)}")
    if gates is not None and review_gate.needs_review(task):
        return Decision(TaskState.IN_REVIEW, output)  # its review's verdict goes on
    if gates is not None and gates.approve:
        return Decision(TaskState.AWAITING_APPROVAL, output)
    return Decision(TaskState.COMPLETED, output)


def follow_up_text(check: CheckRun) -> str:
    how = f"exit code {check.exit_code}" if check.exit_code is not None else "no exit code"
    return (f"The check `{check.command}` failed ({how}) after your last round. Fix the"
            f" cause, in this worktree; the check runs again when you finish.\n"
            f"The end of its output:\n```\n{_tail(check.tail, FOLLOW_UP_TAIL)}\n```")


def _tail(text: str, limit: int) -> str:
    text = text.rstrip()
    return text if len(text) <= limit else "[...]" + text[-limit:]


def apply(task: Task, decision: Decision, check: CheckRun | None) -> None:
    """In memory: the check's record and, for a follow-up, the task back to `assigned`
    with its follow-up and one more fix round (terminal states: `mark_finished`'s)."""
    if check is not None:
        task.last_check = CheckRun(check.command, check.passed, check.exit_code,
                                   _tail(check.tail, RECORD_TAIL), check.log, check.round,
                                   check.secs)
    task.follow_up = None
    now = utcnow()
    task.updated_at = now
    if decision.follow_up:
        task.state = TaskState.ASSIGNED
        task.fix_rounds += 1
        task.follow_up = decision.text
    elif decision.state == TaskState.AWAITING_APPROVAL:
        task.state = TaskState.AWAITING_APPROVAL
        task.result = decision.text[-RESULT_LIMIT:]
    elif decision.state == TaskState.IN_REVIEW:  # `in_review` as its review is queued
        task.result = decision.text[-RESULT_LIMIT:]


def queue_round_gates(store: Store, pipe: Pipeline, task: Task, agent_id: str,
                      check: CheckRun | None) -> None:
    """Queue on `pipe` (in the round's MULTI) the check's event and, for a task sent
    back, its follow-up: a `task_assign` at the head of its agent's inbox, and a wake."""
    if check is not None:
        store.add_event("check_passed" if check.passed else "check_failed", agent_id,
                        pipe=pipe, task=task.id, command=check.command,
                        exit_code=check.exit_code, round=check.round, log=check.log)
    if task.state == TaskState.ASSIGNED:
        store.push_message(Message(sender=keys.SUPERVISOR_ID, to=agent_id,
                                   priority=Priority.HIGH,
                                   body=MessageBody.task_assign(task.id)), pipe)
        enqueue_round(pipe, store.town, agent_id)
        store.add_event("fix_round", agent_id, pipe=pipe, task=task.id,
                        fix_round=task.fix_rounds)
    elif task.state == TaskState.AWAITING_APPROVAL:
        store.add_event("task_awaiting_approval", agent_id, pipe=pipe, task=task.id)


# --- a person's decision ------------------------------------------------------------------


def _awaiting(task: Task) -> None:
    if task.state != TaskState.AWAITING_APPROVAL:
        raise Refused(f"task {task.id[:8]} is {task.state.value}, not awaiting approval")


def approve(store: Store, task_id: str, by: str | None, note: str | None,
            released: list[Task] | None = None) -> Task:
    """Complete a task that awaits approval (its dependents released, its mission
    advanced, in the same transaction); Refused when it does not await approval."""
    def approved(pipe: Pipeline, task: Task) -> None:
        store.add_event("approved", task.assigned_to, pipe=pipe, task=task.id, by=by,
                        note=note)

    try:
        return finish_task(store, task_id, TaskState.COMPLETED, None, also=approved,
                           released=released, expect=_awaiting)
    except InvalidTransition as exc:  # finished meanwhile
        raise Refused(str(exc)) from None


def reject(store: Store, task_id: str, by: str | None, note: str | None, fail: bool = False,
           released: list[Task] | None = None) -> Task:
    """Send a task that awaits approval back to its agent (same session) with the note
    as a follow-up round ("changes requested: ..."), its fix rounds counted afresh; or,
    with `fail`, fail it with the note. Refused when it does not await approval."""
    def rejected(pipe: Pipeline, task: Task) -> None:
        store.add_event("rejected", task.assigned_to, pipe=pipe, task=task.id, by=by,
                        note=note, failed=fail)

    if fail:
        try:
            return finish_task(store, task_id, TaskState.FAILED,
                               f"rejected: {note}" if note else "rejected", also=rejected,
                               released=released, expect=_awaiting)
        except InvalidTransition as exc:
            raise Refused(str(exc)) from None
    task_key = keys.task(store.town, task_id)

    def body(pipe: Pipeline) -> Task:
        task = store.watched_task(pipe, task_id)
        _awaiting(task)
        if not task.assigned_to:
            raise Refused(f"task {task.id[:8]} has no agent to send it back to: `tt reject"
                          " --fail` fails it")
        store.ensure_lists(keys.inbox(store.town, task.assigned_to))
        task.follow_up = f"Changes requested: {note or '(no note given)'}"
        task.fix_rounds = 0
        pipe.multi()
        queue_assignment(store, pipe, task, task.assigned_to, priority=Priority.HIGH,
                         event=False)
        rejected(pipe, task)
        return task

    return store.transaction(body, task_key)
