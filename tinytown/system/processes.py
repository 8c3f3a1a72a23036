"""Local processes: whether one runs, and ending a worker and its agent CLI.

Shared by the control plane, recovery, the worker and the embedded Redis; it knows
nothing of Redis (callers pass what the runtime hash recorded).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
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


def group_alive(pgid: int) -> bool:
    """True while a process of group `pgid` runs. A zombie does not count: it is dead,
    and one whose parent is stopped (a frozen worker's CLI) is never reaped, so waiting
    for the group to empty would wait for nothing."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if pid_alive(pgid):  # the group's leader (the CLI) runs: no need to look further
        return True
    try:
        pids = [int(e) for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return True  # no /proc: trust the signal check
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":  # state, ppid, pgrp
            return True
    return False


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
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_recorded(runtime: Mapping[str, str], wait: bool = True) -> threading.Thread | None:
    """On this host, make sure neither a recorded worker nor its CLI goes on running
    (`runtime`: the worker's runtime hash as read). The worker is killed at once; its
    CLI's group gets SIGTERM, then SIGKILL if it lingers: with `wait=False` that wait
    runs in a thread of its own (returned), so that a caller with a deadline of its own
    (the supervisor renewing its lock) is never held up by a CLI that dies slowly."""
    if runtime.get("host") != socket.gethostname():
        return None
    if runtime.get("pid"):  # first: a frozen worker must not wake up to write anything
        try:
            os.kill(int(runtime["pid"]), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError):
            pass
    if not runtime.get("cli_pgid", "").isdigit():
        return None
    if wait:
        kill_group(int(runtime["cli_pgid"]))
        return None
    thread = threading.Thread(target=kill_group, args=(int(runtime["cli_pgid"]),),
                              name="tinytown-kill", daemon=True)
    thread.start()
    return thread
