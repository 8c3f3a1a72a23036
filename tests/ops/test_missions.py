"""Missions at the record level: a plan's tasks created at once, released by the mission
as their dependencies complete (at most `parallel` at a time, none over budget), its
state, cancel, add-task. Tasks are ended by hand (`complete_task`): the same finish path
a round's end takes (tinytown.db.task_writes / tinytown.db.rounds call the same hook)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import InProcessWorker, TownFixture
from tinytown.core import keys
from tinytown.core.errors import (
    AgentNotFound,
    MissionNotFound,
    NameTaken,
    PlanInvalid,
    Refused,
    UsageError,
)
from tinytown.core.models import Mission, MissionState, Task, TaskState
from tinytown.core.usage_rules import Usage

PLAN = """
name = "ignored"
goal = "ship it"

[[task]]
name = "a"
text = "first"
agent = "alice"

[[task]]
name = "b"
text = "second"
agent = "bob"
after = ["a"]

[[task]]
name = "c"
text = "third"
role = "worker"
after = ["a"]

[[task]]
name = "d"
text = "last"
agent = "alice"
after = ["b", "c"]
"""


def _town(town: TownFixture) -> TownFixture:
    for name in ("alice", "bob"):
        town.town.spawn_agent(name, start=False)
    return town


def _states(town: TownFixture, name: str) -> dict[str, str]:
    """Each task's state as recorded (a plain read: `Town.mission` would also bring the
    mission up to date, which must not be what moves it on)."""
    found = town.town.store.r.get(keys.mission(town.name, name))
    assert found is not None
    return {label: town.town.store.require_task(task_id).state.value
            for label, task_id in Mission.from_json(found).tasks.items()}


def _id(town: TownFixture, mission: str, task: str) -> str:
    found = town.town.store.r.get(keys.mission(town.name, mission))
    assert found is not None
    return Mission.from_json(found).tasks[task]


def test_a_plan_runs_in_waves_to_done(town: TownFixture) -> None:
    _town(town)
    mission = town.town.start_mission("m1", PLAN)
    assert mission.state == MissionState.RUNNING and mission.goal == "ship it"
    status = town.town.mission("m1")
    assert [[r["name"] for r in w] for w in status["waves"]] == [["a"], ["b", "c"], ["d"]]
    assert _states(town, "m1") == {"a": "assigned", "b": "blocked", "c": "blocked",
                                   "d": "blocked"}
    town.town.complete_task(_id(town, "m1", "a"), "done a")
    assert _states(town, "m1") == {"a": "completed", "b": "assigned", "c": "pending",
                                   "d": "blocked"}
    town.town.complete_task(_id(town, "m1", "b"))
    assert _states(town, "m1")["d"] == "blocked"  # fan-in: c is not done
    town.town.complete_task(_id(town, "m1", "c"))
    assert _states(town, "m1")["d"] == "assigned"
    assert town.town.mission("m1")["state"] == "running"
    town.town.complete_task(_id(town, "m1", "d"))
    status = town.town.mission("m1")
    assert status["state"] == "done" and status["finished_at"]
    d = town.town.task(_id(town, "m1", "d"))
    assert d.mission == "m1" and d.assigned_to == town.town.resolve("alice").id


def test_a_plan_file_given_as_a_path(town: TownFixture) -> None:
    _town(town)
    (town.root / "p.toml").write_text(PLAN)
    assert town.town.start_mission("file", town.root / "p.toml").goal == "ship it"


def test_parallel_caps_the_tasks_released_at_once(town: TownFixture) -> None:
    _town(town)
    plan = "\n".join(f'[[task]]\nname = "t{i}"\ntext = "x{i}"\nagent = "alice"\n'
                     for i in range(4))
    town.town.start_mission("wide", plan, parallel=2)
    assert sorted(_states(town, "wide").values()) == ["assigned", "assigned", "blocked",
                                                      "blocked"]
    status = town.town.mission("wide")
    held = [r for w in status["waves"] for r in w if r["state"] == "blocked"]
    assert all("free slot" in r["blocked_reason"] for r in held)
    town.town.complete_task(_id(town, "wide", "t0"))
    assert sorted(_states(town, "wide").values()) == ["assigned", "assigned", "blocked",
                                                      "completed"]


def test_over_budget_holds_the_unstarted_tasks(town: TownFixture) -> None:
    _town(town)
    town.town.start_mission("cheap", PLAN, budget=0.5)
    a = town.town.task(_id(town, "cheap", "a"))
    a.usage = Usage(cost_usd=0.75, rounds=1)
    town.town.store.put_task(a)
    town.town.complete_task(a.id)
    status = town.town.mission("cheap")
    assert status["state"] == "blocked" and status["reason"] == "over budget"
    assert _states(town, "cheap")["b"] == "blocked"
    town.town.set_mission_budget("cheap", 2.0)
    assert town.town.mission("cheap")["state"] == "running"
    assert _states(town, "cheap")["b"] == "assigned"


def test_a_failed_task_blocks_the_mission_and_a_retry_moves_it_on(town: TownFixture) -> None:
    _town(town)
    town.town.start_mission("m2", PLAN)
    a = _id(town, "m2", "a")
    town.town.fail_task(a, "boom")
    status = town.town.mission("m2")
    assert status["state"] == "blocked" and "a failed" in status["reason"]
    town.town.retry_task(a)
    assert town.town.mission("m2")["state"] == "running"
    town.town.complete_task(a)
    assert _states(town, "m2")["b"] == "assigned"


def test_cancel_ends_its_tasks(town: TownFixture) -> None:
    _town(town)
    town.town.start_mission("m3", PLAN)
    mission = town.town.cancel_mission("m3")
    assert mission.state == MissionState.CANCELLED
    assert set(_states(town, "m3").values()) == {"cancelled"}
    with pytest.raises(Refused):
        town.town.cancel_mission("m3")
    with pytest.raises(Refused):
        town.town.add_mission_task("m3", "more", agent="alice")


def test_add_task_while_it_runs(town: TownFixture) -> None:
    _town(town)
    town.town.start_mission("m4", PLAN)
    a = _id(town, "m4", "a")
    late = town.town.add_mission_task("m4", "after a", agent="bob", after=["a"], label="e")
    assert late.state == TaskState.BLOCKED and late.after == [a]
    town.town.complete_task(a)
    assert _states(town, "m4")["e"] == "assigned"
    # after a task already completed: released at once
    now = town.town.add_mission_task("m4", "also after a", role="worker", after=[a[:8]])
    assert now.state == TaskState.PENDING
    with pytest.raises(NameTaken):
        town.town.add_mission_task("m4", "dup", agent="bob", label="e")


def test_add_task_to_a_done_mission_runs_it_again(town: TownFixture) -> None:
    _town(town)
    town.town.start_mission("m5", '[[task]]\nname = "a"\ntext = "x"\nagent = "alice"\n')
    town.town.complete_task(_id(town, "m5", "a"))
    assert town.town.mission("m5")["state"] == "done"
    town.town.add_mission_task("m5", "one more", agent="alice", after=["a"])
    assert town.town.mission("m5")["state"] == "running"


def test_refusals_write_nothing(town: TownFixture) -> None:
    _town(town)
    before = town.town_keys()
    with pytest.raises(UsageError, match="needs a goal"):
        town.town.start_mission("x", None)
    with pytest.raises(AgentNotFound):
        town.town.start_mission("x", None, goal="do it all", conductor="carol")
    with pytest.raises(PlanInvalid, match="unknown role 'nobody'"):
        town.town.start_mission("x", '[[task]]\nname = "a"\ntext = "x"\nrole = "nobody"\n')
    with pytest.raises(PlanInvalid, match="no agent 'carol'"):
        town.town.start_mission("x", '[[task]]\nname = "a"\ntext = "x"\nagent = "carol"\n')
    with pytest.raises(PlanInvalid, match="unknown role 'nobody'"):
        town.town.start_mission("x", '[[task]]\nname = "a"\ntext = "x"\nagent = "bob"\n'
                                'review = "nobody"\n')
    with pytest.raises(PlanInvalid, match="comes after itself"):
        town.town.start_mission("x", '[[task]]\nname = "a"\ntext = "x"\nagent = "bob"\n'
                                'after = ["a"]\n')
    with pytest.raises(UsageError, match="invalid mission name"):
        town.town.start_mission("no spaces", PLAN)
    assert town.town_keys() == before
    town.town.start_mission("x", PLAN)
    with pytest.raises(NameTaken):
        town.town.start_mission("x", PLAN)
    with pytest.raises(MissionNotFound):
        town.town.mission("nope")


def test_old_task_records_read_without_a_mission(town: TownFixture) -> None:
    task = Task("plain")
    assert "mission" not in task.to_wire()
    assert Task.from_json(task.to_json()).mission is None
    assert [m.name for m in town.town.missions()] == []


def test_a_task_released_by_the_dependency_index_is_not_released_twice(
        town: TownFixture) -> None:
    """A mission task cancelled and retried while its dependency is unfinished waits in
    the dependency index too: the completion that releases it there is the mission's
    too, and the task gets one assignment, not two."""
    _town(town)
    plan = ('[[task]]\nname = "a"\ntext = "x"\nagent = "alice"\n'
            '[[task]]\nname = "b"\ntext = "y"\nagent = "bob"\nafter = ["a"]\n')
    town.town.start_mission("twice", plan)
    b = _id(town, "twice", "b")
    town.town.cancel_task(b)
    town.town.retry_task(b)
    assert town.town.task(b).state == TaskState.BLOCKED
    town.town.complete_task(_id(town, "twice", "a"))
    bob = town.town.resolve("bob").id
    assigned = [m for m in town.town.store.peek_inbox(bob) if m.type == "task_assign"]
    assert [m.body.task_id for m in assigned] == [b]  # type: ignore[union-attr]
    assert town.town.task(b).state == TaskState.ASSIGNED


def test_tasks_ending_at_once_release_no_more_than_parallel(town: TownFixture) -> None:
    """Each end of a mission task writes the mission's key, which each WATCHes: ends at
    the same moment are serialised and the cap holds."""
    import threading

    _town(town)
    plan = "".join(f'[[task]]\nname = "t{i}"\ntext = "x{i}"\nagent = "alice"\n'
                   for i in range(12))
    town.town.start_mission("burst", plan, parallel=4)
    first = [n for n, s in _states(town, "burst").items() if s == "assigned"]
    assert len(first) == 4
    ids = [_id(town, "burst", n) for n in first]
    start = threading.Barrier(len(ids))

    def finish(task_id: str) -> None:
        start.wait()
        town.town.complete_task(task_id)

    threads = [threading.Thread(target=finish, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    states = list(_states(town, "burst").values())
    assert states.count("completed") == 4 and states.count("assigned") == 4
    alice = town.town.resolve("alice").id
    assigned = [m.body.task_id for m in town.town.store.peek_inbox(alice)  # type: ignore
                if m.type == "task_assign"]
    assert len(assigned) == len(set(assigned)) == 8


def test_a_rounds_cost_holds_the_rest_over_budget(
        town_factory: Callable[..., TownFixture],
        worker_in_process: Callable[..., InProcessWorker],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The round's end counts its cost on the task and, in the same transaction, holds
    the mission's unstarted tasks once the budget is reached ($0.0012 a round here)."""
    structured = (f'[agent_clis.structured]\ncommand = "{sys.executable}'
                  f' {Path(__file__).parents[1] / "support" / "fake_structured.py"}"\n'
                  'output = "claude-json"\n')
    town = town_factory(extra=structured)
    monkeypatch.setenv("FAKE_AGENT_DIR", str(town.records))
    town.town.spawn_agent("s", cli="structured", start=False)
    worker = worker_in_process(town, "s")
    plan = ('[[task]]\nname = "a"\ntext = "x"\nagent = "s"\n'
            '[[task]]\nname = "b"\ntext = "y"\nagent = "s"\nafter = ["a"]\n')
    town.town.start_mission("pricey", plan, budget=0.001)
    worker.run_round()
    assert _states(town, "pricey") == {"a": "completed", "b": "blocked"}
    record = town.town.missions()[0]
    assert (record.state, record.reason) == (MissionState.BLOCKED, "over budget")
    assert town.town.task(_id(town, "pricey", "b")).blocked_reason == "mission over budget"


def test_a_look_at_a_mission_writes_nothing_when_nothing_changed(town: TownFixture) -> None:
    _town(town)
    town.town.start_mission("still", PLAN)
    town.town.mission("still")
    key = keys.mission(town.name, "still")
    before = town.town.store.r.get(key)
    town.town.mission("still")
    assert town.town.store.r.get(key) == before
