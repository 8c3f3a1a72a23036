"""Questions to a person: the one home of a task's `awaiting_input`, its question and
its answer, and of the open-questions index (`tt:<town>:questions`, and
`tt:<town>:questions:due`, what the supervisor has not reported as overdue yet).

An agent asks while its round runs (the MCP tool `ask_human`: `ask`) or by ending its
result with a line `QUESTION: ...` (the round's `finish` calls `open_question` and
`queue_opened` in its own transaction). Either way the task waits, not ended, with
its dependents still blocked, until a person answers: `reply`, one transaction that
records the answer, moves the task back to `assigned` and puts a `task_assign` in its
agent's inbox (the next round's prompt carries the question and the answer, in the
same CLI session). A second reply finds the task no longer waiting and is refused,
so it sends nothing twice.

The index is a hint kept in the same transactions; readers check each task's state,
so a task cancelled while it waited only leaves an entry that the next read drops.
"""

from __future__ import annotations

import time
from typing import Any

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import InvalidRecord, Refused
from tinytown.core.models import Message, MessageBody, Task, TaskState, format_timestamp, utcnow
from tinytown.db.connection import text, texts
from tinytown.db.store import Store, log
from tinytown.db.task_writes import queue_assignment
from tinytown.db.wakeup import enqueue_round

HISTORY = 20  # questions (with their answers) a task keeps
CLIPPED = 4000  # characters of each question and answer in that history
DUE_BATCH = 100  # overdue questions the supervisor looks at in one pass


def _score(task: Task) -> float:
    return task.asked_at.timestamp() if task.asked_at else time.time()


def open_question(task: Task, question: str) -> None:
    """The task, in memory, `awaiting_input` with `question` (and it in the history)."""
    now = utcnow()
    task.state = TaskState.AWAITING_INPUT
    task.question = question
    task.asked_at = now
    task.updated_at = now
    entry = {"question": question[:CLIPPED], "asked_at": format_timestamp(now)}
    task.questions = [*task.questions, entry][-HISTORY:]


def queue_opened(store: Store, pipe: Pipeline, task: Task) -> None:
    """Queue on `pipe` (after MULTI): the question in the index and its event."""
    score = _score(task)
    pipe.zadd(keys.questions(store.town), {task.id: score})
    pipe.zadd(keys.questions_due(store.town), {task.id: score})
    store.add_event("question", task.assigned_to, pipe=pipe, task=task.id,
                    question=(task.question or "")[:200])


def ask(store: Store, task_id: str, agent_id: str | None, question: str) -> Task:
    """Agent `agent_id` (None: anyone) asks a person about its running task, in one
    transaction; Refused for a task that is not running, or not that agent's."""
    def body(pipe: Pipeline) -> Task:
        task = store.watched_task(pipe, task_id)
        if agent_id is not None and task.assigned_to != agent_id:
            raise Refused(f"task {task.id[:8]} is not yours: ask about the task you work on")
        if task.state == TaskState.AWAITING_INPUT:
            raise Refused(f"task {task.id[:8]} has a question open already: end your turn"
                          " and wait for the answer")
        if task.state != TaskState.RUNNING:
            raise Refused(f"task {task.id[:8]} is {task.state.value}: a question is asked"
                          " while its round runs")
        open_question(task, question)
        pipe.multi()
        store.put_task(task, pipe)
        queue_opened(store, pipe, task)
        return task

    return store.transaction(body, keys.task(store.town, task_id))


