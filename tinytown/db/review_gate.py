"""The review gate: a task whose `gates.review` names a role is not completed when its
author's round ends well; it goes `in_review` and a review task (the task's text, its
author, its branch and the branch's diff) is queued for that role. The reviewer's
verdict moves the reviewed task on:

- approve: its next gate (`gates.approve`: `awaiting_approval`), else `completed`,
  releasing its dependents and its mission's next tasks;
- request changes: back to its author (`assigned`, a `task_assign` in the author's
  inbox, the notes as its `follow_up`: the next prompt's, same session), and a new
  review when that round ends well; after `max_review_rounds` reviews that ask for
  changes it waits for a person (`awaiting_approval`, with the reason);
- no verdict (a review that completed without one, or failed): the review task is
  failed and the reviewed task stays `in_review` with the reason; `tt task retry` on the
  review task runs it again.

A verdict arrives as the review task's end: a round's (`rounds.finish`), or a hand's
(`tt task complete`, the MCP `complete_task` / `review_verdict` tools, `tt review`:
`task_writes.finish_task`). Both call `watch` in their watching phase and `Plan.queue`
in their MULTI: the review task's end and the reviewed task's move commit together or
not at all. The verdict counts only while the reviewed task is `in_review` with this
review as its current one, so an end recorded twice (rounds are at-least-once) never
sends two follow-ups or queues two reviews.

The dispatching writer is tinytown.db.task_writes' (which imports this module), passed
in as `dispatch`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import InvalidRecord
from tinytown.core.models import Agent, Message, MessageBody, Task, TaskState, utcnow
from tinytown.db import graph, mission_store
from tinytown.db.store import Store, log

Dispatch = Callable[[Store, Pipeline, Task], None]  # task_writes.queue_dispatch
DIFF_LIMIT = 64 * 1024  # bytes of the branch's diff in a review task's text
NOTES_LIMIT = 8000  # characters of a verdict's notes kept in the history
APPROVE, CHANGES = "approve", "request_changes"
NO_VERDICT = ("no verdict: a review ends with the line `VERDICT: approve` or"
              " `VERDICT: request-changes` (notes after it), or calls the MCP tool"
              " review_verdict")
_VERDICT = re.compile(r"^[\s*_`>#-]*VERDICT\s*:\s*[*_`]*\s*(approve|approved|request[-_ ]?changes)"
                      r"\b[*_`]*[\s:.,;-]*(.*)$", re.IGNORECASE)


def needs_review(task: Task) -> bool:
    """Whether the task's good end goes to a reviewer (a review task is not reviewed)."""
    return bool(task.gates and task.gates.review) and task.reviews is None


def parse_verdict(text: str | None) -> tuple[bool, str] | None:
    """The verdict a review's result ends with: (approve?, notes), from the last line
    that starts `VERDICT:` (notes: the rest of it and the lines after); None: none."""
    lines = (text or "").splitlines()
    for i in range(len(lines) - 1, -1, -1):
        found = _VERDICT.match(lines[i])
        if found:
            notes = "\n".join([found.group(2), *lines[i + 1:]]).strip()
            return found.group(1).lower().startswith("approve"), notes
    return None


def verdict_text(approve: bool, notes: str) -> str:
    """A verdict as a review task's result (what `parse_verdict` reads back)."""
    word = "approve" if approve else "request-changes"
    return f"VERDICT: {word}\n{notes.strip()}".strip()


def bounded_diff(diff: str) -> str:
    """The diff, cut to DIFF_LIMIT bytes with a note saying so."""
    data = diff.encode("utf-8", "replace")
    if len(data) <= DIFF_LIMIT:
        return diff
    cut = data[:DIFF_LIMIT].decode("utf-8", "ignore")
    return (f"{cut}\n[... the diff is cut here: {len(data)} bytes, the first {DIFF_LIMIT}"
            " shown; `tt diff AUTHOR` shows all of it]\n")


def changes_text(round_: int, notes: str) -> str:
    """A review's request for changes as the author's follow-up (its next prompt)."""
    return (f"Review round {round_}: review requested changes:"
            f" {notes.strip() or '(no notes given)'}\n"
            "Make these changes on your branch; your work then goes to review again.")


