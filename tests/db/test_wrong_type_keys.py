"""A key of the wrong Redis type loses nothing: the round's scripts check types before
they change anything, and the key is moved aside (kept) so the work goes on."""

from __future__ import annotations

import os
import signal
import subprocess

from tests.helpers import TownFixture, wait_until
from tinytown.core import keys


def test_a_wrong_typed_inflight_key_does_not_lose_the_task(town: TownFixture) -> None:
    assert town.tt("spawn", "typed").code == 0
    town.wait_state("typed", "idle", timeout=30)
    agent_id = town.town.resolve("typed").id
    town.town.redis.set(keys.inflight(town.name, agent_id), "x")
    r = town.tt("assign", "typed", "still runs", "--wait", "--timeout", "30")
    assert r.code == 0, r
    aside = [k for k in town.town_keys() if k.startswith(f"tt:{town.name}:deadletter:inflight:")]
    assert len(aside) == 1 and town.town.redis.get(aside[0]) == "x"
    assert town.agent_state("typed") == "idle"


def test_a_wrong_typed_inbox_is_survived_by_every_command(town: TownFixture) -> None:
    town.tt("spawn", "w", "--no-start")
    agent_id = town.town.resolve("w").id
    town.town.redis.set(keys.inbox(town.name, agent_id), "not a list")
    for args in (("list",), ("status",), ("inbox", "--all"), ("inbox", "w")):
        r = town.tt(*args)
        assert r.code == 0 and "Traceback" not in r.err, (args, r)
        assert keys.inbox(town.name, agent_id) in r.err  # one line naming the key
    r = town.tt("send", "w", "hello")
    assert r.code == 0, r
    assert [m.type for m in town.town.agent("w").inbox()] == ["task"]
    aside = [k for k in town.town_keys() if ":deadletter:inbox:" in k]
    assert len(aside) == 1 and town.town.redis.get(aside[0]) == "not a list"


def test_a_wrong_typed_names_key_is_rebuilt(town: TownFixture) -> None:
    town.tt("spawn", "w", "--no-start")
    town.town.redis.delete(keys.names(town.name))
    town.town.redis.set(keys.names(town.name), "oops")
    assert town.tt("send", "w", "hello").code == 0
    assert town.tt("spawn", "w2", "--no-start").code == 0
    assert town.tt("spawn", "w", "--no-start").code != 0  # names stay unique
    assert town.town.redis.hget(keys.names(town.name), "w") == town.town.resolve("w").id


def test_a_wrong_typed_event_stream_does_not_break_assign(town: TownFixture) -> None:
    town.tt("spawn", "w", "--no-start")
    town.town.redis.delete(keys.events(town.name))
    town.town.redis.set(keys.events(town.name), "oops")
    r = town.tt("assign", "w", "a task")
    assert r.code == 0 and "Traceback" not in r.err, r
    assert town.town.task(r.out.strip()).state.value == "assigned"
    assert town.town.redis.type(keys.events(town.name)) == "stream"


def test_the_supervisor_survives_wrong_typed_keys(
    town: TownFixture, supervisor: subprocess.Popen[bytes]
) -> None:
    town.tt("spawn", "w")
    town.wait_state("w", "idle", timeout=30)
    agent_id = town.town.resolve("w").id
    pid = int(town.town.redis.hget(keys.runtime(town.name, agent_id), "pid") or 0)
    try:
        town.town.redis.delete(keys.runtime(town.name, agent_id))
        town.town.redis.set(keys.runtime(town.name, agent_id), "oops")
        wait_until(lambda: town.town.redis.type(keys.runtime(town.name, agent_id)) != "string",
                   15, "the supervisor to set the key aside")
        assert supervisor.poll() is None
        assert [k for k in town.town_keys() if ":deadletter:runtime:" in k]
    finally:  # its runtime hash was set aside: the teardown would not find the worker
        os.kill(pid, signal.SIGKILL)
