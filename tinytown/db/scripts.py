"""The Lua scripts in `lua/`, each read once and registered once per client.

A script runs by EVALSHA (loaded on first use); inside a pipeline redis-py loads
any missing script before the MULTI, so a script never fails halfway through one.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from redis.commands.core import Script

from tinytown.db.connection import TownPipeline, TownRedis

BEGIN_ROUND = "begin_round"
RETURN_INFLIGHT = "return_inflight"
START_ROUND = "start_round"
ENQUEUE_ROUND = "enqueue_round"
ACQUIRE_LOCK = "acquire_lock"
RENEW_LOCK = "renew_lock"
RELEASE_LOCK = "release_lock"
ACQUIRE_LEASE = "acquire_lease"
FENCED_HASH = "fenced_hash"


@cache
def source(name: str) -> str:
    return resources.files("tinytown.db").joinpath("lua", f"{name}.lua").read_text()


def _script(r: TownRedis, name: str) -> Script:
    registered: dict[str, Script] = r.__dict__.setdefault("_tinytown_scripts", {})
    script = registered.get(name)
    if script is None:
        script = registered[name] = r.register_script(source(name))
    return script


def run(target: TownRedis | TownPipeline, name: str, keys: list[str], args: list[Any]) -> Any:
    """Run script `name` on a client, or queue it on a pipeline (`target`)."""
    if isinstance(target, TownPipeline):
        return _script(target.tt_client, name)(keys=keys, args=args, client=target)
    return _script(target, name)(keys=keys, args=args)
