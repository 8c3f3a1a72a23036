"""What a round starts, it stops (issue 10, item 12): no process a round started, in
whatever session or process group (a tool started with setsid, a daemon that
double-forked), outlives the round's end, its time limit, `tt kill`, `tt down` or the
death of its worker, SIGKILL included. Real workers, with `escape_agent.py` as the
agent CLI; a worker that a round starts with `tt spawn` is the town's and lives on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import TownFixture, pid_gone, wait_until
from tinytown.core import keys
from tinytown.core.models import Task, TaskState

ESCAPE_AGENT = Path(__file__).parents[1] / "support" / "escape_agent.py"
ESCAPE_CLI = f"{sys.executable} {ESCAPE_AGENT}"


def leftovers(root: Path) -> list[int]:
    """Live processes of the escape agent that work for the town at `root` (every one
    but the CLI itself carries its folder in argv)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if str(ESCAPE_AGENT).encode() in argv and str(root).encode() in argv \
                and not pid_gone(int(entry)):
            found.append(int(entry))
    return found


@pytest.fixture
def escaping_town(town_factory: Callable[..., TownFixture]) -> Iterator[Callable[..., TownFixture]]:
    """Towns whose agents run escape_agent.py; whatever a failed test left is killed."""
    made: list[TownFixture] = []

    def make(**kw: object) -> TownFixture:
        town = town_factory(cli=ESCAPE_CLI, **kw)
        made.append(town)
        return town

    yield make
    for town in made:
        for pid in leftovers(town.root):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def running(town: TownFixture, name: str, prompt: str) -> tuple[str, dict[str, int]]:
    """Spawn `name`, give it a task, and wait until its CLI's escapees run; the task id
    and the pids of the CLI, its setsid child and its double-forked grandchild."""
    assert town.tt("spawn", name).code == 0
    town.wait_state(name, "idle", timeout=30)
    task_id = town.town.assign(name, Task(prompt))
    out = town.root / "escapes" / "round-1"
    wait_until((out / "ready").exists, 30, "the CLI's escapees to run")
    pids = {n: int((out / f"{n}.pid").read_text()) for n in ("setsid", "daemon")}
    pids["cli"] = int((out / "ready").read_text())
    return task_id, pids


def worker_pid(town: TownFixture, name: str) -> int:
    agent_id = town.town.resolve(name).id
    return int(town.town.redis.hget(keys.runtime(town.name, agent_id), "pid") or 0)


def all_gone(town: TownFixture, pids: dict[str, int]) -> bool:
    return all(pid_gone(p) for p in pids.values()) and not leftovers(town.root)


def test_nothing_a_round_started_outlives_its_end(
    escaping_town: Callable[..., TownFixture],
) -> None:
    town = escaping_town()
    task_id, pids = running(town, "alice", "@stubborn leave things running")
    town.wait_task(task_id, TaskState.COMPLETED)
    # gone as the round ends (before its outcome is recorded), the one that ignores
    # SIGTERM included; the worker goes on
    assert all_gone(town, pids), leftovers(town.root)
    assert not pid_gone(worker_pid(town, "alice"))
    assert town.agent_state("alice") == "idle"


def test_nothing_a_round_started_outlives_its_time_limit(
    escaping_town: Callable[..., TownFixture],
) -> None:
    town = escaping_town(round_timeout=4)
    task_id, pids = running(town, "slow", "@hold 60")
    town.wait_task(task_id, TaskState.FAILED)
    assert "timed out" in (town.town.task(task_id).result or "")
    assert all_gone(town, pids), leftovers(town.root)


def test_nothing_a_round_started_outlives_a_kill(
    escaping_town: Callable[..., TownFixture],
) -> None:
    town = escaping_town()
    _, pids = running(town, "doomed", "@hold 3")
    assert not any(pid_gone(p) for p in pids.values())
    assert town.tt("kill", "doomed").code == 0  # the running round ends, then it stops
    town.wait_state("doomed", "stopped", timeout=30)
    assert all_gone(town, pids), leftovers(town.root)


def test_nothing_a_round_started_outlives_tt_down(
    escaping_town: Callable[..., TownFixture],
) -> None:
    town = escaping_town()
    _, pids = running(town, "busy", "@hold 60")
    assert not any(pid_gone(p) for p in pids.values())
    assert town.tt("down", timeout=60).code == 0  # the round is cut short
    wait_until(lambda: all_gone(town, pids), 15, "nothing left of the round")


def test_nothing_a_round_started_outlives_a_sigkilled_worker(
    escaping_town: Callable[..., TownFixture],
) -> None:
    town = escaping_town()
    _, pids = running(town, "victim", "@hold 60")
    worker = worker_pid(town, "victim")
    keeper = _parent(worker)
    assert not any(pid_gone(p) for p in pids.values())
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: all_gone(town, pids), 15, "nothing left of the round")
    wait_until(lambda: pid_gone(keeper), 15, "the worker's keeper to exit")


def test_a_worker_spawned_from_a_round_is_the_towns(
    escaping_town: Callable[..., TownFixture],
) -> None:
    town = escaping_town()
    task_id, pids = running(town, "parent", "@spawn helper")
    town.wait_task(task_id, TaskState.COMPLETED)
    assert all_gone(town, pids), leftovers(town.root)
    town.wait_state("helper", "idle", timeout=30)  # started by the round, alive after it
    helper = worker_pid(town, "helper")
    assert helper and not pid_gone(helper)
    second = town.town.assign("parent", Task("again"))  # another round's end
    town.wait_task(second, TaskState.COMPLETED)
    assert not pid_gone(helper) and town.agent_state("helper") == "idle"


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


DYING_CLI = Path(__file__).parents[1] / "support" / "dying_cli.py"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreapers: Linux")
def test_the_tool_of_a_cli_dying_with_its_worker_is_ended(tmp_path: Path) -> None:
    """Issue 20, point 23: a killed multithreaded CLI (Claude Code, node) is a zombie
    while its last threads exit, and its shell tool, in a session of its own, is still
    its child. The keeper waits for it: when the keeper has exited, the tool is gone
    (before, it exited at once and the tool went to init a moment later)."""
    marker = f"{9_000_000 + os.getpid() % 1_000_000}.25"
    keeper = subprocess.Popen([sys.executable, str(DYING_CLI), "worker", marker, "1.5"])
    try:
        assert keeper.wait(30) == -signal.SIGKILL  # it exits as its worker did
        assert not _marked(marker), "the CLI's tool outlived the keeper"
    finally:
        for pid in _marked(marker):
            os.kill(pid, signal.SIGKILL)


def _marked(marker: str) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in argv and not pid_gone(int(entry)):
            found.append(int(entry))
    return found
