"""Crashes, heartbeats and the supervisor's leadership; towns sharing one Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import TownFixture, pid_gone, wait_until
from tinytown.core import keys
from tinytown.core.models import Task, TaskState

TownFactory = Callable[..., TownFixture]


@pytest.fixture
def town(town_factory: TownFactory) -> TownFixture:
    """Crash detection on its own: the supervisor restarts no crashed agent here (its
    restarts are tests/supervisor/test_restarts.py's)."""
    return town_factory(restart="never")


def _pid(town: TownFixture, ref: str) -> int:
    agent_id = town.town.resolve(ref).id
    return int(wait_until(lambda: town.town.redis.hget(keys.runtime(town.name, agent_id), "pid"),
                          10, "worker pid"))


def test_sigkill_mid_round_recovers_and_completes_exactly_once(
    town: TownFixture, supervisor: subprocess.Popen[bytes]
) -> None:
    town.tt("spawn", "alice")
    task_id = town.town.assign("alice", Task("long job @sleep 30"))
    town.town.channel.send("alice", __import__("tinytown").MessageType.informational("note"))
    sleeping = town.records / "alice-1.sleeping"
    wait_until(sleeping.exists, 20, "the CLI to start")
    cli_pid = int(sleeping.read_text())
    assert town.town.store.require_task(task_id).state == TaskState.RUNNING
    os.kill(_pid(town, "alice"), signal.SIGKILL)

    wait_until(lambda: pid_gone(cli_pid), 5, "the agent CLI to die with its worker")
    town.wait_state("alice", "error", timeout=3 + 5)  # heartbeat limit 3 s, plus slack
    task = town.town.store.require_task(task_id)
    assert task.state == TaskState.ASSIGNED
    inbox = [m.type for m in town.town.store.peek_inbox(town.town.resolve("alice").id)]
    assert sorted(inbox) == ["informational", "task_assign"]  # nothing lost
    assert town.town.redis.llen(keys.inflight(town.name, town.town.resolve("alice").id)) == 0
    events = [e["kind"] for e in town.town.store.read_events(50)]
    assert "recovered" in events

    (town.records / "runs.log").write_text("")  # count runs after the restart only
    town.town.store.update_task(task_id, lambda t: setattr(t, "description", "short job"))
    assert town.tt("restart", "alice").code == 0
    town.wait_task(task_id, TaskState.COMPLETED)  # after the restart
    town.wait_state("alice", "idle")
    assert [r[2] for r in town.runs()] == [task_id]
    assert town.town.resolve("alice").tasks_completed == 1
    done = [m for m in town.town.store.peek_inbox(keys.SUPERVISOR_ID) if m.type == "task_done"]
    assert len(done) == 1


def test_heartbeats_keep_coming_during_a_long_round(
    town: TownFixture, supervisor: subprocess.Popen[bytes]
) -> None:
    town.tt("spawn", "alice")
    town.town.assign("alice", Task("@sleep 5"))
    town.wait_state("alice", "working")
    first = town.town.resolve("alice").last_heartbeat
    wait_until(lambda: (town.town.resolve("alice").last_heartbeat - first).total_seconds() >= 2,
               6, "a newer heartbeat while the round runs")
    assert town.agent_state("alice") == "working"  # not mistaken for a crash


def test_clean_shutdown_is_not_a_crash(
    town: TownFixture, supervisor: subprocess.Popen[bytes]
) -> None:
    town.tt("spawn", "alice")
    town.wait_state("alice", "idle")
    os.kill(_pid(town, "alice"), signal.SIGTERM)  # e.g. systemd stopping the unit
    town.wait_state("alice", "stopped")
    wait_until(lambda: (town.town.store.read_events(1) or [{}])[-1].get("new") == "stopped", 5,
               "the stop event")
    kinds = [e["kind"] for e in town.town.store.read_events(50)]
    assert "recovered" not in kinds


def _celery_inspect(root: Path, command: str) -> subprocess.CompletedProcess[str]:
    """`celery -A tinytown.celery_app inspect COMMAND -t 2` in the town at `root`, asked
    again while no worker replied within the 2 s (on a loaded machine, e.g. under
    pytest-xdist, a reply can miss that window); fails after 30 s without a reply."""
    celery = str(Path(sys.executable).parent / "celery")
    tries: list[subprocess.CompletedProcess[str]] = []

    def ask() -> bool:
        tries.append(subprocess.run([celery, "-A", "tinytown.celery_app", "inspect", command,
                                     "-t", "2"], cwd=root, capture_output=True, text=True,
                                    timeout=60))
        return tries[-1].returncode == 0

    try:
        wait_until(ask, 30, f"a reply to `celery inspect {command}`")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {tries[-1].stderr}") from None
    return tries[-1]


def test_two_towns_share_one_redis_without_seeing_each_other(
    town_factory: TownFactory, tmp_path: Path
) -> None:
    a, b = town_factory(), town_factory()
    for t in (a, b):
        assert t.tt("spawn", "alice").code == 0
    for t in (a, b):
        t.wait_state("alice", "idle")
    assert a.tt("interrupt", "alice").code == 0  # must not pause b's alice
    task_b = b.tt("assign", "alice", "only in b").out.strip()
    b.wait_task(task_b, TaskState.COMPLETED)
    assert a.agent_state("alice") == "paused" and b.agent_state("alice") == "idle"
    assert "only in b" not in " ".join(p.read_text() for p in a.records.glob("*.prompt"))
    # `celery -A tinytown.celery_app inspect ping` inside a town sees only its worker
    out = _celery_inspect(a.root, "ping")
    assert out.stdout.count("pong") == 1
    active = _celery_inspect(b.root, "active_queues")
    assert f"tt.{b.name}.agent." in active.stdout and a.name not in active.stdout
    # every key each town wrote is under its own prefix
    for t in (a, b):
        assert all(k.startswith(f"tt:{t.name}:") for k in t.town_keys())


def test_the_cli_dies_with_a_killed_worker_without_a_supervisor(town: TownFixture) -> None:
    # no supervisor runs: the worker's watchdog alone takes the CLI and its children down
    town.tt("spawn", "alice")
    town.town.assign("alice", Task("@spawn-child @sleep 60"))
    wait_until((town.records / "alice-1.sleeping").exists, 20, "the CLI and its child to start")
    cli_pid = int((town.records / "alice-1.sleeping").read_text())
    child = int((town.records / "alice-1.child").read_text())
    os.kill(_pid(town, "alice"), signal.SIGKILL)
    wait_until(lambda: pid_gone(cli_pid) and pid_gone(child), 5,
               "the CLI and its child to die with the worker")
