"""Wake from cold: `assign` to a cold agent → its CLI has started, against a warm
(idle) agent's dispatch, in the same run, taking turns.

Two towns of their own (default heartbeats), each agent's CLI the recorder (harness:
it writes $EPOCHREALTIME, ~1 ms after its exec, into a file named by the task id), so
each sample is exact: time.time() just before `Town.assign` → the time the CLI wrote.

- **hosted**: a supervisor and one host daemon `hA`; K cold agents
  (`spawn_agent(cold=True)`, placed on hA, no process), each woken once by a task;
  and one warm agent (idle) that takes one task per turn, as the dispatch phase does.
- **local**: no host daemon: K cold agents woken the same way, whose worker the
  client starts here, detached (`tinytown.ops.hosting.wake` → the launcher).

Each turn runs a hosted wake, a warm dispatch and a local wake, the order rotated.
Each sample waits until its task is `completed` and its agent `idle`. For each wake,
also: assign → the worker process started (its keeper's start time in /proc, 10 ms
ticks) → the worker ready (its `idle` state event, Redis's clock in ms) → CLI started.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tinytown.core.models import AgentState, TaskState
from tinytown.db import runtime

from .common import log, median, pct, wait_until
from .dispatch import read_rec
from .hostd import Hosts, fleet_town, started_at
from .procs import with_keeper
from .scale import start_supervisor

if TYPE_CHECKING:
    from tinytown.ops.facade import AgentHandle, Town

    from .harness import Bench

SIDES = ("hosted", "warm", "local")


def sample(b: Bench, town: Town, agent: AgentHandle, i: int, cold: bool) -> dict[str, Any]:
    """One task: assign → its CLI started (s); for a wake, the steps between."""
    store = town.store
    t = time.time()
    task_id = town.assign(agent.id, f"bench wake {i}")
    try:
        cli = read_rec(b, task_id, 120)
    except TimeoutError as exc:
        raise RuntimeError(f"{exc}; {diagnose(town, agent.id)}") from None

    def finished() -> bool:
        task = store.get_task(task_id)
        rec = store.get_agent(agent.id)
        return bool(task and task.state == TaskState.COMPLETED and rec
                    and rec.state == AgentState.IDLE)

    wait_until(finished, 60, f"task {task_id} to complete", 0.002)
    out: dict[str, Any] = {"latency": cli - t}
    if cold:
        pid = runtime.local_pid(store, agent.id)
        launched = started_at(with_keeper(pid)) if pid else None
        ready = next((int(e["id"].split("-")[0]) / 1000 for e in store.read_events(20, agent.id)
                      if e.get("kind") == "state" and e.get("old") == "starting"
                      and e.get("new") == "idle"), None)
        if launched is not None and ready is not None:
            out.update(launch=launched - t, boot=ready - launched, round=cli - ready)
    return out


def diagnose(town: Town, agent_id: str) -> str:
    """What the agent's record, runtime hash, events and worker log say (for a failure)."""
    rec = town.store.get_agent(agent_id)
    if rec is None:
        return "the agent is gone"
    events = [f"{e.get('kind')} {e.get('old', '')}->{e.get('new', '')} {e.get('reason', '')}"
              for e in town.store.read_events(10, agent_id)]
    log_path = town.settings.logs_dir / rec.name / "worker.log"
    try:
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
    except OSError as exc:
        tail = [f"no worker log: {exc}"]
    return (f"agent {rec.name} is {rec.state.value} on host {rec.host}; runtime "
            f"{runtime.read(town.store, agent_id)}; events {events}; worker log: "
            + " | ".join(tail))


def run(b: Bench) -> None:
    k = 5 if b.quick else 20
    hosted = Hosts(b, fleet_town(b, "wake"))
    local: Hosts | None = None
    got: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    try:
        town = hosted.town
        hosted.supervisors.append(start_supervisor(b, town))
        hosted.start("hA")
        hosted.wait_ready(["hA"])
        local = Hosts(b, fleet_town(b, "wakelocal"))
        rec = str(b.recorder)
        cold = [town.spawn_agent(f"c{i:02d}", cli=rec, cold=True, workspace="shared")
                for i in range(k + 1)]
        lcold = [local.town.spawn_agent(f"l{i:02d}", cli=rec, cold=True, workspace="shared")
                 for i in range(k + 1)]
        warm = town.spawn_agent("warm", cli=rec, workspace="shared")
        placed = {town.store.require_agent(h.id).host for h in [*cold, warm]}
        if placed != {"hA"} or any(local.town.store.require_agent(h.id).host for h in lcold):
            raise RuntimeError(f"not placed as meant: hosted {placed}")
        warm.wait_for_state(AgentState.IDLE, timeout=60)
        runs = {"hosted": lambda i: sample(b, town, cold[i], i, True),
                "warm": lambda i: sample(b, town, warm, i, False),
                "local": lambda i: sample(b, local.town, lcold[i], i, True)}
        for side in SIDES:  # warm-up, not counted: the first of each
            runs[side](k)
        order = list(SIDES)
        for i in range(k):
            for side in order:
                got[side].append(runs[side](i))
            order = order[1:] + order[:1]
        log(f"wake: {k} samples per side")
    finally:
        hosted.stop()
        if local is not None:
            local.stop()
    report(b, k, got)


def report(b: Bench, k: int, got: dict[str, list[dict[str, Any]]]) -> None:
    lat = {side: [s["latency"] for s in got[side]] for side in SIDES}
    steps = {side: {step: [s[step] for s in got[side] if step in s]
                    for step in ("launch", "boot", "round")} for side in ("hosted", "local")}
    b.results.raw["wake_s"] = {"latency": lat, "steps": steps, "samples": k}
    for side in ("hosted", "local"):
        st = steps[side]
        if st["launch"]:
            log(f"wake ({side}): assign → process started {median(st['launch']) * 1000:.0f} ms,"
                f" → worker ready {median(st['boot']) * 1000:.0f} ms, → CLI started "
                f"{median(st['round']) * 1000:.0f} ms (medians of {len(st['launch'])})")
    b.results.notes.append(
        "wake: the CLI is the recorder (its start time, ~1 ms after exec); hosted = one"
        " host daemon starts the woken worker, local = no host daemon, the client starts it"
        " detached; warm = an idle agent of the hosted town; taking turns, K each")
    add = b.results.add
    for side, name in (("hosted", "host daemon"), ("local", "no host daemon: local worker")):
        for q in (50, 99):
            add(f"wake from cold ({name}): assign → CLI started, p{q} of {k}", "s",
                pct(lat[side], q), pct(lat["warm"], q), "report",
                baseline_name="a warm (idle) agent's dispatch, same run")
        st = steps[side]
        if st["launch"]:
            add(f"wake ({name}): of which assign → worker process started, median", "s",
                median(st["launch"]), None, "report", ratio=False)
            add(f"wake ({name}): of which process started → worker ready, median", "s",
                median(st["boot"]), None, "report", ratio=False)
            add(f"wake ({name}): of which worker ready → CLI started, median", "s",
                median(st["round"]), None, "report", ratio=False)
