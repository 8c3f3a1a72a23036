"""Failover: two supervisors for one town, leader and standby; SIGKILL the leader.

Timed from the kill, in each trial:
- the standby leads: the leader key `tt:<town>:supervisor:leader` names it (polled
  every 5 ms);
- the new leader has made its first check: right after the kill, a probe agent (a
  `--no-start` record until then) gets a worker on this host whose process is gone (a
  pid above Linux's PID_MAX_LIMIT, which no process has). Any check recovers such an
  agent at once, so the probe's `recovered` event is the first check;
- an agent whose fake worker elsewhere was silenced just before the kill is marked
  `error`: a new leader judges the beats it finds at once, so this is the timeout
  after the last beat, or the takeover if that is later (reported, no target).
A new standby is started after each trial. The town has a few healthy fake workers
beating throughout (the scale phase's load generator); none may be marked `error`.

Then a host's death, in another town (heartbeat timeout 3 s, interval 1 s) with a
supervisor and two host daemons, hA and hB (`python -m tinytown.host`): M agents
placed on hA and idle; SIGKILL hA's daemon and every process under it (its workers'
keepers, the workers), as a machine dies. Timed from the kill, from the town's event
stream (Redis's clock, ms): each agent `error` (the supervisor sees its worker's pid
gone), `moved` to hB (hB adopts it once hA's beat is older than the timeout), and
`idle` again with its worker on hB; the figure is the last of the M. hA is started
again before the next trial, with M new agents.
"""

from __future__ import annotations

import os
import random
import signal
import time
from typing import TYPE_CHECKING, Any

from tinytown.core.models import AgentState
from tinytown.db import leader, runtime
from tinytown.ops.facade import Town
from tinytown.system.processes import pid_alive

from .common import HOST, log, median, wait_until
from .hostd import Hosts, fleet_town
from .scale import (
    OTHER_HOST,
    Fake,
    LoadGen,
    Recovered,
    add_fakes,
    hold,
    make_town,
    record_agents,
    start_supervisor,
    stop_town,
)

if TYPE_CHECKING:
    from .harness import Bench

DEAD_PID = 4_194_304  # Linux's PID_MAX_LIMIT: pids stay below it, so none runs here
TIMEOUT = 4.0  # heartbeat_timeout_secs: from 4 s on, the leader's tick is 1 s as by default
INTERVAL = 1  # heartbeat_interval_secs: the fake workers beat every second
TARGET = 5.0
HOST_TIMEOUT = 3.0  # the host-death town's heartbeat_timeout_secs: a host is gone after it
HOST_INTERVAL = 1  # and its heartbeat_interval_secs (under the timeout)
HOST_AGENTS = 4  # agents on the host that dies


def leading(town: Town, pids: list[int]) -> int | None:
    owner = leader.leader(town.store)
    return next((p for p in pids if owner == f"{p}@{HOST}"), None)


def takeover(town: Town, old: str, deadline: float) -> float | None:
    """Poll the leader key until someone other than `old` holds it; when (Unix s)."""
    while time.monotonic() < deadline:
        owner = leader.leader(town.store)
        if owner is not None and owner != old:
            return time.time()
        time.sleep(0.005)
    return None


def trial(b: Bench, town: Town, gen: LoadGen, sups: list[int], victim: Fake,
          probe: tuple[str, str], follower: Recovered) -> dict[str, Any]:
    old = wait_until(lambda: leading(town, sups), 30, "a leading supervisor", 0.01)
    time.sleep(random.uniform(0, 1.5))  # any moment of its lock-renewal cycle
    gen.silence(victim)
    t_kill = time.time()
    os.kill(old, signal.SIGKILL)
    sups.remove(old)
    wait_until(lambda: not pid_alive(old), 5, "the leader to die", 0.001)
    hold(town, [probe], HOST, [DEAD_PID])  # its worker here, and gone
    t_lead = takeover(town, f"{old}@{HOST}", time.monotonic() + 30)
    missing = follower.wait({probe[0]}, 30)
    sups.append(start_supervisor(b, town))  # the next standby
    missing |= follower.wait({victim.id}, TIMEOUT + 30)
    if t_lead is None or missing:
        raise RuntimeError(f"failover not seen (takeover {t_lead}, missing {missing})")
    (beat,), = runtime.read_many(town.store, [victim.id], "beat")
    return {"lead": t_lead - t_kill, "check": follower.at[probe[0]] - t_kill,
            "victim": follower.at[victim.id] - t_kill,
            "victim_from_beat": follower.at[victim.id] - float(beat or t_kill)}


