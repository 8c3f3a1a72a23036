"""One worker per agent, on any host: a lease refused to a second worker, and fencing
of a worker that froze on another host, was declared dead and replaced, then thawed.

"Another host" is a UTS namespace with a hostname of its own (the worker there records
that host, and nothing on this one may signal it): it needs root and util-linux
`unshare`, and is skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.helpers import TownFixture, pid_gone, wait_until
from tinytown.core import keys
from tinytown.core.models import Message, TaskState
from tinytown.db import runtime
from tinytown.system.processes import pid_alive

ELSEWHERE = "tt-elsewhere"
Stray = list[subprocess.Popen[bytes] | int]


def _uts_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to give a worker a hostname of its own (unshare --uts)"
    if shutil.which("unshare") is None:
        return "needs util-linux `unshare`"
    probe = subprocess.run(["unshare", "--uts", "true"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"cannot unshare here: {probe.stderr.strip()}"


_SKIP = _uts_usable()
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")


def _worker_elsewhere(town: TownFixture, agent_id: str, **env: str) -> subprocess.Popen[bytes]:
    """The agent's worker, started by hand (as systemd would) on host `tt-elsewhere`."""
    with (town.root / "elsewhere.log").open("ab") as log:
        return subprocess.Popen(
            ["unshare", "--uts", "sh", "-c", f'hostname {ELSEWHERE} && exec "$@"', "sh",
             sys.executable, "-m", "tinytown.worker", "--town", str(town.root), agent_id],
            env={**os.environ, "FAKE_AGENT_DIR": str(town.records), **env},
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )


def _runtime(town: TownFixture, agent_id: str) -> dict[str, str]:
    return runtime.read(town.town.store, agent_id)


def _reports(town: TownFixture, task_id: str) -> list[str]:
    """The supervisor mailbox's reports about the task."""
    raw = town.town.redis.lrange(keys.inbox(town.name, keys.SUPERVISOR_ID), 0, -1)
    found = []
    for item in raw:
        m = Message.from_json(item)
        if getattr(m.body, "task_id", None) == task_id:
            found.append(m.type)
    return found


@pytest.fixture
def stray() -> Iterator[Stray]:
    """Processes (and their groups) a test started outside the town's teardown reach."""
    started: Stray = []
    yield started
    for proc in started:
        pid = proc if isinstance(proc, int) else proc.pid
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not isinstance(proc, int):
            proc.wait(10)


def test_a_second_worker_is_refused_while_the_first_serves(
    town: TownFixture, stray: Stray
) -> None:
    assert town.tt("spawn", "solo", "--no-start").code == 0
    agent_id = town.town.resolve("solo").id
    first = _worker_elsewhere(town, agent_id)
    stray.append(first)
    town.wait_state("solo", "idle", timeout=30)
    holder = _runtime(town, agent_id)
    assert holder["host"] == ELSEWHERE

    # started by hand on this host while the one elsewhere serves (no launch token: a
    # --no-start agent has none, so only the lease can refuse it)
    second = subprocess.run(
        [sys.executable, "-m", "tinytown.worker", "--town", str(town.root), agent_id],
        capture_output=True, text=True, timeout=60)
    assert second.returncode == 1, second
    assert "serves this agent" in second.stderr, second.stderr
    assert _runtime(town, agent_id)["pid"] == holder["pid"]  # the holder's, untouched
    assert town.agent_state("solo") == "idle"


def test_a_thawed_worker_is_fenced_off(
    town: TownFixture, supervisor: subprocess.Popen[bytes], stray: Stray
) -> None:
    """Frozen on another host mid-round, declared dead, restarted here, then thawed:
    the old worker stops its CLI and exits without writing for the agent; the task ran
    to one outcome, reported once."""
    assert town.tt("spawn", "f", "--no-start").code == 0
    agent_id = town.town.resolve("f").id
    old = _worker_elsewhere(town, agent_id, FAKE_AGENT_SLEEP="300")  # its CLI runs long
    stray.append(old)
    town.wait_state("f", "idle", timeout=30)
    old_pid = int(_runtime(town, agent_id)["pid"])
    assert town.tt("assign", "f", "the one job @sleep 0.5").code == 0
    task_id = town.town.list_tasks()[0].id
    wait_until(lambda: len(town.runs()) == 1, 30, "the old worker's CLI to start")
    old_cli = int(town.runs()[0][3])
    stray.append(old_cli)

    os.kill(old_pid, signal.SIGSTOP)  # a stalled VM: its CLI runs on, nobody hears it
    try:
        town.wait_state("f", "error", timeout=30)
        assert town.task_state(task_id) == TaskState.ASSIGNED  # handed back
        assert town.tt("restart", "f").code == 0
        town.wait_task(task_id, TaskState.COMPLETED, timeout=60)  # run again, here
        town.wait_state("f", "idle")
        new = _runtime(town, agent_id)
        assert new["host"] != ELSEWHERE and int(new["pid"]) != old_pid
    finally:
        os.kill(old_pid, signal.SIGCONT)

    # the thawed worker finds itself fenced off: its CLI is stopped, it exits
    wait_until(lambda: pid_gone(old_cli), 20, "the old worker's CLI to be stopped")
    try:
        old.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail("the thawed worker did not exit")
    assert "Traceback" not in (town.root / "elsewhere.log").read_text()
    # ... and wrote nothing for the agent: one outcome, one report, one round
    assert _reports(town, task_id) == ["task_done"]
    events = town.town.events(count=1000)
    done = [e for e in events if e.get("kind") == "task_completed" and
            e.get("task") == task_id]
    assert len(done) == 1, done
    agent = town.town.resolve("f")
    assert agent.state.value == "idle" and agent.rounds_completed == 1
    assert _runtime(town, agent_id)["pid"] == new["pid"]  # the new worker's, kept
    assert pid_alive(int(new["pid"]))
    # the new worker goes on serving
    assert town.tt("assign", "f", "another job").code == 0
    wait_until(lambda: all(t.state == TaskState.COMPLETED for t in town.town.list_tasks()),
               30, "the next task")
