"""Small helpers every phase uses: logging, polling, percentiles, ABBA sampling.

The package has no general poll-until helper (its loops wait on one record each),
so the bench keeps this one; worker_pid reads the runtime hash through tinytown.db.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinytown.db import runtime

if TYPE_CHECKING:
    from tinytown.ops.facade import Town

SCRIPTS = Path(__file__).resolve().parent.parent  # scripts/: bench_baseline.py lives here
REPO = SCRIPTS.parent
HOST = socket.gethostname()


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def wait_until(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.01) -> Any:
    """Poll `cond` until it returns something true (returned); TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def user_env() -> dict[str, str]:
    """The environment of a `tt` command as a user would run it: without the
    PYTHONPATH the bench sets for its baseline workers."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def worker_pid(town: Town, agent_id: str) -> int:
    """The pid of the agent's worker, once it has written its runtime hash."""
    pid: int = wait_until(lambda: runtime.local_pid(town.store, agent_id), 30,
                          "the worker's pid")
    return pid


def alternate(name: str, fns: list[Callable[[int], float]], total: int, block: int,
              warmup: int, settle: float) -> list[list[float]]:
    """Run `total` samples per side in alternating blocks; returns the samples."""
    for fn in fns:
        for i in range(warmup):
            fn(-1 - i)
            time.sleep(settle)
    out: list[list[float]] = [[] for _ in fns]
    i = 0
    order = list(range(len(fns)))
    while len(out[0]) < total:
        for k in order:
            for _ in range(min(block, total - len(out[k]))):
                out[k].append(fns[k](i))
                i += 1
                time.sleep(settle)
        order.reverse()  # ABBA: neither side always runs first
    log(f"{name}: {total} samples per side")
    return out
