"""The review gate's writes (tinytown/db/review_gate.py) against a real Redis, without
workers: a task that needs a review goes `in_review` with a review task for the role;
the review's end moves it on in the same transaction, once, however often it is
recorded; no verdict leaves it in review with the reason."""

from __future__ import annotations

import json

import pytest

from tests.helpers import TownFixture
from tinytown.core import keys
from tinytown.core.errors import InvalidTransition, NotPermitted
from tinytown.core.models import AgentState, CheckRun, Gates, Task, TaskState
from tinytown.db import review_gate, task_writes
from tinytown.db import rounds as round_steps
from tinytown.ops.facade import Town


def _idle(t: Town, name: str, role: str | None = None) -> str:
    agent_id = t.spawn_agent(name, role=role, start=False).id
    t.store.update_agent(agent_id, lambda a: setattr(a, "state", AgentState.IDLE))
    return agent_id


def _outcome(output: str, ok: bool = True, number: int = 1) -> round_steps.Outcome:
    return round_steps.Outcome(number=number, ok=ok, output=output, error="it broke",
                               context=json.dumps({"round": number}), context_rounds=3,
                               diff="--- a/x\n+++ b/x\n+the change\n")


def _assigns(t: Town, agent_id: str) -> list[str]:
    return [str(getattr(m.body, "task_id", "")) for m in t.store.peek_inbox(agent_id)
            if m.type == "task_assign"]


def _review_of(t: Town, task_id: str, reviewer: str) -> Task:
    """The task's current review, claimed by `reviewer` (as its worker would)."""
    review_id = t.task(task_id).review_task
    assert review_id is not None
    reviewer_agent = t.store.require_agent(reviewer)
    claimed = task_writes.claim(t.store, review_id, reviewer_agent, wake=False)
    assert claimed is not None
    return claimed


@pytest.fixture
def pair(town: TownFixture) -> tuple[Town, str, str]:
    t = town.town
    return t, _idle(t, "author"), _idle(t, "critic", role="reviewer")


def test_a_good_round_goes_to_review_not_completed(pair: tuple[Town, str, str]) -> None:
    t, author, _ = pair
    task_id = t.assign("author", "build it", gates=Gates(review="reviewer"))
    child = t.assign("author", "after it", after=[task_id])
    round_steps.finish(t.store, author, task_id, _outcome("built it"))
    task = t.task(task_id)
    assert task.state == TaskState.IN_REVIEW and task.review_rounds == 1
    assert task.result == "built it" and task.completed_at is None
    review = t.task(task.review_task or "")
    assert review.reviews == task_id and review.role == "reviewer"
    assert review.state == TaskState.PENDING
    assert "build it" in review.description and "author" in review.description
    assert "+the change" in review.description and "VERDICT: approve" in review.description
    assert t.task(child).state == TaskState.BLOCKED  # the dependent waits for the verdict
    # recorded again (a round re-run after a kill): still one review
    round_steps.finish(t.store, author, task_id, _outcome("built it"))
    assert t.task(task_id).review_task == review.id
    assert [x.id for x in t.list_tasks() if x.reviews] == [review.id]


def test_approve_completes_and_releases_in_the_same_step(pair: tuple[Town, str, str]) -> None:
    t, author, critic = pair
    task_id = t.assign("author", "build it", gates=Gates(review="reviewer"))
    child = t.assign("author", "after it", after=[task_id])
    round_steps.finish(t.store, author, task_id, _outcome("built it"))
    review = _review_of(t, task_id, critic)
    released: list[Task] = []
    round_steps.finish(t.store, critic, review.id,
                       _outcome("Looks right.\nVERDICT: approve  fine work"), released=released)
    task = t.task(task_id)
    assert task.state == TaskState.COMPLETED and task.result == "built it"
    assert task.review_history[-1]["verdict"] == "approve"
    assert task.review_history[-1]["notes"] == "fine work"
    assert task.review_history[-1]["reviewer"] == critic
    assert t.task(child).state == TaskState.ASSIGNED and [x.id for x in released] == [child]
    assert t.store.require_agent(author).tasks_completed == 1
    assert t.task(review.id).state == TaskState.COMPLETED
    done = [getattr(m.body, "task_id", None) for m in t.store.peek_inbox(keys.SUPERVISOR_ID)
            if m.type == "task_done"]
    assert done.count(task_id) == 1  # the reviewed task's report, once its review approved


