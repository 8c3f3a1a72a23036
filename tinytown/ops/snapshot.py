"""`tt save` / `tt restore`: the town's data as a portable JSON-lines file.

Each line is one key with its Redis type and value, so a snapshot moves between Redis
versions (unlike DUMP/RESTORE payloads). Process bookkeeping (Celery's queues, wake
flags, worker runtime and fencing epochs, supervisor locks, host registrations) is
left out: it describes processes, not work, and a restored town starts its workers
afresh (an old epoch restored under a live worker would fence it off). Usage, budgets
and holds are kept.
API keys are left out too: who may reach a town is not its work, and a snapshot taken
before a key was revoked must not bring the key back.

Restored agents come back as what they are: one that was live in the snapshot has no
worker here, so it is `stopped` (its in-flight messages back in its inbox, its running
task back to `assigned`: `tt assign` warns as for any stopped agent) and remembered as
`tt down` remembers the agents it stops, so `tt up` (or `tt restore --start`) starts it.
"""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinytown.core import keys
from tinytown.core.errors import TinytownError, UsageError
from tinytown.core.models import AgentState
from tinytown.db import fleet, raw, requeue, states
from tinytown.ops.context import TownContext, worker_status
from tinytown.ops.references import resolve
from tinytown.system.private import private_dir, private_file

FORMAT = "tinytown-snapshot/1"
MAX_SNAPSHOT_BYTES = 2**30  # a town's data lives in Redis's memory: more is a mistake
_SKIP = ("celery:", "wake:", "runtime:", "epoch:", "supervisor", "stop:", "root", "apikeys",
         "host")  # host daemons register afresh as they start


def _kept(town: str, key: str) -> bool:
    rest = key[len(keys.prefix(town)) :]
    return not rest.startswith(_SKIP)


def save(town: TownContext, path: Path | None = None) -> tuple[Path, int]:
    """Write the snapshot (default: .tt/snapshots/<UTC time>.jsonl); returns path, keys."""
    if path is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = private_dir(town.settings.runtime_dir / "snapshots") / f"{town.name}-{stamp}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_suffix(path.suffix + ".part")
    with open(private_file(tmp), "w") as f:  # the town's data: 0600
        f.write(json.dumps({"format": FORMAT, "town": town.name}) + "\n")
        for key in town.store.scan_keys(f"{keys.prefix(town.name)}*"):
            if not _kept(town.name, key):
                continue
            got = raw.read(town.store, key)
            if got is None:
                continue
            rest = key[len(keys.prefix(town.name)) :]
            f.write(json.dumps({"key": rest, "type": got[0], "value": got[1]}) + "\n")
            count += 1
    tmp.rename(path)  # a half-written snapshot never carries the final name
    return path, count


def restore(town: TownContext, path: Path, force: bool = False, start: bool = False
            ) -> dict[str, Any]:
    """Load a snapshot into this town (its keys are renamed to this town's prefix):
    `keys` loaded, the agents it `stopped` (live in the snapshot, with no worker here),
    and with `start` those `started` again (and any that `failed` to).

    Refuses when any key already exists unless `force`; then they are replaced. The
    whole load is one MULTI: it happens entirely or not at all.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{path} is not a regular file: give a snapshot made by `tt save`")
        if info.st_size > MAX_SNAPSHOT_BYTES:
            raise UsageError(f"{path} is {info.st_size} bytes: too large for a snapshot"
                             f" (the limit is {MAX_SNAPSHOT_BYTES // 2**30} GiB)")
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
    existing = raw.existing(town.store, targets)
    if existing and not force:
        raise UsageError(
            f"{len(existing)} key(s) of the snapshot already exist in town {town.name!r}"
            f" (e.g. {existing[0]}); add --force to replace them"
        )
    raw.replace(town.store, [(key, entry["type"], entry["value"])
                             for key, entry in zip(targets, entries, strict=True)])
    restored = {e["key"].removeprefix("agent:") for e in entries
                if e["key"].startswith("agent:")}
    report: dict[str, Any] = {"restored_keys": len(entries), "stopped": _settle(town, restored),
                              "started": [], "failed": []}
    if start:
        from tinytown.ops.control_plane import restart

        for name in report["stopped"]:
            try:
                restart(town, resolve(town, name).id)
                report["started"].append(name)
            except TinytownError as exc:
                report["failed"].append({"name": name, "error": str(exc)})
        fleet.forget_down(town.store, [resolve(town, n).id for n in report["started"]])
    return report


def _settle(town: TownContext, agent_ids: set[str]) -> list[str]:
    """Restored agents that were live have no worker here (unless one serves them,
    restored over a live town with --force): `stopped`, their work handed back, and
    remembered for `tt up`. Their names."""
    settled = []
    for agent in town.store.list_agents():
        if agent.id not in agent_ids or agent.state not in states.ALLOWED_LIVE:
            continue
        if worker_status(town, agent)[0]:
            continue
        if requeue.recover_agent(town.store, agent, "restored from a snapshot: no worker",
                                  to=AgentState.STOPPED) is not None:
            settled.append(agent)
    fleet.remember_down(town.store, [a.id for a in settled])
    return sorted(a.name for a in settled)
