"""A mission from `tt mission start --plan` to `done`, run by real worker processes with
the fake agent CLI: six tasks with a fan-out and a fan-in, each started only after the
tasks it comes after completed; a mission cancelled midway; a task added while it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import TownFixture, wait_until

pytestmark = pytest.mark.timeout(180)

SIX = """
name = "six"
goal = "fan out, fan in"
parallel = 3

[[task]]
name = "design"
text = "design it"
agent = "alice"

[[task]]
name = "api"
text = "build the api"
agent = "bob"
after = ["design"]

[[task]]
name = "ui"
text = "build the ui"
role = "worker"
after = ["design"]

[[task]]
name = "db"
text = "build the db"
agent = "alice"
after = ["design"]

[[task]]
name = "integrate"
text = "put it together"
agent = "bob"
after = ["api", "ui", "db"]

[[task]]
name = "docs"
text = "write the docs"
agent = "alice"
after = ["integrate"]
"""


def _start(town: TownFixture, plan: str, *args: str) -> None:
    (town.root / "plan.toml").write_text(plan)
    for agent, role in (("alice", "worker"), ("bob", "worker")):
        r = town.tt("spawn", agent, "--role", role)
        assert r.code == 0, r.err
    r = town.tt("mission", "start", *args, "--plan", "plan.toml")
    assert r.code == 0, r.err


def _status(town: TownFixture, name: str) -> dict[str, Any]:
    r = town.tt("mission", "status", name, "--json")
    assert r.code == 0, r.err
    doc: dict[str, Any] = json.loads(r.out)
    return doc


def _rows(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for wave in status["waves"] for row in wave}


def _state(town: TownFixture, name: str) -> str:
    """The mission's state as recorded (a plain read: `Town.mission` would also bring
    it up to date, which must not be what moves it on)."""
    return next(m.state.value for m in town.town.missions() if m.name == name)


def _wait_mission(town: TownFixture, name: str, *states: str, timeout: float = 90) -> None:
    wait_until(lambda: _state(town, name) in states, timeout,
               f"mission {name} to be {'/'.join(states)}")


def test_six_tasks_fan_out_and_in_to_done(town: TownFixture) -> None:
    _start(town, SIX, "six")
    _wait_mission(town, "six", "done")
    status = _status(town, "six")
    assert [[r["name"] for r in w] for w in status["waves"]] == [
        ["design"], ["api", "ui", "db"], ["integrate"], ["docs"]]
    rows = _rows(status)
    assert {r["state"] for r in rows.values()} == {"completed"}
    assert rows["ui"]["agent"] in ("alice", "bob") and rows["api"]["agent"] == "bob"
    tasks = {n: town.town.task(r["id"]) for n, r in rows.items()}
    for name, task in tasks.items():
        for dep in rows[name]["after"]:
            done = tasks[dep].completed_at
            assert task.started_at is not None and done is not None
            assert task.started_at >= done, f"{name} started before {dep} completed"
    ran = [line[2] for line in town.runs()]
    assert sorted(ran) == sorted(t.id for t in tasks.values())  # each one ran once
    r = town.tt("mission", "list")
    assert r.code == 0 and "six" in r.out and "done" in r.out


def test_cancel_midway_cancels_what_is_left(town: TownFixture) -> None:
    plan = SIX.replace('text = "design it"', 'text = "design it @sleep 4"')
    _start(town, plan, "slow")
    wait_until(lambda: any(t.state.value == "running" for t in town.town.list_tasks()), 30,
               "design to run")
    r = town.tt("mission", "cancel", "slow")
    assert r.code == 0, r.err
    rows = _rows(_status(town, "slow"))
    assert {r["state"] for r in rows.values()} == {"cancelled"}
    assert town.town.mission("slow")["state"] == "cancelled"
    town.wait_state("alice", "idle", timeout=30)  # the round that ran ends
    assert _rows(_status(town, "slow"))["design"]["state"] == "cancelled"
    assert [line[2] for line in town.runs()] == [rows["design"]["id"]]  # nothing else ran
    r = town.tt("mission", "cancel", "slow")
    assert r.code == 1 and "cancelled already" in r.err


def test_add_task_while_it_runs(town: TownFixture, tmp_path: Path) -> None:
    plan = '[[task]]\nname = "first"\ntext = "slowly @sleep 3"\nagent = "alice"\n'
    _start(town, plan, "grow")
    r = town.tt("mission", "add-task", "grow", "then this", "--agent", "bob",
                "--after", "first", "--name", "second")
    assert r.code == 0, r.err
    added = r.out.strip()
    assert town.town.task(added).state.value == "blocked"
    _wait_mission(town, "grow", "done")
    rows = _rows(_status(town, "grow"))
    assert rows["second"]["state"] == "completed" and rows["second"]["after"] == ["first"]
    first, second = town.town.task(rows["first"]["id"]), town.town.task(added)
    assert first.completed_at and second.started_at and second.started_at >= first.completed_at
