"""Frozen workers (SIGSTOP) are marked `error` within the heartbeat limit plus 2 s: a
second one while the first is being recovered (its CLI a zombie that a stopped parent
never reaps), across a supervisor failover, and after a Redis outage."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    RedisServer,
    TownFixture,
    durable_redis,
    pid_gone,
    redis_answers,
    stop_town_processes,
    wait_until,
)
from tinytown.core import keys
from tinytown.core.models import Task
from tinytown.db import leader
from tinytown.supervisor.sight import Sight
from tinytown.system.processes import group_alive, kill_group

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def frozen() -> Iterator[list[int]]:
    """Pids the test stopped: killed at the end whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        for sig in (signal.SIGKILL, signal.SIGCONT):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def _worker_pid(town: TownFixture, ref: str) -> int:
    agent_id = town.town.resolve(ref).id
    return int(wait_until(lambda: town.town.redis.hget(keys.runtime(town.name, agent_id), "pid"),
                          10, "worker pid"))


def _freeze(town: TownFixture, ref: str, frozen: list[int]) -> tuple[int, float]:
    pid = _worker_pid(town, ref)
    os.kill(pid, signal.SIGSTOP)
    frozen.append(pid)
    return pid, time.monotonic()


def _marked_within(town: TownFixture, ref: str, since: float, limit: float) -> None:
    """`ref` is `error` by `since` + `limit` + 2 s (the promise)."""
    agent_id = town.town.resolve(ref).id
    left = since + limit + 2 - time.monotonic()
    wait_until(lambda: town.town.store.require_agent(agent_id).state.value == "error",
               max(left, 0.0), f"{ref} to be marked error within {limit + 2:g}s of its freeze"
               f" (is {town.agent_state(ref)})")


def _supervisor(town: TownFixture, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "tinytown.supervisor", "--town",
                                 str(town.root)], stdout=out, stderr=out)


def _leader_pid(town: TownFixture) -> int | None:
    owner = leader.leader(town.town.store)
    return int(owner.split("@")[0]) if owner else None


def test_a_second_frozen_worker_while_the_first_is_recovered(
    town: TownFixture, frozen: list[int], tmp_path: Path
) -> None:
    log = tmp_path / "supervisor.log"
    sup = _supervisor(town, log)
    try:
        wait_until(lambda: _leader_pid(town) == sup.pid, 15, "the supervisor to lead")
        for name in ("a", "b"):
            town.tt("spawn", name)
        town.wait_state("a", "idle")
        town.wait_state("b", "idle")
        town.town.assign("a", Task("@sleep 1"))  # its CLI ends 1 s into the freeze: a zombie
        town.town.assign("b", Task("@sleep 30"))
        for name in ("a", "b"):
            wait_until((town.records / f"{name}-1.sleeping").exists, 20, f"{name}'s CLI")
        a_pid, a_at = _freeze(town, "a", frozen)
        b_pid, b_at = _freeze(town, "b", frozen)
        _marked_within(town, "a", a_at, 3)
        _marked_within(town, "b", b_at, 3)  # not held up by a's zombie CLI
        wait_until(lambda: pid_gone(a_pid) and pid_gone(b_pid), 10, "the frozen workers killed")
        assert _leader_pid(town) == sup.pid
        assert "lost the leader lock" not in log.read_text()
    finally:
        sup.kill()
        sup.wait(10)


