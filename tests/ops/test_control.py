"""The control plane on real worker processes: interrupt, resume, close, kill, wait,
restart, prune, stop, idle timeout, `tt worker` and `spawn --foreground`. (Max rounds,
fork and `status --deep` are what a round does: tests/worker/test_rounds.py, in-process.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.helpers import TownFixture, pid_gone, wait_until
from tinytown.core import keys
from tinytown.core.errors import InvalidTransition, WaitTimeout
from tinytown.core.models import MessageType, TaskState

TownFactory = Callable[..., TownFixture]


def _worker_pid(town: TownFixture, ref: str) -> int:
    agent_id = town.town.resolve(ref).id
    pid = wait_until(lambda: town.town.redis.hget(keys.runtime(town.name, agent_id), "pid"), 10,
                     "the worker's pid")
    return int(pid)


def test_interrupt_holds_messages_and_resume_releases_them(town: TownFixture) -> None:
    town.tt("spawn", "alice")
    town.wait_state("alice", "idle")
    r = town.tt("interrupt", "alice")
    assert r.code == 0, r.err
    assert town.agent_state("alice") == "paused"
    task_id = town.tt("assign", "alice", "wait for me").out.strip()
    # a round job that does reach the worker leaves the inbox untouched
    from tinytown.db.wakeup import enqueue_round

    enqueue_round(town.town.redis, town.name, town.town.resolve("alice").id, force=True)
    town.town.channel.send("alice", MessageType.status_request())
    time_limit = time.monotonic() + 1.5
    while time.monotonic() < time_limit:  # nothing may happen while paused
        assert town.town.store.require_task(task_id).state == TaskState.ASSIGNED
        assert town.town.store.inbox_len(keys.SUPERVISOR_ID) == 0
        time.sleep(0.1)
    assert town.town.channel.inbox_len("alice") == 2
    r = town.tt("resume", "alice")
    assert r.code == 0, r.err
    town.wait_task(task_id, TaskState.COMPLETED)
    town.wait_state("alice", "idle")


def test_resume_of_an_agent_that_is_not_paused_is_refused(town: TownFixture) -> None:
    town.tt("spawn", "alice")
    town.wait_state("alice", "idle")
    r = town.tt("resume", "alice")
    assert r.code == 1
    assert r.err.strip() == "tt: agent 'alice' is idle: cannot change it to idle"
    assert town.agent_state("alice") == "idle"


def test_interrupt_during_a_round_lets_it_finish(town: TownFixture) -> None:
    town.tt("spawn", "alice")
    task_id = town.tt("assign", "alice", "@sleep 2").out.strip()
    town.wait_state("alice", "working")
    assert town.tt("interrupt", "alice").code == 0
    town.wait_task(task_id, TaskState.COMPLETED)
    assert town.agent_state("alice") == "paused"  # the round's end did not overwrite it


def test_close_drains_to_cold_and_keeps_the_inbox(town: TownFixture) -> None:
    town.tt("spawn", "alice")
    # long enough for two `tt` calls on a loaded machine: the second task must arrive,
    # and the close, while the first still runs
    first = town.tt("assign", "alice", "@sleep 5").out.strip()
    town.wait_state("alice", "working")
    second = town.tt("assign", "alice", "later").out.strip()
    pid = _worker_pid(town, "alice")
    assert town.tt("close", "alice").code == 0
    assert town.agent_state("alice") == "draining"
    r = town.tt("wait", "alice", "--timeout", "20")
    assert r.code == 0, r.err
    assert town.agent_state("alice") == "cold"
    assert town.town.store.require_task(first).state == TaskState.COMPLETED
    assert town.town.store.require_task(second).state == TaskState.ASSIGNED
    assert town.town.channel.inbox_len("alice") == 1
    wait_until(lambda: pid_gone(pid), 10, "the worker to exit")
    # a later restart picks the work up, as `resumed`
    assert town.tt("restart", "alice").code == 0
    town.wait_task(second, TaskState.COMPLETED)
    assert town.town.resolve("alice").spawn_mode.value == "resumed"


def test_kill_idle_agent_stops_quickly(town: TownFixture) -> None:
    town.tt("spawn", "alice")
    town.wait_state("alice", "idle")
    pid = _worker_pid(town, "alice")
    assert town.tt("kill", "alice").code == 0
    town.wait_state("alice", "stopped", timeout=3)
    wait_until(lambda: pid_gone(pid), 10, "the worker to exit")
    r = town.tt("kill", "alice")
    assert r.code == 1 and "already stopped" in r.err


def test_wait_never_returns_while_a_round_runs_after_kill(town: TownFixture) -> None:
    town.tt("spawn", "alice")
    task_id = town.tt("assign", "alice", "@sleep 2").out.strip()
    town.wait_state("alice", "working")
    assert town.tt("kill", "alice").code == 0
    r = town.tt("wait", "alice", "--timeout", "20")
    assert r.code == 0
    assert town.town.store.require_task(task_id).state == TaskState.COMPLETED
    assert town.agent_state("alice") == "stopped"


def test_wait_timeout_exits_124(town: TownFixture) -> None:
    town.tt("spawn", "alice")
    town.wait_state("alice", "idle")
    r = town.tt("wait", "alice", "--timeout", "0.3")
    assert r.code == 124
    assert r.err.strip() == ("tt: agent 'alice' is still idle after 0.3s"
                             " (waiting for a terminal state)")


def test_kill_paused_agent_and_restart_with_pending_work(town: TownFixture) -> None:
    town.tt("spawn", "alice")
    town.wait_state("alice", "idle")
    town.tt("interrupt", "alice")
    task_id = town.tt("assign", "alice", "pending").out.strip()
    assert town.tt("kill", "alice").code == 0
    town.wait_state("alice", "stopped")
    assert town.town.channel.inbox_len("alice") == 1  # nothing queued was deleted
    assert town.tt("restart", "alice").code == 0
    town.wait_task(task_id, TaskState.COMPLETED)


def test_idle_timeout_goes_cold(town_factory: TownFactory) -> None:
    town = town_factory(idle_timeout=1)
    town.tt("spawn", "alice")
    town.wait_state("alice", "idle")
    town.wait_state("alice", "cold", timeout=15)


def test_fork_without_parent_is_refused(town: TownFixture) -> None:
    r = town.tt("spawn", "child", "--fork")
    assert r.code == 2 and "--fork needs --parent" in r.err
    assert town.town.list_agents() == []


def test_python_api_control_plane(town: TownFixture) -> None:
    handle = town.town.spawn_agent("api", role="reviewer", nickname="Gate")
    handle.wait_for_state(*[s for s in _states("idle")], timeout=20)
    assert handle.interrupt().state.value == "paused"
    with pytest.raises(InvalidTransition):
        handle.interrupt()
    assert handle.resume().state.value == "idle"
    handle.send(MessageType.status_request())
    # a round of its own after the resume: 60 s, for a loaded machine (it took 20+ once)
    wait_until(lambda: town.town.store.inbox_len(keys.SUPERVISOR_ID), 60, "status_response")
    assert town.town.store.peek_inbox(keys.SUPERVISOR_ID)[0].type == "status_response"
    with pytest.raises(WaitTimeout):
        handle.wait(timeout=0.2)
    handle.close()
    final = handle.wait(timeout=20)
    assert final.state.value == "cold"
    handle.restart()
    handle.wait_for_state(*_states("idle"), timeout=20)
    handle.kill()
    assert handle.wait(timeout=20).state.value == "stopped"


def _states(*names: str) -> list:  # type: ignore[type-arg]
    from tinytown.core.models import AgentState

    return [AgentState(n) for n in names]


def test_prune_keeps_live_and_pending_and_reports_tasks(town: TownFixture) -> None:
    town.tt("spawn", "live")
    town.tt("spawn", "idle-one", "--no-start")
    town.tt("spawn", "busy", "--no-start")
    task_id = town.tt("assign", "busy", "never ran").out.strip()
    for name in ("idle-one", "busy"):
        assert town.tt("kill", name).code == 0  # no worker: stopped at once
    town.wait_state("live", "idle")
    r = town.tt("prune", "--json")
    assert r.code == 0, r.err
    import json

    report = json.loads(r.out)
    assert report["pruned"] == ["idle-one"]
    assert {k["name"] for k in report["kept"]} == {"live", "busy"}
    r = town.tt("prune", "--force", "--json")
    report = json.loads(r.out)
    assert report["pruned"] == ["busy"] and report["unfinished_tasks"] == [task_id]
    r = town.tt("prune", "--all", "--json")
    assert json.loads(r.out)["pruned"] == ["live"]
    assert town.town.list_agents() == []


def test_stop_kills_every_agent(town: TownFixture) -> None:
    for name in ("a1", "a2"):
        town.tt("spawn", name)
    for name in ("a1", "a2"):
        town.wait_state(name, "idle")
    pids = {name: _worker_pid(town, name) for name in ("a1", "a2")}
    assert town.tt("stop").code == 0
    for name in ("a1", "a2"):
        town.wait_state(name, "stopped")
    for name, pid in pids.items():  # not only recorded: the worker processes are gone
        wait_until(lambda pid=pid: pid_gone(pid), 15, f"{name}'s worker to exit")


def test_tt_worker_runs_in_the_foreground(town: TownFixture) -> None:
    town.tt("spawn", "remote", "--no-start")
    task_id = town.tt("assign", "remote", "queued before any worker").out.strip()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinytown.cli", "worker", "remote"], cwd=town.root,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        town.wait_task(task_id, TaskState.COMPLETED)  # checked its inbox at start
        town.wait_state("remote", "idle")
        r = town.tt("worker", "remote")
        assert r.code == 1 and "already has a running worker" in r.err
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert town.agent_state("remote") == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_spawn_foreground_runs_attached(town: TownFixture) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tinytown.cli", "spawn", "fg", "--foreground"],
                            cwd=town.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: town.town.list_agents(), 10, "the record")
        town.wait_state("fg", "idle")
        task_id = town.tt("assign", "fg", "attached").out.strip()
        town.wait_task(task_id, TaskState.COMPLETED)
        proc.send_signal(signal.SIGINT)  # Ctrl-C in the terminal: warm shutdown
        assert proc.wait(20) == 0
        assert town.agent_state("fg") == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
