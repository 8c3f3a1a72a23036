"""Where an agent runs: host daemons as plain data, the choice of a host for an agent,
and when a crashed agent is restarted. Pure: the records are read and written in
`tinytown.db.host_store`; the daemon itself is `tinytown.host`.

A host is *live* while its beat is within the heartbeat timeout; a live host that is
*draining* keeps the agents it runs until they are moved, and takes no new ones. Its
load is the number of agents placed on it that cost a process or are about to (cold
and stopped agents cost nothing).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import msgspec

from tinytown.core.models import Agent, AgentState

_NO_PROCESS = frozenset({AgentState.COLD, AgentState.STOPPED})


class HostInfo(msgspec.Struct, kw_only=True):
    """One host daemon as it registered, and its last beat."""

    name: str
    machine: str = ""  # the machine's hostname (a worker's `host` in its runtime hash)
    pid: int = 0
    max_agents: int = 0  # 0: no limit
    labels: list[str] = msgspec.field(default_factory=list)
    clis: list[str] = msgspec.field(default_factory=list)  # agent CLIs installed there
    lacks: list[str] = msgspec.field(default_factory=list)  # presets/entries not installed
    started: float = 0.0  # Unix seconds
    beat: float = 0.0
    draining: bool = False

    def live(self, timeout: float, now: float | None = None) -> bool:
        return ((now if now is not None else time.time()) - self.beat) <= timeout

    def status(self, timeout: float, now: float | None = None) -> str:
        if not self.live(timeout, now):
            return "gone"
        return "draining" if self.draining else "live"


def load(host: str, agents: Iterable[Agent]) -> int:
    """Agents placed on `host` that run, or are to run, a worker process there."""
    return sum(1 for a in agents
               if a.host == host and a.state not in _NO_PROCESS and a.halted is None)


def unfit(host: HostInfo, cli: str, labels: Iterable[str], agents: Iterable[Agent]) -> str | None:
    """Why `host` cannot take an agent of `cli` that needs `labels` (None: it can)."""
    if host.draining:
        return "draining"
    if cli in host.lacks:  # a command line of its own (not a preset) is taken as there
        return f"no {cli!r} installed"
    missing = sorted(set(labels) - set(host.labels))
    if missing:
        return f"no label {', '.join(missing)}"
    if host.max_agents and load(host.name, agents) >= host.max_agents:
        return f"full ({host.max_agents} agents)"
    return None


def choose(hosts: Iterable[HostInfo], cli: str, labels: Iterable[str],
           agents: Iterable[Agent], timeout: float, exclude: Iterable[str] = ()
           ) -> HostInfo | None:
    """The least loaded live host that can take the agent (ties: by name), or None."""
    agents, labels, skip = list(agents), list(labels), set(exclude)
    now = time.time()
    fit = [h for h in hosts if h.name not in skip and h.live(timeout, now)
           and unfit(h, cli, labels, agents) is None]
    if not fit:
        return None
    return min(fit, key=lambda h: (load(h.name, agents), h.name))


def why_none(hosts: Iterable[HostInfo], cli: str, labels: Iterable[str],
             agents: Iterable[Agent], timeout: float) -> str:
    """One line saying why no host can take the agent, host by host."""
    agents, labels = list(agents), list(labels)
    now = time.time()
    reasons = [f"{h.name}: {'gone' if not h.live(timeout, now) else unfit(h, cli, labels, agents)}"
               for h in hosts]
    return "; ".join(reasons) if reasons else "no host daemon has registered (`tt host`)"


def recent_crashes(crashes: Iterable[float], window: float, now: float) -> list[float]:
    return [c for c in crashes if now - c < window]


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before restart number `attempt` (1, 2, ...): base, 2·base, 4·base, ..."""
    return float(min(cap, base * 2 ** max(0, min(attempt - 1, 30))))
