"""Idle memory after work: the main town's agents, once the phases before have run
them, against the bare Celery workers that ran the same work; and the supervisor."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .common import median, worker_pid
from .procs import tree_mem_mib, with_keeper

if TYPE_CHECKING:
    from .harness import Bench


def run(b: Bench) -> None:
    time.sleep(2)
    tt_pids = [worker_pid(b.town, h.id) for h in (b.disp, b.tp)]
    tt = [tree_mem_mib(with_keeper(pid)) for pid in tt_pids]  # the keeper counts
    bl = [tree_mem_mib(proc.pid) for proc in (b.b_disp, b.b_tp)]
    sup = tree_mem_mib(b.supervisor_pid[b.town.name])
    b.results.raw["memory_mib_after_work"] = {"tinytown": tt, "baseline": bl,
                                              "supervisor": sup}
    b.results.add("idle memory per agent after work (RSS, worker + children)", "MiB",
                  median([m["rss"] for m in tt]), median([m["rss"] for m in bl]),
                  "≤ 1.1×", lambda v, r: r is not None and r <= 1.1,
                  baseline_name="bare Celery worker, threads, concurrency 1")
    b.results.add("supervisor, once per town (RSS)", "MiB", sup["rss"], None, ratio=False)
