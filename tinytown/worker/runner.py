"""Running an agent CLI for one round: argv (never a shell), the prompt as data, its
own process group, a time limit, and output to the round's log file.

Nothing the CLI starts outlives its round. When the round ends (the CLI exited, timed
out or was cut short) its whole process group is killed, and then every process it
left behind in another session or group (a tool started with setsid, a daemon that
double-forked), which the worker's keeper adopted (`tinytown.system.keeper`, Linux). If the
worker dies, by SIGKILL too, the keeper ends them all. A `Watchdog` also kills the
CLI's group the moment the worker dies: a tiny `sh` that reads the running group's id
from a pipe and acts on end-of-file, which the kernel delivers when the worker is gone.
It covers a worker with no keeper (a round run in a test's own process, a system
without child subreapers) and the keeper's own death. (It replaced PR_SET_PDEATHSIG
through util-linux `setpriv`, whose extra exec cost every round ~0.9 ms before the CLI
started, and which reached only the CLI itself, not its children.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinytown.core.presets import CliCommand, PromptVia
from tinytown.system.keeper import end_strays
from tinytown.system.logs import tail
from tinytown.system.private import user_umask
from tinytown.system.processes import kill_group

STDOUT_KEPT = 8 * 1024 * 1024  # of a CLI's stdout: its structured report comes last
_STDIN_INLINE = 32 * 1024  # smaller prompts fit the pipe: written without a thread
# Reads process group ids, one per line (0: none running); at end-of-file kills the last.
_WATCH_SH = 'pg=0; while read -r line; do pg=$line; done; [ "$pg" -gt 0 ] && kill -9 "-$pg"'


class Watchdog:
    """Kills the running CLI's process group when this process dies, however it dies.

    One `sh` per worker, started with the first round; `guard` and `release` are a
    write to its pipe each (no round trip). If the watchdog itself was killed, the
    next `guard` starts another.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._pipe: Any = None

    def guard(self, pgid: int) -> None:
        for _ in range(2):
            if self._proc is None or self._proc.poll() is not None:
                self._proc = subprocess.Popen(
                    ["/bin/sh", "-c", _WATCH_SH], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True, close_fds=True,
                )
                self._pipe = self._proc.stdin
            try:
                self._pipe.write(b"%d\n" % pgid)
                self._pipe.flush()
                return
            except BrokenPipeError:  # it died meanwhile: start another
                self._proc = None

    def release(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.guard(0)


@dataclass
class RunResult:
    exit_code: int | None  # None: it never started, or was killed at the time limit
    output_tail: str
    timed_out: bool = False
    error: str | None = None  # why it could not start
    stdout: str = ""  # what the CLI wrote on stdout (its answer, or its report)
    secs: float = 0.0  # how long it ran

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.error is None


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
            # PWD as a shell would set it: some CLIs take it over the real cwd
            env = {**env, **command.env, "PWD": str(workdir)}
            executable = _find_executable(argv[0], workdir, env.get("PATH"))
            if executable is None:
                reason = f"cannot run {argv[0]!r}: no such executable file"
                log.write(f"tinytown: {reason}\n".encode())
                return RunResult(None, "", error=reason)
            try:
                proc = subprocess.Popen(
                    [executable, *argv[1:]],
                    stdin=stdin,
                    stdout=subprocess.PIPE,  # copied to the log, and kept: the answer
                    stderr=log,
                    cwd=workdir,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                    umask=user_umask(),  # what it writes in the project: the user's mode
                )
            except OSError as exc:
                reason = f"cannot run {argv[0]!r}: {exc.strerror or exc}"
                log.write(f"tinytown: {reason}\n".encode())
                return RunResult(None, "", error=reason)
            timed_out = False
            stdout = _Tee(proc.stdout, log.fileno())
            try:
                if on_start is not None:
                    on_start(proc.pid)
                if proc.stdin is not None:
                    if len(prompt) <= _STDIN_INLINE:
                        _feed(proc.stdin, prompt)
                    else:  # a CLI that reads late must not block the round's timer
                        threading.Thread(target=_feed, args=(proc.stdin, prompt),
                                         daemon=True).start()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
            finally:  # nothing the CLI started outlives its round, however it ends:
                kill_group(proc.pid, reap=proc.poll)  # its process group,
                proc.wait()
                end_strays()  # and what left it (a new session, a double fork)
                stdout.finish()
    finally:
        if prompt_file:
            os.unlink(prompt_file)
    return RunResult(
        None if timed_out else proc.returncode, tail(log_path, output_limit), timed_out,
        stdout=stdout.text(),
    )


class _Tee:
    """Copies the CLI's stdout to the round log as it comes (`tt logs --follow` shows
    it live) and keeps it (the last STDOUT_KEPT bytes): the CLI's answer, or the
    report its structured output gives; stderr goes to the log alone."""

    def __init__(self, pipe: Any, log_fd: int) -> None:
        self._pipe = pipe
        self._log_fd = log_fd
        self._kept = bytearray()
        self._thread = threading.Thread(target=self._copy, name="tinytown-stdout", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        fd = self._pipe.fileno()
        try:
            while chunk := os.read(fd, 65536):
                os.write(self._log_fd, chunk)
                self._kept += chunk
                if len(self._kept) > 2 * STDOUT_KEPT:
                    del self._kept[:-STDOUT_KEPT]
        except OSError:
            pass  # the pipe was closed under us (see finish)

    def finish(self) -> None:
        """The CLI and all it started are gone: wait for the pipe's end (a process that
        escaped with the pipe, if any, does not hold the round up for long)."""
        self._thread.join(5)
        self._pipe.close()
        self._thread.join(1)

    def text(self) -> str:
        return bytes(self._kept[-STDOUT_KEPT:]).decode("utf-8", "replace")


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
