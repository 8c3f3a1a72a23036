"""Running an agent CLI for one round: argv (never a shell), the prompt as data, its
own process group, a time limit, and output to the round's log file.

The CLI dies with its worker: it gets PR_SET_PDEATHSIG (SIGKILL) so even a SIGKILLed
worker takes it down, and its whole process group is killed when the round ends. The
death signal is set by util-linux's `setpriv` where it exists: a `preexec_fn` would
stop subprocess from using vfork and fork the whole worker (about 4 ms a round).
"""

from __future__ import annotations

import ctypes
import os
import shutil
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


_SETPRIV = shutil.which("setpriv")
_STDIN_INLINE = 32 * 1024  # smaller prompts fit the pipe: written without a thread


def _die_with_parent() -> None:
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _launch(argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    if _SETPRIV:
        return subprocess.Popen([_SETPRIV, "--pdeathsig", "KILL", "--", *argv], **popen)
    return subprocess.Popen(argv, preexec_fn=_die_with_parent, **popen)


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
            env = {**env, **command.env}
            executable = _find_executable(argv[0], workdir, env.get("PATH"))
            if executable is None:
                reason = f"cannot run {argv[0]!r}: no such executable file"
                log.write(f"tinytown: {reason}\n".encode())
                return RunResult(None, "", error=reason)
            try:
                proc = _launch(
                    [executable, *argv[1:]],
                    stdin=stdin,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                reason = f"cannot run {argv[0]!r}: {exc.strerror or exc}"
                log.write(f"tinytown: {reason}\n".encode())
                return RunResult(None, "", error=reason)
            if on_start is not None:
                on_start(proc.pid)
            if proc.stdin is not None:
                if len(prompt) <= _STDIN_INLINE:
                    _feed(proc.stdin, prompt)
                else:  # a CLI that reads late must not block the round's timer
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


def _find_executable(name: str, workdir: Path, path: str | None) -> str | None:
    """Where `name` is, as execvp would find it from `workdir`; None if nowhere."""
    if "/" in name:
        candidate = name if os.path.isabs(name) else str(workdir / name)
        return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None
    return shutil.which(name, path=path)


def _feed(stdin: object, prompt: str) -> None:
    try:
        stdin.write(prompt.encode())  # type: ignore[attr-defined]
        stdin.close()  # type: ignore[attr-defined]
    except (BrokenPipeError, OSError):
        pass  # the CLI did not read its input: not our failure