def review_text(task: Task, author: str, branch: str | None, diff: str | None) -> str:
    """A review task's text: what the author was asked, who did it, where, the diff,
    and how to answer."""
    gates = task.gates
    rounds = gates.max_review_rounds if gates else 0
    out = [f"Review task {task.id} (review {task.review_rounds + 1} of at most {rounds}),"
           f" done by {author}.", "", "## The task", task.description.strip(), ""]
    if task.result:
        out += ["## The author's summary", task.result.strip()[-4000:], ""]
    if branch or diff:
        out += [f"## Branch {branch or '(none of its own)'}: its diff against its base",
                "```diff",
                bounded_diff(diff or "").rstrip("\n") or "(no changes)", "```", ""]
    else:
        out += ["## Diff", "(the author has no branch of its own: no diff to show)", ""]
    out += ["## Your answer",
            "Review the change. Do not edit the author's branch. End your answer with one"
            " line `VERDICT: approve` or `VERDICT: request-changes`, followed by your notes"
            " (for changes: what to change, precisely). With Tinytown's MCP tools you may"
            f" instead call review_verdict(task=\"{task.id}\", verdict=\"approve\" or"
            " \"request_changes\", notes=...)."]
    return "\n".join(out) + "\n"


def queue_into_review(store: Store, pipe: Pipeline, task: Task, text: str, dispatch: Dispatch
                      ) -> Task:
    """Queue on `pipe` (in MULTI): `task` (its round ended well, result set) `in_review`
    and a new review task for `gates.review` carrying `text`. Returns the review task."""
    assert task.gates is not None and task.gates.review
    now = utcnow()
    review = Task(text, reviews=task.id, parent_id=task.id, role=task.gates.review,
                  tags=["review"], priority=task.priority)
    task.state = TaskState.IN_REVIEW
    task.review_task = review.id
    task.review_rounds += 1
    task.blocked_reason = None
    task.updated_at = now
    store.put_task(task, pipe)
    dispatch(store, pipe, review)
    store.add_event("review_requested", task.assigned_to, pipe=pipe, task=task.id,
                    review=review.id, role=task.gates.review, round=task.review_rounds)
    return review


