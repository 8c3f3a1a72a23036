"""A mission's conductor: an agent whose first task is the goal, that plans the mission
with the MCP mission tools and is woken — a task of its own, in its inbox, so its CLI
goes on in the same session — when a task fails or when the wave it planned is done.

Two tiers. The fake conductor (the fake agent CLI, its rounds driven in this process)
is driven through the MCP tool functions directly: the wake-ups come exactly once,
whatever is recorded again. The real one is Claude Code against the Anthropic stub,
whose scripted answers call the mission tools; its mission runs on real workers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import InProcessWorker, TownFixture, wait_until
from tests.stubs.anthropic import AnthropicStub, Text, ToolCall
from tests.stubs.realcli import Sandbox, claude_env, installed
from tinytown.core.errors import InvalidTransition
from tinytown.core.models import MessageBody, Mission, MissionState, Task, TaskState
from tinytown.core.usage_rules import Usage
from tinytown.db import rounds
from tinytown.mcp.tools import Caller, Tools

pytestmark = pytest.mark.timeout(240)


class ToolRefused(Exception):
    """A tool answered with an error (its text)."""


def _call(town: TownFixture, caller: str | None, tool: str, **args: Any) -> Any:
    """Call MCP tool `tool` as agent `caller` (None: the human's `tt mcp`): its JSON
    answer, or ToolRefused with its text."""
    tools = Tools(town.town, lambda _request: Caller(agent=caller))
    result = getattr(tools, tool)(None, **args)
    text = result.content[0].text
    if result.is_error:
        raise ToolRefused(text)
    return json.loads(text)


def _mission(town: TownFixture, name: str) -> Mission:
    """The record as written (a plain read: a look through `Town.mission` would also
    run the dispatcher, which must not be what wakes anyone)."""
    return next(m for m in town.town.missions() if m.name == name)


def _turns(town: TownFixture, name: str) -> list[Task]:
    return [town.town.task(i) for i in _mission(town, name).conductor_tasks]


def _task_id(town: TownFixture, mission: str, label: str) -> str:
    return _mission(town, mission).tasks[label]


def _woken_events(town: TownFixture, mission: str) -> list[dict[str, str]]:
    return [e for e in town.town.events(500) if e["kind"] == "mission_conductor_woken"
            and e.get("mission") == mission]


@pytest.fixture
def crew(town: TownFixture, worker_in_process: Callable[..., InProcessWorker]
         ) -> dict[str, InProcessWorker]:
    """alice and bob (workers) and boss (the conductor), fake CLI, rounds run here."""
    out = {}
    for name in ("alice", "bob", "boss"):
        town.town.spawn_agent(name, start=False)
        out[name] = worker_in_process(town, name)
    return out


def _rerecord(town: TownFixture, agent: str, task_id: str) -> None:
    """A round's end recorded again for a finished task (as after a kill between the
    record and the ack), its cost counted: the mission's dispatcher runs again."""
    agent_id = town.town.resolve(agent).id
    rounds.finish(town.town.store, agent_id, task_id, rounds.Outcome(
        number=99, ok=True, output="again", error="", context="{}", context_rounds=5,
        usage=Usage(input_tokens=1, output_tokens=1, cost_usd=0.0001, rounds=1)))


