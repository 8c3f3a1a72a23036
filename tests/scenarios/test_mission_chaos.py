"""The mission engine's guarantees under kills (issue 22, "Guarantees (tested)").

A 12-task mission with two fan-outs and two fan-ins (1 -> 4 -> 1 -> 4 -> 1 -> 1) runs
on real workers (three agents on a stand-in CLI whose rounds take a short random time,
write a file and commit it), a supervisor that restarts the workers that die and a host
daemon for one of the agents, over a redis-server with its AOF fsynced on every write.
While it runs, at random (seeded) moments, the test SIGKILLs a worker, the supervisor,
the host daemon or redis-server itself (each started again shortly after, on the same
socket, as systemd would), and freezes a worker (SIGSTOP, then SIGCONT). Then:

- the mission is `done` within a deadline;
- every task was completed once: one `task_completed` event, one `task_done` report
  in the supervisor's mailbox, one release by the mission (`mission_released`) and one
  dispatch (`assigned`), although its work may have run more than once (rounds are
  at-least-once: a round killed before it recorded runs again);
- no task was ever seen `blocked` with all its dependencies completed (sampled with
  one MGET of the mission's tasks all through the run);
- every task started after the tasks it comes after completed;
- every task's commits are on its agent's branch.

The seed is printed; TT_CHAOS_SEED=N runs that seed alone (TT_CHAOS_SEED=new: one new
seed, derived from the session's mark so every xdist worker collects the same one).
Without it the suite runs two fixed seeds, so CI is repeatable; new seeds are for
looking for trouble (seed 12 has been seen to leave a role task `pending` after Redis
kills, about one run in eight: open).

TODO (issue 22, gates): add a `check` gate and a `review` gate to a few of the plan's
tasks once those gates exist (other helpers are building them): a check command that
fails the first time for one task, and a reviewer role with its own agent; then assert
each gated task is completed once, after its last gate.
"""

from __future__ import annotations

import heapq
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers import (
    SESSION_MARK,
    SUPPORT,
    TT,
    TownFixture,
    durable_redis,
    pid_gone,
    session_tmp,
    stop_town_processes,
    wait_until,
)
from tinytown.core import keys
from tinytown.core.models import Task, TaskState

pytestmark = [pytest.mark.slow, pytest.mark.timeout(200)]

CHAOS_SECS = 40  # kills and freezes stop after this; the mission then has to finish
DEADLINE_SECS = 110  # the mission is `done` by then (from its start)


def _seeds() -> list[int]:
    chosen = os.environ.get("TT_CHAOS_SEED")
    if chosen == "new":
        return [int(os.environ[SESSION_MARK][:5], 16)]
    if chosen:
        return [int(chosen)]
    return [1, 2]


def _plan() -> str:
    """1 -> 4 -> 1 -> 4 -> 1 -> 1: tasks for one agent and tasks for the role."""
    tasks: list[tuple[str, str, list[str]]] = [("start", 'agent = "alice"', [])]
    fan1 = ['agent = "alice"', 'agent = "bob"', 'role = "worker"', 'agent = "carol"']
    tasks += [(f"a{i}", who, ["start"]) for i, who in enumerate(fan1, 1)]
    tasks.append(("join1", 'agent = "bob"', [f"a{i}" for i in range(1, 5)]))
    fan2 = ['role = "worker"', 'agent = "alice"', 'agent = "carol"', 'role = "worker"']
    tasks += [(f"b{i}", who, ["join1"]) for i, who in enumerate(fan2, 1)]
    tasks.append(("join2", 'agent = "carol"', [f"b{i}" for i in range(1, 5)]))
    tasks.append(("finish", 'role = "worker"', ["join2"]))
    out = ['name = "chaos"', 'goal = "survive the chaos"', ""]
    for name, who, after in tasks:
        out += ["[[task]]", f'name = "{name}"', f'text = "do {name}"', who,
                f"after = {json.dumps(after)}", ""]
    return "\n".join(out)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