@dataclass
class Plan:
    """What a review task's end does to the task it reviews, read in the watching
    phase; `queue` writes it in the MULTI."""

    review: Task
    reviewed: Task
    verdict: tuple[bool, str] | None  # None: no verdict (the review failed)
    follow: graph.Followers | None = None
    mission: mission_store.View | None = None
    author: Agent | None = None
    released: list[Task] = field(default_factory=list)

    def queue(self, store: Store, pipe: Pipeline, dispatch: Dispatch) -> list[Task]:
        """Queue the writes on `pipe`; returns the tasks dispatched (to wake)."""
        task, review = self.reviewed, self.review
        now = utcnow()
        task.updated_at = now
        out: list[Task] = []
        if self.verdict is None:
            why = (review.result or "no verdict").strip().splitlines()[0][:200] \
                if review.result else "no verdict"
            task.blocked_reason = (f"review {review.id[:8]} {review.state.value}: {why}"
                                   f" (`tt task retry {review.id[:8]}` runs it again)")
            store.put_task(task, pipe)
            store.add_event("review_failed", task.assigned_to, pipe=pipe, task=task.id,
                            review=review.id)
            return out
        approve, notes = self.verdict
        task.review_history = [*task.review_history, {
            "round": task.review_rounds, "review_task": review.id,
            "reviewer": review.assigned_to, "verdict": APPROVE if approve else CHANGES,
            "notes": notes[:NOTES_LIMIT], "at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}]
        store.add_event("review_verdict", task.assigned_to, pipe=pipe, task=task.id,
                        review=review.id, verdict=APPROVE if approve else CHANGES)
        gates = task.gates
        limit = gates.max_review_rounds if gates else 1
        if approve and gates is not None and gates.approve:
            self._wait_for_person(store, pipe, "reviewed and approved: a person approves it"
                                  " (`tt approve` / `tt reject`)")
        elif approve:
            task.state = TaskState.COMPLETED
            task.completed_at = now
            task.blocked_reason = None
            store.put_task(task, pipe)
            pipe.zrem(keys.role_pending(store.town), task.id)
            if self.follow is not None:
                out += self.follow.queue(store, pipe, dispatch)
            if self.author is not None:
                self.author.tasks_completed += 1
                self.author.last_active_at = now
                pipe.set(keys.agent(store.town, self.author.id), self.author.to_json())
            store.add_event("task_completed", task.assigned_to, pipe=pipe, task=task.id)
            store.push_message(Message(sender=task.assigned_to or keys.SUPERVISOR_ID,
                                       to=keys.SUPERVISOR_ID,
                                       body=MessageBody.task_done(task.id, task.result or "")),
                               pipe)  # its report, as a round's completion sends one
        elif task.review_rounds >= limit:
            self._wait_for_person(store, pipe, f"review still requests changes after"
                                  f" {task.review_rounds} rounds: a person decides"
                                  " (`tt approve` / `tt reject`)")
        else:
            task.blocked_reason = None
            task.follow_up = changes_text(task.review_rounds, notes)  # the next prompt's
            dispatch(store, pipe, task)  # back to its author's inbox: `assigned`, woken
            out.append(task)
            store.add_event("review_changes", task.assigned_to, pipe=pipe, task=task.id,
                            review=review.id, round=task.review_rounds)
        out += mission_store.queue_advance(store, pipe, self.mission, task, dispatch, out)
        return out

    def _wait_for_person(self, store: Store, pipe: Pipeline, why: str) -> None:
        task = self.reviewed
        task.state = TaskState.AWAITING_APPROVAL
        task.blocked_reason = why
        store.put_task(task, pipe)
        store.add_event("awaiting_approval", task.assigned_to, pipe=pipe, task=task.id,
                        reason=why)


def watch(store: Store, pipe: Pipeline, review: Task, verdict: tuple[bool, str] | None
          ) -> Plan | None:
    """In a transaction that ends `review` (its new state and result set in memory;
    watching phase): what it does to the task it reviews, read under WATCH. None when
    it reviews nothing, or nothing any more (its task moved on: a second recording)."""
    if not review.reviews:
        return None
    task = graph.watch_tasks(store, pipe, [review.reviews]).get(review.reviews)
    if task is None or task.state != TaskState.IN_REVIEW or task.review_task != review.id:
        return None
    if review.state != TaskState.COMPLETED:
        verdict = None
    plan = Plan(review, task, verdict)
    approve = verdict is not None and verdict[0]
    if approve and not (task.gates and task.gates.approve):
        task.state = TaskState.COMPLETED  # as it will be written: its followers see it so
        plan.follow = graph.followers(store, pipe, task)
        task.state = TaskState.IN_REVIEW
        plan.author = _watched_agent(store, pipe, task.assigned_to)
    if task.assigned_to and verdict is not None and not verdict[0]:
        store.ensure_lists(keys.inbox(store.town, task.assigned_to))
    if plan.follow is not None:
        inboxes = [keys.inbox(store.town, t.assigned_to) for t in plan.follow.released
                   if t.assigned_to]
        if inboxes:
            store.ensure_lists(*inboxes)
    plan.mission = mission_store.watch(store, pipe, task)
    return plan


def open_review(store: Store, pipe: Pipeline, task: Task) -> Task | None:
    """A task in review about to fail or be cancelled: its review task, if still open
    (read under WATCH), which ends with it (`queue_drop`)."""
    if task.state != TaskState.IN_REVIEW or not task.review_task:
        return None
    review = graph.watch_tasks(store, pipe, [task.review_task]).get(task.review_task)
    return review if review is not None and not review.state.is_terminal else None


def queue_drop(store: Store, pipe: Pipeline, review: Task | None, why: str) -> None:
    """Queue on `pipe`: an open review `cancelled` (its task ended otherwise)."""
    if review is None:
        return
    review.state = TaskState.CANCELLED
    review.completed_at = review.updated_at = utcnow()
    review.result = why
    store.put_task(review, pipe)
    pipe.zrem(keys.role_pending(store.town), review.id)
    store.add_event("task_cancelled", review.assigned_to, pipe=pipe, task=review.id)


def _watched_agent(store: Store, pipe: Pipeline, agent_id: str | None) -> Agent | None:
    if not agent_id:
        return None
    key = keys.agent(store.town, agent_id)
    pipe.watch(key)  # type: ignore[no-untyped-call]
    try:
        raw = pipe.get(key)
        return Agent.from_json(raw) if raw else None
    except InvalidRecord:
        log.warning("not counting the task for %s: not a valid Agent record", key)
        return None


def judge_review(review: Task) -> tuple[bool, str] | None:
    """A review task about to be completed: its verdict; with none, the review is
    turned into a failure saying so (in memory)."""
    found = parse_verdict(review.result)
    if found is None and review.state == TaskState.COMPLETED:
        review.state = TaskState.FAILED
        review.result = NO_VERDICT
    return found
