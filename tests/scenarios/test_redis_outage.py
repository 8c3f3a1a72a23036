"""Redis goes away in the middle of a round and comes back: nothing is lost, and the
worker carries on by itself."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

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
from tinytown.core.models import TaskState


def test_redis_restart_mid_round(town_factory: Callable[..., TownFixture]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ttr-outage-"))
    server = durable_redis(folder)
    town: TownFixture | None = None
    try:
        probe = RedisServer(folder / "redis.sock", folder, server)
        wait_until(lambda: probe.socket.exists(), 10, "redis to start")
        town = town_factory(url=probe.url)
        town.tt("spawn", "alice")
        task_id = town.tt("assign", "alice", "survive the outage @sleep 2").out.strip()
        wait_until((town.records / "alice-1.sleeping").exists, 20, "the round to start")
        town.town.redis.close()
        server.terminate()  # a clean stop: the AOF has everything
        server.wait(10)
        cli_pid = int((town.records / "alice-1.sleeping").read_text())
        wait_until(lambda: pid_gone(cli_pid), 20, "the CLI to finish while Redis is down")
        log = town.root / ".tt" / "logs" / "alice" / "worker.log"
        wait_until(lambda: "Redis went away during a round" in log.read_text(), 20,
                   "the round's end to meet the outage")
        server = durable_redis(folder)  # back, on the same socket
        wait_until(lambda: redis_answers(probe), 20, "redis to load its AOF")
        town.reconnect()
        town.wait_task(task_id, TaskState.COMPLETED, timeout=60)  # after the outage
        town.wait_state("alice", "idle", timeout=30)
        assert town.town.redis.llen(keys.inflight(town.name, town.town.resolve("alice").id)) == 0
        assert town.town.resolve("alice").tasks_completed == 1
    finally:
        if town is not None:
            stop_town_processes(town.town)
        server.kill()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)