def test_a_fake_conductor_plans_and_is_woken_once_per_failure_and_wave(
        town: TownFixture, crew: dict[str, InProcessWorker]) -> None:
    started = town.town.start_mission("m", None, goal="ship the thing", conductor="boss")
    boss = town.town.resolve("boss").id
    assert (started.state, started.conductor) == (MissionState.PLANNING, boss)
    [first] = _turns(town, "m")
    assert first.assigned_to == boss and first.state == TaskState.ASSIGNED
    assert "ship the thing" in first.description and "add_mission_task" in first.description
    assert first.mission == "m" and not started.tasks  # not one of the tasks that count

    # only its conductor (and the human) may change it
    with pytest.raises(ToolRefused, match=r"only its conductor \(boss\) may change"):
        _call(town, "alice", "add_mission_task", mission="m", text="sneaky", agent="alice")
    _call(town, "boss", "add_mission_task", mission="m", name="a", text="part a",
          agent="alice")
    assert _mission(town, "m").state == MissionState.RUNNING  # its first task: running
    _call(town, "boss", "add_mission_task", mission="m", name="b", text="part b", agent="bob")
    c = _call(town, "boss", "add_mission_task", mission="m", name="c", text="join them",
              agent="alice", after=["a", "b"])
    assert c["state"] == "blocked"
    with pytest.raises(ToolRefused, match=r"not done: 3 task\(s\) not completed: a \(assigned\)"):
        _call(town, "boss", "finish_mission", mission="m", status="done", summary="too soon")
    status = _call(town, "boss", "mission_status", name="m")
    assert status["conductor_name"] == "boss" and status["conductor_deciding"] is True

    crew["boss"].run_round()  # its first turn ends: the tasks run, nothing to decide
    assert [t.state for t in _turns(town, "m")] == [TaskState.COMPLETED]

    # a task fails (`tt task fail`): the conductor is woken in that transaction, once
    town.town.fail_task(_task_id(town, "m", "b"), "the disk is full")
    turns = _turns(town, "m")
    assert len(turns) == 2 and turns[1].state == TaskState.ASSIGNED
    assert "did not complete" in turns[1].description
    assert "### b (failed" in turns[1].description and "the disk is full" in turns[1].description
    inbox = town.town.store.peek_inbox(boss)
    assert [m.body.task_id for m in inbox] == [turns[1].id]  # type: ignore[union-attr]
    with pytest.raises(InvalidTransition):
        town.town.fail_task(_task_id(town, "m", "b"), "again")
    town.town.mission("m")  # a look runs the dispatcher: nothing new to tell
    assert len(_turns(town, "m")) == 2

    # a completes while the conductor decides: no second wake-up meanwhile, none when
    # its completion is recorded again
    crew["alice"].run_round()
    assert town.town.task(_task_id(town, "m", "a")).state == TaskState.COMPLETED
    _rerecord(town, "alice", _task_id(town, "m", "a"))
    assert len(_turns(town, "m")) == 2
    assert _mission(town, "m").state == MissionState.RUNNING  # deciding: not blocked

    # it decides: b again; its turn ends; b and then c run
    _call(town, "boss", "retry_task", task_id=_task_id(town, "m", "b"))
    crew["boss"].run_round()
    assert len(_turns(town, "m")) == 2  # b runs again: the wave is not done
    crew["bob"].run_round()
    assert town.town.task(_task_id(town, "m", "c")).state == TaskState.ASSIGNED
    assert len(_turns(town, "m")) == 2
    crew["alice"].run_round()  # c completes: nothing runs any more, the wave is done
    turns = _turns(town, "m")
    assert len(turns) == 3 and "the tasks that could run are done" in turns[2].description
    for label in ("a", "b", "c"):
        assert f"### {label} (completed" in turns[2].description
    assert "fake agent alice" in turns[2].description  # the results' tails
    _rerecord(town, "alice", _task_id(town, "m", "c"))
    town.town.mission("m")
    assert len(_turns(town, "m")) == 3
    assert len(_woken_events(town, "m")) == 2
    assert _mission(town, "m").state == MissionState.RUNNING

    with pytest.raises(ToolRefused, match="only its conductor"):
        _call(town, "bob", "finish_mission", mission="m", status="done", summary="mine")
    done = _call(town, "boss", "finish_mission", mission="m", status="done",
                 summary="shipped: a, b, c")
    assert (done["state"], done["summary"]) == ("done", "shipped: a, b, c")
    crew["boss"].run_round()  # the turn that finished it ends
    final = _mission(town, "m")
    assert final.state == MissionState.DONE and final.finished_at is not None
    assert [t.state for t in _turns(town, "m")] == [TaskState.COMPLETED] * 3
    ran = [line[2] for line in town.runs()]
    work = [_task_id(town, "m", x) for x in ("a", "b", "c")]
    assert sorted(i for i in ran if i in work) == sorted(work)  # b failed before it ran