def test_changes_go_back_to_the_author_once(pair: tuple[Town, str, str]) -> None:
    t, author, critic = pair
    task_id = t.assign("author", "build it", gates=Gates(review="reviewer"))
    round_steps.finish(t.store, author, task_id, _outcome("built it"))
    review = _review_of(t, task_id, critic)
    before = _assigns(t, author)
    ending = _outcome("VERDICT: request-changes\nrename foo to bar")
    round_steps.finish(t.store, critic, review.id, ending)
    round_steps.finish(t.store, critic, review.id, ending)  # recorded twice
    with pytest.raises(InvalidTransition):
        t.complete_task(review.id, "VERDICT: request-changes\nagain")
    task = t.task(task_id)
    assert task.state == TaskState.ASSIGNED and task.assigned_to == author
    assert _assigns(t, author) == [*before, task_id]  # one follow-up
    assert len(task.review_history) == 1 and task.review_history[0]["notes"] == \
        "rename foo to bar"
    # the author's next good round: a second review, and only one
    round_steps.finish(t.store, author, task_id, _outcome("renamed", number=2))
    task = t.task(task_id)
    assert task.state == TaskState.IN_REVIEW and task.review_rounds == 2
    assert task.review_task != review.id
    assert len([x for x in t.list_tasks() if x.reviews == task_id]) == 2


def test_the_cap_waits_for_a_person(pair: tuple[Town, str, str]) -> None:
    t, author, critic = pair
    task_id = t.assign("author", "build it",
                       gates=Gates(review="reviewer", max_review_rounds=2))
    for n in (1, 2):
        round_steps.finish(t.store, author, task_id, _outcome(f"try {n}", number=n))
        review = _review_of(t, task_id, critic)
        round_steps.finish(t.store, critic, review.id,
                           _outcome(f"VERDICT: request-changes\nno {n}", number=n))
    task = t.task(task_id)
    assert task.state == TaskState.AWAITING_APPROVAL
    assert task.blocked_reason is not None
    assert "review still requests changes after 2 rounds" in task.blocked_reason


def test_no_verdict_fails_the_review_and_keeps_the_task_in_review(
        pair: tuple[Town, str, str]) -> None:
    t, author, critic = pair
    task_id = t.assign("author", "build it", gates=Gates(review="reviewer"))
    round_steps.finish(t.store, author, task_id, _outcome("built it"))
    review = _review_of(t, task_id, critic)
    round_steps.finish(t.store, critic, review.id, _outcome("I looked at it."))
    assert t.task(review.id).state == TaskState.FAILED
    assert "no verdict" in (t.task(review.id).result or "")
    task = t.task(task_id)
    assert task.state == TaskState.IN_REVIEW and "no verdict" in (task.blocked_reason or "")
    t.retry_task(review.id)  # the review runs again, and its verdict counts
    t.complete_task(review.id, "VERDICT: approve")
    assert t.task(task_id).state == TaskState.COMPLETED


def test_a_verdict_by_hand_and_only_the_reviewer_answers_as_an_agent(
        pair: tuple[Town, str, str]) -> None:
    t, author, critic = pair
    task_id = t.assign("author", "build it", gates=Gates(review="reviewer", approve=True))
    round_steps.finish(t.store, author, task_id, _outcome("built it"))
    review = _review_of(t, task_id, critic)
    with pytest.raises(NotPermitted):
        t.review_verdict(task_id, True, "mine", by="author")
    assert t.task(task_id).state == TaskState.IN_REVIEW
    got = t.review_verdict(task_id, True, "good", by="critic")
    assert got.state == TaskState.AWAITING_APPROVAL  # the approve gate comes next
    assert t.task(review.id).result == "VERDICT: approve\ngood"


