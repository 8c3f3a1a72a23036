"""Plain helpers of the test suite (the fixtures that use them are in conftest.py): the
session's processes, a redis-server of a test's own, the real `tt` CLI, a town and its
records, an agent's worker runtime driven in-process, one-line CLI errors.

Importing this module marks the session: every process a test starts inherits the mark
(see below), and the process that made it ends them all as it exits.
"""

from __future__ import annotations

import atexit
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tinytown.core import keys
from tinytown.core.errors import TinytownError
from tinytown.core.models import TaskState
from tinytown.core.usage_rules import Usage
from tinytown.db.embedded import find_redis_server
from tinytown.ops.facade import Town
from tinytown.worker.lifecycle import WorkerRuntime

BIN = Path(sys.executable).parent
TT = str(BIN / "tt")
SUPPORT = Path(__file__).parent / "support"  # the stand-in CLIs and other programs
FAKE_AGENT = SUPPORT / "fake_agent.py"
FAKE_CLI = f"{sys.executable} {FAKE_AGENT}"
os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
for _name in ("REDIS_URL", "TINYTOWN_AGENT_ID", "TINYTOWN_AGENT_NAME", "TINYTOWN_TOWN_ROOT"):
    os.environ.pop(_name, None)
# Started as a background job (`... &` in a script), pytest ignores SIGINT, and so would
# every process a test starts: a test that presses Ctrl-C needs a terminal's default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# --- every process a session starts ends with it, however it ends ---------------------
# Each process a test starts (`tt`, workers, supervisors, agent CLIs) inherits this mark
# in its environment; a redis-server rewrites its environment (its process title), so
# those are known by their folder: under the session's basetemp or SESSION_TMP (where
# the fixtures make their short socket folders). The process that made the mark (the
# xdist controller, or pytest itself with -n 0) ends all of them as it exits: a session
# stopped by SIGTERM or Ctrl-C, or an xdist worker that crashed, leaves nothing running.
# SIGTERM becomes KeyboardInterrupt, so the fixtures' finalizers run first (a second
# SIGTERM does not cut them short).
SESSION_MARK = "TT_TEST_SESSION"
SESSION_OWNER = "TT_TEST_SESSION_OWNER"
os.environ.setdefault(SESSION_MARK, uuid.uuid4().hex)
os.environ.setdefault(SESSION_OWNER, str(os.getpid()))
SESSION_TMP = Path(tempfile.gettempdir()) / f"tt-{os.environ[SESSION_MARK][:12]}"
SESSION_BASETEMP: list[Path] = []  # pytest_unconfigure adds the basetemp
_terminated = False


def _on_sigterm(signum: int, frame: Any) -> None:
    global _terminated
    if not _terminated:
        _terminated = True
        raise KeyboardInterrupt("SIGTERM")


signal.signal(signal.SIGTERM, _on_sigterm)


def session_tmp(prefix: str) -> Path:
    """A new short folder (for a Unix socket) that the session's end sweeps."""
    SESSION_TMP.mkdir(mode=0o700, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=SESSION_TMP))


def session_pids(mark: str, folders: tuple[Path, ...] = ()) -> list[int]:
    """Processes of this user whose environment carries the session mark `mark`, or
    whose working folder is in one of `folders`."""
    wanted = f"{SESSION_MARK}={mark}".encode()
    found: list[int] = []
    if not Path("/proc").is_dir():
        return found  # no /proc (not Linux): the finalizers alone
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            cwd = Path(os.readlink(f"/proc/{entry}/cwd"))
        except OSError:
            continue
        if wanted in environ or any(cwd.is_relative_to(f) for f in folders):
            found.append(int(entry))
    return found


def end_session_processes() -> None:
    """In the process that made the mark: SIGKILL whatever of the session still runs."""
    if os.environ.get(SESSION_OWNER) != str(os.getpid()):
        return  # an xdist worker: its controller sweeps at the end
    mark = os.environ[SESSION_MARK]
    for pid in session_pids(mark, (SESSION_TMP, *SESSION_BASETEMP)):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    shutil.rmtree(SESSION_TMP, ignore_errors=True)


atexit.register(end_session_processes)


