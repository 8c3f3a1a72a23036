"""The Python API: `Town`, a facade over the ops modules. The CLI is a thin layer over it.

Every operation a client of a town has is a method here, and each one is a call into
the module that does it, on the town's `TownContext` (its store, settings and name):
`references` (naming agents and tasks), `spawning`, `assignments` (tasks: assign,
finish, wait), `routing` (roles and the backlog), `control`, `reclaim`, `snapshot`,
`workspaces`, `hosting`, `usage_budgets`, `access` (API keys), `health`; `handles` holds
`AgentHandle` and `Channel`. Two mixins hold the rest of the API, one topic each:
`ops/teamwork.py` (dependencies, missions, questions to a person) and `ops/serving.py`
(API keys, audit, health). No ops module imports this one. `tinytown.db` does all
Redis work. The ops modules are loaded on first use (`ops.<module>`, see
tinytown/ops/__init__.py), so scripts that only read and write records start fast.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinytown import ops
from tinytown.core.errors import TownExists, UsageError
from tinytown.core.models import Agent, Gates, Priority, Task, TaskState
from tinytown.core.settings import (
    CONFIG_FILE,
    Settings,
    config_template,
    validate_town_name,
)
from tinytown.core.settings import find_root as _find_root
from tinytown.db.connection import TownRedis, connect
from tinytown.db.store import Store
from tinytown.ops.approving import Approvals, gated
from tinytown.ops.context import TownContext, worker_status
from tinytown.ops.handles import AgentHandle, Channel
from tinytown.ops.references import resolve, resolve_task
from tinytown.ops.serving import ServingApi
from tinytown.ops.teamwork import TeamworkApi
from tinytown.ops.usage_budgets import KEEP, Keep
from tinytown.system.private import private_dir

if TYPE_CHECKING:
    pass

__all__ = ["AgentHandle", "Channel", "Town"]
ROUND_LOGS_LISTED = 50  # Town.round_log: the newest rounds it lists


class Town(TeamworkApi, ServingApi, Approvals):
    """A connected town: its settings, its Redis client and its store."""

    def __init__(self, settings: Settings, redis_client: TownRedis) -> None:
        self.settings = settings
        self.redis = redis_client
        self.store = Store(redis_client, settings.town)
        self.context = TownContext(self.store, settings)
        self.channel = Channel(self)

    # --- opening a town -----------------------------------------------------------

    @classmethod
    def init(cls, path: str | Path = ".", name: str | None = None, join: bool = False,
             nested: bool = False) -> Town:
        """Create tinytown.toml and .tt/ in `path`, and start (or reach) the town's Redis.

        A town of the same name with data in that Redis, made in another folder, is
        refused unless `join` (two folders would share one town's agents and tasks).
        A folder inside a town is refused unless `nested`: a second town there would
        have its own Redis, and its agents' branches would collide with the first's."""
        root = Path(path).resolve()
        if (root / CONFIG_FILE).exists():
            raise TownExists(f"{root / CONFIG_FILE} already exists: this folder is a town")
        if not root.is_dir():
            raise UsageError(f"{root} is not a folder")
        from tinytown.system.workspace import default_town_name

        town_name = validate_town_name(name) if name is not None else default_town_name(root)
        enclosing = next((f for f in root.parents if (f / CONFIG_FILE).is_file()), None)
        if enclosing is not None and not nested:
            raise TownExists(f"{root} is inside the town at {enclosing}: `tt` commands here"
                             " already use it; add --nested to make a second town here")
        text = config_template(town_name)
        import tomllib

        settings = Settings.from_mapping(root, tomllib.loads(text), dict(os.environ))
        created_runtime = not settings.runtime_dir.exists()
        private_dir(settings.runtime_dir)
        try:
            client = connect(settings)
            client.ping()
            Store(client, town_name).claim_root(f"{socket.gethostname()}:{root}", join)
        except BaseException:
            if created_runtime:  # leave nothing half-made behind
                import shutil

                shutil.rmtree(settings.runtime_dir, ignore_errors=True)
            raise
        (root / CONFIG_FILE).write_text(text)
        _ignore_runtime_dir(root)
        return cls(settings, client)

    @classmethod
    def connect(cls, path: str | Path = ".", env: dict[str, str] | None = None) -> Town:
        """Open the town at `path` or the nearest folder above it holding tinytown.toml."""
        settings = Settings.load(_find_root(Path(path)), env)
        return cls.from_settings(settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> Town:
        return cls(settings, connect(settings))

    @property
    def name(self) -> str:
        return self.settings.town

    def close(self) -> None:
        """Close the Redis connections (the Town is not used afterwards)."""
        self.redis.close()

    # --- agents -------------------------------------------------------------------

    def list_agents(self) -> list[Agent]:
        return self.store.list_agents()

    def resolve(self, ref: str) -> Agent:
        """An agent by name, nickname, full UUID or a UUID prefix of 4+ characters."""
        return resolve(self.context, ref)

    def agent(self, ref: str) -> AgentHandle:
        return AgentHandle(self, self.resolve(ref).id)

    def spawn_agent(
        self,
        name: str,
        cli: str | None = None,
        role: str | None = None,
        nickname: str | None = None,
        parent: str | None = None,
        *,
        fork: bool = False,
        max_rounds: int | None = None,
        scope: str | None = None,
        start: bool = True,
        session: str | None = None,
        resume: str | None = None,
        budget: float | None = None,
        workspace: str | None = None,
        base: str | None = None,
        host: str | None = None,
        on: list[str] | None = None,
        cold: bool = False,
    ) -> AgentHandle:
        """Record a new agent (state `starting`) and start its worker unless start=False.

        `session`: "continue" (the default: each task goes on with the CLI's session)
        or "fresh". `resume`: an agent whose session this one continues (or a session
        id of the CLI's): spawn mode `resumed`. `budget`: USD it may spend (it is held
        before a round once its cost reaches it). `workspace`: "worktree" (the default in
        a git work tree: its own worktree on branch tt/<name>, from `base`, or from the
        parent's branch for a fork), "shared" (the town's root) or a folder's path.
        `host`: the host daemon it runs on, "auto" (the least loaded that can), "local"
        (here); by default auto while a host daemon runs, local otherwise. `on`: labels
        its host must have. `cold`: recorded `cold`, no process until work arrives.
        """
        agent = ops.spawning.spawn(
            self.context, name, cli, role, nickname, parent, fork=fork,
            max_rounds=max_rounds, scope=scope, start=start, session=session,
            resume=resume, budget=budget, workspace=workspace, base=base, host=host, on=on,
            cold=cold)
        return AgentHandle(self, agent.id)

    # --- tasks --------------------------------------------------------------------

    def assign(self, agent_ref: str, task: Task | str, priority: Priority = Priority.NORMAL,
               after: Iterable[str] = (), gates: Gates | None = None) -> str:
        """Record the task as `assigned` and put a `task_assign` in the agent's inbox;
        with `after` (task ids or prefixes), `blocked` until those are completed; with
        `gates`, completed only once they pass (check, review, approve)."""
        return ops.assignments.assign(self.context, agent_ref, gated(task, gates), priority,
                                      after)

    def task(self, ref: str) -> Task:
        """A task by full id or a unique prefix of 4+ characters."""
        return resolve_task(self.context, ref)

    def list_tasks(
        self, state: TaskState | str | None = None, agent_ref: str | None = None
    ) -> list[Task]:
        return ops.assignments.list_tasks(self.context, state, agent_ref)

    def complete_task(self, ref: str, result: str | None = None) -> Task:
        """Mark a task completed; counts once for its agent (a second completion is refused)."""
        return ops.assignments.finish(self.context, ref, TaskState.COMPLETED, result)

    def fail_task(self, ref: str, error: str | None = None) -> Task:
        return ops.assignments.finish(self.context, ref, TaskState.FAILED, error)

    def cancel_task(self, ref: str) -> Task:
        return ops.assignments.finish(self.context, ref, TaskState.CANCELLED, None)

    def wait_task(
        self,
        ref: str,
        timeout: float | None = None,
        on_poll: Callable[[Task, float], None] | None = None,
        queue: bool = False,
    ) -> Task:
        """Block until the task is completed, failed or cancelled; returns it.

        An unfinished task whose agent is stopped, or errored with no automatic restart
        coming (`restart = "never"`, a crash loop), runs only after `tt restart`:
        refused at once (NotRunning) rather than waited on for the whole timeout, unless
        `queue` (wait for the restart, up to `timeout`)."""
        return ops.assignments.wait(self.context, ref, timeout, on_poll, queue)

    def assign_to_role(self, role: str, task: Task | str, after: Iterable[str] = (),
                       gates: Gates | None = None) -> tuple[Task, list[Agent]]:
        """Queue a task for whichever agent of the role is free; returns the task and
        the role's live agents (none: it waits in the role's queue); with `after`,
        `blocked` until those tasks are completed; `gates`: as `assign`'s."""
        return ops.routing.assign_to_role(self.context, role, gated(task, gates), after)

    # --- the backlog --------------------------------------------------------------

    def backlog_add(self, task: Task | str, role: str | None = None) -> Task:
        return ops.routing.backlog_add(self.context, Task(task) if isinstance(task, str) else task,
                                   role=role)

    def backlog(self) -> list[Task]:
        """The backlog's tasks, oldest first."""
        return ops.routing.backlog_list(self.context)

    def backlog_claim(self, task_ref: str, agent_ref: str) -> Task:
        return ops.routing.backlog_claim(self.context, task_ref, agent_ref)

    def backlog_assign_all(self, agent_ref: str) -> list[Task]:
        return ops.routing.backlog_assign_all(self.context, agent_ref)

    def backlog_remove(self, task_ref: str) -> Task:
        return ops.routing.backlog_remove(self.context, task_ref)

    def current_task(self, agent_ref: str) -> Task | None:
        return ops.assignments.current(self.context, agent_ref)

    # --- maintenance --------------------------------------------------------------

    def migrate(self, dry_run: bool = False, force: bool = False) -> list[dict[str, str]]:
        from tinytown.db.maintenance import migrate

        return migrate(self.store, dry_run=dry_run, force=force)

    def reset(self, force: bool = False, agents_only: bool = False) -> list[str]:
        from tinytown.db.maintenance import reset

        return reset(self.store, force=force, agents_only=agents_only)

    def down(self) -> dict[str, Any]:
        """Stop every worker, the supervisor and (for the embedded default) the Redis."""
        return ops.control_plane.down(self.context)

    def up(self, all_agents: bool = False) -> dict[str, Any]:
        """Bring the town back after `down`: Redis, a supervisor, the agents `down`
        stopped (`all_agents`: every stopped or errored one); see ops.control_plane.up."""
        return ops.control_plane.up(self.context, all_agents)

    @property
    def started_redis(self) -> bool:
        """Opening this Town started its embedded Redis, which was down."""
        return self.redis.tt_started

    def stop_all(self) -> list[Agent]:
        """Kill every live agent of the town."""
        return ops.control_plane.stop_all(self.context)

    def prune(self, all_agents: bool = False, force: bool = False,
              delete_branches: bool = False) -> dict[str, Any]:
        """Remove terminal agents (records, inboxes, runtime keys, worktrees); see
        ops.control_plane.prune."""
        return ops.control_plane.prune(self.context, all_agents=all_agents, force=force,
                             delete_branches=delete_branches)

    # --- workspaces -----------------------------------------------------------------

    def diff(self, agent_ref: str, stat: bool = False) -> str:
        """The agent's branch against the commit it started from."""
        return ops.workspaces.diff(self.context, agent_ref, stat)

    def merge(self, agent_ref: str, into: str | None = None, squash: bool = False
              ) -> dict[str, Any]:
        """Merge the agent's branch into `into` (default: the branch checked out in the
        town's repository); a conflict is reported and the target left clean."""
        return ops.workspaces.merge(self.context, agent_ref, into, squash)

    def branch(self, agent_ref: str) -> str:
        return ops.workspaces.branch(self.context, agent_ref)

    def recover(self) -> list[Agent]:
        """Once, what the supervisor does continuously: live agents whose worker is gone
        become `error`, their work handed back."""
        return ops.reclaim.recover_town(self.context)

    def reclaim(self, source: str | None = None, to_agent: str | None = None,
                to_backlog: bool = False) -> list[dict[str, Any]]:
        """Move terminal agents' messages and unfinished tasks (see ops.reclaim)."""
        return ops.reclaim.reclaim(self.context, source=source, to_agent=to_agent,
                               to_backlog=to_backlog)

    def orphan_tasks(self, to_backlog: bool = False, cancel: bool = False) -> list[Task]:
        return ops.reclaim.orphan_tasks(self.context, to_backlog=to_backlog, cancel=cancel)

    def save(self, path: Path | None = None) -> tuple[Path, int]:
        """Snapshot the town's data to a JSON-lines file; returns its path and key count."""
        return ops.snapshot.save(self.context, path)

    def restore(self, path: Path, force: bool = False, start: bool = False) -> dict[str, Any]:
        """Load a snapshot; agents live in it come back `stopped` (no worker here), or
        started with `start` (see ops.snapshot.restore)."""
        return ops.snapshot.restore(self.context, path, force=force, start=start)

    # --- what is going on ---------------------------------------------------------

    def status(self, deep: bool = False) -> dict[str, Any]:
        """The town, its Redis and supervisor, and every agent with its inbox length."""
        return ops.control_plane.town_status(self.context, deep=deep)

    def supervisor_status(self) -> str:
        return ops.control_plane.supervisor_status(self.context)

    def ensure_supervisor(self) -> int | None:
        """Start the town's supervisor unless one leads (or `autostart` is off); its pid."""
        return ops.starting.ensure_supervisor(self.settings)

    def start_supervisor(self) -> int:
        """Start the town's supervisor service in the background; returns its pid."""
        return ops.starting.start_supervisor(self.settings)

    def run_flower(self, port: int | None = None, address: str | None = None,
                   basic_auth: str | None = None) -> None:
        """Replace this process with Flower on the town's broker (see ops.flower)."""
        ops.flower.run_flower(self.settings, port, address, basic_auth)

    def worker_status(self, agent: Agent) -> tuple[bool, str]:
        """Whether the agent's worker runs (its pid on this host, else a heartbeat
        within the limit), and its Celery hostname."""
        return worker_status(self.context, agent)

    def inbox_lens(self, agents: list[Agent]) -> dict[str, int]:
        return self.store.inbox_lens([a.id for a in agents])

    # --- usage and budgets --------------------------------------------------------

    def usage(self, agent_ref: str | None = None, task_id: str | None = None,
              since: str | None = None, by: str = "agent") -> dict[str, Any]:
        """Tokens and cost of the town's rounds (of one agent or task, since a time),
        grouped by agent, task, role or day."""
        return ops.usage_budgets.report(self.context, agent_ref, task_id, since, by)

    def round_timings(self) -> dict[str, int]:
        """The rounds' durations as a cumulative histogram (count, failed, sum_ms,
        le_<secs> for each bound of `usage.ROUND_BUCKETS`)."""
        from tinytown.db.usage_store import round_timings

        return round_timings(self.store)

    def budgets(self) -> dict[str, Any]:
        """The town's budget and usage, and each agent's."""
        return ops.usage_budgets.budget_status(self.context)

    def set_budget(self, target: str, usd: float | None | Keep = KEEP,
                   tokens: int | None | Keep = KEEP) -> dict[str, Any]:
        """Cap an agent's (or, with "town", the town's) cost at `usd`, and its tokens
        at `tokens` (None: no cap of its own; KEEP: leave it). An agent held by its
        budget carries on after `resume`. `unpriced` names the agents whose cost a USD
        budget cannot see."""
        return ops.usage_budgets.set_budget(self.context, target, usd, tokens)

    def hosts(self) -> list[dict[str, Any]]:
        """The host daemons (`tt host`) that registered: state, load, agents."""
        return ops.hosting.report(self.context)

    def drain_host(self, name: str) -> dict[str, Any]:
        """Host `name` moves its agents elsewhere and takes no new ones."""
        return ops.hosting.drain(self.context, name)

    def events(self, count: int = 20, agent_ref: str | None = None) -> list[dict[str, str]]:
        agent_id = self.resolve(agent_ref).id if agent_ref else None
        return self.store.read_events(count, agent_id)

    def follow_events(self, after: str, block_ms: int = 1000) -> list[dict[str, str]]:
        """Events newer than id `after` ("$": from now), waiting up to `block_ms`."""
        return self.store.follow_events(after, block_ms)

    def round_log(self, agent_ref: str, round_no: int | None = None,
                  limit: int = 64 * 1024) -> dict[str, Any]:
        """An agent's round logs that this machine holds (`.tt/logs/<name>/`, where its
        worker ran): the newest rounds' numbers, sizes and last writes, and the last
        `limit` bytes of one round's log, the newest by default (what `tt logs` prints).
        UsageError for a round this machine has no log of."""
        from tinytown.system.logs import round_log

        record = self.resolve(agent_ref)
        found = round_log(self.settings.logs_dir, record.name, round_no, limit,
                          ROUND_LOGS_LISTED)
        return {"agent": record.id, "name": record.name, **found}


def _ignore_runtime_dir(root: Path) -> None:
    gitignore = root / ".gitignore"
    lines = gitignore.read_text().splitlines() if gitignore.exists() else []
    if not any(line.strip() in (".tt", ".tt/", "/.tt", "/.tt/") for line in lines):
        with gitignore.open("a") as f:
            if lines and lines[-1].strip():
                f.write("\n")
            f.write(".tt/\n")
