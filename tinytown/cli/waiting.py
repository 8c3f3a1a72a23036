"""Waiting on a task from the CLI (`tt assign --wait`, `tt task wait`).

The task id is said as soon as the task exists, so a wait cut short never loses it;
Ctrl-C ends the wait, not the task, and says how to wait for it again. The exit code
is the task's end: 0 completed, 1 failed or cancelled (or its agent does not run),
124 timeout, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tinytown.cli.common import emit_json, progress_line, say
from tinytown.core.errors import TinytownError
from tinytown.core.models import Task, TaskState

if TYPE_CHECKING:
    from tinytown.ops.facade import Town

EXIT_INTERRUPTED = 130


@contextmanager
def interrupted_keeps(town: Town, task_id: str, queue: bool) -> Iterator[None]:
    """Ctrl-C from the moment the task may exist: once it does, say that it goes on and
    how to wait for it again (exit 130); before, only that the command was interrupted."""
    try:
        yield
    except KeyboardInterrupt:
        try:
            made = town.store.get_task(task_id) is not None
        except TinytownError:  # Redis gone meanwhile: say only what is sure
            made = False
        if not made:
            raise
        again = f"tt task wait {task_id[:8]}" + (" --queue" if queue else "")
        say(f"tt: interrupted; task {task_id[:8]} goes on: {again}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def announce(task_id: str, where: str, as_json: bool) -> None:
    """The new task's id before the wait: on stdout for a person at a terminal; on
    stderr for `--json` or a pipe, where stdout is kept for the result."""
    say(f"task {task_id} {where}", err=as_json or not sys.stdout.isatty())


def wait_and_report(town: Town, task_id: str, timeout: float | None, queue: bool,
                    as_json: bool) -> None:
    """Wait for the task's end and print it; exits 1 unless it completed. A progress
    line only on a terminal."""
    show_progress = sys.stdout.isatty() and not as_json
    drawn = False

    def poll(t: Task, elapsed: float) -> None:
        nonlocal drawn
        progress_line(f"task {task_id[:8]}: {t.state.value}", elapsed)
        drawn = True

    try:
        final = town.wait_task(task_id, timeout, on_poll=poll if show_progress else None,
                               queue=queue)
    finally:
        if drawn:
            say()  # end the progress line (Ctrl-C too: `interrupted_keeps` speaks next)
    if as_json:
        emit_json(final)
    else:
        say(f"{final.id} {final.state.value}")
        if final.result:
            say(final.result)
    if final.state != TaskState.COMPLETED:
        sys.exit(1)