def test_a_turn_that_decides_nothing_leaves_the_mission_done(
        town: TownFixture, crew: dict[str, InProcessWorker]) -> None:
    town.town.start_mission("quiet", None, goal="one small thing", conductor="boss")
    crew["boss"].run_round()  # a turn that planned nothing
    mission = _mission(town, "quiet")
    assert (mission.state, mission.reason) == (MissionState.BLOCKED,
                                               "its conductor planned no tasks")
    _call(town, "boss", "add_mission_task", mission="quiet", name="only", text="it",
          agent="bob")
    crew["bob"].run_round()
    [_, wake] = _turns(town, "quiet")
    assert _mission(town, "quiet").state == MissionState.RUNNING  # it decides
    # a message to the conductor from elsewhere (a question, an escalation) is a round
    # of its own, in the same session; it changes nothing of the mission
    town.town.channel.send("boss", MessageBody.task("a question about the mission"),
                           sender="alice")
    crew["boss"].run_round()  # the wake-up, then the message: it adds nothing
    assert town.town.task(wake.id).state == TaskState.COMPLETED
    assert len(_turns(town, "quiet")) == 2
    assert _mission(town, "quiet").state == MissionState.DONE  # all done, nothing to decide
    prompts = sorted(town.records.glob("boss-*.prompt"))
    assert len(prompts) == 3 and "a question about the mission" in prompts[-1].read_text()


def test_dependencies_and_failing_a_mission(
        town: TownFixture, crew: dict[str, InProcessWorker]) -> None:
    town.town.start_mission("deps", None, goal="three steps", conductor="boss")
    for label in ("a", "b", "c"):
        _call(town, "boss", "add_mission_task", mission="deps", name=label,
              text=f"step {label}", agent="alice", after=["a"] if label != "a" else [])
    _call(town, "boss", "add_mission_dependency", mission="deps", task="c", after=["b"])
    assert town.town.task(_task_id(town, "deps", "c")).after == [
        _task_id(town, "deps", x) for x in ("a", "b")]
    with pytest.raises(ToolRefused, match="cycle: b -> c -> b"):
        _call(town, "boss", "add_mission_dependency", mission="deps", task="b", after=["c"])
    with pytest.raises(ToolRefused, match="a is assigned: a dependency is added to a task"
                                          " not started yet only"):
        _call(town, "boss", "add_mission_dependency", mission="deps", task="a", after=["b"])
    with pytest.raises(ToolRefused, match="only its conductor"):
        _call(town, "bob", "add_mission_dependency", mission="deps", task="c", after=["a"])
    failed = _call(town, "boss", "finish_mission", mission="deps", status="failed",
                   summary="the goal makes no sense")
    assert (failed["state"], failed["reason"]) == ("failed", "the goal makes no sense")
    states = {x: town.town.task(_task_id(town, "deps", x)).state for x in ("a", "b", "c")}
    assert set(states.values()) == {TaskState.CANCELLED}
    [turn] = _turns(town, "deps")
    assert turn.state == TaskState.ASSIGNED  # its own turn ends with its round, not cancelled
    crew["boss"].run_round()
    assert town.town.task(turn.id).state == TaskState.COMPLETED
    assert _mission(town, "deps").state == MissionState.FAILED


def test_tt_mission_start_without_a_plan_spawns_a_conductor(town: TownFixture) -> None:
    """The CLI, a real worker: no --plan and no conductor given: `NAME-conductor` is
    spawned (role conductor, the town's CLI) and its first turn runs."""
    r = town.tt("mission", "start", "solo", "write the docs")
    assert r.code == 0, r.err
    assert "mission solo planning: 0 tasks, conducted by solo-conductor" in r.out
    conductor = town.town.resolve("solo-conductor")
    assert conductor.role_id == "conductor"
    wait_until(lambda: _mission(town, "solo").state == MissionState.BLOCKED, 60,
               "its conductor's first turn to end")
    r = town.tt("mission", "status", "solo")
    assert r.code == 0, r.err
    assert "its conductor planned no tasks" in r.out
    assert "conductor: solo-conductor (waiting to be woken)" in r.out


# --- the real Claude Code as the conductor ----------------------------------------------


