"""The one polling loop behind every wait of the Python API (an agent's state, a task's
end): read, check, report progress, give up at the timeout, sleep a little longer
each time (20 ms growing to 250 ms: quick answers come quickly, long waits cost
little)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tinytown.core.errors import WaitTimeout

T = TypeVar("T")


def poll(
    read: Callable[[], T],
    done: Callable[[T], bool],
    timeout: float | None,
    on_poll: Callable[[T, float], None] | None,
    timed_out: Callable[[T], str],
) -> T:
    """Read until `done` holds, and return what was read; `read` raises when the thing
    waited on is gone. WaitTimeout (with `timed_out`'s text) after `timeout` seconds."""
    start = time.monotonic()
    delay = 0.02
    while True:
        current = read()
        elapsed = time.monotonic() - start
        if done(current):
            return current
        if on_poll is not None:
            on_poll(current, elapsed)
        if timeout is not None and elapsed >= timeout:
            raise WaitTimeout(timed_out(current))
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