def test_a_frozen_worker_across_a_supervisor_failover(
    town_factory: Callable[..., TownFixture], frozen: list[int], tmp_path: Path
) -> None:
    limit = 6.0  # the lock (4 s) changes hands within the limit
    town = town_factory(hb_timeout=limit)
    first = _supervisor(town, tmp_path / "first.log")
    second = _supervisor(town, tmp_path / "second.log")
    try:
        wait_until(lambda: _leader_pid(town) in (first.pid, second.pid), 15, "a leader")
        wait_until(lambda: len(leader.running(town.town.store)) == 2, 15, "two supervisors")
        lead = first if _leader_pid(town) == first.pid else second
        standby = second if lead is first else first
        town.tt("spawn", "a")
        town.tt("spawn", "b")
        town.wait_state("a", "idle")
        town.wait_state("b", "idle")
        lead.kill()
        _pid, at = _freeze(town, "a", frozen)
        lead.wait(10)
        _marked_within(town, "a", at, limit)
        assert _leader_pid(town) == standby.pid
        assert town.agent_state("b") == "idle"  # the live one is not mistaken for dead
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("outage", ["restart", "freeze", "short-freeze"])
def test_a_frozen_worker_after_a_redis_outage(
    town_factory: Callable[..., TownFixture], frozen: list[int], tmp_path: Path, outage: str
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ttr-frozen-"))
    server = durable_redis(folder)
    probe = RedisServer(folder / "redis.sock", folder, server)
    town: TownFixture | None = None
    sup: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: redis_answers(probe), 10, "redis to start")
        # a beat every 2 s: after the outage the supervisor looks before the workers beat
        town = town_factory(url=probe.url, hb_interval=2)
        sup = _supervisor(town, tmp_path / "supervisor.log")
        wait_until(lambda: _leader_pid(town) == sup.pid, 15, "the supervisor to lead")
        town.tt("spawn", "a")
        town.tt("spawn", "b")
        town.wait_state("a", "idle")
        town.wait_state("b", "idle")
        if outage == "restart":  # Redis stops and comes back on the same socket
            server.terminate()
            server.wait(10)
        else:  # Redis answers nothing for a while, as a stalled host
            os.kill(server.pid, signal.SIGSTOP)
        down = time.monotonic()
        if outage == "short-freeze":  # shorter than the read timeout: no call fails,
            wait_until(lambda: time.monotonic() - down > 3.5, 10, "3.5 s")  # each is late
        else:  # longer than the limit: every worker's beat is older than that when it
            # is back (a frozen Redis: the supervisor's calls give up after the timeout)
            wait_until(lambda: time.monotonic() - down > 3 + 1.5
                       and "cannot reach Redis" in (tmp_path / "supervisor.log").read_text(),
                       20, "the supervisor to meet the outage")
        if outage == "restart":
            server = probe.proc = durable_redis(folder)
        else:
            os.kill(server.pid, signal.SIGCONT)
        wait_until(lambda: redis_answers(probe), 20, "redis to answer again")
        back = time.monotonic()
        _pid, at = _freeze(town, "a", frozen)
        _marked_within(town, "a", at, 3)
        # no worker could beat during the outage: only the frozen one is dead, for a
        # whole limit (and more) after Redis came back
        while time.monotonic() < back + 3 + 2:
            assert town.agent_state("b") == "idle"
            time.sleep(0.2)
    finally:
        if sup is not None:
            sup.kill()
            sup.wait(10)
        if town is not None:
            stop_town_processes(town.town)
        server.kill()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_zombie_group_is_not_waited_for() -> None:
    # a CLI that exited while its parent cannot reap it (here: we do not) is dead
    proc = subprocess.Popen(["true"], start_new_session=True)
    wait_until(lambda: " Z " in Path(f"/proc/{proc.pid}/stat").read_text(), 10, "a zombie")
    started = time.monotonic()
    kill_group(proc.pid)
    assert time.monotonic() - started < 1  # it used to wait 3 s on the zombie
    assert not group_alive(proc.pid)
    proc.wait()


def test_silence_counts_only_what_could_be_seen() -> None:
    sight = Sight(max_gap=1.5)
    assert sight.contact(100.0)  # the first contact
    assert not sight.contact(101.0)
    sight.lost()
    assert sight.contact(106.0)  # back after an outage: blind from 101 to 106
    assert sight.silence(100.0, now=107.0) == pytest.approx(2.0)
    sight.contact(110.0)  # a 4 s gap between two contacts (a Redis that froze)
    assert sight.silence(100.0, now=110.0) == pytest.approx(1.0)
    assert sight.silence(109.0, now=112.0) == pytest.approx(2.0)
    sight.blind(0.0, 105.0)  # Redis started at 105: overlaps the outage, counted once
    assert sight.silence(100.0, now=112.0) == pytest.approx(2.0)
