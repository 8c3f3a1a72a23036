"""The supervisor at scale: 1,000 agents in one town, played by a load generator, and
one real supervisor (`python -m tinytown.supervisor`, started as `tt` starts it).

The agents are real records (`Town.spawn_agent`, then `idle`); their workers are fakes
on another host, so the supervisor judges them by heartbeat, not by pid: each runtime
hash is written by `acquire_lease.lua` as `runtime.acquire` writes it, the host
excepted. One thread of the bench then does what 1,000 idle-ish workers do: each
agent's own `beat` (`runtime.beat`, fenced) every heartbeat interval, spread evenly,
with a Celery `worker-heartbeat` event from `<name>@<otherhost>`; and rounds, each agent
one every minute on average (task-received, task-started, the record fenced `idle` →
`working`, 1-10 s later task-succeeded and `working` → `idle`). During the window it
silences a few agents (no beat, no event, no round end) at random moments.

Measured: the supervisor's CPU over the window (utime + stime from /proc); for each
silenced agent, the time from its last beat (the `beat` its hash kept) to its
`recovered` event (the stream entry's id is Redis's clock in ms, the same machine's);
how many healthy agents were ever marked `error` (must be 0).
"""

from __future__ import annotations

import heapq
import itertools
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import celery
import redis

from tinytown.celery_app import make_app
from tinytown.core import keys
from tinytown.core.errors import TinytownError
from tinytown.core.models import Agent, AgentState, utcnow
from tinytown.db import leader, runtime, scripts, states
from tinytown.db.fence import Fence
from tinytown.db.wakeup import ROUND_TASK
from tinytown.ops.facade import Town

from .common import HOST, log, median, pct, wait_until
from .procs import CLK_TCK, cpu_ticks, marked_pids, terminate

if TYPE_CHECKING:
    from .harness import Bench

OTHER_HOST = "bench-otherhost"  # where the fake workers say they run: not this host
SCALE_TIMEOUT = 6.0  # heartbeat_timeout_secs of the phase's town (the default is 15)
SCALE_INTERVAL = 5  # heartbeat_interval_secs: the default, what real workers use


@dataclass
class Fake:
    """One agent whose worker the load generator plays."""

    id: str
    name: str
    fence: Fence
    silenced: bool = False
    task: str | None = None  # the round running, as its Celery task id
    rounds: int = 0
    last_beat: float = 0.0  # time.time() after its last beat and event went out
    max_gap: float = 0.0  # the longest time between two of its beats

    @property
    def hostname(self) -> str:
        return f"{self.name}@{OTHER_HOST}"


# --- the town and its agents ------------------------------------------------------------


def make_town(b: Bench, name: str, timeout: float, interval: int) -> Town:
    """A town of its own on the bench's Redis, with these heartbeat settings; no
    supervisor autostart, agents in the town's folder (no git). Not one of the
    harness's towns: its `tt down` would kill every agent one by one (stop_town)."""
    root = b.tmp / name
    root.mkdir()
    Town.init(root, name=name).close()
    path = root / "tinytown.toml"
    text, found = re.subn(
        r"(?m)^heartbeat_timeout_secs = .*$",
        f"heartbeat_timeout_secs = {timeout:g}\nheartbeat_interval_secs = {interval}\n"
        "autostart = false", path.read_text(), count=1)
    if not found:
        raise RuntimeError(f"{path}: no heartbeat_timeout_secs line to change")
    path.write_text(text + '\n[workspace]\nmode = "shared"\n')
    town = Town.connect(root)
    got = town.settings.supervisor
    if (got.heartbeat_timeout_secs, got.heartbeat_interval_secs) != (timeout, interval):
        raise RuntimeError(f"{path}: settings not taken ({got})")
    return town


def record_agents(town: Town, names: list[str]) -> list[str]:
    """Agents recorded with the Town API, as `tt spawn --no-start` records them
    (`starting`, no worker); their ids."""
    return [town.spawn_agent(n, cli="/bin/true", start=False, workspace="shared").id
            for n in names]


