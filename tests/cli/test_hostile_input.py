"""Hostile input gets one line on stderr and a non-zero exit, and writes nothing:
bytes that are not UTF-8 in arguments or on standard input, Redis URLs that cannot
work (exit 69, the password redacted), counts past any sense, agent names that are
folders, nicknames, timeouts that never end, snapshots that are not files; Ctrl-C
during a wait exits 130."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    TT,
    RedisServer,
    TownFixture,
    key_snapshot,
    one_line_error,
    tt,
    wait_until,
)

BAD = "x\udcff"  # how Python hands over the argument bytes b"x\xff"


def _bad_args() -> list[tuple[str, ...]]:
    return [("assign", "w", BAD), ("spawn", "n2", "--nickname", BAD, "--no-start"),
            ("backlog", "add", BAD), ("send", "w", BAD)]


@pytest.mark.parametrize("args", _bad_args(), ids=lambda a: a[0])
def test_arguments_that_are_not_utf8(town: TownFixture, args: tuple[str, ...]) -> None:
    town.tt("spawn", "w", "--no-start")
    before = key_snapshot(town)
    assert "not valid UTF-8" in one_line_error(town.tt(*args), 2)
    assert key_snapshot(town) == before


def test_standard_input_that_is_not_utf8(town: TownFixture) -> None:
    town.tt("spawn", "w", "--no-start")
    before = key_snapshot(town)
    proc = subprocess.run([TT, "send", "w", "-"], cwd=town.root, input=b"bad \xff",
                          capture_output=True, timeout=30)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and "not valid UTF-8" in err
    assert key_snapshot(town) == before


def test_an_event_count_past_any_sense(town: TownFixture) -> None:
    one_line_error(town.tt("events", "-n", str(10**30)), 2)


@pytest.fixture
def not_redis() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that answers like a web server, not like Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"<html>not redis</html>\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def _urls(redis_server: RedisServer, not_redis: int) -> list[str]:
    return [
        "redis://:s3cret@localhost:99999/0",  # a port out of range
        "redis://:s3cret@[::1:6379/0",  # a bad IPv6 literal
        f"unix://:s3cret@{redis_server.socket}?db=99999",  # a database the server lacks
        f"redis://:s3cret@127.0.0.1:{not_redis}/0",  # not a Redis server
    ]


def test_redis_urls_that_cannot_work(tmp_path: Path, redis_server: RedisServer,
                                     not_redis: int) -> None:
    (tmp_path / "tinytown.toml").write_text('[town]\nname = "urls"\n')
    for url in _urls(redis_server, not_redis):
        r = tt("list", cwd=tmp_path, env={"REDIS_URL": url}, timeout=30)
        line = one_line_error(r, 69)
        assert "s3cret" not in line, line


@pytest.mark.parametrize("name", [".", ".."])
def test_agent_names_that_are_folders_are_refused(town: TownFixture, name: str) -> None:
    before = key_snapshot(town)
    assert "names a folder" in one_line_error(town.tt("spawn", name, "--no-start"), 2)
    assert key_snapshot(town) == before


def test_nicknames_are_trimmed_and_addressable(town: TownFixture) -> None:
    assert town.tt("spawn", "nn", "--nickname", "  Ray  ", "--no-start").code == 0
    assert town.town.resolve("nn").nickname == "Ray"
    assert town.tt("send", "ray", "hello").code == 0
    before = key_snapshot(town)
    one_line_error(town.tt("spawn", "long", "--nickname", "x" * 65, "--no-start"), 2)
    assert key_snapshot(town) == before


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "-1"])
def test_a_timeout_that_never_ends_is_refused(town: TownFixture, value: str) -> None:
    town.tt("spawn", "w", "--no-start")
    before = key_snapshot(town)
    for args in (("wait", "w", "--timeout", value),
                 ("assign", "w", "a task", "--wait", "--timeout", value)):
        r = town.tt(*args, timeout=20)
        assert "finite number of seconds" in one_line_error(r, 2)
    assert key_snapshot(town) == before


def test_restore_refuses_what_is_not_a_snapshot_file(town: TownFixture, tmp_path: Path) -> None:
    assert "not a regular file" in one_line_error(town.tt("restore", "/dev/zero", timeout=20), 2)
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as f:
        f.truncate(2**30 + 1)  # sparse: takes no room
    assert "too large" in one_line_error(town.tt("restore", str(huge), timeout=20), 2)


def _connected(pid: int) -> bool:
    """The process holds a socket: it reached the town's Redis (imports are done)."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
                   for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def test_ctrl_c_during_a_wait_exits_130(town: TownFixture) -> None:
    town.tt("spawn", "sleepy", "--no-start")  # never terminal: the wait goes on
    proc = subprocess.Popen([TT, "wait", "sleepy"], cwd=town.root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: _connected(proc.pid), 15, "tt wait to reach Redis")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip() == "tt: interrupted"
