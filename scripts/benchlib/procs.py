"""Processes as /proc shows them: CPU, memory, descendants, and stopping ours.

The bench measures other programs' processes (bare Celery workers, redis-server) the
same way as Tinytown's, so it reads /proc itself; whether a pid runs is the package's
tinytown.system.processes.pid_alive.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tinytown.system.processes import pid_alive

MARK_VAR = "TINYTOWN_BENCH_RUN"  # in the environment of every process a run starts
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on


def cpu_ticks(pid: int, children: bool = False) -> int:
    """utime + stime (+ cutime + cstime: its reaped children) of a process, in ticks."""
    st = proc_stat(pid)
    if not st:
        return 0
    return int(st[11]) + int(st[12]) + (int(st[13]) + int(st[14]) if children else 0)


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError):
        return 0


def mem_kib(pid: int) -> dict[str, int]:
    """Rss, Pss and USS (private clean + dirty) of one process, KiB."""
    out = {"rss": rss_bytes(pid) // 1024, "pss": 0, "uss": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key == "Pss":
                out["pss"] = int(rest.split()[0])
            elif key in ("Private_Clean", "Private_Dirty"):
                out["uss"] += int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def with_keeper(pid: int) -> int:
    """The agent's whole footprint starts at its worker's keeper (`tt-keeper`, the parent
    that adopts what a round leaves behind), when it has one."""
    st = proc_stat(pid)
    if st:
        parent = int(st[1])
        try:
            if Path(f"/proc/{parent}/comm").read_text().strip() == "tt-keeper":
                return parent
        except OSError:
            pass
    return pid


def tree_mem_mib(pid: int) -> dict[str, float]:
    """Memory of a process and all its descendants, MiB."""
    total = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
    for p in tree([pid]):
        for k, v in mem_kib(p).items():
            total[k] += v / 1024
    return total


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st:
                kids.setdefault(int(st[1]), []).append(int(entry))
    return kids


def tree(pids: list[int]) -> list[int]:
    """The pids and all their descendants (alive ones)."""
    kids = children_map()
    out: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in out or proc_stat(pid) is None:
            continue
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def system_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def marked_pids(mark: str) -> list[int]:
    """Every process carrying this run's marker in its environment (all we started)."""
    needle = f"{MARK_VAR}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(entry))
    return found


def terminate(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM, wait up to `grace`, SIGKILL what is left."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
