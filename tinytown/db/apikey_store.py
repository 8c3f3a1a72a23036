"""API keys in Redis: the one home of their writes (`tt auth`, `tt serve`).

`tt:<town>:apikeys` maps each key's SHA-256 digest to its record, so a presented key
is one HGET; names are unique within a town (checked under WATCH). When a key was last
used lives apart, in `tt:<town>:apikeys:used` (name -> time), so that a request never
rewrites a record another process may be revoking.
"""

from __future__ import annotations

import logging
from datetime import datetime

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.apikeys import ApiKey
from tinytown.core.errors import ApiKeyNotFound, InvalidRecord, NameTaken, WrongType
from tinytown.core.models import format_timestamp
from tinytown.db.connection import text, text_map
from tinytown.db.store import Store

log = logging.getLogger("tinytown")


def _records(store: Store, raw: dict[str, str]) -> dict[str, ApiKey]:
    """digest -> record; a value that is not a record is skipped with a warning."""
    out = {}
    for key_digest, doc in raw.items():
        try:
            out[key_digest] = ApiKey.from_json(doc)
        except InvalidRecord:
            log.warning("skipping an entry of %s: not an API key record",
                        keys.api_keys(store.town))
    return out


def add(store: Store, record: ApiKey, key_digest: str) -> None:
    """Record a new key; NameTaken when the town has one of that name already."""
    name = keys.api_keys(store.town)

    def body(pipe: Pipeline) -> None:
        taken = _records(store, text_map(pipe.hgetall(name)))
        if any(r.name == record.name for r in taken.values()):
            raise NameTaken(f"an API key named {record.name!r} already exists"
                            " (revoke it first to replace it)")
        pipe.multi()
        pipe.hset(name, key_digest, record.to_json())
        pipe.hdel(keys.api_keys_used(store.town), record.name)

    try:
        store.transaction(body, name)
    except WrongType:  # not a hash: set aside (kept), then the town's own use goes on
        store.set_aside(name)
        store.transaction(body, name)


def all_keys(store: Store) -> list[ApiKey]:
    """Every key of the town with when it was last used, oldest first."""
    pipe = store.r.pipeline(transaction=False)
    pipe.hgetall(keys.api_keys(store.town))
    pipe.hgetall(keys.api_keys_used(store.town))
    found, used = pipe.execute(raise_on_error=False)
    if isinstance(found, Exception):
        log.warning("skipping %s: not a hash", keys.api_keys(store.town))
        return []
    last = text_map(used) if not isinstance(used, Exception) else {}
    records = list(_records(store, text_map(found)).values())
    for record in records:
        record.last_used_at = _time(last.get(record.name))
    return sorted(records, key=lambda r: (r.created_at, r.name))


def count(store: Store) -> int:
    try:
        return int(store.r.hlen(keys.api_keys(store.town)))
    except WrongType:
        return 0


def find(store: Store, key_digest: str) -> ApiKey | None:
    """The key with this digest, or None (a revoked or unknown key)."""
    try:
        doc = text(store.r.hget(keys.api_keys(store.town), key_digest))
    except WrongType:
        log.warning("%s is not a hash: no API key is accepted", keys.api_keys(store.town))
        return None
    if doc is None:
        return None
    found = _records(store, {key_digest: doc})
    return found.get(key_digest)


def revoke(store: Store, key_name: str) -> ApiKey:
    """Delete the key named `key_name`: the next request with it is refused."""
    name = keys.api_keys(store.town)

    def body(pipe: Pipeline) -> ApiKey:
        records = _records(store, text_map(pipe.hgetall(name)))
        doomed = [(d, r) for d, r in records.items() if r.name == key_name]
        if not doomed:
            raise ApiKeyNotFound(f"no API key named {key_name!r} (see `tt auth list`)")
        pipe.multi()
        pipe.hdel(name, *[d for d, _ in doomed])
        pipe.hdel(keys.api_keys_used(store.town), key_name)
        return doomed[0][1]

    try:
        return store.transaction(body, name)
    except WrongType:
        raise ApiKeyNotFound(f"no API key named {key_name!r} (see `tt auth list`)") from None


def touch(store: Store, key_name: str, when: datetime) -> None:
    """Record that the key was used at `when`."""
    try:
        store.r.hset(keys.api_keys_used(store.town), key_name, format_timestamp(when))
    except WrongType:
        store.set_aside(keys.api_keys_used(store.town))


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
