"""The check gate's run: a task's `gates.check` command, run in the agent's worktree
after a round whose CLI ended well and whose work is committed.

The command is split with shlex and run as an argv (never through a shell), in its own
process group under the worker's watchdog (it dies with the worker, SIGKILL too), with
`[gates] check_timeout_secs`, its output in `round-N.check.log` beside the round's log.
What it came to is a `CheckRun` the round's finishing transaction decides on
(tinytown/db/gate_store.py): pass, another fix round, or failed. A worker killed while
the check runs records nothing: the round runs again, and so does the check.
"""

from __future__ import annotations

import shlex
import time

from tinytown.core.models import CheckRun
from tinytown.core.presets import CliCommand, PromptVia
from tinytown.worker.runner import run_cli
from tinytown.worker.state import RoundContext

CHECK_TAIL = 8 * 1024  # of the check's output, kept for the follow-up round's prompt


def run_check(r: RoundContext, command: str) -> CheckRun:
    """Run `command` for the round; the run's outcome (never raises on a bad command)."""
    w = r.worker
    log_path = w.logs / f"round-{r.number}.check.log"
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        argv, bad = [], f"the check command cannot be split: {exc}"
    else:
        bad = "" if argv else "the check command is empty"
    if bad:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(f"tinytown: {bad}\n")
        return CheckRun(command, passed=False, tail=bad, log=str(log_path), round=r.number)
    with log_path.open("a") as log_file:
        log_file.write(f"tinytown: check of round {r.number}: {shlex.join(argv)}\n")
    state = w.state

    def started(pid: int) -> None:
        w.watchdog.guard(pid)  # its process group dies with this worker
        state.cli_group = pid  # `tt down` stops it as it would the CLI

    began = time.monotonic()
    try:
        result = run_cli(CliCommand(name="check", argv=argv, prompt_via=PromptVia.STDIN), "",
                         cwd=state.worktree or w.settings.root, env=r.run_env,
                         log_path=log_path, timeout=w.settings.gates.check_timeout_secs,
                         output_limit=CHECK_TAIL, on_start=started)
    finally:
        state.cli_group = None
        w.watchdog.release()
    tail = result.output_tail
    if result.error:
        tail = result.error
    elif result.timed_out:
        tail += (f"\ntinytown: the check timed out after"
                 f" {w.settings.gates.check_timeout_secs:g}s\n")
    return CheckRun(command, passed=result.ok, exit_code=result.exit_code,
                    tail=tail[-CHECK_TAIL:], log=str(log_path), round=r.number,
                    secs=round(time.monotonic() - began, 3))
