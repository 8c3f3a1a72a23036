"""Many agents on their own town: `tt spawn` n times as a shell loop would, until all
are idle; their fresh memory and idle CPU (with the supervisor's, and redis-server's
meanwhile); against n bare Celery workers with the same settings."""

from __future__ import annotations

import resource
import subprocess
import time
from typing import TYPE_CHECKING, Any

from tinytown.core.models import AgentState
from tinytown.system.processes import pid_alive

from .common import log, median, user_env, wait_until, worker_pid
from .procs import CLK_TCK, cpu_ticks, tree, tree_mem_mib, with_keeper

if TYPE_CHECKING:
    from .harness import Bench


def cpu_window(b: Bench, groups: dict[str, list[int]], seconds: float) -> dict[str, float]:
    """CPU of each group of processes (with their children) and of redis-server over
    `seconds`, in % of one core."""
    procs = {name: tree(pids) for name, pids in groups.items()}
    procs["redis-server"] = [b.redis_proc.pid] if b.redis_proc else []
    before = {p: cpu_ticks(p) for pids in procs.values() for p in pids}
    t0 = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    return {name: sum(cpu_ticks(p) - before[p] for p in pids if pid_alive(p)) / CLK_TCK / wall
            * 100 for name, pids in procs.items()}


def tinytown_side(b: Bench, n: int, window: float, settle: float) -> dict[str, Any]:
    town = b.new_town("many")
    sup = [b.supervisor_pid[town.name]]
    wait_until(lambda: pid_alive(sup[0]), 10, "the supervisor")
    env = user_env()
    log(f"many: spawning {n} agents with `tt spawn`")
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    for i in range(n):
        subprocess.run([*b.tt, "spawn", f"a{i:02d}", "--cli", "/bin/true"],
                       cwd=town.settings.root, env=env, check=True, capture_output=True,
                       timeout=120)
    t_loop = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawn_cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / n

    def all_idle() -> bool:
        agents = town.list_agents()
        return len(agents) == n and all(a.state == AgentState.IDLE for a in agents)

    wait_until(all_idle, 300, f"{n} agents to be idle", 0.1)
    t_idle = time.monotonic() - t0
    time.sleep(settle)
    pids = [worker_pid(town, a.id) for a in town.list_agents()]
    mem = [tree_mem_mib(with_keeper(pid)) for pid in pids]  # the keeper counts
    boot_cpu = median([cpu_ticks(pid) / CLK_TCK for pid in pids])  # start-up + settle
    cpu = cpu_window(b, {"workers": pids, "supervisor": sup}, window)
    cpu_all = cpu["workers"] + cpu["supervisor"]
    log(f"many: tinytown {n} idle after {t_idle:.1f}s (spawn loop {t_loop:.1f}s), "
        f"idle CPU {cpu_all:.1f}% (workers {cpu['workers']:.1f}%, supervisor "
        f"{cpu['supervisor']:.1f}%; + redis {cpu['redis-server']:.1f}%)")
    t = time.monotonic()
    b.down(town)
    wait_until(lambda: not any(pid_alive(p) for p in pids), 60, "the agents to exit", 0.1)
    return {"idle": t_idle, "loop": t_loop, "down": time.monotonic() - t, "cpu": cpu_all,
            "workers": cpu["workers"], "supervisor": cpu["supervisor"],
            "redis": cpu["redis-server"], "spawn_cpu": spawn_cpu, "boot_cpu": boot_cpu,
            "mem": mem}


def baseline_side(b: Bench, n: int, window: float, settle: float) -> dict[str, Any]:
    b.r.delete(b.bl.READY_LIST)
    log(f"many: starting {n} bare Celery workers")
    t0 = time.monotonic()
    procs = [b.start_baseline(f"m{i:02d}", f"bench.m{i:02d}") for i in range(n)]
    t_loop = time.monotonic() - t0
    b.wait_baseline_ready([f"m{i:02d}" for i in range(n)], 300)
    t_idle = time.monotonic() - t0
    time.sleep(settle)
    mem = [tree_mem_mib(proc.pid) for proc in procs]
    boot_cpu = median([cpu_ticks(proc.pid) / CLK_TCK for proc in procs])
    cpu = cpu_window(b, {"workers": [p.pid for p in procs]}, window)
    log(f"many: baseline {n} ready after {t_idle:.1f}s, idle CPU {cpu['workers']:.1f}% "
        f"(+ redis {cpu['redis-server']:.1f}%)")
    return {"idle": t_idle, "loop": t_loop, "cpu": cpu["workers"],
            "redis": cpu["redis-server"], "boot_cpu": boot_cpu, "mem": mem, "procs": procs}


def run(b: Bench) -> None:
    n = 5 if b.quick else 50
    window = 5.0 if b.quick else 30.0
    settle = 2.0 if b.quick else 5.0
    tt = tinytown_side(b, n, window, settle)
    bl = baseline_side(b, n, window, settle)
    log(f"many: CPU to start one agent: `tt spawn` {tt['spawn_cpu']:.2f}s + its worker "
        f"{tt['boot_cpu']:.2f}s; one bare worker {bl['boot_cpu']:.2f}s")
    b.stop_baselines(bl["procs"])
    b.results.raw["many"] = {
        "agents": n, "window_s": window, "tinytown_all_idle_s": tt["idle"],
        "tinytown_spawn_loop_s": tt["loop"], "tinytown_down_s": tt["down"],
        "baseline_all_ready_s": bl["idle"], "baseline_start_loop_s": bl["loop"],
        "tinytown_cpu_pct": tt["cpu"], "baseline_cpu_pct": bl["cpu"],
        "tinytown_workers_cpu_pct": tt["workers"],
        "tt_spawn_cpu_s_each": tt["spawn_cpu"],
        "worker_cpu_s_to_idle_tinytown": tt["boot_cpu"],
        "worker_cpu_s_to_ready_baseline": bl["boot_cpu"],
        "tinytown_supervisor_cpu_pct": tt["supervisor"],
        "redis_cpu_pct_tinytown": tt["redis"], "redis_cpu_pct_baseline": bl["redis"],
        "memory_mib_tinytown": tt["mem"], "memory_mib_baseline": bl["mem"],
    }
    add = b.results.add
    add(f"idle memory per agent, fresh (RSS, median of {n})", "MiB",
        median([m["rss"] for m in tt["mem"]]), median([m["rss"] for m in bl["mem"]]),
        "≤ 1.1×", lambda v, r: r is not None and r <= 1.1,
        baseline_name="bare Celery worker, threads, concurrency 1")
    add("idle memory per agent, fresh (USS: private, not shared)", "MiB",
        median([m["uss"] for m in tt["mem"]]), median([m["uss"] for m in bl["mem"]]), "report")
    add(f"{n} agents: `tt spawn` ×{n} → all idle", "s", tt["idle"], bl["idle"],
        "≤ 30 s", lambda v, r: v is not None and v <= 30,
        baseline_name=f"{n} bare Celery workers started → all ready")
    add(f"{n} agents: idle CPU of the town over {window:g} s", "% core", tt["cpu"], bl["cpu"],
        "≤ 5%", lambda v, r: v is not None and v <= 5, baseline_name=f"{n} bare Celery workers")
    add(f"{n} agents: of which the supervisor", "% core", tt["supervisor"], None, "report",
        ratio=False)
    add(f"{n} agents: redis-server CPU meanwhile", "% core", tt["redis"], bl["redis"], "report")
