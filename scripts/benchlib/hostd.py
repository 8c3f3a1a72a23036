"""Host daemons in the bench: towns for them, starting them (`python -m tinytown.host`,
as `tt host` runs), waiting until their loops run, killing one with its workers, and
stopping all a phase started, on failure and Ctrl-C too.

Several host daemons run on this one machine under different names (`--name`); the
workers they start are their children (each a keeper, `tt-keeper`, whose child is the
worker), so a host's whole footprint is the process tree under its daemon.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tinytown.db import host_store, runtime
from tinytown.ops.facade import Town
from tinytown.system.processes import pid_alive

from .common import log, user_env, wait_until
from .procs import CLK_TCK, cpu_ticks, mem_kib, proc_stat, tree, with_keeper
from .scale import make_town, stop_town

if TYPE_CHECKING:
    from .harness import Bench


def set_keys(path: Path, section: str, values: dict[str, object]) -> None:
    """Set `key = value` lines in `[section]` of a TOML file (replacing a line that sets
    the key there, else adding it right under the header)."""
    text = path.read_text()
    head = f"[{section}]\n"
    if head not in text:
        text += f"\n{head}"
    start = text.index(head) + len(head)
    end = text.find("\n[", start)
    end = len(text) if end < 0 else end + 1
    body = text[start:end]
    for key, value in values.items():
        line = f"{key} = {value}"
        body, found = re.subn(rf"(?m)^{re.escape(key)}\s*=.*$", line, body, count=1)
        if not found:
            body = f"{line}\n{body}"
    path.write_text(text[:start] + body + text[end:])


def fleet_town(b: Bench, name: str, timeout: float = 15, interval: int = 5,
               agent: dict[str, object] | None = None) -> Town:
    """A town of its own on the bench's Redis (scale.make_town: these heartbeat
    settings, no supervisor autostart, agents in the town's folder), with `[agent]`
    settings set before any host or worker reads them."""
    town = make_town(b, name, timeout, interval)
    if not agent:
        return town
    root = town.settings.root
    town.close()
    set_keys(root / "tinytown.toml", "agent", agent)
    town = Town.connect(root)
    for key, value in agent.items():
        if getattr(town.settings.agent, key) != value:
            raise RuntimeError(f"{root}/tinytown.toml: [agent] {key} not taken")
    return town


class Hosts:
    """The host daemons of one town, by name; `stop()` ends them, their workers, the
    town's local workers and supervisors, and drops its keys."""

    def __init__(self, b: Bench, town: Town) -> None:
        self.b = b
        self.town = town
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.supervisors: list[int] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """`python -m tinytown.host --town ROOT --name NAME`, as `tt host` runs, in a
        session of its own (the run's marker in its environment)."""
        root = self.town.settings.root
        with (self.b.tmp / f"{self.town.name}-host-{name}.out").open("ab") as out:
            proc = subprocess.Popen(
                [self.b.py, "-m", "tinytown.host", "--town", str(root), "--name", name, *args],
                cwd=root, env=user_env(), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def wait_ready(self, names: list[str], timeout: float = 60) -> None:
        """Until each named host's current daemon has registered and its loop has run
        (a beat after its start: registering comes before Celery starts, and the loop
        only once Celery is ready, so a host merely registered would leave the first
        agents waiting)."""
        limit = self.town.settings.supervisor.heartbeat_timeout_secs

        def ready() -> bool:
            known = {h.name: h for h in host_store.read_all(self.town.store)}
            for name in names:
                h = known.get(name)
                proc = self.procs[name]
                if proc.poll() is not None:
                    raise RuntimeError(f"host {name} exited ({proc.returncode}); see "
                                       f"{self.b.tmp}/{self.town.name}-host-{name}.out")
                if h is None or h.pid != proc.pid or h.beat <= h.started or not h.live(limit):
                    return False
            return True

        wait_until(ready, timeout, f"host(s) {', '.join(names)} to run", 0.05)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def kill(self, name: str) -> tuple[float, list[int]]:
        """The machine dies: SIGKILL the host's daemon and every process under it (its
        workers' keepers, the workers, their children), the daemon first; the time of
        the kill (Unix s) and the pids killed."""
        proc = self.procs[name]
        pids = tree([proc.pid])  # the daemon first: it cannot react to its workers' deaths
        t = time.time()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(10)
        return t, pids

    def stop(self) -> None:
        """SIGKILL every daemon with its tree (a SIGTERM would drain: their agents would
        move, for up to 10 minutes), and the town's workers started here without a host;
        then its supervisors and keys (scale.stop_town)."""
        doomed = tree(self.pids())
        try:
            for agent in self.town.list_agents():
                pid = runtime.local_pid(self.town.store, agent.id)
                if pid is not None and pid_alive(pid):
                    doomed += tree([with_keeper(pid)])
        except Exception as exc:  # Redis gone: the harness's sweep catches the rest
            log(f"could not list {self.town.name}'s workers: {exc}")
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(proc_stat(p) and proc_stat(p)[0] != "Z"
                                                  for p in doomed):
            time.sleep(0.05)
        stop_town(self.b, self.town, self.supervisors)


def started_at(pid: int) -> float | None:
    """When a process started, as Unix seconds (/proc's start time is in clock ticks
    since boot: 10 ms resolution)."""
    st = proc_stat(pid)
    if not st:
        return None
    ago = time.clock_gettime(time.CLOCK_BOOTTIME) - int(st[19]) / CLK_TCK
    return time.time() - ago


def mem_total_mib(pids: list[int]) -> dict[str, float]:
    """RSS, PSS and USS of these processes added up, MiB (PSS shares what they share,
    so it adds up to what they cost together)."""
    total = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
    for pid in pids:
        for k, v in mem_kib(pid).items():
            total[k] += v / 1024
    return total


def cpu_window(b: Bench, groups: dict[str, list[int]], seconds: float) -> dict[str, float]:
    """CPU of each group of processes (exactly these pids) and of redis-server over
    `seconds`, in % of one core; "gone" counts processes that ended meanwhile (their
    ticks are lost)."""
    groups = {**groups, "redis-server": [b.redis_proc.pid] if b.redis_proc else []}
    before = {p: cpu_ticks(p) for pids in groups.values() for p in pids}
    t0 = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    out = {name: sum(max(0, cpu_ticks(p) - before[p]) for p in pids if pid_alive(p))
           / CLK_TCK / wall * 100 for name, pids in groups.items()}
    out["gone"] = float(sum(1 for pids in groups.values() for p in pids if not pid_alive(p)))
    return out


def troubles(town: Town, count: int) -> dict[str, object]:
    """Agents that did not simply start: host restarts (records' `restarts`), and the
    `recovered` events (an agent declared dead) among the newest `count` events, with
    their reasons."""
    reasons: dict[str, int] = {}
    for event in town.store.read_events(count):
        if event.get("kind") == "recovered":
            why = (event.get("reason") or "?")[:60]
            reasons[why] = reasons.get(why, 0) + 1
    return {"restarts": sum(a.restarts for a in town.list_agents()),
            "recovered": sum(reasons.values()), "reasons": reasons}


def state_times(town: Town, count: int) -> dict[str, dict[str, float]]:
    """From the town's newest `count` events: agent id -> new state -> when it first
    entered it (Unix s; an event's id is Redis's clock in ms)."""
    out: dict[str, dict[str, float]] = {}
    for event in town.store.read_events(count):
        if event.get("kind") == "state" and event.get("agent") and event.get("new"):
            at = int(event["id"].split("-")[0]) / 1000
            out.setdefault(event["agent"], {}).setdefault(event["new"], at)
    return out