def test_a_task_in_review_is_not_completed_by_hand(pair: tuple[Town, str, str]) -> None:
    t, author, _ = pair
    task_id = t.assign("author", "build it", gates=Gates(review="reviewer"))
    t.complete_task(task_id, "done by the CLI itself")
    assert t.task(task_id).state == TaskState.IN_REVIEW
    with pytest.raises(InvalidTransition):
        t.complete_task(task_id, "again")
    # the round that ran it ends: the review stays the one there is
    round_steps.finish(t.store, author, task_id, _outcome("built it"))
    assert len([x for x in t.list_tasks() if x.reviews == task_id]) == 1


@pytest.mark.parametrize(("text", "found"), [
    ("VERDICT: approve", (True, "")),
    ("ok\n**VERDICT: request-changes**\n- fix a\n- fix b", (False, "- fix a\n- fix b")),
    ("VERDICT: request_changes: tests missing", (False, "tests missing")),
    ("verdict: APPROVED", (True, "")),
    ("no verdict here", None),
    ("VERDICT: maybe", None),
])
def test_parse_verdict(text: str, found: tuple[bool, str] | None) -> None:
    assert review_gate.parse_verdict(text) == found


def test_a_long_diff_is_cut_with_a_note() -> None:
    cut = review_gate.bounded_diff("+x\n" * 40000)
    assert len(cut.encode()) < review_gate.DIFF_LIMIT + 200 and "the diff is cut here" in cut


def test_cancelling_a_task_in_review_cancels_its_review(pair: tuple[Town, str, str]) -> None:
    t, author, _ = pair
    task_id = t.assign("author", "build it", gates=Gates(review="reviewer"))
    round_steps.finish(t.store, author, task_id, _outcome("built it"))
    review_id = t.task(task_id).review_task or ""
    t.cancel_task(task_id)
    assert t.task(review_id).state == TaskState.CANCELLED
    assert t.task(task_id).state == TaskState.CANCELLED


def test_gate_order_check_then_review_then_approve(pair: tuple[Town, str, str]) -> None:
    """check -> review -> approve -> completed: a failed check is a fix round (no review
    yet); a passed one goes to review; changes come back as the follow-up; the approved
    review waits for a person; the person's approval completes it."""
    t, author, critic = pair
    gates = Gates(check="make test", review="reviewer", approve=True)
    task_id = t.assign("author", "build it", gates=gates)
    failed = _outcome("built it")
    failed.check = CheckRun("make test", passed=False, exit_code=1, tail="boom")
    round_steps.finish(t.store, author, task_id, failed)
    task = t.task(task_id)
    assert task.state == TaskState.ASSIGNED and task.review_task is None
    assert task.follow_up and "make test" in task.follow_up
    passed = _outcome("built it again", number=2)
    passed.check = CheckRun("make test", passed=True, exit_code=0)
    round_steps.finish(t.store, author, task_id, passed)
    task = t.task(task_id)
    assert task.state == TaskState.IN_REVIEW and task.follow_up is None
    _review_of(t, task_id, critic)
    t.review_verdict(task_id, False, "add a test", by=critic)
    task = t.task(task_id)
    assert task.state == TaskState.ASSIGNED
    assert task.follow_up and "review requested changes: add a test" in task.follow_up
    third = _outcome("with a test", number=3)
    third.check = CheckRun("make test", passed=True, exit_code=0)
    round_steps.finish(t.store, author, task_id, third)
    assert t.task(task_id).state == TaskState.IN_REVIEW
    _review_of(t, task_id, critic)
    assert t.review_verdict(task_id, True, "good", by=critic).state == \
        TaskState.AWAITING_APPROVAL
    # a round's end recorded again leaves a task at a gate alone
    round_steps.finish(t.store, author, task_id, third)
    assert t.task(task_id).state == TaskState.AWAITING_APPROVAL
    done = t.approve(task_id)
    assert isinstance(done, Task) and done.state == TaskState.COMPLETED
    assert len([x for x in t.list_tasks() if x.reviews == task_id]) == 2
