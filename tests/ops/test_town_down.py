"""A town that goes down takes its workers with it: `tt down` right after a spawn
leaves no worker behind (and does not get its Redis started again), and a worker whose
Redis is gone for good exits after `[agent] redis_lost_secs` instead of retrying
forever."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.helpers import RedisServer, TownFixture, start_redis, stop_redis, tt, wait_until
from tests.worker.test_lifecycle_starting import worker_pids
from tinytown.db.embedded import EmbeddedRedis


def test_down_right_after_spawn_leaves_no_worker(tmp_path: Path,
                                                 redis_server: RedisServer) -> None:
    env = {"REDIS_URL": ""}
    assert tt("init", "--name", "quick", cwd=tmp_path, env=env).code == 0
    r = tt("spawn", "quick", "--cli", "demo", "--json", cwd=tmp_path, env=env)
    assert r.code == 0, r
    agent_id = r.out.split('"id": "')[1].split('"')[0]
    assert tt("down", cwd=tmp_path, env=env).code == 0
    try:
        wait_until(lambda: not worker_pids(agent_id), 40, "no worker left after tt down")
        assert not EmbeddedRedis(tmp_path / ".tt").is_running()  # nobody started it again
    finally:
        EmbeddedRedis(tmp_path / ".tt").stop()


def test_a_worker_whose_redis_is_gone_for_good_exits(
    town_factory: Callable[..., TownFixture],
) -> None:
    server = start_redis()
    try:
        town = town_factory(url=server.url)
        config = town.root / "tinytown.toml"
        config.write_text(config.read_text().replace("[agent]\n", "[agent]\nredis_lost_secs = 3\n"))
        town.reconnect()
        assert town.tt("spawn", "left").code == 0
        town.wait_state("left", "idle", timeout=30)
        agent_id = town.town.resolve("left").id
        assert worker_pids(agent_id)
        town.town.close()
    finally:
        stop_redis(server)
    wait_until(lambda: not worker_pids(agent_id), 30, "the worker to give up on its Redis")


def test_a_spawn_starts_a_supervisor_on_an_external_redis(
    town_factory: Callable[..., TownFixture],
) -> None:
    town = town_factory()  # the tests' own redis-server: an external Redis to the town
    config = town.root / "tinytown.toml"
    config.write_text(config.read_text().replace("autostart = false", "autostart = true"))
    town.reconnect()
    assert town.tt("spawn", "watched").code == 0
    wait_until(lambda: town.town.supervisor_status().startswith("leader"), 30,
               "a supervisor to lead")
    town.wait_state("watched", "idle", timeout=30)


def test_down_in_the_middle_of_a_round_hands_the_task_back(town: TownFixture) -> None:
    assert town.tt("spawn", "busy").code == 0
    task_id = town.tt("assign", "busy", "@sleep 12 a long job").out.strip()
    town.wait_state("busy", "working", timeout=30)
    assert town.tt("down", timeout=60).code == 0
    task = town.town.task(task_id)
    assert task.state.value == "assigned", task
    assert town.agent_state("busy") == "stopped"
    assert not [e for e in town.town.events(100) if e["kind"].startswith("task_")]
    assert town.tt("restart", "busy").code == 0  # the task runs again, to its end
    wait_until(lambda: town.town.task(task_id).state.is_terminal, 40, "the task to end")
    assert town.town.task(task_id).state.value == "completed"


def _json_agents(root: Path, env: dict[str, str]) -> dict[str, str]:
    listed = tt("list", "--json", cwd=root, env=env)
    assert listed.code == 0, listed
    return {a["name"]: a["state"] for a in json.loads(listed.out)}


def test_up_brings_back_what_down_stopped(tmp_path: Path, redis_server: RedisServer) -> None:
    """`tt down` remembers the live agents; `tt up` starts the Redis, a supervisor and
    those agents (a stopped one stays stopped unless --all); a second `tt up` starts
    nothing and says what is up. A command run while the town is down says that it
    started the Redis."""
    env = {"REDIS_URL": ""}
    root = tmp_path
    assert tt("init", "--name", "updown", cwd=root, env=env).code == 0
    try:
        for name in ("alice", "bob"):
            assert tt("spawn", name, "--cli", "demo", cwd=root, env=env).code == 0
        wait_until(lambda: _json_agents(root, env) == {"alice": "idle", "bob": "idle"}, 40,
                   "both agents idle")
        assert tt("kill", "bob", cwd=root, env=env).code == 0  # stopped before the down
        wait_until(lambda: _json_agents(root, env)["bob"] == "stopped", 30, "bob stopped")
        down = tt("down", cwd=root, env=env)
        assert down.code == 0 and "started the town's Redis" not in down.err, down
        assert not EmbeddedRedis(root / ".tt").is_running()

        listed = tt("list", cwd=root, env=env)  # a read: says it started the Redis
        assert listed.code == 0 and listed.err.strip().count("\n") == 0, listed
        assert "started the town's Redis (it was down)" in listed.err
        assert "started the town's Redis" not in tt("list", cwd=root, env=env).err  # once
        assert _json_agents(root, env) == {"alice": "stopped", "bob": "stopped"}

        up = tt("up", cwd=root, env=env)
        assert up.code == 0, up
        assert "started 1 agent(s): alice" in up.out and "supervisor started" in up.out
        wait_until(lambda: _json_agents(root, env) == {"alice": "idle", "bob": "stopped"}, 40,
                   "alice back, bob still stopped")
        again = tt("up", "--json", cwd=root, env=env)  # idempotent
        assert again.code == 0, again
        report = json.loads(again.out)
        assert report["started"] == [] and report["already"] == ["alice"]
        assert report["redis"] == "running" and report["supervisor"].startswith("running")

        every = tt("up", "--all", cwd=root, env=env)
        assert every.code == 0 and "started 1 agent(s): bob" in every.out, every
        wait_until(lambda: _json_agents(root, env) == {"alice": "idle", "bob": "idle"}, 40,
                   "bob back too")
    finally:
        tt("down", cwd=root, env=env)
        EmbeddedRedis(root / ".tt").stop()
