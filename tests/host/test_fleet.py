"""The fleet, across real network boundaries: host daemons (`tt host`), each in a
network and UTS namespace of its own, reach a password-protected Redis on another
address over a veth link. Placement, restarts after crashes, a crash loop, a host's
death, scale to zero, drain, a link cut mid-round; and a worker started by hand on
another machine. (A host daemon on this machine: test_daemon.py.)
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import TT, TownFixture, wait_until
from tests.support.netns import Host, Network, python_cli_wrapper, why_not
from tinytown.core import keys
from tinytown.core.models import AgentState, Message, TaskState
from tinytown.db import runtime

_SKIP = why_not()
pytestmark = [pytest.mark.skipif(_SKIP is not None, reason=_SKIP or ""), pytest.mark.slow,
              pytest.mark.timeout(240)]

AGENT = """[agent]
restart_backoff_secs = 0.5
crash_loop_limit = {limit}
crash_loop_window_secs = 120
"""
SPECIAL = """
[agent_clis.special]
command = "tt-special-agent"
"""


@pytest.fixture
def fleet(town_factory: Callable[..., TownFixture], tmp_path: Path
          ) -> Iterator[Callable[..., tuple[TownFixture, Network]]]:
    made: list[Network] = []

    def make(limit: int = 5, idle_timeout: float = 0, supervise: bool = False
             ) -> tuple[TownFixture, Network]:
        net = Network(tmp_path)
        made.append(net)
        net.start_redis()
        town = town_factory(url=net.url, hb_timeout=3, idle_timeout=idle_timeout,
                            extra=SPECIAL)
        config = town.root / "tinytown.toml"
        config.write_text(config.read_text().replace("[agent]\n", AGENT.format(limit=limit)))
        town.town.close()
        town.reconnect()
        net.root = town.root  # hosts run in the town's folder (shared, as a network disk)
        if supervise:
            net.start_supervisor()
            wait_until(lambda: town.town.redis.exists(keys.supervisor_leader(town.name)), 15,
                       "the supervisor to lead")
        return town, net

    yield make
    for net in made:
        net.close()


def _host_up(town: TownFixture, name: str) -> None:
    wait_until(lambda: any(h["name"] == name and h["state"] == "live"
                           for h in town.town.hosts()), 30, f"host {name} to register")


def _events(town: TownFixture, kind: str, agent_id: str | None = None) -> list[dict[str, str]]:
    return [e for e in town.town.events(1000, agent_id) if e["kind"] == kind]


def _worker_pid(town: TownFixture, agent_id: str) -> int:
    def pid() -> int | None:
        value = runtime.read(town.town.store, agent_id).get("pid", "")
        return int(value) if value.isdigit() else None

    return int(wait_until(pid, 30, "the worker's pid"))


def _working_on_alpha(town: TownFixture, net: Network, name: str, job: str
                      ) -> tuple[Host, str, str]:
    """Agent `name` on host alpha running `job`, with host beta up beside it: alpha,
    the agent's id and the task's."""
    alpha = net.start_host("alpha")
    _host_up(town, "alpha")
    assert town.tt("spawn", name, "--host", "alpha").code == 0
    agent_id = town.town.resolve(name).id
    town.wait_state(name, "idle", timeout=60)
    net.start_host("beta")
    _host_up(town, "beta")
    task_id = town.town.assign(name, job)
    town.wait_task(task_id, TaskState.RUNNING, timeout=30)
    return alpha, agent_id, task_id


def test_placement_by_capacity_cli_and_labels(fleet: Callable[..., tuple[TownFixture, Network]],
                                              tmp_path: Path) -> None:
    town, net = fleet()
    tools = tmp_path / "tools"
    python_cli_wrapper(tools, "tt-special-agent")
    net.start_host("alpha", "--max-agents", "2",
                   env={"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"})
    net.start_host("beta", "--max-agents", "1", "--labels", "gpu")
    _host_up(town, "alpha")
    _host_up(town, "beta")

    # the CLI only alpha has; then a label only beta has
    assert town.tt("spawn", "s1", "--cli", "special").code == 0
    assert town.tt("spawn", "g1", "--on", "gpu").code == 0
    assert town.town.resolve("s1").host == "alpha"
    assert town.town.resolve("g1").host == "beta"
    # beta is full (1): the next goes to alpha, which then is full too
    assert town.tt("spawn", "a2").code == 0
    assert town.town.resolve("a2").host == "alpha"
    refused = town.tt("spawn", "a3")
    assert refused.code == 1, refused.err
    assert "no host can run a3" in refused.err and "full" in refused.err
    assert "a3" not in [a.name for a in town.town.list_agents()]
    named = town.tt("spawn", "a4", "--host", "beta", "--cli", "special")
    assert named.code == 1 and "host 'beta' cannot run a4" in named.err

    for name in ("s1", "g1", "a2"):
        town.wait_state(name, "idle", timeout=60)
    tasks = {name: town.town.assign(name, f"job for {name}") for name in ("s1", "g1", "a2")}
    for task_id in tasks.values():
        town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
    report = {h["name"]: h for h in json.loads(town.tt("hosts", "--json").out)}
    assert report["alpha"]["load"] == 2 and report["beta"]["load"] == 1
    assert "special" in report["alpha"]["clis"] and "special" not in report["beta"]["clis"]
    # the machines really are apart: workers record the hostname of their namespace
    assert runtime.read(town.town.store, town.town.resolve("g1").id)["host"] == "m-beta"
    # the Redis password is in no process's command line
    for host in net.hosts:
        for pid in host.processes():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            assert net.password.encode() not in cmdline


def test_a_killed_worker_is_restarted_by_its_host_and_its_task_completes_once(
        fleet: Callable[..., tuple[TownFixture, Network]]) -> None:
    town, net = fleet()
    net.start_host("alpha")
    _host_up(town, "alpha")
    assert town.tt("spawn", "w").code == 0
    agent_id = town.town.resolve("w").id
    town.wait_state("w", "idle", timeout=60)
    task_id = town.town.assign("w", "slow job @sleep 3")
    town.wait_task(task_id, TaskState.RUNNING, timeout=30)
    first = _worker_pid(town, agent_id)
    os.kill(first, signal.SIGKILL)

    town.wait_task(task_id, TaskState.COMPLETED, timeout=90)
    agent = town.town.store.require_agent(agent_id)
    assert agent.restarts == 1 and agent.host == "alpha"
    assert _worker_pid(town, agent_id) != first
    restarted = _events(town, "restarted", agent_id)
    assert len(restarted) == 1 and restarted[0]["after"] == "0.5"  # the first backoff
    completed = [e for e in _events(town, "task_completed") if e.get("task") == task_id]
    assert len(completed) == 1
    assert town.town.store.require_task(task_id).state == TaskState.COMPLETED
    assert agent.tasks_completed == 1
    assert "w" in town.tt("status").out and "RESTARTS" in town.tt("status").out


def test_a_crash_loop_stops_the_restarts(
        fleet: Callable[..., tuple[TownFixture, Network]]) -> None:
    town, net = fleet(limit=3)
    net.start_host("alpha")
    _host_up(town, "alpha")
    assert town.tt("spawn", "crashy").code == 0
    agent_id = town.town.resolve("crashy").id
    killed: set[int] = set()

    def idle_or_halted() -> bool:
        agent = town.town.store.require_agent(agent_id)
        return agent.state == AgentState.IDLE or agent.halted is not None

    for _ in range(3):  # (a start that fails on a loaded machine is a crash too)
        wait_until(idle_or_halted, 60, "crashy to be idle (or halted)")
        if town.town.store.require_agent(agent_id).halted:
            break
        pid = wait_until(lambda: (p := _worker_pid(town, agent_id)) not in killed and p, 30,
                         "a new worker")
        killed.add(pid)
        os.kill(pid, signal.SIGKILL)
        town.wait_state("crashy", "error", "starting", timeout=30)
    wait_until(lambda: town.town.store.require_agent(agent_id).halted, 30, "the halt")
    agent = town.town.store.require_agent(agent_id)
    assert agent.state == AgentState.ERROR and agent.restarts == 2
    assert [e["after"] for e in _events(town, "restarted", agent_id)] == ["0.5", "1"]
    assert "crash loop" in (agent.halted or "")
    assert "crash loop" in town.tt("status").out
    mailbox = [Message.from_json(m) for m in
               town.town.redis.lrange(keys.inbox(town.name, keys.SUPERVISOR_ID), 0, -1)]
    assert any("not restarted again" in getattr(m.body, "summary", "") for m in mailbox)
    # `tt restart` by hand tries again, the count afresh
    assert town.tt("restart", "crashy").code == 0
    town.wait_state("crashy", "idle", timeout=60)
    assert town.town.store.require_agent(agent_id).halted is None


def test_a_dead_host_s_agents_run_on_another_host(
        fleet: Callable[..., tuple[TownFixture, Network]]) -> None:
    town, net = fleet(supervise=True)
    alpha, agent_id, task_id = _working_on_alpha(town, net, "mover", "long job @sleep 4")

    alpha.kill_all()  # the machine dies, workers and all
    town.wait_task(task_id, TaskState.COMPLETED, timeout=120)
    agent = town.town.store.require_agent(agent_id)
    assert agent.host == "beta"
    assert runtime.read(town.town.store, agent_id)["host"] == "m-beta"
    assert agent.tasks_completed == 1
    moved = _events(town, "moved", agent_id)
    assert moved and moved[-1]["old"] == "alpha" and moved[-1]["new"] == "beta"
    hosts = {h["name"]: h["state"] for h in town.town.hosts()}
    assert hosts == {"alpha": "gone", "beta": "live"}


def test_a_cold_agent_costs_no_process_and_wakes_for_work(
        fleet: Callable[..., tuple[TownFixture, Network]]) -> None:
    town, net = fleet(idle_timeout=2)
    net.start_host("alpha")
    _host_up(town, "alpha")
    assert town.tt("spawn", "sleeper", "--cold").code == 0
    agent_id = town.town.resolve("sleeper").id
    agent = town.town.store.require_agent(agent_id)
    assert agent.state == AgentState.COLD and agent.host == "alpha"
    assert "pid" not in runtime.read(town.town.store, agent_id)

    task_id = town.town.assign("sleeper", "wake up and work")
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
    # idle past idle_timeout_secs: cold again, its process gone
    town.wait_state("sleeper", "cold", timeout=60)
    wait_until(lambda: "pid" not in runtime.read(town.town.store, agent_id), 30,
               "its worker to be gone")
    # a message wakes it too
    assert town.tt("send", "sleeper", "and again").code == 0
    wait_until(lambda: town.town.store.require_agent(agent_id).rounds_completed >= 2, 60,
               "a second round")


def test_drain_moves_the_agents_and_takes_no_new_ones(
        fleet: Callable[..., tuple[TownFixture, Network]]) -> None:
    town, net = fleet()
    net.start_host("alpha")
    net.start_host("beta")
    _host_up(town, "alpha")
    _host_up(town, "beta")
    assert town.tt("spawn", "d1", "--host", "alpha").code == 0
    agent_id = town.town.resolve("d1").id
    town.wait_state("d1", "idle", timeout=60)
    task_id = town.town.assign("d1", "finish me first @sleep 2")
    town.wait_task(task_id, TaskState.RUNNING, timeout=30)

    assert town.tt("host", "drain", "alpha").code == 0
    wait_until(lambda: town.town.store.require_agent(agent_id).host == "beta", 60,
               "d1 to move to beta")
    town.wait_state("d1", "idle", timeout=60)
    assert runtime.read(town.town.store, agent_id)["host"] == "m-beta"
    assert town.town.store.require_task(task_id).state == TaskState.COMPLETED  # finished
    assert town.tt("spawn", "d2").code == 0
    assert town.town.resolve("d2").host == "beta"


def test_a_link_cut_mid_round_does_not_run_the_task_twice(
        fleet: Callable[..., tuple[TownFixture, Network]]) -> None:
    town, net = fleet(supervise=True)
    alpha, agent_id, task_id = _working_on_alpha(town, net, "cut", "long job @sleep 8")

    alpha.cut()  # alpha and its worker are cut off mid-round
    wait_until(lambda: town.town.store.require_agent(agent_id).host == "beta", 90,
               "the agent to move to beta")
    town.wait_task(task_id, TaskState.COMPLETED, timeout=120)
    alpha.mend()  # the old worker comes back, finds itself replaced and stands down
    wait_until(lambda: not [p for p in alpha.processes() if _is_worker(p)], 60,
               "alpha's stale worker to exit")
    completed = [e for e in _events(town, "task_completed") if e.get("task") == task_id]
    assert len(completed) == 1
    assert town.town.store.require_agent(agent_id).tasks_completed == 1
    assert town.town.store.require_task(task_id).state == TaskState.COMPLETED


def _is_worker(pid: int) -> bool:
    try:
        return b"tinytown.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_a_worker_on_another_machine_needs_only_the_toml_and_redis(
        fleet: Callable[..., tuple[TownFixture, Network]]) -> None:
    """A worker started by hand (as systemd would) on another machine, no host daemon:
    it does the work assigned here, and carries on after its link was cut and mended."""
    town, net = fleet()
    assert town.tt("spawn", "builder", "--no-start").code == 0
    # the town's tinytown.toml names the Redis: no REDIS_URL on that machine
    other = net.start_machine("b", [sys.executable, "-m", "tinytown.cli", "worker", "builder"],
                              env={"REDIS_URL": ""})
    first = town.town.assign("builder", "built across the wire")
    town.wait_task(first, TaskState.COMPLETED, timeout=30)
    status = town.tt("status")
    assert "builder" in status.out and net.password not in status.out + status.err

    # cut the link, queue work while it is down, restore it: the worker carries on
    other.cut()
    second = town.town.assign("builder", "queued during the outage")
    unreachable = other.run(TT, "list", cwd=town.root, env={"REDIS_URL": ""})
    assert unreachable.returncode == 69 and net.password not in unreachable.stderr
    other.mend()
    town.wait_task(second, TaskState.COMPLETED, timeout=90)
    assert other.proc.poll() is None
