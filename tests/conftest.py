"""Fixtures: a real redis-server for the session, towns on it, the real `tt` CLI, and an
agent's worker runtime driven in-process. (The plain helpers they use are in helpers.py.)

Every town gets a unique name, so tests share one Redis the way real towns do, and
each test's teardown stops the processes it started and deletes its town's keys. Under
pytest-xdist each xdist worker has a redis-server of its own (the session fixture).

Two tiers for what a worker does: a test about what a round does with an inbox drives
the rounds in this process (`worker_in_process`: the real `WorkerRuntime` against the
real Redis, running the real agent CLI); a test about processes (crashes, kills,
signals, Celery remote control, outages, the CLI process) starts real workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    FAKE_CLI,
    SESSION_BASETEMP,
    SESSION_OWNER,
    TOML,
    InProcessWorker,
    PausingConsumer,
    RedisServer,
    TownFixture,
    end_session_processes,
    start_redis,
    stop_redis,
    stop_town_processes,
    wait_until,
)
from tinytown.core import keys
from tinytown.db.connection import TownRedis
from tinytown.ops.facade import Town
from tinytown.worker.lifecycle import WorkerRuntime


def pytest_unconfigure(config: pytest.Config) -> None:
    factory = getattr(config, "_tmp_path_factory", None)  # what xdist itself reads
    if factory is not None and os.environ.get(SESSION_OWNER) == str(os.getpid()):
        SESSION_BASETEMP.append(factory.getbasetemp())
    end_session_processes()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    stop_redis(server)


@pytest.fixture(autouse=True)
def close_town_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every TownRedis the test (and its town fixtures) opened, after their teardown.

    Nothing else closes the fixtures' clients; left to the garbage collector, a socket
    can be finalized before its connection and pytest reports a ResourceWarning at the
    end of the session. As an autouse fixture this is set up first, so it runs last.
    """
    made: weakref.WeakSet[TownRedis] = weakref.WeakSet()
    original = TownRedis.__init__

    def tracking_init(self: TownRedis, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.add(self)

    monkeypatch.setattr(TownRedis, "__init__", tracking_init)
    yield
    for client in list(made):
        client.close()


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
        restart: str = "on-failure",
    ) -> TownFixture:
        town_name = name or f"t{uuid.uuid4().hex[:10]}"
        root = tmp_path / town_name
        root.mkdir()
        (root / "tinytown.toml").write_text(TOML.format(
            name=town_name, url=url or redis_server.url, cli=cli.replace('"', '\\"'),
            round_timeout=round_timeout, idle_timeout=idle_timeout, hb_timeout=hb_timeout,
            hb_interval=hb_interval, extra=extra, restart=restart,
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


@pytest.fixture
def worker_in_process(
    town_factory: Callable[..., TownFixture],
) -> Iterator[Callable[..., InProcessWorker]]:
    """A factory: `worker_in_process(town, ref, start=True)` gives the in-process worker
    runtime of an agent already recorded (e.g. `town.town.spawn_agent(name,
    start=False)`: `starting`, no worker); started unless `start=False`."""
    made: list[InProcessWorker] = []

    def make(town: TownFixture, ref: str, start: bool = True) -> InProcessWorker:
        agent = town.town.store.require_agent(town.town.resolve(ref).id)
        shutdowns: list[float] = []
        runtime = WorkerRuntime(town.town.settings, agent,
                                shutdown=lambda: shutdowns.append(time.monotonic()))
        runtime.logs.mkdir(parents=True, exist_ok=True)  # as the worker process does
        worker = InProcessWorker(town, runtime, PausingConsumer(), shutdowns)
        made.append(worker)
        return worker.start() if start else worker

    yield make
    for worker in made:  # before town_factory's teardown, which this fixture requested
        worker.close()
