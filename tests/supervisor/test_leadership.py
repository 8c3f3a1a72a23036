"""The supervisor service: a standby takes over within 5 s of the leader's death, a
leader keeps a lock that outlived an outage, `tt supervisor` starts a standby, a killed
supervisor is not left registered, and a foreign leader key is survived."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

from tests.helpers import TownFixture, wait_until
from tinytown.core import keys
from tinytown.db import leader


def _start(town: TownFixture) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tinytown.supervisor", "--town",
                             str(town.root)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _leader_pid(town: TownFixture) -> int | None:
    owner = leader.leader(town.town.store)
    return int(owner.split("@")[0]) if owner else None


def test_a_standby_takes_over_within_five_seconds(
    town_factory: Callable[..., TownFixture],
) -> None:
    # the defaults (a 15 s lock before); no restart: the killed worker below stays error
    town = town_factory(hb_timeout=15, hb_interval=5, restart="never")
    first, second = _start(town), _start(town)
    try:
        wait_until(lambda: _leader_pid(town) in (first.pid, second.pid), 15, "a leader")
        wait_until(lambda: len(leader.running(town.town.store)) == 2, 15, "two supervisors")
        lead = first if _leader_pid(town) == first.pid else second
        standby = second if lead is first else first
        lead.kill()
        lead.wait(10)
        # the promise: within 5 s of the leader's death (plus a standby's half-second poll)
        wait_until(lambda: _leader_pid(town) == standby.pid, 5.5, "the standby to lead")
        # and the new leader does the job: a killed worker becomes error
        town.tt("spawn", "alice")
        town.wait_state("alice", "idle")
        worker = int(wait_until(
            lambda: town.town.redis.hget(keys.runtime(town.name, town.town.resolve("alice").id),
                                         "pid"), 10, "alice's worker pid"))
        os.kill(worker, signal.SIGKILL)
        town.wait_state("alice", "error", timeout=20)
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait(10)


def test_a_leader_keeps_a_lock_that_is_already_its_own(town: TownFixture) -> None:
    store = town.town.store
    town.town.redis.set(keys.supervisor_leader(town.name), "123@elsewhere", px=60_000)
    assert not leader.try_to_lead(store, "456@here", 4)
    town.town.redis.set(keys.supervisor_leader(town.name), "456@here", px=60_000)
    assert leader.try_to_lead(store, "456@here", 4)  # e.g. after Redis came back
    assert 0 < town.town.redis.pttl(keys.supervisor_leader(town.name)) <= 4000


def test_tt_supervisor_starts_a_standby_when_one_leads(town: TownFixture) -> None:
    first = town.tt("supervisor")
    assert first.code == 0 and "standby" not in first.out, first
    wait_until(lambda: _leader_pid(town) is not None, 15, "a leader")
    second = town.tt("supervisor")
    assert second.code == 0 and "as a standby" in second.out, second
    wait_until(lambda: len(leader.running(town.town.store)) == 2, 15, "two supervisors")


def test_a_killed_supervisor_is_not_left_registered(town: TownFixture) -> None:
    proc = _start(town)
    wait_until(lambda: _leader_pid(town) == proc.pid, 15, "the supervisor to lead")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    report = town.town.down()  # it used to wait ~10 s for the dead one, then keep it
    assert not report["supervisor"]
    assert leader.running(town.town.store) == []


def test_a_foreign_leader_key_is_survived(town: TownFixture) -> None:
    town.town.redis.hset(keys.supervisor_leader(town.name), "x", "y")
    proc = _start(town)
    try:
        wait_until(lambda: len(leader.running(town.town.store)) == 1, 15, "it to register")
        assert proc.poll() is None  # still running, standing by
        town.town.redis.delete(keys.supervisor_leader(town.name))
        wait_until(lambda: _leader_pid(town) == proc.pid, 15, "it to lead once the key is gone")
    finally:
        proc.kill()
        proc.wait(10)
