"""Machines on one machine: a password-protected redis-server on a bridge (a LAN) of
its own, and host daemons each in a network and UTS namespace of its own, plugged into
that bridge by a veth link (as other machines would be, over the network).

Needs root, util-linux `unshare` and iproute2 `ip`; `why_not()` says what is missing.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import TT, wait_until
from tinytown.db.embedded import find_redis_server

_COUNTER = Path(tempfile.gettempdir()) / "tt-netns-counter"
# inside the namespace: its hostname, loopback, then wait for the link the parent adds
_SETUP = ('hostname "$TT_NS_NAME" && ip link set lo up && '
          'while ! ip link show eth0 >/dev/null 2>&1; do sleep 0.02; done && '
          'ip addr add "$TT_NS_ADDR"/24 dev eth0 && ip link set eth0 up && exec "$@"')


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root to make network namespaces"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "--net", "--uts", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot unshare here: {probe.stderr.strip()}"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _next_subnet() -> int:
    """A number no other test on this machine uses now (1..250, in turn)."""
    with open(_COUNTER, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        n = int(f.read().strip() or 0) % 250 + 1
        f.seek(0)
        f.truncate()
        f.write(str(n))
    return n


def _net_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


@dataclass
class Host:
    name: str
    link: str  # its veth end in the root namespace
    proc: subprocess.Popen[bytes]

    def processes(self) -> list[int]:
        """Every process in its network namespace (the daemon, workers, CLIs)."""
        ns = _net_ns(self.proc.pid)
        if ns is None:
            return []
        return [int(p) for p in os.listdir("/proc") if p.isdigit() and _net_ns(int(p)) == ns]

    def kill_all(self) -> None:
        """The machine dies: SIGKILL to everything in it."""
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def run(self, *argv: str, cwd: Path, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        """`argv` inside this machine's network namespace (as a user there would run it)."""
        return subprocess.run(["nsenter", f"--net=/proc/{self.proc.pid}/ns/net", *argv],
                              cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                              text=True, timeout=60)

    def cut(self) -> None:
        _ip("link", "set", self.link, "down")

    def mend(self) -> None:
        _ip("link", "set", self.link, "up")


@dataclass
class Network:
    """The Redis 'machine' and the hosts; `close()` ends them all."""

    root: Path
    n: int = field(default_factory=_next_subnet)
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    hosts: list[Host] = field(default_factory=list)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)
    redis: subprocess.Popen[bytes] | None = None
    port: int = 6390

    @property
    def address(self) -> str:
        return f"10.78.{self.n}.1"

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.address}:{self.port}/0"

    def start_redis(self) -> None:
        _ip("link", "add", f"tt{self.n}b", "type", "bridge")
        _ip("addr", "add", f"{self.address}/24", "dev", f"tt{self.n}b")
        _ip("link", "set", f"tt{self.n}b", "up")
        folder = Path(tempfile.mkdtemp(prefix="ttnr-"))
        conf = folder / "redis.conf"  # the password in a file, not on a command line
        conf.write_text(f"requirepass {self.password}\nbind {self.address}\nport {self.port}\n"
                        f"dir {folder}\nsave \"\"\nappendonly no\nprotected-mode no\n")
        conf.chmod(0o600)
        self.redis = subprocess.Popen([find_redis_server(), str(conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            import redis

            try:
                return bool(redis.Redis.from_url(self.url).ping())
            except redis.RedisError:
                return False

        wait_until(up, 10, "the networked redis-server")

    def start_host(self, name: str, *args: str, env: dict[str, str] | None = None) -> Host:
        """A host daemon (`tt host --name NAME ARGS`) on a machine of its own."""
        return self.start_machine(name, [TT, "host", "--name", name, *args], env)

    def start_machine(self, name: str, argv: list[str],
                      env: dict[str, str] | None = None) -> Host:
        """`argv` on a machine of its own (hostname `m-NAME`), in the town's folder, with
        the Redis URL in its environment unless `env` says otherwise."""
        i = len(self.hosts) + 1
        link = f"tt{self.n}h{i}"
        addr = f"10.78.{self.n}.{10 + i}"
        log = (self.root / f"host-{name}.log").open("ab")
        proc = subprocess.Popen(
            ["unshare", "--net", "--uts", "sh", "-c", _SETUP, "sh", *argv],
            cwd=self.root, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            env={**os.environ, "REDIS_URL": self.url, "TT_NS_NAME": f"m-{name}",
                 "TT_NS_ADDR": addr, **(env or {})},
            start_new_session=True,
        )
        log.close()
        wait_until(lambda: _net_ns(proc.pid) not in (None, _net_ns(os.getpid())), 10,
                   f"host {name}'s namespace")
        _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", str(proc.pid))
        _ip("link", "set", link, "master", f"tt{self.n}b")
        _ip("link", "set", link, "up")
        host = Host(name, link, proc)
        self.hosts.append(host)
        return host

    def start_supervisor(self) -> None:
        """The town's supervisor, on the Redis 'machine' (the root namespace)."""
        self.others.append(subprocess.Popen(
            [sys.executable, "-m", "tinytown.supervisor", "--town", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def close(self) -> None:
        for proc in self.others:
            proc.kill()
            proc.wait(10)
        for host in self.hosts:
            host.kill_all()
            try:
                host.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            subprocess.run(["ip", "link", "del", host.link], capture_output=True)
        if self.redis is not None:
            self.redis.kill()
            self.redis.wait(10)
        subprocess.run(["ip", "link", "del", f"tt{self.n}b"], capture_output=True)


def python_cli_wrapper(folder: Path, name: str) -> Path:
    """A program named `name` in `folder` that runs the tests' fake agent CLI."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    fake = Path(__file__).parent / "fake_agent.py"
    path.write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    path.chmod(0o755)
    return path
