"""The MCP tool ask_human through `tt mcp` (stdio, as a round launches it): the calling
agent's running task goes `awaiting_input`, the tool answers at once, the round's end
leaves the task waiting (its outcome does not complete it), and the answer runs the
task again; refusals for a caller with no task, another agent's task, the supervisor
and a second question."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import ClientSession

from tests.helpers import TownFixture, wait_until
from tests.mcp.test_tools import agents, as_agent, call, refused, run, stdio
from tinytown.core.models import TaskState
from tinytown.ops.inquiries import ANSWER_SENT

pytestmark = pytest.mark.timeout(120)
__all__ = ["agents"]  # the fixture, for the tests here


def test_ask_human_waits_through_the_rounds_end_until_the_reply(agents: TownFixture) -> None:
    town = agents
    task_id = town.town.assign("alice", "@sleep 12 then finish")  # time to call the tool
    wait_until(lambda: list(town.records.glob("alice-*.sleeping")), 20, "alice's CLI to run")
    seen: dict[str, Any] = {}

    async def body(session: ClientSession) -> None:
        seen["sent"] = await call(session, "ask_human", question="Which region, eu or us?")
        seen["again"] = await refused(session, "ask_human", question="and another?")

    run(as_agent(town, "alice"), body)
    assert seen["sent"] == {"message": ANSWER_SENT, "task": task_id, "state": "awaiting_input"}
    assert "has a question open already" in seen["again"]
    town.wait_state("alice", "idle", timeout=40)  # its CLI ended well: the task waits on
    assert [e for e in town.town.events(200) if e["kind"] == "task_completed"] == []
    task = town.town.task(task_id)
    assert task.state == TaskState.AWAITING_INPUT and task.result is None
    assert task.question == "Which region, eu or us?"
    assert [q["task"] for q in town.town.questions()] == [task_id]

    town.town.reply(task_id[:8], "eu, Frankfurt")
    town.wait_task(task_id, TaskState.COMPLETED, timeout=40)
    rounds = [run_ for run_ in town.runs() if run_[2] == task_id]
    assert len(rounds) == 2
    prompt = (town.records / f"alice-{rounds[1][1]}.prompt").read_text()
    assert "Which region, eu or us?" in prompt and "eu, Frankfurt" in prompt


def test_ask_human_refusals(agents: TownFixture) -> None:
    town = agents
    alices = town.town.assign("bob", "bob's, not running")

    async def no_task(session: ClientSession) -> None:
        assert "no current task" in await refused(session, "ask_human", question="?")

    run(as_agent(town, "bob"), no_task)

    async def not_running(session: ClientSession) -> None:
        line = await refused(session, "ask_human", question="?")
        assert "is assigned: a question is asked while its round runs" in line

    run(as_agent(town, "bob", TINYTOWN_TASK_ID=alices), not_running)

    async def not_mine(session: ClientSession) -> None:
        assert "is not yours" in await refused(session, "ask_human", question="?")

    run(as_agent(town, "alice", TINYTOWN_TASK_ID=alices), not_mine)

    async def supervisor(session: ClientSession) -> None:
        assert "for an agent" in await refused(session, "ask_human", question="?")

    run(stdio(town), supervisor)

    async def empty(session: ClientSession) -> None:
        assert "empty" in await refused(session, "ask_human", question="  ")

    run(as_agent(town, "bob", TINYTOWN_TASK_ID=alices), empty)
    assert town.task_state(alices) == TaskState.ASSIGNED and town.town.questions() == []


def test_an_answer_given_while_the_round_still_runs_is_not_lost(agents: TownFixture) -> None:
    """A person answers before the asking round's CLI has ended: that round's end
    leaves the task to the answer's round, which runs it with the answer."""
    town = agents
    task_id = town.town.assign("alice", "@sleep 12 then finish")
    wait_until(lambda: list(town.records.glob("alice-*.sleeping")), 20, "alice's CLI to run")

    async def body(session: ClientSession) -> None:
        await call(session, "ask_human", question="Tabs or spaces?")

    run(as_agent(town, "alice"), body)
    town.town.reply(task_id, "spaces")  # the CLI still sleeps
    assert town.task_state(task_id) == TaskState.ASSIGNED
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
    rounds = [run_ for run_ in town.runs() if run_[2] == task_id]
    assert len(rounds) == 2
    prompt = (town.records / f"alice-{rounds[1][1]}.prompt").read_text()
    assert "Tabs or spaces?" in prompt and "Their answer:\nspaces\n" in prompt
    assert len([e for e in town.town.events(300) if e["kind"] == "task_completed"
                and e.get("task") == task_id]) == 1