def wait_until(
    condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition"
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def pid_gone(pid: int) -> bool:
    """True once the process has exited (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True


@dataclass
class RedisServer:
    socket: Path
    dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), decode_responses=True)


def start_redis(extra: list[str] | None = None) -> RedisServer:
    folder = session_tmp("ttr-")
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        [find_redis_server(), "--port", "0", "--unixsocket", str(sock), "--dir", str(folder),
         "--save", "", "--appendonly", "no", *(extra or [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = RedisServer(sock, folder, proc)
    wait_until(lambda: sock.exists() and _ping(server), 10, "redis-server to start")
    return server


def _ping(server: RedisServer) -> bool:
    try:
        return bool(server.client().ping())
    except redis.RedisError:
        return False


def stop_redis(server: RedisServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
    shutil.rmtree(server.dir, ignore_errors=True)


@dataclass
class Result:
    code: int
    out: str
    err: str


def tt(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
       input: str | None = None, timeout: float = 60) -> Result:
    """Run the real `tt` entry point."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [TT, *args], cwd=cwd, env=full_env, input=input, capture_output=True, text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def in_terminal(argv: list[str], cwd: Path | str, seconds: float = 30,
                columns: int = 120) -> str:
    """Run `argv` with a terminal `columns` wide as its stdout (what rich and the live
    status line draw only there) and return what it wrote, for `seconds` at most."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=follower, stderr=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": str(columns)})
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data.decode(errors="replace"))
        elif proc.poll() is not None:
            break
    proc.wait(10)
    os.close(leader)
    return "".join(chunks)


# A stand-in CLI in Claude Code's output format (sessions, usage, reported errors), for
# in-process rounds: `town_factory(extra=STRUCTURED)`, agents with `cli="structured"`.
STRUCTURED = f"""
[agent_clis.structured]
command = "{sys.executable} {SUPPORT / 'fake_structured.py'}"
output = "claude-json"
resume_args = "--resume {{session}}"
fork_args = "--resume {{session}} --fork-session"
session_lost = "No conversation found with session ID"
"""
STRUCTURED_ROUND = Usage(input_tokens=12, cached_input_tokens=3, output_tokens=5,
                         cost_usd=0.0012, rounds=1)  # what it reports for a round


def run_task(town: TownFixture, worker: InProcessWorker, ref: str, text: str) -> str:
    """Assign `text` to agent `ref` and run its in-process worker's round; the task id."""
    task_id = town.town.assign(ref, text)
    worker.run_round()
    return task_id


TOML = """\
[town]
name = "{name}"

[redis]
url = "{url}"

[agent]
default_cli = "{cli}"
round_timeout_secs = {round_timeout}
idle_timeout_secs = {idle_timeout}
restart = "{restart}"

[supervisor]
heartbeat_timeout_secs = {hb_timeout}
heartbeat_interval_secs = {hb_interval}
autostart = false
{extra}
"""


@dataclass
class TownFixture:
    root: Path
    name: str
    town: Town
    records: Path  # where the fake agent writes what it saw

    def tt(self, *args: str, **kw: Any) -> Result:
        env = {"FAKE_AGENT_DIR": str(self.records), **kw.pop("env", {})}
        return tt(*args, cwd=self.root, env=env, **kw)

    def reconnect(self) -> Town:
        self.town = Town.connect(self.root)
        return self.town

    def agent_state(self, ref: str) -> str:
        return self.town.resolve(ref).state.value

    def wait_state(self, ref: str, *wanted: str, timeout: float = 20) -> None:
        agent_id = self.town.resolve(ref).id
        wait_until(
            lambda: (a := self.town.store.get_agent(agent_id)) and a.state.value in wanted,
            timeout, f"{ref} to be {'/'.join(wanted)} (is {self.agent_state(agent_id)})",
        )

    def task_state(self, task_id: str) -> TaskState:
        return self.town.store.require_task(task_id).state

    def wait_task(self, task_id: str, *wanted: TaskState, timeout: float = 20) -> None:
        wait_until(lambda: self.task_state(task_id) in wanted, timeout,
                   f"task {task_id[:8]} to be {'/'.join(wanted)}")

    def town_keys(self) -> set[str]:
        return set(self.town.redis.scan_iter(match=f"tt:{self.name}:*", count=1000))

    def runs(self) -> list[list[str]]:
        path = self.records / "runs.log"
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def stop_town_processes(town: Town) -> None:
    host = socket.gethostname()
    pids: list[int] = []
    try:
        for agent_id in [k.rsplit(":", 1)[1] for k in
                         town.redis.scan_iter(match=f"tt:{town.name}:runtime:*")]:
            rt = town.redis.hgetall(keys.runtime(town.name, agent_id))
            if rt.get("host") == host and rt.get("pid"):
                pids.append(int(rt["pid"]))
        for owner in town.redis.hkeys(keys.supervisors(town.name)):
            pid, _, owner_host = owner.partition("@")
            if owner_host == host:
                pids.append(int(pid))
    except (redis.RedisError, TinytownError):
        pass
    for pid in pids:
        if pid == os.getpid():  # a runtime driven in-process records this process
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- an agent's worker runtime, driven in-process ------------------------------------


