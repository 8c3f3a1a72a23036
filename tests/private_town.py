"""A town on a redis-server of its own, for tests that must see every key or command
(or that write keys outside any town, like the legacy ones `tt migrate` moves)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.conftest import TownFixture, start_redis, stop_redis
from tinytown.town import Town


@contextmanager
def private_town(tmp_path: Path) -> Iterator[tuple[TownFixture, redis.Redis]]:
    """Yields the town and a plain client of its server; every connection is closed after."""
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
