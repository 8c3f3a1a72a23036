"""Dispatch latency: from assigning a task to its agent CLI starting, against plain
Celery's apply_async → subprocess; the CLI (the recorder) notes when it started."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from tinytown.core.models import AgentState, Task, TaskState

from .common import alternate, median, pct, wait_until

if TYPE_CHECKING:
    from .harness import Bench


def read_rec(b: Bench, name: str, timeout: float = 30) -> float:
    """The start time the recorder wrote for task (or round) `name`."""
    path = b.rec_dir / name

    def ready() -> float | None:
        try:
            return float(path.read_text())
        except (OSError, ValueError):
            return None

    return float(wait_until(ready, timeout, f"the CLI of {name} to start", 0.001))


def tt_dispatch_one(b: Bench, i: int) -> float:
    store = b.town.store
    t = time.time()
    task_id = b.disp.assign(Task(f"bench dispatch {i}"))
    started = read_rec(b, task_id)

    def finished() -> bool:
        task = store.get_task(task_id)
        agent = store.get_agent(b.disp.id)
        return bool(task and task.state == TaskState.COMPLETED and agent
                    and agent.state == AgentState.IDLE)

    wait_until(finished, 30, f"task {task_id} to complete", 0.002)
    return started - t


def bl_dispatch_one(b: Bench, i: int) -> float:
    done = "bench-baseline:done:disp"
    task_id = str(uuid.uuid4())
    t = time.time()
    b.bl.run.apply_async(args=[task_id, [str(b.recorder)], f"bench dispatch {i}", done],
                         queue="bench.disp")
    started = read_rec(b, task_id)
    item = b.r.blpop([done], 30)
    if item is None or not item[1].startswith(task_id):
        raise RuntimeError(f"baseline task {task_id} did not finish: {item}")
    return started - t


def run(b: Bench) -> None:
    n = 40 if b.quick else 300
    tt, bl = alternate("dispatch", [lambda i: tt_dispatch_one(b, i),
                                    lambda i: bl_dispatch_one(b, i)],
                       n, 10 if b.quick else 25, 3, 0.03)
    ms = 1000
    b.results.raw["dispatch_ms"] = {"tinytown": [x * ms for x in tt],
                                    "baseline": [x * ms for x in bl]}
    b.results.add("dispatch latency p50 (assign → CLI started)", "ms",
                  median(tt) * ms, median(bl) * ms, "≤ 1.5×",
                  lambda v, r: r is not None and r <= 1.5,
                  baseline_name="plain Celery apply_async → subprocess")
    b.results.add("dispatch latency p99", "ms", pct(tt, 99) * ms, pct(bl, 99) * ms)
