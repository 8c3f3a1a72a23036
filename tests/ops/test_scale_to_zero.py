"""Scale to zero without host daemons, and placement's choices and refusals.

A cold agent costs no process; work that arrives for it (assign, send, a task for its
role) starts its worker here when no host daemon runs. The choice of a host is pure
(`tinytown.core.placement`) and tested as such; the hosts themselves are tests/host/.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.helpers import TT, InProcessWorker, TownFixture, wait_until
from tinytown.core import placement
from tinytown.core.models import Agent, AgentState, TaskState
from tinytown.db import runtime


def _host(name: str, **kw: object) -> placement.HostInfo:
    return placement.HostInfo(name=name, beat=time.time(), clis=["claude"], **kw)  # type: ignore[arg-type]


def test_the_least_loaded_live_host_that_fits_is_chosen() -> None:
    a, b = _host("a"), _host("b", labels=["gpu"])
    busy = [Agent("x", host="a", state=AgentState.IDLE)]
    assert placement.choose([a, b], "claude", [], busy, 15).name == "b"  # type: ignore[union-attr]
    assert placement.choose([a, b], "claude", ["gpu"], [], 15).name == "b"  # type: ignore[union-attr]
    assert placement.choose([a, b], "claude", ["tpu"], [], 15) is None
    cold = [Agent("y", host="b", state=AgentState.COLD)]  # costs nothing: not load
    assert placement.choose([a, b], "claude", [], busy + cold, 15).name == "b"  # type: ignore[union-attr]
    gone = _host("c")
    gone.beat -= 60
    assert placement.choose([gone], "claude", [], [], 15) is None
    full = _host("d", max_agents=1)
    assert placement.unfit(full, "claude", [], [Agent("z", host="d", state=AgentState.IDLE)]) \
        == "full (1 agents)"
    lacking = _host("e", lacks=["codex"])
    assert placement.unfit(lacking, "codex", [], []) == "no 'codex' installed"
    assert placement.unfit(_host("f", draining=True), "claude", [], []) == "draining"
    assert "gone" in placement.why_none([gone], "claude", [], [], 15)


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [placement.backoff(n, 1, 60) for n in (1, 2, 3, 7, 40)] == [1, 2, 4, 60, 60]


def test_a_cold_agent_starts_here_when_work_arrives(town: TownFixture) -> None:
    r = town.tt("spawn", "napper", "--cold")
    assert r.code == 0, r.err
    agent = town.town.resolve("napper")
    assert agent.state == AgentState.COLD and agent.host is None
    assert "pid" not in runtime.read(town.town.store, agent.id)
    r = town.tt("assign", "napper", "wake and work")
    assert r.code == 0 and "waits" not in r.err  # no "waits until tt restart" warning
    task_id = town.town.list_tasks(agent_ref="napper")[0].id
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
    assert town.town.store.require_agent(agent.id).spawn_mode.value == "resumed"


def test_a_task_for_a_role_wakes_one_cold_member(town: TownFixture) -> None:
    for name in ("rev1", "rev2"):
        assert town.tt("spawn", name, "--role", "reviewer", "--cold").code == 0
    r = town.tt("assign", "--role", "reviewer", "review this")
    assert r.code == 0, r.err
    wait_until(lambda: any(t.state == TaskState.COMPLETED for t in town.town.list_tasks()),
               60, "the role's task to complete")
    states = sorted(a.state.value for a in town.town.list_agents())
    assert states.count("cold") == 1  # the other one slept on


def test_a_stopped_agent_is_not_woken(town: TownFixture) -> None:
    assert town.tt("spawn", "gone", "--no-start").code == 0
    town.town.agent("gone").kill()
    r = town.tt("send", "gone", "hello")
    assert r.code == 0 and "waits in its inbox until `tt restart gone`" in r.err
    assert town.agent_state("gone") == "stopped"


@pytest.mark.parametrize("args, code, message", [  # 2: bad usage; 1: a refusal
    (("--cold", "--no-start"), 2, "--cold starts no process"),
    (("--host", "nowhere"), 1, "no host named 'nowhere'"),
    (("--on", "gpu"), 1, "--on LABEL needs a live host daemon"),
    (("--host", "local", "--on", "gpu"), 2, "--on needs a host daemon"),
    (("--no-start", "--host", "auto"), 2, "--host/--on place a worker"),
])
def test_placement_refusals_write_nothing(town: TownFixture, args: tuple[str, ...],
                                          code: int, message: str) -> None:
    r = town.tt("spawn", "placed", *args)
    assert r.code == code, r.err
    assert message in r.err and len(r.err.strip().splitlines()) == 1
    assert town.town.list_agents() == []


def test_hosts_lists_none_and_drain_names_an_unknown_host(town: TownFixture) -> None:
    assert "no host daemons" in town.tt("hosts").out
    r = town.tt("host", "drain", "nowhere")
    assert r.code == 1 and "no host named 'nowhere'" in r.err
    r = town.tt("host", "--name", "bad name!")
    assert r.code == 2 and "host name 'bad name!'" in r.err


def test_work_that_arrives_while_an_idle_agent_drains_wakes_it_again(
        town_factory: Callable[..., TownFixture],
        worker_in_process: Callable[..., InProcessWorker]) -> None:
    town = town_factory(idle_timeout=0.4)
    town.town.spawn_agent("drowsy", start=False)
    worker = worker_in_process(town, "drowsy")
    town.wait_state("drowsy", "draining", timeout=20)  # it drains itself, idle
    assert worker.shutdowns  # and asked for its warm shutdown
    # a sender sees `draining`, not `cold`: it wakes nobody
    task_id = town.town.assign("drowsy", "arrived late")
    worker.shut_down()  # the worker's end: cold, then up again for the task
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)


def test_work_left_by_tt_close_waits_for_new_work(
        town: TownFixture, worker_in_process: Callable[..., InProcessWorker]) -> None:
    town.town.spawn_agent("closed", start=False)
    worker = worker_in_process(town, "closed")
    town.town.agent("closed").close()
    first = town.town.assign("closed", "left behind")  # while draining
    worker.shut_down()
    assert town.agent_state("closed") == "cold"
    assert town.town.store.require_task(first).state == TaskState.ASSIGNED
    second = town.town.assign("closed", "new work")  # cold: this wakes it
    town.wait_task(second, TaskState.COMPLETED, timeout=60)
    town.wait_task(first, TaskState.COMPLETED, timeout=60)


def test_a_host_daemon_on_this_machine_runs_agents_and_stops_with_tt_down(
        town: TownFixture) -> None:
    log = (town.root / "host.log").open("ab")
    host = subprocess.Popen([TT, "host", "--name", "here"], cwd=town.root, stdout=log,
                            stderr=log, start_new_session=True)
    log.close()
    try:
        wait_until(lambda: [h for h in town.town.hosts() if h["state"] == "live"], 30,
                   "the host daemon to register")
        twin = town.tt("host", "--name", "here")  # a second daemon of that name: refused
        assert twin.code == 1 and "host 'here' runs on" in twin.err
        assert len(twin.err.strip().splitlines()) == 1
        assert town.tt("spawn", "placed").code == 0
        assert town.town.resolve("placed").host == "here"
        task_id = town.town.assign("placed", "run on the host")
        town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
        doctor = json.loads(town.tt("doctor", "--json").out)
        assert [(h["name"], h["state"], h["load"]) for h in doctor["host_daemons"]] \
            == [("here", "live", 1)]
        assert "host daemons: here on" in town.tt("doctor").out
        r = town.tt("down")
        assert r.code == 0, r.err
        assert host.wait(30) == 0  # stopped warmly, after its agents
        assert town.town.hosts() == []  # it unregistered
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
