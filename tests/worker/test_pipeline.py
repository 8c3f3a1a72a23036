"""The worker's round as a pipeline of named steps, apart from the worker's lifecycle.

The round (`worker/pipeline.py`, `worker/steps.py`) returns what comes next and never
calls back into the lifecycle (`worker/lifecycle.py`); the one thing it cannot decide,
a newer worker holding the agent, it raises. These tests pin that shape, and the
hand-off when the fence is lost the moment the CLI starts.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import InProcessWorker, TownFixture, pid_gone
from tinytown.core import keys
from tinytown.core.models import Task, TaskState
from tinytown.worker import pipeline, steps

PACKAGE = Path(__file__).resolve().parents[2] / "tinytown"


def test_the_round_runs_its_steps_in_order() -> None:
    assert [step.__name__ for step in pipeline.PIPELINE] == [
        "budget", "start", "session", "prompt", "workspace", "mcp", "run", "commit",
        "cut_short", "report", "usage", "limit", "check", "record"]
    assert all(step.__doc__ for step in pipeline.PIPELINE)  # each says what it is for


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, type-only imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_round_does_not_reach_back_into_the_lifecycle() -> None:
    importers = {p.stem for p in (PACKAGE / "worker").glob("*.py")
                 if "tinytown.worker.lifecycle" in _imports(p)}
    assert importers == {"agent_worker"}


def test_no_worker_module_is_named_like_a_db_module() -> None:
    """`runtime` in the worker shadowed `db/runtime.py` inside the worker's own code."""
    def names(layer: str) -> set[str]:
        return {p.stem for p in (PACKAGE / layer).glob("*.py") if not p.stem.startswith("_")}
    assert names("worker") & names("db") == set()


def test_a_fence_lost_as_the_cli_starts_stops_it_and_records_nothing(
    town: TownFixture, worker_in_process: Callable[..., InProcessWorker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A newer worker takes the agent over between the round's start and its CLI's:
    the CLI is stopped at once, nothing is recorded for the agent, the worker shuts
    down and passes the round job on to the new worker."""
    town.town.spawn_agent("alice", start=False)
    worker = worker_in_process(town, "alice")
    agent_id = worker.agent_id
    worker.runtime.state.stopped.set()  # its heartbeat (which would notice too) ends
    for thread in worker.threads:
        if thread.name == "tinytown-beat":
            thread.join(10)
    pids: list[int] = []
    real_run_cli = steps.run_cli

    def taken_over_first(*args: Any, **kwargs: Any) -> Any:
        town.town.redis.incr(keys.epoch(town.name, agent_id))  # a newer worker's start
        on_start = kwargs["on_start"]

        def recorded(pid: int) -> None:
            pids.append(pid)
            on_start(pid)

        return real_run_cli(*args, **{**kwargs, "on_start": recorded})

    monkeypatch.setattr(steps, "run_cli", taken_over_first)
    task_id = town.town.assign("alice", Task("a long one @sleep 60"))
    began = time.monotonic()
    worker.run_round()
    assert time.monotonic() - began < 30, "the CLI ran on"
    assert pids and pid_gone(pids[0])
    assert worker.runtime.state.stale.is_set() and worker.shutdowns
    assert town.task_state(task_id) == TaskState.RUNNING  # for the new worker to take
    assert town.town.resolve("alice").rounds_completed == 0
    assert town.town.redis.exists(keys.wake(town.name, agent_id))  # the job passed on
