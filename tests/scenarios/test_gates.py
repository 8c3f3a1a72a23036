"""The check and approve gates with real workers (`tt spawn`) and fake agent CLIs: a
check that passes, one that fails and is fixed in a follow-up round of the same
session, one that never passes; approval, rejection and a gated mission; a worker
SIGKILLed while its check runs; refusals as one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import STRUCTURED, SUPPORT, TownFixture, one_line_error, pid_gone, wait_until
from tinytown.core import keys
from tinytown.core.models import Task, TaskState

pytestmark = pytest.mark.timeout(150)

CHECK = f"{sys.executable} {SUPPORT / 'check_gate.py'}"


def _assign(town: TownFixture, *args: str) -> str:
    r = town.tt("assign", *args)
    assert r.code == 0, r.err
    return r.out.strip()


def _task(town: TownFixture, task_id: str) -> Task:
    return town.town.store.require_task(task_id)


def _events(town: TownFixture, task_id: str) -> list[dict[str, str]]:
    return [e for e in town.town.store.read_events(500) if e.get("task") == task_id]


def _spawn(town: TownFixture, *names: str, cli: str | None = None) -> None:
    for name in names:
        r = town.tt("spawn", name, *(("--cli", cli) if cli else ()))
        assert r.code == 0, r.err
    for name in names:
        town.wait_state(name, "idle")


def _pass_after(town: TownFixture, n: int, marker: str = "MARKER") -> str:
    return f"{CHECK} pass-after {n} {town.root / 'count'} {marker}"


def test_a_check_that_passes_at_once_completes(town: TownFixture) -> None:
    _spawn(town, "alice")
    task_id = _assign(town, "alice", "build it", "--check", _pass_after(town, 0))
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
    task = _task(town, task_id)
    assert task.last_check is not None and task.last_check.passed
    assert task.last_check.exit_code == 0 and task.fix_rounds == 0
    assert task.last_check.log and Path(task.last_check.log).name == "round-1.check.log"
    assert "all good" in Path(task.last_check.log).read_text()
    assert len(town.runs()) == 1
    kinds = [e["kind"] for e in _events(town, task_id)]
    assert kinds.index("check_passed") < kinds.index("task_completed")
    r = town.tt("task", "show", task_id[:8])
    assert r.code == 0 and "last_check    passed (exit 0, round 1" in r.out
    assert "gates         check `" in r.out


@pytest.fixture
def structured(town_factory: Callable[..., TownFixture]) -> TownFixture:
    """A town whose agents can use the stand-in CLI with sessions (`--cli structured`)."""
    return town_factory(extra=STRUCTURED)


def _structured_runs(town: TownFixture) -> list[dict[str, object]]:
    path = town.records / "structured.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_failed_check_goes_back_in_the_same_session_then_passes(
        structured: TownFixture) -> None:
    town = structured
    _spawn(town, "alice", cli="structured")
    task_id = _assign(town, "alice", "build it", "--check", _pass_after(town, 1, "BOOM-42"))
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
    task = _task(town, task_id)
    assert task.fix_rounds == 1 and task.last_check is not None and task.last_check.passed
    runs = _structured_runs(town)
    assert len(runs) == 2
    first, second = runs
    session = town.town.resolve("alice").session_id
    assert session and "--resume" not in first["argv"]  # type: ignore[operator]
    argv = second["argv"]
    assert isinstance(argv, list) and argv[argv.index("--resume") + 1] == session
    prompt = str(second["prompt"])
    assert "BOOM-42: assertion failed in run 1" in prompt  # the output's tail
    assert "check_gate.py pass-after 1" in prompt and "failed (exit code 1)" in prompt
    assert task.follow_up is None  # consumed
    kinds = [e["kind"] for e in _events(town, task_id)]
    assert kinds.count("check_failed") == 1 and kinds.count("fix_round") == 1
    assert kinds.count("task_completed") == 1
    assert kinds.index("check_failed") < kinds.index("check_passed")


def test_a_check_that_never_passes_fails_after_max_fix_rounds(town: TownFixture) -> None:
    _spawn(town, "alice")
    task_id = _assign(town, "alice", "build it", "--check", _pass_after(town, 99, "NOPE"),
                      "--max-fix-rounds", "2")
    dependent = _assign(town, "alice", "after it", "--after", task_id)
    town.wait_task(task_id, TaskState.FAILED, timeout=60)
    task = _task(town, task_id)
    assert task.result and task.result.startswith("check failed after 2 fix rounds: ")
    assert "NOPE: assertion failed in run 3" in task.result
    assert task.fix_rounds == 2 and len(town.runs()) == 3
    assert (town.root / "count").read_text() == "3"
    assert _task(town, dependent).state == TaskState.BLOCKED  # it never completed
    r = town.tt("task", "show", task_id[:8])
    assert "last_check    failed (exit 1, round 3" in r.out and "NOPE" in r.out
    (town.root / "count").write_text("98")  # the next check run is the 99th: it fails
    assert town.tt("task", "retry", task_id[:8]).code == 0  # fix rounds afresh
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
    assert _task(town, task_id).fix_rounds == 1  # not 3: a retry counts afresh
    assert sum(run[2] == task_id for run in town.runs()) == 5


def test_approve_completes_and_releases_the_dependent(town: TownFixture) -> None:
    _spawn(town, "alice", "bob")
    task_id = _assign(town, "alice", "ship it", "--approve", "--check", _pass_after(town, 0))
    dependent = _assign(town, "bob", "then this", "--after", task_id[:8])
    town.wait_task(task_id, TaskState.AWAITING_APPROVAL, timeout=60)
    town.wait_state("alice", "idle")
    assert _task(town, dependent).state == TaskState.BLOCKED
    assert _task(town, task_id).result  # the round's output, kept
    r = town.tt("task", "list", "--state", "awaiting_approval")
    assert r.code == 0 and task_id[:8] in r.out and dependent[:8] not in r.out
    r = town.tt("status")
    assert r.code == 0 and f"awaiting approval: task {task_id[:8]} ship it" in r.out
    assert town.town.resolve("alice").tasks_completed == 0
    r = town.tt("task", "complete", task_id[:8])  # not around its gate
    assert r.code == 1 and one_line_error(r) == (
        f"tt: task {task_id[:8]} awaits approval: `tt approve {task_id[:8]}`")
    r = town.tt("approve", task_id[:8], "--note", "looks good")
    assert r.code == 0, r.err
    assert r.out.strip() == f"task {task_id} approved: completed"
    town.wait_task(dependent, TaskState.COMPLETED, timeout=60)
    assert _task(town, task_id).state == TaskState.COMPLETED
    assert town.town.resolve("alice").tasks_completed == 1
    approved = [e for e in _events(town, task_id) if e["kind"] == "approved"]
    assert len(approved) == 1 and approved[0]["note"] == "looks good" and approved[0]["by"]
    assert sum(run[2] == dependent for run in town.runs()) == 1
    r = town.tt("approve", task_id[:8])  # once only
    assert r.code == 1 and "is already completed" in one_line_error(r)


def test_reject_sends_it_back_with_the_note_then_fail(town: TownFixture) -> None:
    _spawn(town, "alice")
    task_id = _assign(town, "alice", "write the docs", "--approve")
    town.wait_task(task_id, TaskState.AWAITING_APPROVAL, timeout=60)
    town.wait_state("alice", "idle")
    r = town.tt("reject", task_id[:8], "--note", "use shorter sentences")
    assert r.code == 0, r.err
    wait_until(lambda: len(town.runs()) == 2, 60, "the follow-up round")
    town.wait_task(task_id, TaskState.AWAITING_APPROVAL, timeout=60)
    agent, number = town.runs()[1][0], town.runs()[1][1]
    prompt = (town.records / f"{agent}-{number}.prompt").read_text()
    assert "Changes requested: use shorter sentences" in prompt and "write the docs" in prompt
    assert town.runs()[1][2] == task_id
    town.wait_state("alice", "idle")
    r = town.tt("reject", task_id[:8], "--fail", "--note", "not needed after all")
    assert r.code == 0, r.err
    task = _task(town, task_id)
    assert task.state == TaskState.FAILED and task.result == "rejected: not needed after all"
    kinds = [e["kind"] for e in _events(town, task_id)]
    assert kinds.count("rejected") == 2 and kinds.count("task_awaiting_approval") == 2


GATED = """
name = "gated"
approve = true

