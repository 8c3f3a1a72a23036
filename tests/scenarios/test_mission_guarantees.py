"""The smaller guarantees of issue 22, with real workers: a dependency on a task that
already completed does not block (`tt assign --after`, `tt mission add-task --after`);
cancelling a mission cancels its queued tasks and stops its running rounds, their
agents' work committed as work in progress. (The guarantees under kills:
test_mission_chaos.py.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import SUPPORT, TownFixture, pid_gone, wait_until
from tinytown.core import keys
from tinytown.core.models import TaskState

pytestmark = pytest.mark.timeout(120)


def _mission_state(town: TownFixture, name: str) -> str:
    return next(m.state.value for m in town.town.missions() if m.name == name)


def test_a_dependency_on_a_completed_task_does_not_block(town: TownFixture) -> None:
    assert town.tt("spawn", "a").code == 0
    (town.root / "plan.toml").write_text('[[task]]\nname = "first"\ntext = "one"\n'
                                         'agent = "a"\n')
    assert town.tt("mission", "start", "m", "--plan", "plan.toml").code == 0
    wait_until(lambda: _mission_state(town, "m") == "done", 60, "the mission to be done")
    first = town.town.mission("m")["tasks"]["first"]
    # a task assigned after the completed one: dispatched at once
    r = town.tt("assign", "a", "two", "--after", first[:8])
    assert r.code == 0, r.err
    second = r.out.strip()
    assert town.task_state(second) != TaskState.BLOCKED
    # a task added to the mission after its completed task: released at once
    r = town.tt("mission", "add-task", "m", "three", "--agent", "a", "--after", "first")
    assert r.code == 0, r.err
    third = r.out.strip()
    assert town.task_state(third) != TaskState.BLOCKED
    town.wait_task(second, TaskState.COMPLETED, timeout=60)
    town.wait_task(third, TaskState.COMPLETED, timeout=60)
    wait_until(lambda: _mission_state(town, "m") == "done", 30, "the mission to be done again")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


PLAN = """
[[task]]
name = "x"
text = "x @linger"
agent = "alice"

[[task]]
name = "y"
text = "y @linger"
agent = "bob"

[[task]]
name = "w"
text = "w, for whoever is free"
role = "worker"

[[task]]
name = "z"
text = "z, after x and y"
agent = "alice"
after = ["x", "y"]
"""


def test_cancelling_a_mission_stops_its_rounds_and_keeps_their_work(
        town_factory: Callable[..., TownFixture], tmp_path: Path) -> None:
    records = tmp_path / "records"
    town = town_factory(cli=f"{sys.executable} {SUPPORT / 'chaos_agent.py'} {records} 0")
    _git(town.root, "init", "-q", "-b", "main")
    for key, value in (("user.name", "T"), ("user.email", "t@example.com")):
        _git(town.root, "config", key, value)
    (town.root / ".gitignore").write_text(".tt/\n")
    _git(town.root, "add", "-A")
    _git(town.root, "commit", "-q", "-m", "start")
    for name in ("alice", "bob"):
        assert town.tt("spawn", name, "--role", "worker").code == 0
    (town.root / "plan.toml").write_text(PLAN)
    assert town.tt("mission", "start", "m", "--plan", "plan.toml").code == 0
    ids = town.town.mission("m")["tasks"]
    log = records / "chaos.log"

    def lingering() -> list[list[str]]:
        lines = log.read_text().splitlines() if log.exists() else []
        return [line.split() for line in lines if line.startswith("linger ")]

    wait_until(lambda: len(lingering()) == 2, 60, "x and y to run")
    assert town.task_state(ids["w"]) == TaskState.PENDING  # both agents are busy
    r = town.tt("mission", "cancel", "m")
    assert r.code == 0, r.err
    assert {n: town.task_state(i).value for n, i in ids.items()} == dict.fromkeys(
        ids, "cancelled")
    for line in lingering():  # the CLIs are stopped, well before their two minutes
        wait_until(lambda pid=int(line[4]): pid_gone(pid), 20, f"{line[1]}'s CLI to stop")
    for name in ("alice", "bob"):
        town.wait_state(name, "idle", timeout=20)
    for name, agent in (("x", "alice"), ("y", "bob")):
        task = town.town.task(ids[name])
        assert task.state == TaskState.CANCELLED  # the round's end left it so
        assert task.commits, f"{name}'s work was not committed"
        branch = town.town.resolve(agent).branch
        assert branch
        subject = _git(town.root, "log", "-1", "--format=%s", task.commits[-1])
        assert subject.startswith(f"WIP: task {ids[name][:8]}"), subject
        shown = _git(town.root, "show", f"{branch}:work/{ids[name][:8]}.txt")
        assert "half done" in shown
    ran = {line.split()[3] for line in log.read_text().splitlines()}
    assert ran == {ids["x"], ids["y"]}  # w and z never ran
    assert not [m for m in town.town.store.peek_inbox(keys.SUPERVISOR_ID)
                if m.type in ("task_done", "task_failed")]