def run(b: Bench) -> None:
    trials = 3 if b.quick else 5
    town = make_town(b, "failover", TIMEOUT, INTERVAL)
    sups: list[int] = []
    gen: LoadGen | None = None
    got: list[dict[str, Any]] = []
    try:
        fakes = add_fakes(town, [f"f{i:02d}" for i in range(trials + 10)])
        probes = list(zip(record_agents(town, [f"probe{k}" for k in range(trials)]),
                          [f"probe{k}" for k in range(trials)], strict=True))
        gen = LoadGen(town, fakes, INTERVAL, round_every=None)
        gen.start()
        follower = Recovered(town)
        sups.append(start_supervisor(b, town))
        wait_until(lambda: leading(town, sups), 30, "the first supervisor to lead", 0.01)
        sups.append(start_supervisor(b, town))
        for k in range(trials):
            got.append(trial(b, town, gen, sups, fakes[k], probes[k], follower))
            log(f"failover trial {k}: standby leads after {got[-1]['lead']:.2f}s, first check "
                f"{got[-1]['check']:.2f}s, silenced agent error {got[-1]['victim']:.2f}s")
        gen.close()
        victims = {f.id for f in fakes[:trials]} | {p[0] for p in probes}
        errors = {a.id for a in town.list_agents() if a.state == AgentState.ERROR}
        wrong = sorted((errors | set(follower.at)) - victims)
    finally:
        if gen is not None:
            gen.close()
        stop_town(b, town, sups)
    report(b, got, wrong, trials)
    host_death(b, 1 if b.quick else 3, HOST_AGENTS)


def report(b: Bench, got: list[dict[str, Any]], wrong: list[str], trials: int) -> None:
    lead = [g["lead"] for g in got]
    check = [g["check"] for g in got]
    victim = [g["victim"] for g in got]
    b.results.raw["failover"] = {
        "trials": got, "heartbeat_timeout_secs": TIMEOUT, "heartbeat_interval_secs": INTERVAL,
        "lock_ttl_secs": 4.0, "healthy_marked_error": wrong, "fake_workers_on": OTHER_HOST}
    b.results.notes.append(
        f"failover: a town of its own, heartbeat_timeout_secs {TIMEOUT:g} (the leader's "
        f"tick is 1 s, as by default), heartbeat_interval_secs {INTERVAL}, 10 healthy "
        "fake workers elsewhere; first check = a probe agent whose local worker is gone, "
        "recorded right after the kill, is recovered")
    add = b.results.add
    within = f"≤ {TARGET:g} s"

    def holds(x: float | None, r: float | None) -> bool:
        return x is not None and x <= TARGET

    for what, values in (("standby leads", lead), ("new leader's first check", check)):
        add(f"failover: leader SIGKILL → {what}, p50 of {trials}", "s", median(values),
            TARGET, within, holds, baseline_name="the target")
        add(f"failover: leader SIGKILL → {what}, max", "s", max(values), TARGET, within,
            holds, baseline_name="the target")
    add("failover: agent silenced at the kill → `error` (median)", "s", median(victim), None,
        f"report (the {TIMEOUT:g} s timeout, or the takeover)", ratio=False)
    add("failover: healthy agents marked `error`", "", float(len(wrong)), None, "0",
        lambda x, r: x == 0, ratio=False)


# --- a host's death ---------------------------------------------------------------------


