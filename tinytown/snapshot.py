"""`tt save` / `tt restore`: the town's data as a portable JSON-lines file.

Each line is one key with its Redis type and value, so a snapshot moves between Redis
versions (unlike DUMP/RESTORE payloads). Process bookkeeping (Celery's queues, wake
flags, worker runtime, supervisor locks) is left out: it describes processes, not
work, and a restored town starts its workers afresh.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinytown import keys
from tinytown.errors import UsageError

if TYPE_CHECKING:
    from tinytown.town import Town

FORMAT = "tinytown-snapshot/1"
_SKIP = ("celery:", "wake:", "runtime:", "supervisor", "stop:")


def _kept(town: str, key: str) -> bool:
    rest = key[len(keys.prefix(town)) :]
    return not rest.startswith(_SKIP)


def _read(r: Any, key: str) -> tuple[str, Any] | None:
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
        return kind, [[i, f] for i, f in r.xrange(key)]
    return None


def save(town: Town, path: Path | None = None) -> tuple[Path, int]:
    """Write the snapshot (default: .tt/snapshots/<UTC time>.jsonl); returns path, keys."""
    if path is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = town.settings.runtime_dir / "snapshots" / f"{town.name}-{stamp}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_suffix(path.suffix + ".part")
    with tmp.open("w") as f:
        f.write(json.dumps({"format": FORMAT, "town": town.name}) + "\n")
        for key in town.store.scan_keys(f"{keys.prefix(town.name)}*"):
            if not _kept(town.name, key):
                continue
            got = _read(town.redis, key)
            if got is None:
                continue
            rest = key[len(keys.prefix(town.name)) :]
            f.write(json.dumps({"key": rest, "type": got[0], "value": got[1]}) + "\n")
            count += 1
    tmp.rename(path)  # a half-written snapshot never carries the final name
    return path, count


def restore(town: Town, path: Path, force: bool = False) -> int:
    """Load a snapshot into this town (its keys are renamed to this town's prefix).

    Refuses when any key already exists unless `force`; then they are replaced. The
    whole load is one MULTI: it happens entirely or not at all.
    """
    try:
        lines = path.read_text().splitlines()
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read snapshot {path}: {exc}") from None
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UsageError(f"{path} is not a Tinytown snapshot ({FORMAT})")
    try:
        entries = [json.loads(line) for line in lines[1:] if line.strip()]
        if not all(isinstance(e, dict) and {"key", "type", "value"} <= e.keys()
                   for e in entries):
            raise ValueError("an entry lacks key, type or value")
    except ValueError as exc:
        raise UsageError(f"snapshot {path} is damaged: {exc}") from None
    targets = [keys.prefix(town.name) + e["key"] for e in entries]
    existing = [k for k in targets if town.redis.exists(k)]
    if existing and not force:
        raise UsageError(
            f"{len(existing)} key(s) of the snapshot already exist in town {town.name!r}"
            f" (e.g. {existing[0]}); add --force to replace them"
        )
    pipe = town.redis.pipeline()
    for key, entry in zip(targets, entries, strict=True):
        pipe.delete(key)
        _write(pipe, key, entry["type"], entry["value"])
    pipe.execute()
    return len(entries)


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
