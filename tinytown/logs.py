"""An agent's log files under `.tt/logs/<agent name>/`: `worker.log` and one
`round-<n>.log` (the agent CLI's output) and `round-<n>.prompt` per round."""

from __future__ import annotations

import os
from pathlib import Path


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
