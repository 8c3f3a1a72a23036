"""Agents heal without a host daemon: the supervisor restarts a crashed local agent
with the host daemons' policy (backoff, crash-loop halt), and its work is done once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.helpers import TownFixture, pid_gone, wait_until
from tinytown.core import keys
from tinytown.core.models import AgentState, Task, TaskState
from tinytown.supervisor.service import Supervisor

pytestmark = pytest.mark.timeout(120)


def _pid(town: TownFixture, agent_id: str, not_this: int = 0) -> int:
    def current() -> int:
        got = town.town.redis.hget(keys.runtime(town.name, agent_id), "pid")
        return int(got) if got and int(got) != not_this else 0

    return int(wait_until(current, 30, "the worker's pid"))


def _events(town: TownFixture, kind: str, agent_id: str) -> list[dict[str, str]]:
    return [e for e in town.town.store.read_events(200, agent_id) if e["kind"] == kind]


def test_a_killed_local_worker_is_restarted_and_its_task_completes_once(
    town: TownFixture, supervisor: subprocess.Popen[bytes]
) -> None:
    assert town.tt("spawn", "alice").code == 0
    agent_id = town.town.resolve("alice").id
    task_id = town.town.assign("alice", Task("the job @sleep 3"))
    wait_until((town.records / "alice-1.sleeping").exists, 30, "the CLI to start")
    old = _pid(town, agent_id)
    os.kill(old, signal.SIGKILL)

    town.wait_state("alice", "error", timeout=8)  # recovered: its task handed back
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)  # by the restarted worker
    town.wait_state("alice", "idle")
    new = _pid(town, agent_id, not_this=old)
    assert not pid_gone(new)
    restarted = _events(town, "restarted", agent_id)
    assert len(restarted) == 1 and restarted[0]["after"] == "1"  # the first backoff
    assert "supervisor" in restarted[0]["by"]
    agent = town.town.resolve("alice")
    assert agent.restarts == 1 and agent.tasks_completed == 1
    assert [r[2] for r in town.runs()] == [task_id, task_id]  # cut short once, then done
    done = [m for m in town.town.store.peek_inbox(keys.SUPERVISOR_ID) if m.type == "task_done"]
    assert len(done) == 1


def test_a_crash_loop_halts_local_restarts(
    town_factory: Callable[..., TownFixture],
) -> None:
    town = town_factory()
    config = town.root / "tinytown.toml"
    config.write_text(config.read_text().replace(
        "[agent]\n", "[agent]\nrestart_backoff_secs = 0.3\ncrash_loop_limit = 2\n"))
    town.reconnect()
    proc = subprocess.Popen([sys.executable, "-m", "tinytown.supervisor", "--town", str(town.root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: town.town.redis.exists(keys.supervisor_leader(town.name)), 15,
                   "the supervisor to lead")
        assert town.tt("spawn", "bob").code == 0
        agent_id = town.town.resolve("bob").id
        town.wait_state("bob", "idle", timeout=30)
        first = _pid(town, agent_id)
        os.kill(first, signal.SIGKILL)
        second = _pid(town, agent_id, not_this=first)  # restarted once
        town.wait_state("bob", "idle", timeout=30)
        os.kill(second, signal.SIGKILL)  # the second crash: the limit
        wait_until(lambda: town.town.resolve("bob").halted, 20, "the halt")
        agent = town.town.resolve("bob")
        assert agent.state == AgentState.ERROR and "crash loop" in (agent.halted or "")
        assert len(_events(town, "restarted", agent_id)) == 1
    finally:
        proc.terminate()
        proc.wait(20)



def test_a_restart_whose_worker_dies_before_it_records_itself_is_a_crash(
    town_factory: Callable[..., TownFixture],
) -> None:
    """A worker the supervisor restarted that exits before it records itself (Redis was
    down as it booted: exit 69) left its agent `starting` for good; the supervisor
    now sees the process it launched gone and recovers the agent (found by the chaos
    test, tests/scenarios/test_mission_chaos.py)."""
    town = town_factory(restart="never")  # judged here, not restarted
    town.town.spawn_agent("slow", start=False)  # `starting`, no worker yet
    town.town.spawn_agent("manual", start=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    machine = socket.gethostname()
    for name, launched in (("slow", f"T1:{dead.pid}@{machine}"),  # its process is gone
                           ("manual", None)):  # `--no-start`: waiting for `tt worker`
        fields = {"launch": "T1", **({"launched": launched} if launched else {})}
        town.town.redis.hset(keys.runtime(town.name, town.town.resolve(name).id),
                             mapping=fields)
    supervisor = Supervisor(town.town.settings)
    try:
        supervisor.check_agents()
    finally:
        supervisor.redis.close()
    assert town.agent_state("slow") == "error"
    assert town.agent_state("manual") == "starting"
    recovered = _events(town, "recovered", town.town.resolve("slow").id)
    assert recovered and "exited as it started" in recovered[0]["reason"]
