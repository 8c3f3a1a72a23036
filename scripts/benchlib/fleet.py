"""The fleet: many agents over two host daemons, then the same town scaled to zero.

Three sides, one after another (nothing else of the phase runs meanwhile):

- **baseline**: N bare Celery workers (many.baseline_side: the same flags and
  heartbeat as a town's workers): started → all ready, idle CPU over the window,
  memory per worker.
- **warm**: a town of its own (default heartbeats: 5 s, timeout 15 s) with a
  supervisor and two host daemons `hA` and `hB` (`python -m tinytown.host`, as `tt
  host` runs). N agents spawned one after another with `Town.spawn_agent(host="auto")`,
  agent CLI /bin/true: from the first spawn until all are `idle`; where they landed;
  per agent, spawn → its host started the worker (the keeper's start time in /proc,
  10 ms ticks) and that start → `idle` (its state event, Redis's clock). After
  `settle`, CPU over the window of the whole town (the host daemons, every process
  under them: keepers, workers, their children; the supervisor), redis-server beside
  it; memory per agent (keeper + worker + children: RSS, USS) and the whole town's
  (PSS, which adds up).
- **cold**: another such town with `[agent] idle_timeout_secs = T`. First its floor:
  hosts and supervisor with no agent (CPU over the window, memory). Then N agents
  spawned the same way: from the first spawn until all are `cold` and no process is
  left under the hosts; then the same CPU window and memory.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tinytown.core.models import Agent, AgentState
from tinytown.db import runtime

from . import many
from .common import log, median, pct, wait_until
from .hostd import (
    Hosts,
    cpu_window,
    fleet_town,
    mem_total_mib,
    started_at,
    state_times,
    troubles,
)
from .procs import CLK_TCK, cpu_ticks, tree, tree_mem_mib, with_keeper
from .scale import start_supervisor

if TYPE_CHECKING:
    from tinytown.ops.facade import Town

    from .harness import Bench

HOSTS = ["hA", "hB"]
FULL_N = 200  # ~70 MiB and ~1 CPU-s to start each: 14 GiB, ~2 min of two cores
INTERVAL = 5  # the town's heartbeat_interval_secs (the default), the baseline's too


def start_fleet(b: Bench, name: str, agent: dict[str, object] | None = None) -> Hosts:
    """A town with its supervisor and the two host daemons, their loops running."""
    fleet = Hosts(b, fleet_town(b, name, 15, INTERVAL, agent))
    try:
        fleet.supervisors.append(start_supervisor(b, fleet.town))
        for name_ in HOSTS:
            fleet.start(name_)
        fleet.wait_ready(HOSTS)
    except BaseException:
        fleet.stop()
        raise
    return fleet


def spawn_all(town: Town, n: int, prefix: str
              ) -> tuple[float, float, float, dict[str, float]]:
    """N agents, one after another, placed by the town; (first spawn's time, the loop's
    duration, the CPU time of one spawn (mean), agent id -> when its spawn returned)."""
    spawned: dict[str, float] = {}
    t0, cpu0 = time.time(), time.process_time()
    for i in range(n):
        h = town.spawn_agent(f"{prefix}{i:03d}", cli="/bin/true", host="auto",
                             workspace="shared")
        spawned[h.id] = time.time()
    return t0, time.time() - t0, (time.process_time() - cpu0) / n, spawned


def wait_all(town: Town, n: int, ok: Callable[[Agent], bool], timeout: float, what: str,
             also: Callable[[], bool] = lambda: True) -> float:
    """Poll until the town has n agents, all `ok` (and `also`); when (Unix s)."""
    def done() -> bool:
        agents = town.list_agents()
        return len(agents) == n and all(ok(a) for a in agents) and also()

    wait_until(done, timeout, what, 0.25)
    return time.time()


def warm_side(b: Bench, n: int, window: float, settle: float) -> dict[str, Any]:
    fleet = start_fleet(b, "fleet")
    town = fleet.town
    try:
        log(f"fleet: spawning {n} agents over hosts {', '.join(HOSTS)}")
        t0, loop, spawn_cpu, spawned = spawn_all(town, n, "w")
        t_idle = wait_all(town, n, lambda a: a.state == AgentState.IDLE, 600,
                          f"{n} agents to be idle") - t0
        agents = town.list_agents()
        placed = dict(Counter(a.host or "(here)" for a in agents))
        trouble = troubles(town, 20 * n)
        log(f"fleet: {n} idle {t_idle:.1f}s after the first spawn (spawn loop {loop:.1f}s); "
            f"placed {placed}; {trouble}")
        time.sleep(settle)
        keepers: dict[str, int] = {}
        boot_cpu: list[float] = []
        for a in agents:
            pid = runtime.local_pid(town.store, a.id)
            if pid is None:
                raise RuntimeError(f"agent {a.name} is idle with no worker recorded")
            keepers[a.id] = with_keeper(pid)
            boot_cpu.append((cpu_ticks(pid) + cpu_ticks(keepers[a.id])) / CLK_TCK)
        launched = {i: started_at(k) for i, k in keepers.items()}
        ready = state_times(town, 20 * n)
        react = [launched[i] - spawned[i] for i in keepers if launched[i] is not None]
        boot = [ready[i]["idle"] - launched[i] for i in keepers
                if launched[i] is not None and "idle" in ready.get(i, {})]
        host_pids = fleet.pids()
        under = sorted(set(tree(host_pids)) - set(host_pids))
        strays = sorted(set(under) - set(tree(list(keepers.values()))))
        if strays:
            log(f"fleet: {len(strays)} process(es) under the hosts serve no agent: {strays[:10]}")
        sup_pids = tree(fleet.supervisors)
        mem = [tree_mem_mib(k) for k in keepers.values()]
        total = mem_total_mib(under + host_pids + sup_pids)
        parts = {"agents": mem_total_mib(under), "hosts": mem_total_mib(host_pids),
                 "supervisor": mem_total_mib(sup_pids)}
        cpu = cpu_window(b, {"agents": under, "hosts": host_pids, "supervisor": sup_pids},
                         window)
    finally:
        fleet.stop()
    cpu_all = cpu["agents"] + cpu["hosts"] + cpu["supervisor"]
    log(f"fleet: warm, idle CPU {cpu_all:.1f}% (agents {cpu['agents']:.1f}%, hosts "
        f"{cpu['hosts']:.1f}%, supervisor {cpu['supervisor']:.1f}%; + redis "
        f"{cpu['redis-server']:.1f}%), town PSS {total['pss']:.0f} MiB; spawn → host "
        f"started it: median {median(react):.2f}s, max {max(react):.2f}s; that start → "
        f"idle: median {median(boot):.2f}s, max {max(boot):.2f}s")
    return {"idle_s": t_idle, "spawn_loop_s": loop, "spawn_cpu_s": spawn_cpu,
            "troubles": trouble, "processes_under_hosts": len(under), "strays": len(strays),
            "worker_cpu_s": median(boot_cpu), "placed": placed, "cpu": cpu,
            "cpu_all": cpu_all, "mem": mem, "total": total, "parts": parts,
            "spawn_to_launch_s": react, "launch_to_idle_s": boot}


def cold_side(b: Bench, n: int, window: float, settle: float,
              idle_timeout: float) -> dict[str, Any]:
    fleet = start_fleet(b, "fleetcold", {"idle_timeout_secs": idle_timeout})
    town = fleet.town
    try:
        time.sleep(settle)
        host_pids = fleet.pids()
        sup_pids = tree(fleet.supervisors)
        floor_mem = mem_total_mib(host_pids + sup_pids)
        floor = cpu_window(b, {"hosts": host_pids, "supervisor": sup_pids}, window)
        log(f"fleet: floor (2 hosts + supervisor, no agent) CPU "
            f"{floor['hosts'] + floor['supervisor']:.1f}%, PSS {floor_mem['pss']:.0f} MiB")
        log(f"fleet: spawning {n} agents with idle_timeout_secs {idle_timeout:g}")
        t0, loop, _, _ = spawn_all(town, n, "c")

        def no_workers() -> bool:
            return not set(tree(host_pids)) - set(host_pids)

        t_cold = wait_all(town, n, lambda a: a.state == AgentState.COLD, 600 + idle_timeout,
                          f"{n} agents to be cold, their workers gone", no_workers) - t0
        at = state_times(town, 20 * n)
        idle_for = [s["cold"] - s["idle"] for s in at.values() if "cold" in s and "idle" in s]
        trouble = troubles(town, 20 * n)
        log(f"fleet: {n} cold and their workers gone {t_cold:.1f}s after the first spawn; "
            f"idle → cold after {median(idle_for):.1f}s (median), {max(idle_for):.1f}s (max); "
            f"{trouble}")
        time.sleep(settle)
        rest = tree(host_pids)
        mem = mem_total_mib(rest + sup_pids)
        cpu = cpu_window(b, {"hosts": rest, "supervisor": sup_pids}, window)
    finally:
        fleet.stop()
    cpu_all = cpu["hosts"] + cpu["supervisor"]
    floor_all = floor["hosts"] + floor["supervisor"]
    log(f"fleet: cold, idle CPU {cpu_all:.1f}% (hosts {cpu['hosts']:.1f}%, supervisor "
        f"{cpu['supervisor']:.1f}%; + redis {cpu['redis-server']:.1f}%), town PSS "
        f"{mem['pss']:.0f} MiB")
    return {"cold_s": t_cold, "spawn_loop_s": loop, "idle_to_cold_s": idle_for,
            "troubles": trouble,
            "cpu": cpu, "cpu_all": cpu_all, "mem": mem, "floor_cpu": floor,
            "floor_cpu_all": floor_all, "floor_mem": floor_mem}


def run(b: Bench) -> None:
    n = 10 if b.quick else FULL_N
    window = 5.0 if b.quick else 20.0
    settle = 2.0 if b.quick else 5.0
    idle_timeout = 3.0 if b.quick else 5.0
    b.heartbeat = INTERVAL  # the baseline workers beat as the town's do
    bl = many.baseline_side(b, n, window, settle)
    b.stop_baselines(bl["procs"])
    warm = warm_side(b, n, window, settle)
    cold = cold_side(b, n, window, settle, idle_timeout)
    report(b, n, window, idle_timeout, bl, warm, cold)


def report(b: Bench, n: int, window: float, idle_timeout: float, bl: dict[str, Any],
           warm: dict[str, Any], cold: dict[str, Any]) -> None:
    bl_pss = sum(m["pss"] for m in bl["mem"])
    b.results.raw["fleet"] = {
        "agents": n, "hosts": HOSTS, "window_s": window, "idle_timeout_secs": idle_timeout,
        "heartbeat_interval_secs": INTERVAL,
        "warm": warm,
        "cold": cold,
        "baseline": {"all_ready_s": bl["idle"], "start_loop_s": bl["loop"],
                     "worker_cpu_s": bl["boot_cpu"],
                     "cpu_pct": bl["cpu"], "redis_cpu_pct": bl["redis"],
                     "memory_mib": bl["mem"], "pss_total_mib": bl_pss},
    }
    b.results.notes.append(
        f"fleet: {n} agents (CLI /bin/true) over two host daemons on this machine, placed"
        f" by the town ({', '.join(f'{k} {v}' for k, v in sorted(warm['placed'].items()))});"
        f" heartbeat {INTERVAL} s; the cold town has idle_timeout_secs {idle_timeout:g};"
        " the whole town = host daemons + every process under them + the supervisor")
    add = b.results.add
    add(f"fleet, {n} agents on 2 hosts: first spawn → all idle", "s", warm["idle_s"],
        bl["idle"], "report", baseline_name=f"{n} bare Celery workers started → all ready")
    add(f"fleet, {n} agents: CPU of one agent's start (spawn_agent + worker + keeper), median",
        "CPU-s",
        warm["spawn_cpu_s"] + warm["worker_cpu_s"], bl["boot_cpu"], "report",
        baseline_name="one bare Celery worker's start")
    add(f"fleet, {n} agents: spawn → its host started the worker, median", "s",
        median(warm["spawn_to_launch_s"]), None, "report", ratio=False)
    add(f"fleet, {n} agents: spawn → its host started the worker, max", "s",
        max(warm["spawn_to_launch_s"]), None, "report", ratio=False)
    add(f"fleet, {n} agents: worker started → idle, median", "s",
        median(warm["launch_to_idle_s"]), None, "report", ratio=False)
    add(f"fleet, {n} agents: worker started → idle, p99", "s",
        pct(warm["launch_to_idle_s"], 99), None, "report", ratio=False)
    add(f"fleet, {n} agents: declared dead while starting (recovered), warm + cold town", "",
        float(warm["troubles"]["recovered"] + cold["troubles"]["recovered"]), None, "report",
        ratio=False)
    add(f"fleet, {n} idle agents: CPU of the whole town over {window:g} s", "% core",
        warm["cpu_all"], bl["cpu"], "report", baseline_name=f"{n} bare Celery workers")
    add(f"fleet, {n} idle agents: of which the 2 host daemons", "% core",
        warm["cpu"]["hosts"], None, "report", ratio=False)
    add(f"fleet, {n} idle agents: of which the supervisor", "% core",
        warm["cpu"]["supervisor"], None, "report", ratio=False)
    add(f"fleet, {n} idle agents: memory per agent (RSS, median)", "MiB",
        median([m["rss"] for m in warm["mem"]]), median([m["rss"] for m in bl["mem"]]),
        "report", baseline_name="bare Celery worker")
    add(f"fleet, {n} idle agents: memory per agent (USS, median)", "MiB",
        median([m["uss"] for m in warm["mem"]]), median([m["uss"] for m in bl["mem"]]),
        "report", baseline_name="bare Celery worker")
    add(f"fleet, {n} idle agents: memory of the whole town (PSS)", "MiB",
        warm["total"]["pss"], bl_pss, "report", baseline_name=f"{n} bare Celery workers")
    add(f"fleet, {n} agents, idle_timeout_secs {idle_timeout:g}: first spawn → all cold, "
        "workers gone", "s", cold["cold_s"], None, "report", ratio=False)
    add(f"fleet, {n} cold agents: CPU of the whole town over {window:g} s", "% core",
        cold["cpu_all"], cold["floor_cpu_all"], "report",
        baseline_name="floor: 2 hosts + supervisor, no agent")
    add(f"fleet, {n} cold agents: memory of the whole town (PSS)", "MiB",
        cold["mem"]["pss"], cold["floor_mem"]["pss"], "report",
        baseline_name="floor: 2 hosts + supervisor, no agent")
