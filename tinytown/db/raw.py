"""Keys read and written whole, whatever their Redis type: what `tt save` and `tt
restore` move (as portable values, unlike DUMP/RESTORE payloads)."""

from __future__ import annotations

from typing import Any

from tinytown.db.store import Store


def read(store: Store, key: str) -> tuple[str, Any] | None:
    """The key's type and value as JSON-friendly data; None for a type not kept."""
    r = store.r
    kind = r.type(key)
    if kind == "string":
        return kind, r.get(key)
    if kind == "list":
        return kind, r.lrange(key, 0, -1)
    if kind == "hash":
        return kind, r.hgetall(key)
    if kind == "set":
        return kind, sorted(r.smembers(key))
    if kind == "zset":
        return kind, r.zrange(key, 0, -1, withscores=True)
    if kind == "stream":
        return kind, [[i, f] for i, f in r.xrange(key) or []]
    return None


def existing(store: Store, names: list[str]) -> list[str]:
    """Those of `names` that exist."""
    pipe = store.r.pipeline(transaction=False)
    for name in names:
        pipe.exists(name)
    found = pipe.execute() if names else []
    return [name for name, n in zip(names, found, strict=True) if n]


def replace(store: Store, entries: list[tuple[str, str, Any]]) -> None:
    """Write each (key, type, value), replacing what is there, in one MULTI: all of them
    or none."""
    pipe = store.r.pipeline()
    for key, kind, value in entries:
        pipe.delete(key)
        _write(pipe, key, kind, value)
    pipe.execute()


def _write(pipe: Any, key: str, kind: str, value: Any) -> None:
    if kind == "string":
        pipe.set(key, value)
    elif kind == "list" and value:
        pipe.rpush(key, *value)
    elif kind == "hash" and value:
        pipe.hset(key, mapping=value)
    elif kind == "set" and value:
        pipe.sadd(key, *value)
    elif kind == "zset" and value:
        pipe.zadd(key, {member: score for member, score in value})
    elif kind == "stream":
        for event_id, fields in value:
            pipe.xadd(key, fields, id=event_id)
