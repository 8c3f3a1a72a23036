"""Running an agent CLI for one round: argv (never a shell), the prompt as data, its
own process group, a time limit, and output to the round's log file.

The CLI dies with its worker: it gets PR_SET_PDEATHSIG (SIGKILL) so even a SIGKILLed
worker takes it down, and its whole process group is killed when the round ends.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinytown.presets import CliCommand, PromptVia

_PR_SET_PDEATHSIG = 1
_prctl: Any
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # loaded before any fork
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _die_with_parent() -> None:
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class RunResult:
    exit_code: int | None  # None: it never started, or was killed at the time limit
    output_tail: str
    timed_out: bool = False
    error: str | None = None  # why it could not start

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.error is None


def tail(path: Path, limit: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def kill_group(pgid: int) -> None:
    """SIGTERM the group, then SIGKILL what is left a moment later."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_cli(
    command: CliCommand,
    prompt: str,
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    timeout: float,
    output_limit: int = 4000,
    on_start: Callable[[int], None] | None = None,
) -> RunResult:
    argv = list(command.argv)
    prompt_file = None
    if command.prompt_via == PromptVia.FILE:
        fd, prompt_file = tempfile.mkstemp(prefix="prompt-", suffix=".md", dir=log_path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(prompt)
        argv += [command.prompt_flag or "--prompt-file", prompt_file]
    elif command.prompt_via == PromptVia.ARG:
        argv.append(prompt)
    workdir = (cwd / command.workdir) if command.workdir else cwd
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log_path.open("ab") as log:
            stdin = subprocess.PIPE if command.prompt_via == PromptVia.STDIN else subprocess.DEVNULL
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=stdin,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    env={**env, **command.env},
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                    close_fds=True,
                )
            except OSError as exc:
                reason = f"cannot run {argv[0]!r}: {exc.strerror or exc}"
                log.write(f"tinytown: {reason}\n".encode())
                return RunResult(None, "", error=reason)
            if on_start is not None:
                on_start(proc.pid)
            if proc.stdin is not None:
                threading.Thread(target=_feed, args=(proc.stdin, prompt), daemon=True).start()
            timed_out = False
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc.pid)
                proc.wait()
            kill_group(proc.pid)  # nothing the CLI started outlives its round
    finally:
        if prompt_file:
            os.unlink(prompt_file)
    return RunResult(
        None if timed_out else proc.returncode, tail(log_path, output_limit), timed_out
    )


def _feed(stdin: object, prompt: str) -> None:
    try:
        stdin.write(prompt.encode())  # type: ignore[attr-defined]
        stdin.close()  # type: ignore[attr-defined]
    except (BrokenPipeError, OSError):
        pass  # the CLI did not read its input: not our failure