def hold(town: Town, agents: list[tuple[str, str]], host: str,
         pids: list[int]) -> list[Fence]:
    """Fake workers take the agents ((id, name) pairs) over as `runtime.acquire` does
    (`acquire_lease.lua`: a new epoch, the runtime hash with pid, host, hostname,
    started_at, launch and beat), but on `host`; one round trip for all."""
    pipe = town.redis.pipeline(transaction=False)
    now = f"{time.time():.3f}"
    for (agent_id, name), pid in zip(agents, pids, strict=True):
        fields = {"pid": str(pid), "host": host, "hostname": f"{name}@{host}",
                  "started_at": utcnow().isoformat(), "launch": uuid.uuid4().hex, "beat": now}
        scripts.run(pipe, scripts.ACQUIRE_LEASE,
                    [keys.epoch(town.name, agent_id), keys.runtime(town.name, agent_id)],
                    ["", *(x for kv in fields.items() for x in kv)])
    epochs = pipe.execute()
    if not all(isinstance(e, int) and e > 0 for e in epochs):
        raise RuntimeError(f"could not take the agents over: {set(map(str, epochs))}")
    return [Fence(keys.epoch(town.name, agent_id), int(epoch))
            for (agent_id, _), epoch in zip(agents, epochs, strict=True)]


def add_fakes(town: Town, names: list[str]) -> list[Fake]:
    """Agents recorded with the Town API, each held by a fake worker on OTHER_HOST and
    made `idle` with a fresh heartbeat, as a worker's start does."""
    ids = record_agents(town, names)
    fences = hold(town, list(zip(ids, names, strict=True)), OTHER_HOST,
                  [10_000 + k for k in range(len(ids))])

    def started(agent: Agent) -> None:
        states.step(agent, AgentState.IDLE)
        agent.last_heartbeat = utcnow()

    for i in range(0, len(ids), 500):
        town.store.update_agents(ids[i:i + 500], started)
    return [Fake(agent_id, name, fence)
            for agent_id, name, fence in zip(ids, names, fences, strict=True)]


def start_supervisor(b: Bench, town: Town) -> int:
    """One supervisor process for the town, started detached as `tt` does (it carries
    the run's marker, so the harness's cleanup stops it whatever happens)."""
    pid = town.start_supervisor()
    wait_until(lambda: f"{pid}@{HOST}" in leader.running(town.store), 30,
               f"supervisor {pid} to register", 0.02)
    return pid


