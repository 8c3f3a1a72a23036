"""Scale to zero without host daemons, and the refusals of spawn's placement options.

A cold agent costs no process; work that arrives for it (assign, send, a task for its
role) starts its worker here when no host daemon runs. The choice of a host is pure
(`tinytown.core.placement`: tests/core/test_placement.py); the host daemons are
tests/host/.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers import InProcessWorker, TownFixture, wait_until
from tinytown.core.models import AgentState, TaskState
from tinytown.db import runtime


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
