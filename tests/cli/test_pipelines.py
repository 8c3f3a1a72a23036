"""What cron jobs and CI pipelines run: `tt assign --wait`, exit codes, JSON, and the
live status line that appears only on a terminal. The CLI is the real process; where
only the task's outcome matters, the agent's round runs in-process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from tests.helpers import TT, InProcessWorker, Result, TownFixture, in_terminal, wait_until


def _assign_wait(town: TownFixture, worker: InProcessWorker, *args: str) -> Result:
    """`tt assign ... --wait` (the real CLI process) while the agent's round runs
    in-process, once the CLI has recorded the task."""
    proc = subprocess.Popen([TT, "assign", *args], cwd=town.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: town.town.list_tasks(), 10, "the task to be recorded")
        worker.run_round()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return Result(proc.returncode, out, err)


def test_assign_wait_completed_prints_result(
    town: TownFixture, worker_in_process: Callable[..., InProcessWorker]
) -> None:
    town.tt("spawn", "ci", "--no-start")
    worker = worker_in_process(town, "ci")
    r = _assign_wait(town, worker, "ci", "build it", "--wait", "--timeout", "30")
    assert r.code == 0, r.err
    task_id, state = r.out.splitlines()[0].split()
    assert state == "completed" and "fake agent ci round 1 did" in r.out
    assert "\r" not in r.out  # no progress line when stdout is not a terminal


def test_assign_wait_failed_exits_1_with_json(
    town: TownFixture, worker_in_process: Callable[..., InProcessWorker]
) -> None:
    town.tt("spawn", "ci", "--no-start")
    worker = worker_in_process(town, "ci")
    r = _assign_wait(town, worker, "ci", "break it @exit 4", "--wait", "--json")
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["state"] == "failed" and "exited with code 4" in doc["result"]


def test_assign_wait_timeout_exits_124(town: TownFixture) -> None:
    town.tt("spawn", "ci", "--no-start")
    r = town.tt("assign", "ci", "nobody runs this", "--wait", "--timeout", "0.5")
    assert r.code == 124
    assert "is still assigned after 0.5s" in r.err


def test_assign_wait_cancelled_exits_1(town: TownFixture) -> None:
    town.tt("spawn", "ci", "--no-start")
    proc = subprocess.Popen([TT, "assign", "ci", "to be cancelled", "--wait", "--json"],
                            cwd=town.root, stdout=subprocess.PIPE, text=True)
    task = wait_until(lambda: town.town.list_tasks(), 10, "the task to be recorded")[0]
    town.tt("task", "cancel", task.id)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1 and json.loads(out)["state"] == "cancelled"


def test_usage_errors_of_assign(town: TownFixture) -> None:
    assert town.tt("assign", "only-description", "--role", "worker", "x").code == 2
    assert town.tt("assign", "lonely").code == 2
    assert town.tt("assign", "a", "b", "--timeout", "3").code == 2
    assert town.town.list_tasks() == []


def test_wait_shows_a_live_line_on_a_terminal(town: TownFixture) -> None:
    town.tt("spawn", "alice")
    town.wait_state("alice", "idle")
    out = in_terminal([TT, "wait", "alice", "--timeout", "1"], str(town.root), 15)
    assert "\ralice: idle" in out
    out = in_terminal([TT, "assign", "alice", "@sleep 1", "--wait"], str(town.root), 20)
    assert "\rtask " in out and "completed" in out