def host_trial(fleet: Hosts, k: int, m: int) -> dict[str, Any]:
    """M agents on hA, idle; hA's daemon and workers killed; until all M are idle on hB."""
    town = fleet.town
    handles = [town.spawn_agent(f"d{k}x{i}", cli="/bin/true", host="hA", workspace="shared")
               for i in range(m)]
    for h in handles:
        h.wait_for_state(AgentState.IDLE, timeout=60)
    ids = {h.id for h in handles}
    time.sleep(random.uniform(0, 1))  # any moment of the host's 1 s beat
    t_kill, killed = fleet.kill("hA")

    def back() -> bool:
        agents = [a for a in town.list_agents() if a.id in ids]
        return len(agents) == m and all(a.state == AgentState.IDLE and a.host == "hB"
                                        for a in agents)

    wait_until(back, 120, f"{m} agents idle again on hB", 0.02)
    at: dict[str, dict[str, float]] = {i: {} for i in ids}
    for event in town.store.read_events(1000):
        when = int(event["id"].split("-")[0]) / 1000
        agent = event.get("agent")
        if agent not in ids or when < t_kill - 0.001:
            continue
        step = "moved" if event.get("kind") == "moved" else \
            event.get("new") if event.get("kind") == "state" else None
        if step in ("error", "moved", "idle"):
            at[agent].setdefault(step, when - t_kill)
    missing = [i for i, steps in at.items() if set(steps) != {"error", "moved", "idle"}]
    if missing:
        raise RuntimeError(f"host death: events missing for {len(missing)} agent(s): {at}")
    return {"all_idle": max(s["idle"] for s in at.values()), "killed": len(killed),
            "agents": list(at.values())}


def host_death(b: Bench, trials: int, m: int) -> None:
    fleet = Hosts(b, fleet_town(b, "hostdeath", HOST_TIMEOUT, HOST_INTERVAL))
    got: list[dict[str, Any]] = []
    try:
        fleet.supervisors.append(start_supervisor(b, fleet.town))
        for name in ("hA", "hB"):
            fleet.start(name)
        for k in range(trials):
            if k:
                fleet.start("hA")  # the machine is back, with its host daemon
            fleet.wait_ready(["hA", "hB"])
            got.append(host_trial(fleet, k, m))
            err, moved = (median([s[x] for s in got[-1]["agents"]]) for x in ("error", "moved"))
            log(f"host death trial {k}: {got[-1]['killed']} processes killed; all {m} idle on"
                f" hB after {got[-1]['all_idle']:.2f}s (medians: error {err:.2f}s, moved"
                f" {moved:.2f}s)")
    finally:
        fleet.stop()
    report_host_death(b, got, trials, m)


def report_host_death(b: Bench, got: list[dict[str, Any]], trials: int, m: int) -> None:
    total = [g["all_idle"] for g in got]
    steps = [s for g in got for s in g["agents"]]
    b.results.raw["failover_host_death"] = {
        "trials": got, "agents": m, "heartbeat_timeout_secs": HOST_TIMEOUT,
        "heartbeat_interval_secs": HOST_INTERVAL}
    b.results.notes.append(
        f"failover, host death: a town of its own, heartbeat_timeout_secs {HOST_TIMEOUT:g},"
        f" heartbeat_interval_secs {HOST_INTERVAL}, two host daemons on this machine; {m}"
        " agents on hA, whose daemon and workers are SIGKILLed")
    add = b.results.add
    add(f"host death: SIGKILL → all {m} agents idle on the other host, p50 of {trials}", "s",
        median(total), None, f"report (host timeout {HOST_TIMEOUT:g} s)", ratio=False)
    add(f"host death: SIGKILL → all {m} agents idle on the other host, max", "s", max(total),
        None, "report", ratio=False)
    for step, what in (("error", "each agent `error`"), ("moved", "each moved to the other host")):
        add(f"host death: SIGKILL → {what}, median of {len(steps)}", "s",
            median([s[step] for s in steps]), None, "report", ratio=False)