class PausingConsumer:
    """What `on_ready` needs of Celery's consumer: it cancels the queues of a paused
    agent (so a paused worker takes no job); this one records which."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def cancel_task_queue(self, queue: str) -> None:
        self.cancelled.append(queue)


@dataclass
class InProcessWorker:
    """The real `WorkerRuntime` of one agent, in the test's process: a round runs when
    the test says so, against the real Redis and with the real agent CLI. `shutdowns`
    counts the warm shutdowns the runtime asked for (a worker process would exit)."""

    town: TownFixture
    runtime: WorkerRuntime
    consumer: PausingConsumer
    shutdowns: list[float]
    threads: list[threading.Thread] = field(default_factory=list)  # its heartbeat, ...

    @property
    def agent_id(self) -> str:
        return self.runtime.agent_id

    def start(self) -> InProcessWorker:
        """What the worker process does as it starts: Celery's worker_init and
        worker_ready (`starting` -> `idle`, or stay paused)."""
        before = set(threading.enumerate())
        self.runtime.on_init()
        self.runtime.on_ready(self.consumer)
        self.threads += [t for t in threading.enumerate() if t not in before]
        return self

    def run_round(self) -> None:
        """One `tinytown.round` job: rounds until the inbox holds nothing actionable."""
        self.runtime.run_round(self.agent_id)

    def take_task(self, queue: str | None = None, task_id: str | None = None,
                  description: str | None = None, tags: list[str] | None = None) -> str | None:
        """One `tinytown.task` job from `queue` (the agent's own queue by default)."""
        return self.runtime.take_task(queue or self.runtime.queue, task_id=task_id,
                                      description=description, tags=tags)

    def shut_down(self) -> None:
        """Celery's worker_shutdown: `cold` after a drain, `stopped` otherwise."""
        self.runtime.on_shutdown()

    def close(self) -> None:
        """End it as its process would end: worker_shutdown (no more heartbeats, the
        pid recorded in the runtime hash, this process's, forgotten), then what the
        process takes with it when it exits: the watchdog `sh` (its pipe at end-of-file,
        no CLI running: it exits killing nothing) and the Redis client."""
        try:
            self.runtime.on_shutdown()
        except (redis.RedisError, TinytownError):
            pass  # the test stopped its Redis: nothing to record
        for thread in self.threads:  # they end with the agent's worker_shutdown
            thread.join(10)
            assert not thread.is_alive(), f"{thread.name} outlived its worker_shutdown"
        watchdog = self.runtime.watchdog
        proc = watchdog._proc  # no public close: a worker's watchdog ends with its process
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            watchdog._proc = watchdog._pipe = None
        self.runtime.redis.close()


@contextmanager
def private_town(tmp_path: Path) -> Iterator[tuple[TownFixture, redis.Redis]]:
    """A town alone on a redis-server of its own (to see every key or command it gets, or
    to write keys outside any town); yields the town and a plain client of the server."""
    server = start_redis()
    client = server.client()
    town: TownFixture | None = None
    try:
        name = f"p{uuid.uuid4().hex[:10]}"
        root = tmp_path / name
        root.mkdir()
        (root / "tinytown.toml").write_text(
            f'[town]\nname = "{name}"\n\n[redis]\nurl = "{server.url}"\n\n'
            '[agent]\ndefault_cli = "claude"\n\n[supervisor]\nautostart = false\n'
        )
        town = TownFixture(root, name, Town.connect(root), root / "records")
        yield town, client
    finally:
        if town is not None:
            town.town.redis.close()
        client.close()
        stop_redis(server)


def one_line_error(r: Result, code: int | None = None) -> str:
    """Assert `r` failed with exactly one `tt: ...` line on stderr (no traceback)."""
    assert r.code != 0, r
    if code is not None:
        assert r.code == code, r
    assert "Traceback" not in r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("tt: "), r.err
    return lines[0]


def key_snapshot(town: TownFixture) -> dict[str, Any]:
    """Every key of the town with its value, to prove a failed command wrote nothing."""
    r = town.town.redis
    out: dict[str, Any] = {}
    for key in town.town_keys():
        kind = r.type(key)
        out[key] = (r.get(key) if kind == "string" else r.hgetall(key) if kind == "hash"
                    else r.lrange(key, 0, -1) if kind == "list"
                    else r.smembers(key) if kind == "set"
                    else r.zrange(key, 0, -1, withscores=True) if kind == "zset"
                    else r.xlen(key))
    return out


def durable_redis(folder: Path) -> subprocess.Popen[bytes]:
    """A redis-server of the test's own on `folder`/redis.sock, its AOF fsynced on every
    write: killed and started again on the same folder, it comes back with every key (the
    outage tests)."""
    return subprocess.Popen(
        [find_redis_server(), "--port", "0", "--unixsocket", str(folder / "redis.sock"),
         "--dir", str(folder), "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def redis_answers(server: RedisServer) -> bool:
    try:
        return bool(server.client().ping())
    except redis.RedisError:
        return False
