"""Control commands while an agent's worker is still starting take effect, and a
worker start that was superseded stands down: at most one worker serves an agent.
An agent whose worker never started (`--no-start`) waits for it; it is not a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import TownFixture, wait_until
from tinytown.core.models import AgentState


def worker_pids(agent_id: str, keepers: bool = True) -> list[int]:
    """The processes running this agent's worker (`python -m tinytown.worker ... ID`),
    with their keepers (same command line, named `tt-keeper`) unless `keepers=False`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] == "Z" or (
                not keepers and "(tt-keeper)" in stat):
            continue
        if b"tinytown.worker" in argv and agent_id.encode() in argv:
            found.append(int(entry))
    return found


def states_since(town: TownFixture, agent_id: str, kind: str) -> list[str]:
    """The agent's state changes after its last event of `kind` (e.g. its kill)."""
    events = town.town.events(200, agent_id)
    last = max((i for i, e in enumerate(events) if e.get("reason", "").startswith(kind)),
               default=-1)
    return [e["new"] for e in events[last + 1:] if e["kind"] == "state"]


def test_kill_right_after_spawn_stops_the_agent_for_good(town: TownFixture) -> None:
    r = town.tt("spawn", "k")
    assert r.code == 0, r
    agent_id = town.town.resolve("k").id
    assert town.tt("kill", "k").code == 0
    wait_until(lambda: not worker_pids(agent_id), 30, "the worker to stand down or stop")
    assert town.agent_state("k") == "stopped"
    assert states_since(town, agent_id, "killed") == []


def test_close_right_after_spawn_leaves_it_cold(town: TownFixture) -> None:
    assert town.tt("spawn", "c").code == 0
    agent_id = town.town.resolve("c").id
    assert town.tt("close", "c").code == 0
    assert town.tt("wait", "c", "--timeout", "30").code == 0
    wait_until(lambda: not worker_pids(agent_id), 30, "the worker to stand down or stop")
    assert town.agent_state("c") == "cold"
    assert AgentState.IDLE.value not in states_since(town, agent_id, "tt close")


def test_interrupt_right_after_spawn_holds_until_resume(town: TownFixture) -> None:
    assert town.tt("spawn", "p").code == 0
    assert town.tt("interrupt", "p").code == 0
    log = town.root / ".tt" / "logs" / "p" / "worker.log"
    wait_until(lambda: log.exists() and " ready." in log.read_text(), 30, "the worker ready")
    task_id = town.tt("assign", "p", "held back").out.strip()
    assert town.agent_state("p") == "paused"
    assert town.town.task(task_id).state.value == "assigned"
    assert town.tt("resume", "p").code == 0
    assert town.tt("assign", "p", "go on", "--wait", "--timeout", "30").code == 0
    assert town.town.task(task_id).state.value == "completed"


def test_the_python_example_ends_cold_with_no_worker_left(town: TownFixture) -> None:
    handle = town.town.spawn_agent("api-example")
    handle.interrupt()
    handle.resume()
    handle.close()
    assert handle.wait(timeout=30).state == AgentState.COLD
    wait_until(lambda: not worker_pids(handle.id), 30, "the worker to stand down or stop")
    assert handle.record().state == AgentState.COLD


def test_a_restart_while_the_first_start_is_under_way_runs_one_worker(
    town: TownFixture,
) -> None:
    assert town.tt("spawn", "dup").code == 0
    agent_id = town.town.resolve("dup").id
    assert town.tt("close", "dup").code == 0  # no worker yet: cold at once
    # (on a loaded machine the worker may have started first: then it drains to cold)
    town.wait_state("dup", "cold", timeout=30)
    assert town.tt("restart", "dup").code == 0
    town.wait_state("dup", "idle", timeout=30)
    wait_until(lambda: len(worker_pids(agent_id, keepers=False)) == 1, 30,
               "one worker for the agent")
    assert town.tt("kill", "dup").code == 0
    town.wait_state("dup", "stopped", timeout=30)
    wait_until(lambda: not worker_pids(agent_id), 30, "no worker left")


def test_a_worker_started_by_hand_brings_a_stopped_agent_back(town: TownFixture) -> None:
    assert town.tt("spawn", "manual", "--no-start").code == 0
    town.town.agent("manual").kill()  # no worker: stopped at once
    proc = subprocess.Popen([sys.executable, "-m", "tinytown.cli", "worker", "manual"],
                            cwd=town.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        town.wait_state("manual", "idle", timeout=30)
    finally:
        proc.terminate()
        proc.wait(20)


def test_an_agent_whose_worker_never_started_waits_for_it(
    town_factory: Callable[..., TownFixture],
) -> None:
    town = town_factory(hb_timeout=1, hb_interval=1)
    proc = subprocess.Popen([sys.executable, "-m", "tinytown.supervisor", "--town",
                             str(town.root)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert town.tt("spawn", "later", "--no-start").code == 0
        town.tt("recover")
        # an absence needs a window: past three heartbeat limits of a leading supervisor
        wait_until(lambda: town.town.supervisor_status() != "not running", 15, "a leader")
        time.sleep(4)
        assert town.agent_state("later") == "starting"
        assert town.tt("recover").code == 0
        assert town.agent_state("later") == "starting"
    finally:
        proc.terminate()
        proc.wait(20)


def test_close_lets_the_running_round_finish_with_a_supervisor_watching(
    town: TownFixture, supervisor: subprocess.Popen[bytes]
) -> None:
    # the town's heartbeat limit is 3 s: the round outlasts it twice over after close
    assert town.tt("spawn", "c1").code == 0
    task_id = town.tt("assign", "c1", "@sleep 8 a long job").out.strip()
    town.wait_state("c1", "working", timeout=30)
    assert town.tt("close", "c1").code == 0
    assert town.tt("wait", "c1", "--timeout", "60").code == 0
    assert town.town.task(task_id).state.value == "completed"
    assert town.agent_state("c1") == "cold"
    assert not [e for e in town.town.events(100, town.town.resolve("c1").id)
                if e["kind"] == "recovered"]