class Chaos:
    """The town's processes the test owns (redis-server, the supervisor, the host
    daemon), the seeded schedule of what it does to them and to the workers, and what
    it saw."""

    town: TownFixture

    def __init__(self, seed: int, folder: Path) -> None:
        self.rng = random.Random(seed)
        self.folder = folder
        self.sock = folder / "redis.sock"
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.host: subprocess.Popen[bytes] | None = None
        self.later: list[tuple[float, int, str, int]] = []  # (due, n, what, pid)
        self.done: list[str] = []  # what was done, for the failure message
        self.frozen: set[int] = set()
        self.client = redis.Redis(unix_socket_path=str(self.sock), decode_responses=True,
                                  socket_timeout=2)
        self.agent_ids: dict[str, str] = {}

    # --- the processes -----------------------------------------------------------------

    def start_redis(self) -> None:
        self.redis_proc = durable_redis(self.folder)
        wait_until(self.redis_up, 20, "redis-server to load its AOF")

    def redis_up(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def start_supervisor(self) -> None:
        log = (self.folder / "supervisor.log").open("ab")
        self.supervisor = subprocess.Popen(
            [sys.executable, "-m", "tinytown.supervisor", "--town", str(self.town.root)],
            stdout=log, stderr=log)
        log.close()

    def start_host(self) -> None:
        log = (self.folder / "host.log").open("ab")
        self.host = subprocess.Popen([TT, "host", "--name", "h1"], cwd=self.town.root,
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()

    def worker_pid(self, name: str) -> int | None:
        try:
            pid = self.client.hget(keys.runtime(self.town.name, self.agent_ids[name]), "pid")
        except redis.RedisError:
            return None
        if not pid or pid_gone(int(pid)):
            return None
        return int(pid)

    # --- the chaos -----------------------------------------------------------------------

    def strike(self, elapsed: float) -> None:
        """One random blow."""
        what = self.rng.choice(["kill_worker", "kill_worker", "freeze_worker",
                                "kill_supervisor", "kill_host", "kill_redis"])
        agent = self.rng.choice(sorted(self.agent_ids))
        back = self.rng.uniform(0.2, 2.0)
        if what in ("kill_worker", "freeze_worker"):
            pid = self.worker_pid(agent)
            if pid is None or pid in self.frozen:
                return
            if what == "kill_worker":
                os.kill(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGSTOP)
                self.frozen.add(pid)
                self._later(self.rng.uniform(0.5, 5.0), "cont", pid)
            self.done.append(f"{elapsed:5.1f}s {what} {agent} ({pid})")
            return
        proc = {"kill_supervisor": self.supervisor, "kill_host": self.host,
                "kill_redis": self.redis_proc}[what]
        if proc is None or proc.poll() is not None:
            return  # down already: its restart is on the way
        proc.kill()
        proc.wait()
        self.done.append(f"{elapsed:5.1f}s {what} (back in {back:.1f}s)")
        self._later(back, what.replace("kill_", "start_"), 0)

    def like_systemd(self, elapsed: float) -> None:
        """A supervisor or host daemon that exited by itself (a host daemon started
        while Redis is down does) is started again a second later, as systemd's
        `Restart=always` would."""
        pending = {what for _, _, what, _ in self.later}
        for what, proc in (("start_supervisor", self.supervisor), ("start_host", self.host)):
            if proc is not None and proc.poll() is not None and what not in pending:
                self.done.append(f"{elapsed:5.1f}s {what[6:]} exited by itself"
                                 f" ({proc.returncode})")
                self._later(1.0, what, 0)

    def _later(self, delay: float, what: str, pid: int) -> None:
        heapq.heappush(self.later, (time.monotonic() + delay, len(self.done), what, pid))

    def run_due(self, everything: bool = False) -> None:
        while self.later and (everything or self.later[0][0] <= time.monotonic()):
            _, _, what, pid = heapq.heappop(self.later)
            if what == "cont":
                self.frozen.discard(pid)
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass  # declared dead while frozen, and killed
            else:
                getattr(self, what)()

    def stop(self) -> None:
        for proc in (self.supervisor, self.host):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.redis_proc is not None and self.redis_proc.poll() is None:
            self.redis_proc.kill()
            self.redis_proc.wait()
        self.client.close()

    # --- what it sees ----------------------------------------------------------------------

    def mission(self) -> dict[str, Any] | None:
        try:
            raw = self.client.get(keys.mission(self.town.name, "chaos"))
        except redis.RedisError:
            return None
        return json.loads(raw) if raw else None

    def tasks(self, ids: list[str]) -> dict[str, Task] | None:
        try:
            raws = self.client.mget([keys.task(self.town.name, i) for i in ids])
        except redis.RedisError:
            return None
        return {i: Task.from_json(raw) for i, raw in zip(ids, raws, strict=True) if raw}


def _stuck(tasks: dict[str, Task]) -> list[str]:
    """Tasks `blocked` although every task they wait for is completed."""
    return [t.id for t in tasks.values() if t.state == TaskState.BLOCKED and t.after
            and all(d in tasks and tasks[d].state == TaskState.COMPLETED for d in t.after)]


def _set_up(town_factory: Callable[..., TownFixture], folder: Path, records: Path,
            seed: int) -> tuple[TownFixture, Chaos]:
    chaos = Chaos(seed, folder)
    chaos.start_redis()
    cli = f"{sys.executable} {SUPPORT / 'chaos_agent.py'} {records} {seed}"
    town = town_factory(url=f"unix://{folder / 'redis.sock'}", cli=cli, hb_timeout=3,
                        hb_interval=1, restart="on-failure")
    toml = town.root / "tinytown.toml"  # quick restarts, and never a crash-loop halt
    toml.write_text(toml.read_text().replace(
        'restart = "on-failure"',
        'restart = "on-failure"\nrestart_backoff_secs = 0.3\nrestart_backoff_max_secs = 1\n'
        "crash_loop_limit = 1000"))
    _git(town.root, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Chaos"), ("user.email", "chaos@example.com")):
        _git(town.root, "config", key, value)
    (town.root / ".gitignore").write_text(".tt/\n")
    _git(town.root, "add", "-A")
    _git(town.root, "commit", "-q", "-m", "start")
    town.reconnect()
    chaos.town = town
    return town, chaos


@pytest.mark.parametrize("seed", _seeds(), ids=lambda s: f"seed{s}")
def test_a_mission_survives_kills_and_freezes(
        town_factory: Callable[..., TownFixture], tmp_path: Path, seed: int) -> None:
    print(f"chaos seed {seed} (TT_CHAOS_SEED={seed} replays it)")
    folder = session_tmp("ttc-")
    records = tmp_path / "records"
    town, chaos = _set_up(town_factory, folder, records, seed)
    try:
        _run(town, chaos, records, seed)
    finally:
        chaos.run_due(everything=True)
        for pid in list(chaos.frozen):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if not chaos.redis_up():
            chaos.start_redis()
        town.reconnect()
        stop_town_processes(town.town)
        chaos.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _run(town: TownFixture, chaos: Chaos, records: Path, seed: int) -> None:
    for name in ("alice", "bob"):  # no host daemon yet: the supervisor restarts them
        r = town.tt("spawn", name, "--role", "worker")
        assert r.code == 0, r.err
    chaos.start_supervisor()
    chaos.start_host()
    wait_until(lambda: [h for h in town.town.hosts() if h["state"] == "live"], 30,
               "the host daemon to register")
    r = town.tt("spawn", "carol", "--role", "worker")  # placed on the host daemon
    assert r.code == 0, r.err
    assert town.town.resolve("carol").host == "h1"
    chaos.agent_ids = {n: town.town.resolve(n).id for n in ("alice", "bob", "carol")}
    (town.root / "plan.toml").write_text(_plan())
    r = town.tt("mission", "start", "chaos", "--plan", "plan.toml")
    assert r.code == 0, r.err
    mission = chaos.mission()
    assert mission is not None
    ids: dict[str, str] = mission["tasks"]
    started = time.monotonic()
    next_blow = started + chaos.rng.uniform(0.5, 2.0)
    stuck: list[str] = []
    while True:
        now = time.monotonic()
        elapsed = now - started
        chaos.run_due()
        chaos.like_systemd(elapsed)
        if elapsed < CHAOS_SECS and now >= next_blow:
            chaos.strike(elapsed)
            next_blow = now + chaos.rng.uniform(0.7, 2.5)
        seen = chaos.tasks(list(ids.values()))
        if seen is not None and (found := _stuck(seen)):
            stuck.append(f"{elapsed:.1f}s: {found}")
        mission = chaos.mission()
        if mission is not None and mission["state"] == "done":
            break
        assert elapsed < DEADLINE_SECS, (
            f"seed {seed}: the mission is {mission and mission['state']} after"
            f" {DEADLINE_SECS}s; tasks: {_states(chaos, ids)}; chaos: {chaos.done};"
            f" {_diagnose(town, chaos)}")
        time.sleep(0.1)
    took = time.monotonic() - started
    print(f"chaos seed {seed}: done in {took:.1f}s after {len(chaos.done)} blows:")
    print("\n".join(chaos.done))
    chaos.run_due(everything=True)
    if not chaos.redis_up():
        chaos.start_redis()
    town.reconnect()
    why = f"seed {seed}; chaos: {chaos.done}"
    assert not stuck, f"tasks blocked with their dependencies completed: {stuck}; {why}"
    _check_once(town, ids, why)
    _check_order_and_work(town, ids, records, why)


def _diagnose(town: TownFixture, chaos: Chaos) -> str:
    """The agents as recorded, their inboxes and in-flight lists, and their worker
    logs' last lines: what a failure needs to be understood."""
    out = []
    try:
        for name, agent_id in chaos.agent_ids.items():
            raw = chaos.client.get(keys.agent(town.name, agent_id)) or "{}"
            agent = json.loads(raw)
            out.append(f"{name}: {agent.get('state')} task={agent.get('current_task')}"
                       f" inbox={chaos.client.llen(keys.inbox(town.name, agent_id))}"
                       f" inflight={chaos.client.llen(keys.inflight(town.name, agent_id))}"
                       f" wake={chaos.client.get(keys.wake(town.name, agent_id))}"
                       f" runtime={chaos.client.hgetall(keys.runtime(town.name, agent_id))}")
        role_queue = keys.role_queue(town.name, "worker")
        out.append(f"rolepending={chaos.client.zrange(keys.role_pending(town.name), 0, -1)}"
                   f" role queue={chaos.client.lrange(role_queue, 0, -1)}"
                   f" unacked={chaos.client.hgetall(f'tt:{town.name}:celery:unacked')}"
                   f" keys={sorted(chaos.client.scan_iter(f'tt:{town.name}:celery:*'))}")
    except redis.RedisError as exc:
        out.append(f"redis: {exc}")
    logs = [(n, town.root / ".tt" / "logs" / n / "worker.log") for n in chaos.agent_ids]
    for name, log in [*logs, ("host", chaos.folder / "host.log"),
                      ("supervisor", chaos.folder / "supervisor.log")]:
        if log.exists():
            out.append(f"--- {name}:\n" + "\n".join(
                log.read_text(errors="replace").splitlines()[-15:]))
    return "\n".join(out)


def _states(chaos: Chaos, ids: dict[str, str]) -> dict[str, str]:
    seen = chaos.tasks(list(ids.values())) or {}
    return {n: seen[i].state.value if i in seen else "?" for n, i in ids.items()}


def _check_once(town: TownFixture, ids: dict[str, str], why: str) -> None:
    """Each task completed, released, dispatched and reported exactly once."""
    by_id = {i: n for n, i in ids.items()}
    events = [e for _, e in town.town.redis.xrange(keys.events(town.name))]
    for kind in ("task_completed", "mission_released", "assigned"):
        counts = Counter(e.get("task") for e in events if e["kind"] == kind)
        wrong = {by_id[i]: counts[i] for i in ids.values() if counts[i] != 1}
        assert not wrong, f"{kind} events per task (not 1): {wrong}; {why}"
    for kind in ("task_failed", "task_cancelled", "released"):
        extra = [by_id.get(e.get("task", ""), e.get("task")) for e in events
                 if e["kind"] == kind]
        assert not extra, f"{kind} events: {extra}; {why}"
    done = Counter(str(m.body.task_id) for m in  # type: ignore[union-attr]
                   town.town.store.peek_inbox(keys.SUPERVISOR_ID) if m.type == "task_done")
    wrong = {by_id[i]: done[i] for i in ids.values() if done[i] != 1}
    assert not wrong, f"task_done reports per task (not 1): {wrong}; {why}"


def _check_order_and_work(town: TownFixture, ids: dict[str, str], records: Path,
                          why: str) -> None:
    """Each task started after its dependencies completed; its work ran (at least once)
    and its commits are on its agent's branch."""
    tasks = {n: town.town.task(i) for n, i in ids.items()}
    by_id = {i: n for n, i in ids.items()}
    for name, task in tasks.items():
        assert task.state == TaskState.COMPLETED, f"{name} is {task.state.value}; {why}"
        for dep in task.after:
            done = tasks[by_id[dep]].completed_at
            assert task.started_at is not None and done is not None
            assert task.started_at >= done, f"{name} started before {by_id[dep]}; {why}"
    runs = [line.split() for line in (records / "chaos.log").read_text().splitlines()]
    ended = Counter(r[3] for r in runs if r[0] == "end")
    assert all(ended[i] >= 1 for i in ids.values()), f"runs: {ended}; {why}"
    began = Counter(r[3] for r in runs if r[0] == "start")
    again = {by_id[i]: n for i, n in began.items() if n > 1 and i in by_id}
    print(f"{sum(began.values())} runs of the agent CLI for 12 tasks; run again: {again}")
    for name, task in tasks.items():
        assert task.commits, f"{name} has no commits; {why}"
        assert task.branch, f"{name} has no branch; {why}"
        for sha in task.commits:
            _git(town.root, "merge-base", "--is-ancestor", sha, task.branch)
