"""Fixtures: a real redis-server for the session, towns on it, the real `tt` CLI.

Every town gets a unique name, so tests share one Redis the way real towns do, and
each test's teardown stops the processes it started and deletes its town's keys.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tinytown import keys
from tinytown.db.embedded import find_redis_server
from tinytown.errors import TinytownError
from tinytown.ops.town import Town

BIN = Path(sys.executable).parent
TT = str(BIN / "tt")
FAKE_AGENT = Path(__file__).parent / "fake_agent.py"
FAKE_CLI = f"{sys.executable} {FAKE_AGENT}"
os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
for _name in ("REDIS_URL", "TINYTOWN_AGENT_ID", "TINYTOWN_AGENT_NAME", "TINYTOWN_TOWN_ROOT"):
    os.environ.pop(_name, None)


def wait_until(
    condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition"
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def pid_gone(pid: int) -> bool:
    """True once the process has exited (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True


@dataclass
class RedisServer:
    socket: Path
    dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), decode_responses=True)


def start_redis(extra: list[str] | None = None) -> RedisServer:
    folder = Path(tempfile.mkdtemp(prefix="ttr-"))
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        [find_redis_server(), "--port", "0", "--unixsocket", str(sock), "--dir", str(folder),
         "--save", "", "--appendonly", "no", *(extra or [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = RedisServer(sock, folder, proc)
    wait_until(lambda: sock.exists() and _ping(server), 10, "redis-server to start")
    return server


def _ping(server: RedisServer) -> bool:
    try:
        return bool(server.client().ping())
    except redis.RedisError:
        return False


def stop_redis(server: RedisServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    stop_redis(server)


@dataclass
class Result:
    code: int
    out: str
    err: str


def tt(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
       input: str | None = None, timeout: float = 60) -> Result:
    """Run the real `tt` entry point."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [TT, *args], cwd=cwd, env=full_env, input=input, capture_output=True, text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


TOML = """\
[town]
name = "{name}"

[redis]
url = "{url}"

[agent]
default_cli = "{cli}"
round_timeout_secs = {round_timeout}
idle_timeout_secs = {idle_timeout}

[supervisor]
heartbeat_timeout_secs = {hb_timeout}
heartbeat_interval_secs = {hb_interval}
autostart = false
{extra}
"""


@dataclass
class TownFixture:
    root: Path
    name: str
    town: Town
    records: Path  # where the fake agent writes what it saw

    def tt(self, *args: str, **kw: Any) -> Result:
        env = {"FAKE_AGENT_DIR": str(self.records), **kw.pop("env", {})}
        return tt(*args, cwd=self.root, env=env, **kw)

    def reconnect(self) -> Town:
        self.town = Town.connect(self.root)
        return self.town

    def agent_state(self, ref: str) -> str:
        return self.town.resolve(ref).state.value

    def wait_state(self, ref: str, *wanted: str, timeout: float = 20) -> None:
        agent_id = self.town.resolve(ref).id
        wait_until(
            lambda: (a := self.town.store.get_agent(agent_id)) and a.state.value in wanted,
            timeout, f"{ref} to be {'/'.join(wanted)} (is {self.agent_state(agent_id)})",
        )

    def town_keys(self) -> set[str]:
        return set(self.town.redis.scan_iter(match=f"tt:{self.name}:*", count=1000))

    def runs(self) -> list[list[str]]:
        path = self.records / "runs.log"
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def stop_town_processes(town: Town) -> None:
    host = socket.gethostname()
    pids = []
    try:
        for agent_id in [k.rsplit(":", 1)[1] for k in
                         town.redis.scan_iter(match=f"tt:{town.name}:runtime:*")]:
            rt = town.redis.hgetall(keys.runtime(town.name, agent_id))
            if rt.get("host") == host and rt.get("pid"):
                pids.append(int(rt["pid"]))
        for owner in town.redis.hkeys(keys.supervisors(town.name)):
            pid, _, owner_host = owner.partition("@")
            if owner_host == host:
                pids.append(int(pid))
    except (redis.RedisError, TinytownError):
        pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def town_factory(
    redis_server: RedisServer, tmp_path: Path
) -> Iterator[Callable[..., TownFixture]]:
    made: list[TownFixture] = []

    def make(
        name: str | None = None,
        cli: str = FAKE_CLI,
        round_timeout: float = 60,
        idle_timeout: float = 0,
        hb_timeout: float = 3,
        hb_interval: int = 1,
        extra: str = "",
        url: str | None = None,
    ) -> TownFixture:
        town_name = name or f"t{uuid.uuid4().hex[:10]}"
        root = tmp_path / town_name
        root.mkdir()
        (root / "tinytown.toml").write_text(TOML.format(
            name=town_name, url=url or redis_server.url, cli=cli.replace('"', '\\"'),
            round_timeout=round_timeout, idle_timeout=idle_timeout, hb_timeout=hb_timeout,
            hb_interval=hb_interval, extra=extra,
        ))
        fixture = TownFixture(root, town_name, Town.connect(root), root / "records")
        made.append(fixture)
        return fixture

    yield make
    client = redis_server.client()
    for fixture in made:
        stop_town_processes(fixture.town)
        fixture.town.redis.close()
        if fixture.town.settings.redis_url != redis_server.url:
            continue  # a town on a server of the test's own
        doomed = list(client.scan_iter(match=f"tt:{fixture.name}:*", count=1000))
        if doomed:
            client.delete(*doomed)
    client.close()


@pytest.fixture
def town(town_factory: Callable[..., TownFixture]) -> TownFixture:
    return town_factory()


@pytest.fixture
def supervisor(town: TownFixture) -> Iterator[subprocess.Popen[bytes]]:
    """The town's supervisor service, running for the test."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinytown.supervisor", "--town", str(town.root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: town.town.redis.exists(keys.supervisor_leader(town.name)), 15,
               "the supervisor to lead")
    yield proc
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