def stop_town(b: Bench, town: Town, pids: list[int]) -> None:
    """Stop the town's supervisors (those still ours) and drop all its keys, so that
    the later phases' SCANs do not walk 1,000 agents' keys."""
    ours = set(marked_pids(b.mark))
    terminate([p for p in pids if p in ours], 10)
    try:
        batch: list[str] = []
        for key in b.r.scan_iter(match=f"{keys.prefix(town.name)}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                b.r.unlink(*batch)
                batch = []
        if batch:
            b.r.unlink(*batch)
    except redis.RedisError as exc:  # Redis gone: the run is failing anyway
        log(f"could not drop town {town.name}'s keys: {exc}")
    town.close()


class Recovered:
    """The town's `recovered` events as they come: agent id → when (Unix seconds, from
    the stream entry's id, which is Redis's clock in milliseconds)."""

    def __init__(self, town: Town) -> None:
        self.store = town.store
        newest = self.store.read_events(1)
        self.after = newest[-1]["id"] if newest else "0-0"
        self.at: dict[str, float] = {}
        self.events: list[dict[str, str]] = []

    def poll(self, block_ms: int = 100) -> None:
        while True:
            got = self.store.follow_events(self.after, block_ms)
            for event in got:
                self.after = event["id"]
                if event.get("kind") == "recovered" and event.get("agent"):
                    self.at.setdefault(event["agent"], int(event["id"].split("-")[0]) / 1000)
                    self.events.append(event)
            if len(got) < 100:
                return
            block_ms = 1  # more are waiting (0 would block for ever)

    def wait(self, ids: set[str], timeout: float) -> set[str]:
        """Poll until every one of `ids` was recovered or `timeout`; the missing ones."""
        deadline = time.monotonic() + timeout
        while not ids <= set(self.at) and time.monotonic() < deadline:
            self.poll(200)
        return ids - set(self.at)


# --- the load generator -------------------------------------------------------------------


class LoadGen:
    """One thread playing the fake agents' workers: beats, Celery events and rounds on
    a schedule (a heap of due times); `silence` makes a worker die on the spot."""

    def __init__(self, town: Town, fakes: list[Fake], interval: float,
                 round_every: float | None) -> None:
        self.town = town
        self.fakes = fakes
        self.interval = interval
        self.round_every = round_every  # each agent's mean time between rounds, s
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.late: list[float] = []  # how late each beat went out, s
        self.counts = {"beats": 0, "events": 0, "rounds": 0, "refused": 0}
        self.failure: str | None = None
        self.cpu_s = 0.0
        self.wall_s = 0.0
        self.thread = threading.Thread(target=self._run, name="bench-load", daemon=True)

    def start(self) -> None:
        self.thread.start()
        if not self.ready.wait(30) or self.failure:
            raise RuntimeError(f"the load generator did not start: {self.failure}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)

    def silence(self, fake: Fake) -> None:
        with self.lock:  # not in the middle of its beat
            fake.silenced = True

    def _run(self) -> None:
        cpu0, wall0 = time.thread_time(), time.monotonic()
        try:
            app = make_app(self.town.settings)
            with app.events.default_dispatcher(hostname=f"bench@{OTHER_HOST}") as disp:
                self._loop(disp)
        except Exception as exc:  # reported by the phase
            self.failure = f"{type(exc).__name__}: {exc}"
            log(f"load generator failed: {self.failure}")
            self.ready.set()
        finally:
            self.cpu_s, self.wall_s = time.thread_time() - cpu0, time.monotonic() - wall0

    def _loop(self, disp: Any) -> None:
        n = len(self.fakes)
        seq = itertools.count()
        start = time.monotonic()
        heap: list[tuple[float, int, str, int]] = [
            (start + i * self.interval / n, next(seq), "beat", i) for i in range(n)]
        rate = n / self.round_every if self.round_every else 0.0
        if rate:
            heap.append((start + random.expovariate(rate), next(seq), "round", -1))
        heapq.heapify(heap)
        self.ready.set()
        while not self.stop.is_set():
            due, _, kind, i = heap[0]
            wait = due - time.monotonic()
            if wait > 0:
                self.stop.wait(min(wait, 0.2))
                continue
            heapq.heappop(heap)
            if kind == "beat":
                heapq.heappush(heap, (due + self.interval, next(seq), "beat", i))
                self.late.append(-wait)
                self._beat(disp, self.fakes[i])
            elif kind == "round":
                heapq.heappush(heap, (due + random.expovariate(rate), next(seq), "round", -1))
                k = random.randrange(n)
                if self._round_start(disp, self.fakes[k]):
                    heapq.heappush(heap, (time.monotonic() + random.uniform(1, 10),
                                          next(seq), "end", k))
            else:
                self._round_end(disp, self.fakes[i])

    def _send(self, disp: Any, fake: Fake, kind: str, **fields: Any) -> None:
        disp.hostname = fake.hostname  # one dispatcher speaks for every fake worker
        disp.headers = {"hostname": fake.hostname}
        disp.send(kind, **fields)
        self.counts["events"] += 1

    def _beat(self, disp: Any, fake: Fake) -> None:
        """What a worker does every interval: its own beat, and Celery's heartbeat."""
        with self.lock:
            if fake.silenced:
                return
            if not runtime.beat(self.town.store, fake.fence, fake.id):
                self.counts["refused"] += 1
            self._send(disp, fake, "worker-heartbeat", freq=float(self.interval),
                       active=1 if fake.task else 0, processed=fake.rounds,
                       loadavg=[0.1, 0.1, 0.1], sw_ident="py-celery",
                       sw_ver=celery.__version__, sw_sys="Linux")
            now = time.time()
            if fake.last_beat:
                fake.max_gap = max(fake.max_gap, now - fake.last_beat)
            fake.last_beat = now
            self.counts["beats"] += 1

    def _round_start(self, disp: Any, fake: Fake) -> bool:
        with self.lock:
            if fake.silenced or fake.task:
                return False
            fake.task = str(uuid.uuid4())
            self._send(disp, fake, "task-received", uuid=fake.task, name=ROUND_TASK,
                       args=repr((fake.id,)), kwargs="{}", root_id=fake.task,
                       parent_id=None, retries=0, eta=None, expires=None)
            self._send(disp, fake, "task-started", uuid=fake.task)
            self._transition(fake, AgentState.WORKING, AgentState.IDLE)
            return True

    def _round_end(self, disp: Any, fake: Fake) -> None:
        with self.lock:
            if fake.silenced or not fake.task:
                return  # a dead worker finishes nothing
            self._send(disp, fake, "task-succeeded", uuid=fake.task, result="None",
                       runtime=1.0)
            self._transition(fake, AgentState.IDLE, AgentState.WORKING)
            fake.task = None
            fake.rounds += 1
            self.counts["rounds"] += 1

    def _transition(self, fake: Fake, new: AgentState, old: AgentState) -> None:
        try:
            states.transition(self.town.store, fake.id, new, expect={old}, fence=fake.fence)
        except TinytownError:  # marked error meanwhile (counted by the phase), or fenced
            self.counts["refused"] += 1


# --- the phase ------------------------------------------------------------------------------


def _until(t: float, follower: Recovered) -> None:
    """Wait until monotonic time `t`, reading the town's events meanwhile."""
    while time.monotonic() < t:
        follower.poll(max(1, min(200, int((t - time.monotonic()) * 1000))))


def measure(b: Bench, town: Town, fakes: list[Fake], gen: LoadGen, sup: int,
            follower: Recovered, window: float, n_victims: int) -> dict[str, Any]:
    """Once the supervisor leads: its CPU over `window`, and `n_victims` silenced at
    random moments in it (after its first interval in the lead, as the figures before
    the supervisor's sight were measured)."""
    limit = town.settings.supervisor.heartbeat_timeout_secs
    wait_until(lambda: leader.leader(town.store) == f"{sup}@{HOST}", 30,
               "the supervisor to lead", 0.02)
    t_lead = time.monotonic()
    victims = random.sample(fakes, n_victims)
    _until(t_lead + 1.0, follower)  # its event consumer imports Celery and connects
    w0 = time.monotonic()
    first = t_lead + gen.interval + 0.5
    moments = sorted(random.uniform(first, w0 + window) for _ in victims)
    redis_pid = b.redis_proc.pid if b.redis_proc else 0
    sup0, red0 = cpu_ticks(sup), cpu_ticks(redis_pid)
    load0 = dict(gen.counts)
    for victim, moment in zip(victims, moments, strict=True):
        _until(moment, follower)
        gen.silence(victim)
    _until(w0 + window, follower)
    wall = time.monotonic() - w0
    sup1, red1 = cpu_ticks(sup), cpu_ticks(redis_pid)
    load = {k: v - load0[k] for k, v in gen.counts.items()}
    missing = follower.wait({v.id for v in victims}, limit + 15)
    follower.poll(500)  # anything recovered just after
    return {"victims": victims, "follower": follower, "missing": missing, "wall": wall,
            "cpu": (sup1 - sup0) / CLK_TCK / wall * 100,
            "redis_cpu": (red1 - red0) / CLK_TCK / wall * 100, "load": load}


def verdicts(town: Town, fakes: list[Fake], victims: list[Fake], follower: Recovered
             ) -> dict[str, Any]:
    """Detection latencies (from each victim's last beat as its hash kept it) and the
    healthy agents that were marked `error` anyway."""
    beats = runtime.read_many(town.store, [v.id for v in victims], "beat")
    latency: list[float] = []
    for victim, (beat,) in zip(victims, beats, strict=True):
        if victim.id in follower.at and beat:
            latency.append(follower.at[victim.id] - float(beat))
    victim_ids = {v.id for v in victims}
    errors = {a.id for a in town.list_agents() if a.state == AgentState.ERROR}
    wrong = (errors | set(follower.at)) - victim_ids
    by_id = {f.id: f for f in fakes}
    return {"latency": latency, "wrong": sorted(wrong),
            "wrong_detail": [{"name": by_id[i].name, "max_gap_s": round(by_id[i].max_gap, 3),
                              "reason": next((e.get("reason") for e in follower.events
                                              if e.get("agent") == i), None)}
                             for i in sorted(wrong) if i in by_id]}


def run(b: Bench) -> None:
    n = 1000
    window = 10.0 if b.quick else 30.0
    n_victims = 8 if b.quick else 20
    limit, interval = SCALE_TIMEOUT, SCALE_INTERVAL
    town = make_town(b, "scale", limit, interval)
    sups: list[int] = []
    gen: LoadGen | None = None
    try:
        t0 = time.monotonic()
        fakes = add_fakes(town, [f"s{i:04d}" for i in range(n)])
        log(f"scale: {n} agent records and fake workers on {OTHER_HOST} in "
            f"{time.monotonic() - t0:.1f}s")
        gen = LoadGen(town, fakes, interval, round_every=60.0)
        gen.start()
        follower = Recovered(town)
        sups.append(start_supervisor(b, town))
        got = measure(b, town, fakes, gen, sups[0], follower, window, n_victims)
        gen.close()
        if gen.failure:
            raise RuntimeError(f"the load generator failed: {gen.failure}")
        v = verdicts(town, fakes, got["victims"], got["follower"])
    finally:
        if gen is not None:
            gen.close()
        stop_town(b, town, sups)
    report(b, n, window, limit, interval, gen, got, v)


def report(b: Bench, n: int, window: float, limit: float, interval: int, gen: LoadGen,
           got: dict[str, Any], v: dict[str, Any]) -> None:
    latency, wrong = v["latency"], v["wrong"]
    late = sorted(gen.late)
    gen_cpu = gen.cpu_s / max(gen.wall_s, 1e-9) * 100
    load = got["load"]
    log(f"scale: supervisor CPU {got['cpu']:.1f}% of a core over {got['wall']:.1f}s; "
        f"redis {got['redis_cpu']:.1f}%; load generator {gen_cpu:.1f}% (beats late p99 "
        f"{pct(late, 99) * 1000:.0f} ms, max {late[-1] * 1000:.0f} ms); in the window "
        f"{load['beats']} beats, {load['events']} Celery events, {load['rounds']} rounds "
        f"finished")
    log(f"scale: {len(latency)}/{len(got['victims'])} silenced agents marked error, "
        f"{', '.join(f'{x:.2f}' for x in sorted(latency))} s after their last beat; "
        f"healthy agents marked error: {len(wrong)} {v['wrong_detail'][:5]}")
    b.results.raw["scale"] = {
        "agents": n, "window_s": round(got["wall"], 2), "heartbeat_timeout_secs": limit,
        "heartbeat_interval_secs": interval, "round_every_s": 60.0,
        "supervisor_cpu_pct": got["cpu"], "redis_cpu_pct": got["redis_cpu"],
        "load_generator_cpu_pct": gen_cpu, "window_load": load,
        "beat_late_s": {"p50": pct(late, 50), "p99": pct(late, 99), "max": late[-1]},
        "detection_s": latency, "undetected": len(got["missing"]),
        "healthy_marked_error": v["wrong_detail"],
    }
    b.results.notes.append(
        f"scale: {n} agents in a town of their own with heartbeat_timeout_secs {limit:g}"
        f" (the default is 15) and heartbeat_interval_secs {interval}; fake workers on"
        f" another host (one bench thread: beats, Celery heartbeat and task events, a round"
        f" per agent per minute); {len(got['victims'])} silenced at random moments")
    add = b.results.add
    target = limit + 1
    add(f"supervisor, {n} agents: CPU over {got['wall']:.0f} s", "% core", got["cpu"], None,
        "< 25%", lambda x, r: x is not None and x < 25, ratio=False)
    add(f"{n} agents: redis-server CPU meanwhile", "% core", got["redis_cpu"], None, "report",
        ratio=False)
    within = f"≤ {target:g} s (limit {limit:g} s + 1 s)"
    for q in (50, 99):
        add(f"{n} agents: silenced → `error`, from last beat, p{q} of {len(latency)}", "s",
            pct(latency, q) if latency else None, target, within,
            lambda x, r: x is not None and x <= target,
            baseline_name="the target: heartbeat_timeout_secs + 1 s")
    missed = len(got["missing"])
    add(f"{n} agents: silenced agents never marked `error`", "", float(missed), None, "0",
        lambda x, r: x == 0, ratio=False)
    add(f"{n} agents: healthy agents marked `error`", "", float(len(wrong)), None, "0",
        lambda x, r: x == 0, ratio=False)
    if latency:
        b.results.raw["scale"]["detection_median_s"] = median(latency)
