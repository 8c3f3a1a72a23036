"""The review gate from a client's side: check a task's gates before it is recorded,
give a verdict by hand or as the reviewing agent (`Town.review_verdict`, `tt review`,
the MCP tool `review_verdict`), the diff a completion by hand carries to the reviewer,
and a task's review history. The gate itself is tinytown.db.review_gate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinytown import ops
from tinytown.core.errors import NotPermitted, Refused, UsageError
from tinytown.core.models import Gates, Task, TaskState
from tinytown.db import review_gate
from tinytown.ops.context import TownContext
from tinytown.ops.references import resolve_task
from tinytown.system.workspace import GitError, git

MAX_REVIEW_ROUNDS = 100


def check_gates(town: TownContext, gates: Gates | None) -> Gates | None:
    """The gates of a new task, checked: a known reviewing role, sane round caps."""
    if gates is None:
        return None
    if gates.review is not None:
        ops.routing.check_role(town, gates.review)
    if not 1 <= gates.max_review_rounds <= MAX_REVIEW_ROUNDS:
        raise UsageError(f"--max-review-rounds is a whole number from 1 to"
                         f" {MAX_REVIEW_ROUNDS} (not {gates.max_review_rounds})")
    return gates


def review_of(town: TownContext, ref: str) -> Task:
    """The review task `ref` names: a review task itself, or the task under review
    (its current review)."""
    task = resolve_task(town, ref)
    if task.reviews:
        return task
    if task.state == TaskState.IN_REVIEW and task.review_task:
        return town.store.require_task(task.review_task)
    if task.gates is not None and task.gates.review:
        raise Refused(f"task {task.id[:8]} is {task.state.value}, not in review: there is"
                      " no review to answer")
    raise Refused(f"task {task.id[:8]} is no review task and has no review gate")


def verdict(town: TownContext, ref: str, approve: bool, notes: str = "",
            by: str | None = None) -> Task:
    """Answer a review: the review task is completed with the verdict as its result,
    and the reviewed task moves on, in one transaction. `by`: the agent that answers
    (an agent answers only the reviews given to it); None: a person, by hand. Returns
    the reviewed task as it is now."""
    review = review_of(town, ref)
    if by is not None and review.assigned_to != by:
        holder = review.assigned_to[:8] if review.assigned_to else "nobody yet"
        raise NotPermitted(f"review task {review.id[:8]} is assigned to {holder}, not to"
                           " you: only its reviewer gives its verdict")
    if review.state.is_terminal:
        raise Refused(f"review task {review.id[:8]} is {review.state.value} already")
    if not approve and not notes.strip():
        raise UsageError("a request for changes needs notes: say what to change")
    ops.assignments.finish(town, review.id, TaskState.COMPLETED,
                           review_gate.verdict_text(approve, notes))
    return town.store.require_task(review.reviews or review.id)


def diff_for(town: TownContext, task: Task) -> str | None:
    """The branch diff a completion by hand carries to the reviewer: the agent's
    worktree (when it is on this machine) against its base, work not yet committed
    included; None when the task needs no review or git cannot say."""
    if not review_gate.needs_review(task) or not task.assigned_to:
        return None
    agent = town.store.get_agent(task.assigned_to)
    if agent is None or not agent.branch:
        return None
    where = Path(agent.workspace) if agent.workspace else None
    if where is None or not where.is_dir():
        return None
    try:
        return git(where, "diff", agent.base or "HEAD").stdout
    except GitError as exc:
        return f"(the diff could not be read: {exc})"


def history(task: Task) -> list[dict[str, Any]]:
    """The task's reviews, oldest first: round, review task, reviewer, verdict, notes."""
    return list(task.review_history)
