"""Questions to a person from a client's side: an agent asks about its task
(`ask_human`), people list the open questions (`tt inbox`, GET /v1/questions) and
answer one (`tt reply`), which resumes the agent's session. The writes are
tinytown.db.question_store."""

from __future__ import annotations

from typing import Any

from tinytown.core.asking import checked
from tinytown.core.models import Task, format_timestamp
from tinytown.db import question_store
from tinytown.ops.assignments import work_arrived
from tinytown.ops.context import TownContext
from tinytown.ops.references import resolve_task

ANSWER_SENT = ("Your question was sent to a person; end your turn now — the answer"
               " arrives as your next message in this session.")


def ask(town: TownContext, task_ref: str, agent_id: str | None, question: str) -> Task:
    """Agent `agent_id` asks a person about its running task `task_ref`: the task goes
    `awaiting_input` (Refused unless it is that agent's and running)."""
    task = resolve_task(town, task_ref)
    return question_store.ask(town.store, task.id, agent_id, checked(question, "question"))


def reply(town: TownContext, task_ref: str, answer: str) -> Task:
    """Answer a task's open question: its agent gets it in the same session (woken if
    cold); Refused when the task awaits no answer."""
    answer = checked(answer, "answer")
    task = question_store.reply(town.store, resolve_task(town, task_ref).id, answer)
    agent = town.store.get_agent(task.assigned_to) if task.assigned_to else None
    if agent is not None:
        work_arrived(town, agent, "the answer")
    return task


def questions(town: TownContext) -> list[dict[str, Any]]:
    """The open questions, oldest first: task id, agent (id and name), when asked, the
    question, the task's mission and the first line of its text."""
    tasks = question_store.open_questions(town.store)
    names = {a.id: a.name for a in town.store.list_agents()} if tasks else {}
    return [{
        "task": t.id, "agent": t.assigned_to,
        "agent_name": names.get(t.assigned_to or "", (t.assigned_to or "-")[:8]),
        "asked_at": format_timestamp(t.asked_at) if t.asked_at else None,
        "question": t.question or "", "mission": t.mission,
        "description": (t.description.strip().splitlines() or [""])[0][:200],
    } for t in tasks]


def count(town: TownContext) -> int:
    return question_store.count(town.store)
