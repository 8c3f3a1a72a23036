"""An agent's log files under `.tt/logs/<agent name>/`: `worker.log` and one
`round-<n>.log` (the agent CLI's output) and `round-<n>.prompt` per round."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinytown.core.errors import UsageError
from tinytown.core.models import format_timestamp


def round_logs(folder: Path) -> list[Path]:
    """The folder's round logs, oldest round first."""
    return sorted(folder.glob("round-*.log"), key=lambda p: int(p.stem.split("-")[1]))


def tail(path: Path, limit: int) -> str:
    """The file's last `limit` bytes as text ("" when it cannot be read)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def round_log(logs_dir: Path, name: str, round_no: int | None, limit: int, listed: int
              ) -> dict[str, Any]:
    """Agent `name`'s round logs on this machine: the newest `listed` rounds' numbers,
    sizes and last writes, and the last `limit` bytes of one round's log (the newest by
    default). UsageError for a round this machine has no log of."""
    folder = logs_dir / name
    # a name from a foreign writer cannot point the read outside the logs folder
    inside = folder.parent == logs_dir and name not in ("", ".", "..")
    try:
        found = round_logs(folder) if inside and folder.is_dir() else []
    except ValueError:  # a file named round-<not a number>.log: not a round's
        found = []
    if round_no is not None and (not inside or not (folder / f"round-{round_no}.log")
                                 .is_file()):
        raise UsageError(f"{name} has no round {round_no} log on this machine")
    rounds = []
    for path in found[-listed:]:
        try:
            stat = path.stat()
        except OSError:  # gone since the listing
            continue
        rounds.append({"round": int(path.stem.split("-")[1]), "bytes": stat.st_size,
                       "modified": format_timestamp(datetime.fromtimestamp(stat.st_mtime,
                                                                           UTC))})
    shown = round_no if round_no is not None else (rounds[-1]["round"] if rounds else None)
    text, truncated = "", False
    if shown is not None:
        path = folder / f"round-{shown}.log"
        text = tail(path, limit)
        try:
            truncated = path.stat().st_size > limit
        except OSError:
            pass
    return {"rounds": rounds, "round": shown, "truncated": truncated, "text": text}
