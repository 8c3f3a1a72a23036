"""Every Redis call has a bounded wait: a Redis that froze (SIGSTOP: it answers nothing,
like a dead host) or died (SIGKILL) makes the Python API raise RedisUnreachable, and
`tt` exit 69, within seconds; blocking waits longer than the read timeout still work."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import RedisServer, start_redis, stop_redis, tt
from tinytown import MessageType
from tinytown.core.errors import RedisUnreachable
from tinytown.db.connection import SOCKET_TIMEOUT
from tinytown.ops.facade import Town

pytestmark = pytest.mark.timeout(90)
BOUND = SOCKET_TIMEOUT + 3  # the read timeout, and slack for a loaded machine


@pytest.fixture
def own_town(tmp_path: Path) -> Iterator[tuple[Town, RedisServer]]:
    """A town alone on a redis-server of its own, which the test may freeze or kill."""
    server = start_redis()
    name = f"o{uuid.uuid4().hex[:10]}"
    root = tmp_path / name
    root.mkdir()
    (root / "tinytown.toml").write_text(
        f'[town]\nname = "{name}"\n\n[redis]\nurl = "{server.url}"\n\n'
        '[agent]\ndefault_cli = "claude"\n\n[supervisor]\nautostart = false\n')
    town = Town.connect(root)
    town.spawn_agent("alice", start=False)
    try:
        yield town, server
    finally:
        town.redis.close()
        try:
            os.kill(server.proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        stop_redis(server)


def _in_thread(call: Callable[[], Any], bound: float) -> tuple[float, BaseException | None]:
    """Run `call` in a thread (a hang must not hang the test); how long it took, and
    what it raised. Fails if it is still running after `bound` seconds."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), f"the call still waits after {bound:g}s"
    return time.monotonic() - started, (raised or [None])[0]


@pytest.mark.parametrize("sig", [signal.SIGSTOP, signal.SIGKILL], ids=["frozen", "killed"])
def test_an_api_call_gives_up_on_a_redis_that_does_not_answer(
    own_town: tuple[Town, RedisServer], sig: signal.Signals
) -> None:
    town, server = own_town
    town.assign("alice", "before")  # the client's connection is open and used
    os.kill(server.proc.pid, sig)
    _took, raised = _in_thread(lambda: town.assign("alice", "after"), BOUND)
    assert isinstance(raised, RedisUnreachable), raised
    _took, raised = _in_thread(
        lambda: town.channel.send("alice", MessageType.informational("hi")), BOUND)
    assert isinstance(raised, RedisUnreachable), raised
    # a wait for ever notices it too
    _took, raised = _in_thread(lambda: town.channel.receive("alice", 0), BOUND)
    assert isinstance(raised, RedisUnreachable), raised


def test_the_cli_exits_69_on_a_frozen_redis(own_town: tuple[Town, RedisServer]) -> None:
    town, server = own_town
    os.kill(server.proc.pid, signal.SIGSTOP)
    started = time.monotonic()
    r = tt("task", "list", cwd=town.settings.root, timeout=60)
    assert r.code == 69, r
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert time.monotonic() - started < BOUND + 5  # and a Python start


def test_waits_longer_than_the_read_timeout_still_work(
    own_town: tuple[Town, RedisServer],
) -> None:
    town, _server = own_town
    wait = SOCKET_TIMEOUT + 1.5
    took, raised = _in_thread(lambda: town.channel.receive("alice", wait), wait + 5)
    assert raised is None, raised  # an empty inbox after the whole wait: None
    assert took >= wait - 0.1
    took, raised = _in_thread(lambda: town.follow_events("$", int(wait * 1000)), wait + 5)
    assert raised is None, raised
    # a wait for ever gets a message sent after the read timeout
    got: list[Any] = []
    sender = threading.Timer(SOCKET_TIMEOUT + 1,
                             lambda: town.channel.send("alice", MessageType.informational("late")))
    sender.start()
    took, raised = _in_thread(lambda: got.append(town.channel.receive("alice", 0)), wait + 10)
    sender.join()
    assert raised is None, raised
    assert got and got[0] is not None and getattr(got[0].body, "summary", None) == "late"