def reply(store: Store, task_id: str, answer: str) -> Task:
    """The answer to a task's open question, in one transaction: recorded on the task,
    the task `assigned` again and a `task_assign` in its agent's inbox (woken).
    Refused when the task awaits no answer (answered already, or never asked)."""
    task = store.require_task(task_id)
    if task.assigned_to:
        store.ensure_lists(keys.inbox(store.town, task.assigned_to))

    def body(pipe: Pipeline) -> Task:
        task = store.watched_task(pipe, task_id)
        if task.state != TaskState.AWAITING_INPUT:
            raise Refused(f"task {task.id[:8]} is not awaiting input (it is"
                          f" {task.state.value}): there is no question to answer")
        if not task.assigned_to:
            raise Refused(f"task {task.id[:8]} has no agent to take the answer")
        now = format_timestamp(utcnow())
        if task.questions:
            last = dict(task.questions[-1])
            last.update(answer=answer[:CLIPPED], answered_at=now)
            task.questions = [*task.questions[:-1], last]
        else:  # asked by an older writer: keep the pair all the same
            task.questions = [{"question": (task.question or "")[:CLIPPED],
                               "answer": answer[:CLIPPED], "answered_at": now}]
        task.question, task.asked_at, task.answer = None, None, answer
        pipe.multi()
        queue_assignment(store, pipe, task, task.assigned_to, priority=task.priority,
                         event=False)
        _drop(store, pipe, task.id)
        store.add_event("answered", task.assigned_to, pipe=pipe, task=task.id)
        return task

    return store.transaction(body, keys.task(store.town, task_id))


def retarget(store: Store, task_id: str, agent_id: str) -> bool:
    """A task awaiting an answer goes to another agent (its own is gone: `tt reclaim
    --to`), its question still open; False when it no longer waits (answered)."""
    moved: list[bool] = []

    def change(task: Task) -> None:
        moved[:] = [task.state == TaskState.AWAITING_INPUT]
        if moved[0]:
            task.assigned_to = agent_id

    store.update_task(task_id, change)
    return bool(moved and moved[0])


def _drop(store: Store, target: Any, task_id: str) -> None:
    target.zrem(keys.questions(store.town), task_id)
    target.zrem(keys.questions_due(store.town), task_id)


def _read(store: Store, ids: list[str]) -> list[Task]:
    """The tasks of `ids` still awaiting input; the index's other entries are dropped."""
    if not ids:
        return []
    raws = [text(r) for r in store.r.mget([keys.task(store.town, i) for i in ids])]
    found = []
    for task_id, raw in zip(ids, raws, strict=True):
        task = None
        try:
            task = Task.from_json(raw) if raw is not None else None
        except InvalidRecord:
            log.warning("task %s is not a valid Task record", task_id)
        if task is not None and task.state == TaskState.AWAITING_INPUT:
            found.append(task)
        else:
            _drop(store, store.r, task_id)
    return found


def open_questions(store: Store) -> list[Task]:
    """The tasks awaiting a person's answer, oldest question first."""
    found: Any = store.r.zrange(keys.questions(store.town), 0, -1)
    return _read(store, texts(found))


def count(store: Store) -> int:
    """How many questions are open (the index's count; a stale entry counts until the
    next listing drops it)."""
    return int(store.r.zcard(keys.questions(store.town)))


def overdue(store: Store, limit_secs: float) -> list[Task]:
    """Open questions asked more than `limit_secs` ago and not reported yet (a batch)."""
    found: Any = store.r.zrangebyscore(keys.questions_due(store.town), "-inf",
                                       time.time() - limit_secs, start=0, num=DUE_BATCH)
    return _read(store, texts(found))


def report_overdue(store: Store, task: Task, waited: float, conductor: str | None) -> bool:
    """Record once that `task`'s question went unanswered for `waited` seconds: a
    `question_timeout` event and, for a task of a mission with a conductor (an agent
    id), a message that wakes it; the task keeps waiting. One transaction; False when
    the question was answered (or asked again) meanwhile."""
    def body(pipe: Pipeline) -> bool:
        now = store.watched_task(pipe, task.id)
        if now.state != TaskState.AWAITING_INPUT or now.asked_at != task.asked_at:
            return False
        pipe.multi()
        pipe.zrem(keys.questions_due(store.town), task.id)
        store.add_event("question_timeout", now.assigned_to, pipe=pipe, task=now.id,
                        waited=f"{waited:.0f}", conductor=conductor)
        if conductor is not None:
            text = (f"Task {now.id} of mission {now.mission} has waited {waited:.0f}s for"
                    f" a person's answer to its question:\n{now.question}\n\nDecide: wait,"
                    " plan around it, or answer it yourself with"
                    f" `tt reply {now.id} \"...\"`.")
            store.push_message(Message(sender=keys.SUPERVISOR_ID, to=conductor,
                                       body=MessageBody.task(text)), pipe)
            enqueue_round(pipe, store.town, conductor)
        return True

    return store.transaction(body, keys.task(store.town, task.id))
