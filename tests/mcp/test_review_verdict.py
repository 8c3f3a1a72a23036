"""The MCP tool review_verdict through `tt mcp` over stdio, as a reviewer's CLI launches
it: only the agent the review task is assigned to gives the verdict; and assign_task's
`gates` with a review."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import ClientSession

from tests.helpers import TownFixture
from tests.mcp.test_tools import as_agent, call, refused, run, stdio
from tinytown.core.models import AgentState, TaskState
from tinytown.db import rounds, task_writes

pytestmark = pytest.mark.timeout(90)


def _in_review(town: TownFixture) -> tuple[str, str]:
    """`author`'s task, its round ended well, and its review claimed by `critic`."""
    t = town.town
    for name, role in (("author", None), ("critic", "reviewer"), ("other", "reviewer")):
        args = ("spawn", name, "--no-start", *(("--role", role) if role else ()))
        assert town.tt(*args).code == 0
        agent_id = t.resolve(name).id
        t.store.update_agent(agent_id, lambda a: setattr(a, "state", AgentState.IDLE))
    seen: dict[str, Any] = {}

    async def assign(session: ClientSession) -> None:
        seen["task"] = await call(session, "assign_task", description="build it",
                                  agent="author", gates={"review": "reviewer"})

    run(stdio(town), assign)
    task_id = seen["task"]["id"]
    assert seen["task"]["gates"] == {"review": "reviewer"}
    rounds.finish(t.store, t.resolve("author").id, task_id, rounds.Outcome(
        number=1, ok=True, output="built", error="", context=json.dumps({}), context_rounds=1))
    review_id = t.task(task_id).review_task
    assert review_id is not None
    assert task_writes.claim(t.store, review_id, t.resolve("critic"), wake=False)
    return task_id, review_id


def test_only_the_reviewer_gives_the_verdict(town: TownFixture) -> None:
    task_id, review_id = _in_review(town)

    async def not_mine(session: ClientSession) -> None:
        text = await refused(session, "review_verdict", verdict="approve", notes="me",
                             task=review_id)
        assert "only its reviewer gives its verdict" in text

    for who in ("author", "other"):
        run(as_agent(town, who), not_mine)
    run(stdio(town), not_mine)  # the supervisor (a person) answers with `tt review`
    assert town.town.task(task_id).state == TaskState.IN_REVIEW

    async def answer(session: ClientSession) -> None:
        got = await call(session, "review_verdict", verdict="request_changes",
                         notes="add a test")  # its round's task: $TINYTOWN_TASK_ID
        assert got["id"] == task_id and got["state"] == "assigned"

    run(as_agent(town, "critic", TINYTOWN_TASK_ID=review_id), answer)
    task = town.town.task(task_id)
    assert task.review_history[-1]["notes"] == "add a test"
    assert town.town.task(review_id).state == TaskState.COMPLETED
