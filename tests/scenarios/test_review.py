"""The review gate with real workers and real git (tests/support/fake_reviewing.py as
both agents' CLI, the reviewer's under another CLI name): a task's good round sends a
review task carrying its diff to the reviewer role; approve completes it and releases
its dependent; request-changes sends the notes back to the author, in its session, then
reviews again; the cap waits for a person."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SUPPORT, TownFixture, wait_until
from tinytown.core.models import Task, TaskState

pytestmark = pytest.mark.timeout(180)

CLIS = f"""
[agent_clis.author-cli]
command = "{sys.executable} {SUPPORT / 'fake_reviewing.py'}"
output = "claude-json"
resume_args = "--resume {{session}}"

[agent_clis.critic-cli]
command = "{sys.executable} {SUPPORT / 'fake_reviewing.py'}"
output = "claude-json"
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def pair(town_factory: Callable[..., TownFixture]) -> TownFixture:
    """A town in a git repository; `author` and `critic` (role reviewer, another CLI)
    running."""
    town = town_factory(extra=CLIS)
    git(town.root, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Test"), ("user.email", "test@example.invalid")):
        git(town.root, "config", key, value)
    (town.root / ".gitignore").write_text(".tt/\nrecords/\n")
    (town.root / "work.txt").write_text("start\n")
    git(town.root, "add", "-A")
    git(town.root, "commit", "-q", "-m", "start")
    town.records.mkdir()
    assert town.tt("spawn", "author", "--cli", "author-cli").code == 0
    assert town.tt("spawn", "critic", "--cli", "critic-cli", "--role", "reviewer").code == 0
    town.wait_state("author", "idle")
    town.wait_state("critic", "idle")
    return town


def _verdicts(town: TownFixture, *lines: str) -> None:
    (town.records / "verdicts").write_text("".join(f"{line}\n" for line in lines))


def _runs(town: TownFixture) -> list[dict[str, Any]]:
    path = town.records / "reviewing.log"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _assign(town: TownFixture, *args: str) -> str:
    r = town.tt("assign", *args)
    assert r.code == 0, r.err
    return r.out.strip()


def _task(town: TownFixture, task_id: str) -> Task:
    return town.town.store.require_task(task_id)


def _reviews(town: TownFixture, task_id: str) -> list[Task]:
    return sorted((t for t in town.town.list_tasks() if t.reviews == task_id),
                  key=lambda t: t.created_at)


def test_approve_completes_the_task_and_releases_its_dependent(pair: TownFixture) -> None:
    town = pair
    _verdicts(town, "approve|clean and small")
    task_id = _assign(town, "author", "append a round line", "--review", "reviewer")
    after = _assign(town, "author", "then this", "--after", task_id[:8])
    town.wait_task(task_id, TaskState.IN_REVIEW, TaskState.COMPLETED, timeout=60)
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
    town.wait_task(after, TaskState.COMPLETED, timeout=60)
    [review] = _reviews(town, task_id)
    assert review.role == "reviewer" and review.state == TaskState.COMPLETED
    assert review.assigned_to == town.town.resolve("critic").id
    assert "append a round line" in review.description and "done by author" in review.description
    assert "Branch tt/author" in review.description and "+round 1" in review.description
    task = _task(town, task_id)
    assert task.review_rounds == 1 and task.review_task == review.id
    assert [(h["verdict"], h["notes"]) for h in task.review_history] == [
        ("approve", "clean and small")]
    done, then = task.completed_at, _task(town, after).started_at
    assert done is not None and then is not None and then >= done  # released after the verdict
    shown = town.tt("task", "show", task_id)
    assert "review 1" in shown.out and "approve by critic" in shown.out
    assert "clean and small" in shown.out


def test_changes_reach_the_author_in_its_session_then_approve(pair: TownFixture) -> None:
    town = pair
    _verdicts(town, "request-changes|name the file notes.txt", "approve")
    task_id = _assign(town, "author", "append a round line", "--review", "reviewer")
    town.wait_task(task_id, TaskState.COMPLETED, timeout=90)
    task = _task(town, task_id)
    assert task.review_rounds == 2
    assert [h["verdict"] for h in task.review_history] == ["request_changes", "approve"]
    authored = [r for r in _runs(town) if r["task"] == task_id]
    assert len(authored) == 2  # the first round and one follow-up
    first, follow_up = authored
    assert "review requested changes: name the file notes.txt" in follow_up["prompt"]
    assert "review requested changes" not in first["prompt"]
    session = town.town.resolve("author").session_id
    assert session and follow_up["argv"][follow_up["argv"].index("--resume") + 1] == session
    second = _reviews(town, task_id)[1]
    assert "+round 2" in second.description  # the follow-up's work is in the new diff


def test_the_cap_hands_the_task_to_a_person(pair: TownFixture) -> None:
    town = pair
    _verdicts(town, "request-changes|no", "request-changes|still no")
    task_id = _assign(town, "author", "append a round line", "--review", "reviewer",
                      "--max-review-rounds", "2")
    town.wait_task(task_id, TaskState.AWAITING_APPROVAL, timeout=90)
    task = _task(town, task_id)
    assert task.blocked_reason and \
        "review still requests changes after 2 rounds" in task.blocked_reason
    assert len(_reviews(town, task_id)) == 2
    assert len([r for r in _runs(town) if r["task"] == task_id]) == 2


def test_a_review_without_a_verdict_fails_and_retries(pair: TownFixture) -> None:
    town = pair
    _verdicts(town, "none", "approve")
    task_id = _assign(town, "author", "append a round line", "--review", "reviewer")
    wait_until(lambda: any(t.state == TaskState.FAILED for t in _reviews(town, task_id)),
               timeout=60)
    [review] = _reviews(town, task_id)
    assert "no verdict" in (review.result or "")
    task = _task(town, task_id)
    assert task.state == TaskState.IN_REVIEW and "no verdict" in (task.blocked_reason or "")
    assert town.tt("task", "retry", review.id[:8]).code == 0
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)


def test_a_verdict_by_hand(pair: TownFixture) -> None:
    town = pair
    # nobody reviews: a person answers (paused, not cold: a cold reviewer would wake
    # for the review and race the person)
    assert town.tt("interrupt", "critic").code == 0
    town.wait_state("critic", "paused")
    task_id = _assign(town, "author", "append a round line", "--review", "reviewer")
    town.wait_task(task_id, TaskState.IN_REVIEW, timeout=60)
    r = town.tt("review", task_id[:8], "request-changes")
    assert r.code == 2 and "needs notes" in r.err
    r = town.tt("review", task_id[:8], "approve", "--notes", "fine by me")
    assert r.code == 0, r.err
    assert r.out.strip() == f"task {task_id} completed"
    assert _task(town, task_id).review_history[-1]["reviewer"] is None
