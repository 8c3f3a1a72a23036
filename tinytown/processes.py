"""Local processes: whether one runs, and ending a worker and its agent CLI.

Shared by the control plane, recovery, the worker and the embedded Redis; it knows
nothing of Redis (callers pass what the runtime hash recorded).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust the signal check
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def kill_group(pgid: int, reap: Callable[[], object] | None = None) -> None:
    """SIGTERM the group, then SIGKILL what is left a moment later. `reap`: called as it
    waits, to collect a child of ours in the group (an unreaped one keeps it alive)."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_recorded(runtime: Mapping[str, str]) -> None:
    """On this host, make sure neither a recorded worker nor its CLI goes on running
    (`runtime`: the worker's runtime hash as read)."""
    if runtime.get("host") != socket.gethostname():
        return
    if runtime.get("cli_pgid"):
        kill_group(int(runtime["cli_pgid"]))
    if runtime.get("pid"):
        try:
            os.kill(int(runtime["pid"]), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError):
            pass
