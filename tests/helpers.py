"""Plain helpers for the record-level tests: a town on a redis-server of its own, one-line
CLI errors, a snapshot of a town's keys. (Fixtures live in conftest.py.)"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from tests.conftest import RedisServer, Result, TownFixture, start_redis, stop_redis
from tinytown.db.embedded import find_redis_server
from tinytown.ops.facade import Town


@contextmanager
def private_town(tmp_path: Path) -> Iterator[tuple[TownFixture, redis.Redis]]:
    """A town alone on a redis-server of its own (to see every key or command it gets, or
    to write keys outside any town); yields the town and a plain client of the server."""
    server = start_redis()
    client = server.client()
    town: TownFixture | None = None
    try:
        name = f"p{uuid.uuid4().hex[:10]}"
        root = tmp_path / name
        root.mkdir()
        (root / "tinytown.toml").write_text(
            f'[town]\nname = "{name}"\n\n[redis]\nurl = "{server.url}"\n\n'
            '[agent]\ndefault_cli = "claude"\n\n[supervisor]\nautostart = false\n'
        )
        town = TownFixture(root, name, Town.connect(root), root / "records")
        yield town, client
    finally:
        if town is not None:
            town.town.redis.close()
        client.close()
        stop_redis(server)


def one_line_error(r: Result, code: int | None = None) -> str:
    """Assert `r` failed with exactly one `tt: ...` line on stderr (no traceback)."""
    assert r.code != 0, r
    if code is not None:
        assert r.code == code, r
    assert "Traceback" not in r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("tt: "), r.err
    return lines[0]


def key_snapshot(town: TownFixture) -> dict[str, Any]:
    """Every key of the town with its value, to prove a failed command wrote nothing."""
    r = town.town.redis
    out: dict[str, Any] = {}
    for key in town.town_keys():
        kind = r.type(key)
        out[key] = (r.get(key) if kind == "string" else r.hgetall(key) if kind == "hash"
                    else r.lrange(key, 0, -1) if kind == "list" else r.xlen(key))
    return out


def durable_redis(folder: Path) -> subprocess.Popen[bytes]:
    """A redis-server of the test's own on `folder`/redis.sock, its AOF fsynced on every
    write: killed and started again on the same folder, it comes back with every key (the
    outage tests)."""
    return subprocess.Popen(
        [find_redis_server(), "--port", "0", "--unixsocket", str(folder / "redis.sock"),
         "--dir", str(folder), "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def redis_answers(server: RedisServer) -> bool:
    try:
        return bool(server.client().ping())
    except redis.RedisError:
        return False