[[task]]
name = "one"
text = "the first"
agent = "alice"

[[task]]
name = "two"
text = "the second"
agent = "alice"
after = ["one"]
approve = true
"""


def test_a_gated_mission_waits_for_approval(town: TownFixture) -> None:
    _spawn(town, "alice")
    (town.root / "plan.toml").write_text(GATED)
    r = town.tt("plan", "check", "plan.toml")
    assert r.code == 0, r.err
    r = town.tt("mission", "start", "gated", "--plan", "plan.toml")
    assert r.code == 0, r.err
    assert "awaiting_approval" in r.out and "tt approve gated" in r.out
    r = town.tt("mission", "start", "second", "--plan", "plan.toml", "--approve")
    assert r.code == 0, r.err
    status = json.loads(town.tt("mission", "status", "gated", "--json").out)
    assert status["state"] == "awaiting_approval"
    assert "awaiting approval: mission gated" in town.tt("status").out
    r = town.tt("reject", "second", "--note", "one is enough")
    assert r.code == 0 and "mission second rejected: cancelled" in r.out
    assert town.town.mission("second")["state"] == "cancelled"
    assert town.runs() == []  # nothing ran before the approval
    r = town.tt("approve", "gated")
    assert r.code == 0 and r.out.strip() == "mission gated approved: running"
    two = town.town.mission("gated")["tasks"]["two"]
    town.wait_task(two, TaskState.AWAITING_APPROVAL, timeout=60)
    assert town.town.mission("gated")["state"] == "running"
    assert town.tt("approve", two).code == 0
    wait_until(lambda: town.town.mission("gated")["state"] == "done", 30, "the mission done")
    r = town.tt("approve", "gated")
    assert r.code == 1 and "mission 'gated' is done, not awaiting approval" in one_line_error(r)


@pytest.fixture
def no_restarts(town_factory: Callable[..., TownFixture]) -> TownFixture:
    return town_factory(restart="never")


def test_a_kill_during_the_check_never_completes_the_task(
        no_restarts: TownFixture, tmp_path: Path) -> None:
    town = no_restarts
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "tinytown.supervisor", "--town", str(town.root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        flag, started = tmp_path / "flag", tmp_path / "started"
        _spawn(town, "alice")
        task_id = _assign(town, "alice", "build it", "--check", f"{CHECK} wait {flag} {started}")
        wait_until(started.exists, 60, "the check to run")
        check_pid = int(started.read_text().split()[0])
        agent_id = town.town.resolve("alice").id
        worker = int(town.town.redis.hget(keys.runtime(town.name, agent_id), "pid"))
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: pid_gone(check_pid), 10, "the check to die with its worker")
        town.wait_state("alice", "error", timeout=15)
        assert _task(town, task_id).state == TaskState.ASSIGNED  # not completed
        assert town.tt("restart", "alice").code == 0
        wait_until(lambda: len(started.read_text().split()) == 2, 60, "the check to run again")
        assert _task(town, task_id).state == TaskState.RUNNING
        (tmp_path / "flag.2").write_text("1")  # this run of the check fails
        wait_until(lambda: len(started.read_text().split()) == 3, 60, "a fix round's check")
        assert _task(town, task_id).state == TaskState.RUNNING
        assert _task(town, task_id).fix_rounds == 1
        (tmp_path / "flag.3").write_text("0")
        town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
        assert len(town.runs()) == 3  # the killed round, its re-run, the fix round
    finally:
        supervisor.terminate()
        supervisor.wait(10)


def test_refusals_are_one_line(town: TownFixture) -> None:
    r = town.tt("spawn", "alice", "--no-start")
    assert r.code == 0, r.err
    task_id = _assign(town, "alice", "not yet")
    before = _task(town, task_id)
    r = town.tt("approve", task_id[:8])
    assert r.code == 1 and one_line_error(r) == (
        f"tt: task {task_id[:8]} is assigned, not awaiting approval")
    r = town.tt("reject", task_id[:8], "--note", "no")
    assert r.code == 1 and "not awaiting approval" in one_line_error(r)
    r = town.tt("approve", "nothing-by-this-name")
    assert r.code == 1 and "no task or mission 'nothing-by-this-name'" in one_line_error(r)
    r = town.tt("assign", "alice", "x", "--max-fix-rounds", "2")
    assert r.code == 2 and "--max-fix-rounds goes with --check" in one_line_error(r)
    r = town.tt("assign", "alice", "x", "--check", "unbalanced 'quote")
    assert r.code == 2 and "--check: cannot split" in one_line_error(r)
    assert _task(town, task_id) == before


def test_a_gated_task_is_not_completed_by_hand_while_it_runs(town: TownFixture) -> None:
    _spawn(town, "alice")
    task_id = _assign(town, "alice", "slowly @sleep 3", "--check", _pass_after(town, 0))
    town.wait_task(task_id, TaskState.RUNNING, timeout=30)
    r = town.tt("task", "complete", task_id[:8], "--result", "done early")
    assert r.code == 1 and "has gates: it completes when its round ends" in one_line_error(r)
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
    task = _task(town, task_id)
    assert task.last_check is not None and task.last_check.passed
    assert task.result and "fake agent alice" in task.result
