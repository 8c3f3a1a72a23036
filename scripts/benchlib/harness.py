"""One run's surroundings: its redis-server, towns, baseline workers, and cleanup.

Bench owns every process a run starts (each carries the run's marker in its
environment), so cleanup finds them all, on failure and on Ctrl-C too. The phases
share the main town and its agents (setup_main) and read what they need from here.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from tinytown.core.models import AgentState
from tinytown.db.embedded import find_redis_server
from tinytown.ops.facade import AgentHandle, Town

from .common import HOST, SCRIPTS, log, wait_until
from .procs import CLK_TCK, MARK_VAR, cpu_ticks, marked_pids, system_cpu, terminate
from .report import Results

Phase = Callable[["Bench"], None]
# phases that make towns of their own: they run once the main town is down, "many" last
OWN_TOWN = ("scale", "failover", "fleet", "wake", "many")


class Bench:
    # the main town's agents and the baselines beside them (setup_main)
    town: Town
    disp: AgentHandle
    tp: AgentHandle
    target: AgentHandle
    b_disp: subprocess.Popen[bytes]
    b_tp: subprocess.Popen[bytes]
    sock: Path
    r: redis.Redis
    bl: Any  # the bench_baseline module, imported once the broker is known
    started: datetime
    load_start: list[str]
    cpu_start: tuple[int, int]

    def __init__(self, quick: bool) -> None:
        self.quick = quick  # --quick: the small smoke version
        self.mark = uuid.uuid4().hex
        os.environ[MARK_VAR] = self.mark  # inherited by every process we start
        for name in ("REDIS_URL", "TINYTOWN_AGENT_ID", "TINYTOWN_AGENT_NAME",
                     "TINYTOWN_TOWN_ROOT", "TINYTOWN_TASK_ID"):
            os.environ.pop(name, None)
        self.tmp = Path(tempfile.mkdtemp(prefix="ttbench-"))
        self.results = Results()
        self.towns: list[Town] = []
        self.supervisor_pid: dict[str, int] = {}  # by town name, as start_supervisor said
        self.baseline_procs: list[subprocess.Popen[bytes]] = []
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.redis_version: str | None = None
        self.rec_dir = self.tmp / "rec"
        self.rec_dir.mkdir()
        self.recorder = self._write_recorder()
        self.py = sys.executable
        self.heartbeat = 2
        self.other_load: dict[str, float] = {}
        tt = Path(sys.executable).parent / "tt"
        self.tt = [str(tt)] if tt.exists() else [sys.executable, "-m", "tinytown.cli"]

    # --- setup ----------------------------------------------------------------------

    def _write_recorder(self) -> Path:
        """The agent CLI of the latency runs: it writes its start time, then exits.

        bash's $EPOCHREALTIME costs ~1 ms from exec; without bash 5, Python -S -E does.
        """
        path = self.tmp / "record-start"
        name = '"${TINYTOWN_TASK_ID:-round-$TINYTOWN_ROUND}"'
        bash = shutil.which("bash")
        ok = bash and subprocess.run([bash, "-c", '[ -n "$EPOCHREALTIME" ]']).returncode == 0
        if ok:
            path.write_text(f'#!{bash}\necho "$EPOCHREALTIME" > "{self.rec_dir}/"{name}\n')
        else:
            path.write_text(
                f"#!{sys.executable} -S -E\nimport os, time\n"
                f"t = time.time()\nname = os.environ.get('TINYTOWN_TASK_ID') or "
                f"'round-' + os.environ.get('TINYTOWN_ROUND', '')\n"
                f"open({str(self.rec_dir)!r} + '/' + name, 'w').write(repr(t))\n")
        path.chmod(0o755)
        return path

    def start_redis(self) -> None:
        self.sock = self.tmp / "redis.sock"
        self.redis_proc = subprocess.Popen(
            [find_redis_server(), "--port", "0", "--unixsocket", str(self.sock),
             "--unixsocketperm", "700", "--dir", str(self.tmp), "--save", "",
             "--appendonly", "no", "--maxclients", "10000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self.r = redis.Redis(unix_socket_path=str(self.sock), decode_responses=True)

        def up() -> bool:
            try:
                return bool(self.r.ping())
            except redis.RedisError:
                return False

        wait_until(up, 10, "redis-server to start", 0.02)
        self.redis_version = self.r.info("server")["redis_version"]
        os.environ["REDIS_URL"] = f"unix://{self.sock}"
        os.environ["BENCH_SOCKET"] = str(self.sock)
        os.environ["BENCH_BROKER"] = f"redis+socket://{self.sock}"
        os.environ["BENCH_PREFIX"] = "bench-baseline:"
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(SCRIPTS)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
        if str(SCRIPTS) not in sys.path:
            sys.path.insert(0, str(SCRIPTS))
        import bench_baseline

        self.bl = bench_baseline

    def new_town(self, name: str) -> Town:
        root = self.tmp / name
        root.mkdir()
        town = Town.init(root, name=name)
        # the crash phase times detection: a supervisor that restarts the killed worker
        # (the default, `restart = "on-failure"`) brings it back before Celery's event
        # state (the baseline) can mark it offline
        config = root / "tinytown.toml"
        config.write_text(config.read_text().replace(
            "[agent]\n", '[agent]\nrestart = "never"\n', 1))
        self.towns.append(town)
        # the baselines get the same heartbeat interval as the town's workers
        self.heartbeat = town.settings.supervisor.heartbeat_interval_secs
        # REDIS_URL is set, so nothing autostarts the supervisor: start it as `tt` would.
        self.supervisor_pid[name] = town.start_supervisor()
        return town

    def down(self, town: Town) -> None:
        """`tt down` of a town of this run, which then is no longer ours to stop."""
        town.down()
        self.towns.remove(town)

    def start_baseline(self, name: str, queue: str) -> subprocess.Popen[bytes]:
        logs = self.tmp / "baseline-logs"
        logs.mkdir(exist_ok=True)
        proc = subprocess.Popen(
            self.bl.worker_argv(self.py, queue, f"{name}@{HOST}", self.heartbeat,
                                str(logs / f"{name}.log")),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, cwd=self.tmp,
        )
        self.baseline_procs.append(proc)
        return proc

    def wait_baseline_ready(self, names: list[str], timeout: float) -> float:
        """Wait until every named worker fired worker_ready; the time the last one did."""
        wanted = {f"{n}@{HOST}" for n in names}
        seen: dict[str, float] = {}

        def done() -> bool:
            for item in self.r.lrange(self.bl.READY_LIST, 0, -1):
                host, ts = item.rsplit(" ", 1)
                seen[host] = float(ts)
            return wanted <= set(seen)

        wait_until(done, timeout, f"{len(names)} baseline workers to be ready", 0.1)
        return max(seen[h] for h in wanted)

    def stop_baselines(self, procs: list[subprocess.Popen[bytes]]) -> None:
        terminate([p.pid for p in procs], 15)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
            if p in self.baseline_procs:
                self.baseline_procs.remove(p)

    # --- cleanup --------------------------------------------------------------------

    def cleanup(self) -> None:
        for town in self.towns:
            try:
                town.down()
            except Exception as exc:  # keep going: the sweep below catches the rest
                log(f"tt down of {town.name} failed: {exc}")
        self.stop_baselines(list(self.baseline_procs))
        leftovers = [p for p in marked_pids(self.mark)
                     if self.redis_proc is None or p != self.redis_proc.pid]
        if leftovers:
            log(f"stopping {len(leftovers)} leftover process(es): {leftovers}")
            terminate(leftovers, 10)
        if self.redis_proc is not None:
            self.redis_proc.terminate()
            try:
                self.redis_proc.wait(10)
            except subprocess.TimeoutExpired:
                self.redis_proc.kill()
                self.redis_proc.wait()
        rest = marked_pids(self.mark)
        if rest:
            terminate(rest, 2)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- run --------------------------------------------------------------------------

    def run(self, phases: list[str], table: Mapping[str, Phase]) -> None:
        """The named phases (run by `table`): those on the main town first, then those
        with towns of their own (OWN_TOWN), "many" last."""
        self.started = datetime.now(UTC)
        self.load_start = Path("/proc/loadavg").read_text().split()[:3]
        self.cpu_start = system_cpu()
        self.start_redis()
        log(f"redis-server {self.redis_version} on {self.sock}")
        main_phases = [p for p in phases if p not in OWN_TOWN]
        if main_phases:
            self.setup_main()
            for phase in main_phases:
                self.measured(phase, table[phase])
            self.teardown_main()
        own = [p for p in phases if p in OWN_TOWN and p != "many"]
        for phase in own + (["many"] if "many" in phases else []):
            self.measured(phase, table[phase])

    def our_cpu(self) -> float:
        """CPU seconds used so far by this run: us, our reaped children, and the live
        processes we started (detached workers included)."""
        own: float = sum(getattr(resource.getrusage(who), f)
                  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for f in ("ru_utime", "ru_stime"))
        return own + sum(cpu_ticks(p, children=True) for p in marked_pids(self.mark)) / CLK_TCK

    def measured(self, name: str, phase: Phase) -> None:
        """Run a phase; note how busy the machine was with other work meanwhile."""
        busy0, total0 = system_cpu()
        ours0 = self.our_cpu()
        try:
            phase(self)
        finally:
            busy1, total1 = system_cpu()
            cores = os.cpu_count() or 1
            wall = (total1 - total0) / CLK_TCK / cores
            foreign = max(0.0, (busy1 - busy0) / CLK_TCK - (self.our_cpu() - ours0))
            self.other_load[name] = round(foreign / max(wall, 1e-9) / cores * 100, 1)
            self.results.raw["other_load_pct_of_machine"] = self.other_load

    def setup_main(self) -> None:
        t0 = time.monotonic()
        self.town = self.new_town("bench")
        town = self.town
        self.disp = town.spawn_agent("disp", cli=str(self.recorder))
        self.tp = town.spawn_agent("tp", cli="/bin/true")
        self.target = town.spawn_agent("target", cli="/bin/true", start=False)
        self.b_disp = self.start_baseline("bdisp", "bench.disp")
        self.b_tp = self.start_baseline("btp", "bench.tp")
        echo = subprocess.Popen(
            [self.py, str(SCRIPTS / "bench_baseline.py"), "echo", str(self.sock),
             "bench-raw:inbox", "bench-raw:replies"],
            stdin=subprocess.DEVNULL, start_new_session=True)
        self.baseline_procs.append(echo)
        for h in (self.disp, self.tp):
            h.wait_for_state(AgentState.IDLE, timeout=60)
        self.wait_baseline_ready(["bdisp", "btp"], 60)
        wait_until(lambda: self.r.blpop(["bench-raw:replies"], 1), 30, "the echo process")
        time.sleep(1.0)  # let start-up settle
        log(f"main town and baselines ready in {time.monotonic() - t0:.1f}s")

    def teardown_main(self) -> None:
        self.down(self.town)
        self.r.lpush("bench-raw:inbox", "quit")
        self.stop_baselines(list(self.baseline_procs))
