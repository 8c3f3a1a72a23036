"""How the town's processes are started: their command lines, and a detached start.

Pure (no Redis): the client (`tinytown.ops.starting`), a host daemon and a worker
waking itself all start the same commands. Children get the town's root folder (and
REDIS_URL through the environment) and build their own settings and clients; nothing
but plain data crosses the process boundary.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tinytown.core.errors import WorkerError
from tinytown.system.private import private_dir, remember_user_umask

# a worker spawned from inside a round is not that agent
_NOT_INHERITED = ("TINYTOWN_AGENT_ID", "TINYTOWN_AGENT_NAME", "TINYTOWN_TASK_ID")


def worker_argv(root: Path, launch: str, agent_id: str) -> list[str]:
    return [sys.executable, "-m", "tinytown.worker", "--town", str(root),
            "--launch", launch, agent_id]


def supervisor_argv(root: Path) -> list[str]:
    return [sys.executable, "-m", "tinytown.supervisor", "--town", str(root)]


def child_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    env["TINYTOWN_TOWN_ROOT"] = str(root)
    remember_user_umask(env)  # the process runs with umask 077; its agent CLIs, the user's
    return env


def detached(argv: list[str], log_path: Path, root: Path) -> int:
    """Start `argv` in a session of its own, nobody's child (via tinytown.system._detach, so
    the caller never keeps a zombie); returns its pid."""
    private_dir(log_path.parent)
    done = subprocess.run(
        [sys.executable, "-m", "tinytown.system._detach", str(log_path), *argv],
        cwd=root, env=child_env(root), stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=30,
    )
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise WorkerError(f"could not start {argv[2]}: {done.stderr.strip()[-300:]}")
    return int(done.stdout.strip())


def child(argv: list[str], log_path: Path, root: Path) -> subprocess.Popen[bytes]:
    """Start `argv` as a child of this process (a host daemon watches its exit), in a
    session of its own so that a Ctrl-C meant for the parent does not reach it."""
    private_dir(log_path.parent)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with open(fd, "ab") as log:
        return subprocess.Popen(argv, cwd=root, env=child_env(root), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True, umask=0o077)
