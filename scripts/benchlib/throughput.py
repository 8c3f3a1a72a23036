"""Throughput of one agent: a paused agent's queue of /bin/true tasks drained, against
a plain Celery worker whose consumer is cancelled while its queue fills."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tinytown.core.models import Task, TaskState

from .common import HOST, median, wait_until

if TYPE_CHECKING:
    from .harness import Bench


def tt_drain(b: Bench, n: int) -> float:
    b.tp.interrupt()
    ids = [b.tp.assign(Task(f"bench throughput {i}")) for i in range(n)]
    t0 = time.time()
    b.tp.resume()
    store = b.town.store
    last: Task = wait_until(lambda: (lambda t: t if t and t.state.is_terminal else None)(
        store.get_task(ids[-1])), n * 2 + 30, "the inbox to drain", 0.05)
    bad = [i for i in ids if store.require_task(i).state != TaskState.COMPLETED]
    if last.state != TaskState.COMPLETED or bad:
        raise RuntimeError(f"{len(bad)} throughput task(s) did not complete")
    return n / (last.updated_at.timestamp() - t0)


def bl_drain(b: Bench, n: int) -> float:
    done = "bench-baseline:done:tp"
    control = b.bl.app.control
    dest = [f"btp@{HOST}"]
    control.cancel_consumer("bench.tp", destination=dest, reply=True, timeout=5)
    b.r.delete(done)
    for i in range(n):
        b.bl.run.apply_async(args=[f"tp-{i}", ["/bin/true"], f"bench throughput {i}", done],
                             queue="bench.tp")
    t0 = time.time()
    control.add_consumer("bench.tp", destination=dest, reply=True, timeout=5)
    wait_until(lambda: b.r.llen(done) >= n, n * 2 + 30, "the baseline queue to drain", 0.05)
    end = max(float(x.split()[1]) for x in b.r.lrange(done, 0, -1))
    return n / (end - t0)


def run(b: Bench) -> None:
    n, reps = (30, 2) if b.quick else (100, 6)
    tt: list[float] = []
    bl: list[float] = []
    tt_drain(b, 5)  # warm-up
    bl_drain(b, 5)
    for k in range(reps):
        pair = [(tt, tt_drain), (bl, bl_drain)]
        for out, fn in (pair if k % 2 == 0 else pair[::-1]):
            out.append(fn(b, n))
            time.sleep(0.5)
    b.results.raw["throughput_per_s"] = {"tinytown": tt, "baseline": bl, "tasks": n}
    b.results.add(f"throughput, one agent, /bin/true ({n} tasks × {reps})", "/s",
                  median(tt), median(bl), "≥ 0.5×", lambda v, r: r is not None and r >= 0.5,
                  baseline_name="plain Celery worker, /bin/true per task")