def _tool(name: str) -> str:
    """How Claude Code names a tool of the `tinytown` MCP server to its model."""
    return f"mcp__tinytown__{name}"


@pytest.fixture
def claude_town(town_factory: Callable[..., TownFixture], monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[tuple[TownFixture, AnthropicStub]]:
    """A town (the fake CLI by default) whose processes run Claude Code against the
    Anthropic stub, with a HOME of their own (a few lines copied from the real-CLI
    tier's town set-up, which is being reworked: tests/stubs/test_presets.py)."""
    binary = installed("claude")  # skips, saying why, when it is not installed
    sandbox = Sandbox()
    try:
        with AnthropicStub() as stub:
            for key, value in sandbox.env(claude_env(stub.base_url)).items():
                monkeypatch.setenv(key, value)
            monkeypatch.setenv("PATH", f"{Path(binary).parent}{os.pathsep}{os.environ['PATH']}")
            yield town_factory(), stub  # type: ignore[misc]
    finally:
        sandbox.cleanup()


@pytest.mark.realcli
def test_claude_code_conducts_a_mission_to_done(
        claude_town: tuple[TownFixture, AnthropicStub]) -> None:
    town, stub = claude_town
    stub.push(  # its first turn: the plan (two tasks in parallel, one after both) ...
        ToolCall("", name=_tool("add_mission_task"), args={
            "mission": "demo", "name": "left", "text": "build the left half",
            "agent": "alice"}),
        ToolCall("", name=_tool("add_mission_task"), args={
            "mission": "demo", "name": "right", "text": "build the right half",
            "agent": "bob"}),
        ToolCall("", name=_tool("add_mission_task"), args={
            "mission": "demo", "name": "join", "text": "join the halves", "agent": "alice",
            "after": ["left", "right"]}),
        Text("Planned: left and right in parallel, then join. Ending my turn."),
        # ... and, woken once the wave is done, the end
        ToolCall("", name=_tool("finish_mission"), args={
            "mission": "demo", "status": "done", "summary": "both halves built and joined"}),
        Text("The mission is done."))
    for agent in ("alice", "bob"):  # real workers, the fake CLI
        r = town.tt("spawn", agent)
        assert r.code == 0, r.err
    r = town.tt("mission", "start", "demo", "Build both halves and join them",
                "--conductor-cli", "claude")
    assert r.code == 0, r.err
    conductor = town.town.resolve("demo-conductor")
    assert (conductor.cli, conductor.role_id) == ("claude", "conductor")
    wait_until(lambda: _mission(town, "demo").state.is_terminal, 180, "the mission to end")
    mission = _mission(town, "demo")
    assert mission.state == MissionState.DONE, (mission.reason, stub.summary())
    assert mission.summary == "both halves built and joined"
    assert sorted(mission.tasks) == ["join", "left", "right"]
    tasks = {label: town.town.task(i) for label, i in mission.tasks.items()}
    assert {t.state for t in tasks.values()} == {TaskState.COMPLETED}
    for dep in ("left", "right"):
        done, started = tasks[dep].completed_at, tasks["join"].started_at
        assert done is not None and started is not None and started >= done
    # woken once, after the wave, in the same session, told what finished
    wait_until(lambda: all(t.state.is_terminal for t in _turns(town, "demo")), 60,
               "the conductor's turn that finished it to end")
    first, wake = _turns(town, "demo")
    assert {first.state, wake.state} == {TaskState.COMPLETED}
    assert len(_woken_events(town, "demo")) == 1
    main = stub.main_requests
    assert len(main) == 6, stub.summary()
    seen = stub.conversation_text(main[4])  # type: ignore[attr-defined]
    assert "the tasks that could run are done" in seen
    assert "### join (completed" in seen and "fake agent alice" in seen
    assert "Build both halves and join them" in seen  # the first turn's, same session
    answer = stub.conversation_text(main[5]).replace(" ", "")  # type: ignore[attr-defined]
    assert '"state":"done"' in answer  # finish_mission's answer came back to it
    ran = [line[2] for line in town.runs()]
    assert sorted(i for i in ran if i in mission.tasks.values()) == sorted(
        mission.tasks.values())
