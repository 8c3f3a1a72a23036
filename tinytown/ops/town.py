"""The Python API: Town, AgentHandle and Channel. The CLI is a thin layer over this.

Every operation a client of a town has is a method here; the modules of
`tinytown.ops` implement the larger ones, and `tinytown.db` does all Redis work.
Heavy modules (Celery, the worker launcher) are imported only by the operations that
need them, so scripts that only read and write records start fast.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinytown import keys
from tinytown.db import runtime
from tinytown.db import tasks as task_writes
from tinytown.db.connection import TownRedis, connect
from tinytown.db.messages import deliver
from tinytown.db.store import Store
from tinytown.errors import (
    AgentNotFound,
    AmbiguousReference,
    MessageTooLarge,
    NameTaken,
    NotRunning,
    Refused,
    TaskNotFound,
    TownExists,
    UsageError,
    WaitTimeout,
)
from tinytown.models import (
    MAX_MESSAGE_BYTES,
    Agent,
    AgentState,
    AgentType,
    Message,
    MessageBody,
    Priority,
    SessionPolicy,
    SpawnMode,
    Task,
    TaskState,
)
from tinytown.ops.usage import KEEP, Keep
from tinytown.private import private_dir
from tinytown.settings import (
    CONFIG_FILE,
    Settings,
    config_template,
    default_town_name,
    validate_town_name,
)
from tinytown.settings import find_root as _find_root
from tinytown.validate import (
    RESERVED_NAMES,
    utf8_size,
    validate_agent_name,
    validate_nickname,
    validate_timeout,
    validate_usd,
)

if TYPE_CHECKING:
    from tinytown.apikeys import ApiKey, Scope
    from tinytown.db.connection import TownPipeline
    from tinytown.ops.health import Health
    from tinytown.presets import CliCommand

log = logging.getLogger("tinytown")
_HEX_PREFIX = re.compile(r"^[0-9a-fA-F-]{4,36}$")
ROUND_LOGS_LISTED = 50  # Town.round_log: the newest rounds it lists


def _is_uuid(ref: str) -> bool:
    try:
        return str(uuid.UUID(ref)) == ref.lower()
    except ValueError:
        return False


class Town:
    """A connected town: its settings, its Redis client and its store."""

    def __init__(self, settings: Settings, redis_client: TownRedis) -> None:
        self.settings = settings
        self.redis = redis_client
        self.store = Store(redis_client, settings.town)
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
        ref = ref.strip()
        if ref.lower() in RESERVED_NAMES or ref == keys.SUPERVISOR_ID:
            return Agent.supervisor()
        if _is_uuid(ref):
            agent = self.store.get_agent(ref.lower())
            if agent is None:
                raise AgentNotFound(f"no agent with id {ref} in town {self.name!r}")
            return agent
        owner = self.store.name_owner(ref)  # the common case: one lookup
        if owner:
            named = self.store.get_agent(owner)
            if named is not None and named.name == ref:
                return named
        agents = self.store.list_agents()
        by_name = [a for a in agents if a.name == ref]
        if by_name:
            return by_name[0]
        for candidates in (
            [a for a in agents if a.display_nickname.lower() == ref.lower()],
            [a for a in agents if _HEX_PREFIX.match(ref) and a.id.startswith(ref.lower())],
        ):
            if len(candidates) == 1:
                return candidates[0]
            if candidates:
                listed = ", ".join(
                    f"{a.name} ({a.display_nickname}, {a.id[:8]})" for a in candidates
                )
                raise AmbiguousReference(f"{ref!r} matches several agents: {listed}")
        raise AgentNotFound(
            f"no agent {ref!r} in town {self.name!r} (try `tt list` for names and ids)"
        )

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
        validate_agent_name(name)
        _check_spawn(fork, parent, max_rounds, budget, placed=bool(host or on),
                     started=start or cold)
        self._check_name_free(name)
        policy = SessionPolicy(session) if session else SessionPolicy.CONTINUE
        resumed_from: Agent | None = None
        if resume is not None:
            if fork:
                raise UsageError("--resume and --fork do not go together: pick one")
            resumed_from, session_id = self._session_to_resume(resume)
            if cli is None and resumed_from is not None:
                cli = resumed_from.cli
        role_config = None
        if role is not None:
            known = self.settings.known_roles()
            if role not in known:
                raise UsageError(f"unknown role {role!r}; known roles: {', '.join(sorted(known))}")
            role_config = known[role]
        if cli is None:
            cli = (role_config.cli if role_config else None) or self.settings.agent.default_cli
        from tinytown.presets import resolve_cli

        command = resolve_cli(self.settings, cli)  # refuse an empty or unparsable one now
        if start:  # warn, don't refuse: the worker may run on another machine
            _warn_about(command, name)
        if nickname is not None:
            nickname = validate_nickname(nickname)
        parent_agent = self.resolve(parent) if parent else None
        agent = Agent(
            name=name,
            cli=cli,
            agent_type=AgentType.WORKER,
            role_id=role,
            nickname=nickname,
            parent_agent_id=parent_agent.id if parent_agent else None,
            spawn_mode=SpawnMode.FORKED_CONTEXT if fork else
            SpawnMode.RESUMED if resume is not None else SpawnMode.FRESH,
            current_scope=scope,
            session=policy,
            session_id=session_id if resume is not None else None,
            budget_usd=budget,
        )
        if max_rounds:
            agent.extra["max_rounds"] = max_rounds
        self._place(agent, start or cold, host, on, cold)
        from tinytown.ops.workspaces import place

        notice = place(self, agent, workspace, base, parent_agent if fork else None)
        try:
            self.store.create_agent(agent)
        except BaseException:  # its name was taken meanwhile: no worktree left behind
            from tinytown.ops.workspaces import remove

            remove(self, agent, force=True, delete_branch=True)
            raise
        if notice:
            log.warning("%s", notice)
        if start and not cold:
            self._start(agent)
        return AgentHandle(self, agent.id)

    def _check_name_free(self, name: str) -> None:
        """Refuse a name an agent of the town has, saying which, before anything is
        written (its branch tt/<name> is that agent's: never advice to delete it)."""
        owner_id = self.store.name_owner(name)
        owner = self.store.get_agent(owner_id) if owner_id else None
        if owner is None or owner.name != name:
            return
        done = " (`tt prune` removes it)" if owner.state.is_terminal \
            and owner.state != AgentState.COLD else ""
        raise NameTaken(f"agent name {name!r} is taken: that agent already exists in town"
                        f" {self.name!r} ({owner.display_nickname}, {owner.state.value}, id"
                        f" {owner.id[:8]}); pick another name{done}")

    def _place(self, agent: Agent, started: bool, host: str | None, on: list[str] | None,
               cold: bool) -> None:
        """Which host daemon runs the new agent (none: here), and whether it starts cold."""
        if started:
            from tinytown.ops import hosts

            hosts.place(self, agent, host, on or [])
        if cold:
            agent.state = AgentState.COLD

    def _start(self, agent: Agent) -> None:
        """A new agent's worker: its host daemon starts it, or it starts here."""
        from tinytown.ops import launcher

        if agent.host is None:
            launcher.start_worker(self.store, self.settings, agent)
            return
        from tinytown.ops.hosts import start_placed

        launcher.ensure_supervisor(self.settings)
        start_placed(self, agent)

    def _session_to_resume(self, ref: str) -> tuple[Agent | None, str]:
        """The agent `ref` names and its CLI session, or `ref` itself as a session id."""
        try:
            source = self.resolve(ref)
        except AgentNotFound:
            if not ref.strip() or any(c.isspace() for c in ref):
                raise UsageError(f"--resume {ref!r}: no such agent, and not a session id"
                                 ) from None
            return None, ref.strip()
        if not source.session_id:
            raise Refused(f"agent {source.name!r} has no CLI session to resume yet"
                             " (its CLI reports none, or it has not run a round)")
        return source, source.session_id

    # --- tasks --------------------------------------------------------------------

    def assign(self, agent_ref: str, task: Task | str, priority: Priority = Priority.NORMAL) -> str:
        """Record the task as `assigned` and put a `task_assign` in the agent's inbox."""
        agent = self.resolve(agent_ref)
        if agent.agent_type == AgentType.SUPERVISOR:
            raise UsageError("tasks are assigned to worker agents, not to the supervisor")
        if isinstance(task, str):
            task = Task(task)
        size = utf8_size(task.description)
        if size > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(
                f"the description is {size} bytes;"
                f" the limit is {MAX_MESSAGE_BYTES} (1 MiB)"
            )
        if task.parent_id and self.store.get_task(task.parent_id) is None:
            raise TaskNotFound(f"parent task {task.parent_id} does not exist")
        task_writes.assign(self.store, task, agent, priority)
        self._work_for(agent, "the task")
        return task.id

    def _work_for(self, agent: Agent, what: str) -> None:
        """Work went to `agent`: a cold one is woken (scale to zero); for a stopped or
        errored one it waits, and we say so."""
        if agent.state == AgentState.COLD:
            from tinytown.ops.hosts import wake

            wake(self, agent, f"{what.removeprefix('the ')} arrived")
        else:
            _warn_if_waiting(agent, what)

    def task(self, ref: str) -> Task:
        """A task by full id or a unique prefix of 4+ characters."""
        ref = ref.strip().lower()
        if _is_uuid(ref):
            return self.store.require_task(ref)
        if not _HEX_PREFIX.match(ref):
            raise TaskNotFound(f"no task {ref!r}: give a task id or a prefix of 4+ characters")
        found = [t for t in self.store.list_tasks() if t.id.startswith(ref)]
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousReference(
                f"{ref!r} matches several tasks: {', '.join(t.id for t in found)}"
            )
        raise TaskNotFound(f"no task with id {ref!r} in town {self.name!r}")

    def list_tasks(
        self, state: TaskState | str | None = None, agent_ref: str | None = None
    ) -> list[Task]:
        wanted = TaskState(state) if state else None
        agent_id = self.resolve(agent_ref).id if agent_ref else None
        return [
            t
            for t in self.store.list_tasks()
            if (wanted is None or t.state == wanted)
            and (agent_id is None or t.assigned_to == agent_id)
        ]

    def complete_task(self, ref: str, result: str | None = None) -> Task:
        """Mark a task completed; counts once for its agent (a second completion is refused)."""
        return self._finish_task(self.task(ref).id, TaskState.COMPLETED, result)

    def fail_task(self, ref: str, error: str | None = None) -> Task:
        return self._finish_task(self.task(ref).id, TaskState.FAILED, error)

    def cancel_task(self, ref: str) -> Task:
        return self._finish_task(self.task(ref).id, TaskState.CANCELLED, None)

    def _finish_task(self, task_id: str, state: TaskState, text: str | None) -> Task:
        return task_writes.finish_task(self.store, task_id, state, text)

    def _comes_back(self, agent: Agent) -> bool:
        """An agent in `error` that its host daemon or the supervisor restarts
        (`[agent] restart = "on-failure"`, no crash loop): its work is worth waiting for."""
        from tinytown.db.fleet import restartable

        return agent.state == AgentState.ERROR and restartable(self.settings.agent, agent)

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
        validate_timeout(timeout)
        found = self.task(ref)
        task_id = found.id
        assignee = self._assignee(task_id)
        if not queue and not found.state.is_terminal and assignee is not None \
                and assignee.state.is_terminal \
                and assignee.state != AgentState.COLD \
                and not self._comes_back(assignee):  # a cold one wakes for its work
            raise NotRunning(
                f"task {task_id[:8]} waits for {assignee.name}, which is"
                f" {assignee.state.value}: it runs after `tt restart {assignee.name}`"
                f" (`tt task wait {task_id[:8]} --queue` waits for that)")
        start = time.monotonic()
        delay = 0.02
        while True:
            task = self.store.get_task(task_id)
            if task is None:
                raise TaskNotFound(f"task {task_id} disappeared")
            elapsed = time.monotonic() - start
            if task.state.is_terminal:
                return task
            if on_poll is not None:
                on_poll(task, elapsed)
            if timeout is not None and elapsed >= timeout:
                raise WaitTimeout(f"task {task_id} is still {task.state.value} after {timeout:g}s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def _assignee(self, task_id: str) -> Agent | None:
        task = self.store.get_task(task_id)
        return self.store.get_agent(task.assigned_to) if task and task.assigned_to else None

    def assign_to_role(self, role: str, task: Task | str) -> tuple[Task, list[Agent]]:
        """Queue a task for whichever agent of the role is free; returns the task and
        the role's live agents (none: it waits in the role's queue)."""
        from tinytown.ops.routing import assign_to_role

        return assign_to_role(self, role, Task(task) if isinstance(task, str) else task)

    # --- the backlog --------------------------------------------------------------

    def backlog_add(self, task: Task | str, role: str | None = None) -> Task:
        from tinytown.ops.routing import backlog_add

        return backlog_add(self, Task(task) if isinstance(task, str) else task, role=role)

    def backlog(self) -> list[Task]:
        """The backlog's tasks, oldest first."""
        from tinytown.ops.routing import backlog_list

        return backlog_list(self)

    def backlog_claim(self, task_ref: str, agent_ref: str) -> Task:
        from tinytown.ops.routing import backlog_claim

        return backlog_claim(self, task_ref, agent_ref)

    def backlog_assign_all(self, agent_ref: str) -> list[Task]:
        from tinytown.ops.routing import backlog_assign_all

        return backlog_assign_all(self, agent_ref)

    def backlog_remove(self, task_ref: str) -> Task:
        from tinytown.ops.routing import backlog_remove

        return backlog_remove(self, task_ref)

    def current_task(self, agent_ref: str) -> Task | None:
        agent = self.resolve(agent_ref)
        return self.store.get_task(agent.current_task) if agent.current_task else None

    # --- maintenance --------------------------------------------------------------

    def migrate(self, dry_run: bool = False, force: bool = False) -> list[dict[str, str]]:
        from tinytown.db.maintenance import migrate

        return migrate(self.store, dry_run=dry_run, force=force)

    def reset(self, force: bool = False, agents_only: bool = False) -> list[str]:
        from tinytown.db.maintenance import reset

        return reset(self.store, force=force, agents_only=agents_only)

    def down(self) -> dict[str, Any]:
        """Stop every worker, the supervisor and (for the embedded default) the Redis."""
        from tinytown.ops.control import down

        return down(self)

    def up(self, all_agents: bool = False) -> dict[str, Any]:
        """Bring the town back after `down`: Redis, a supervisor, the agents `down`
        stopped (`all_agents`: every stopped or errored one); see ops.control.up."""
        from tinytown.ops.control import up

        return up(self, all_agents)

    @property
    def started_redis(self) -> bool:
        """Opening this Town started its embedded Redis, which was down."""
        return self.redis.tt_started

    def stop_all(self) -> list[Agent]:
        """Kill every live agent of the town."""
        from tinytown.ops.control import stop_all

        return stop_all(self)

    def prune(self, all_agents: bool = False, force: bool = False,
              delete_branches: bool = False) -> dict[str, Any]:
        """Remove terminal agents (records, inboxes, runtime keys, worktrees); see
        ops.control.prune."""
        from tinytown.ops.control import prune

        return prune(self, all_agents=all_agents, force=force,
                     delete_branches=delete_branches)

    # --- workspaces -----------------------------------------------------------------

    def diff(self, agent_ref: str, stat: bool = False) -> str:
        """The agent's branch against the commit it started from."""
        from tinytown.ops.workspaces import diff

        return diff(self, agent_ref, stat)

    def merge(self, agent_ref: str, into: str | None = None, squash: bool = False
              ) -> dict[str, Any]:
        """Merge the agent's branch into `into` (default: the branch checked out in the
        town's repository); a conflict is reported and the target left clean."""
        from tinytown.ops.workspaces import merge

        return merge(self, agent_ref, into, squash)

    def branch(self, agent_ref: str) -> str:
        from tinytown.ops.workspaces import branch

        return branch(self, agent_ref)

    def recover(self) -> list[Agent]:
        """Once, what the supervisor does continuously: live agents whose worker is gone
        become `error`, their work handed back."""
        from tinytown.ops.reclaim import recover_town

        return recover_town(self)

    def reclaim(self, source: str | None = None, to_agent: str | None = None,
                to_backlog: bool = False) -> list[dict[str, Any]]:
        """Move terminal agents' messages and unfinished tasks (see ops.reclaim)."""
        from tinytown.ops.reclaim import reclaim

        return reclaim(self, source=source, to_agent=to_agent, to_backlog=to_backlog)

    def orphan_tasks(self, to_backlog: bool = False, cancel: bool = False) -> list[Task]:
        from tinytown.ops.reclaim import orphan_tasks

        return orphan_tasks(self, to_backlog=to_backlog, cancel=cancel)

    def save(self, path: Path | None = None) -> tuple[Path, int]:
        """Snapshot the town's data to a JSON-lines file; returns its path and key count."""
        from tinytown.ops.snapshot import save

        return save(self, path)

    def restore(self, path: Path, force: bool = False, start: bool = False) -> dict[str, Any]:
        """Load a snapshot; agents live in it come back `stopped` (no worker here), or
        started with `start` (see ops.snapshot.restore)."""
        from tinytown.ops.snapshot import restore

        return restore(self, path, force=force, start=start)

    # --- what is going on ---------------------------------------------------------

    def status(self, deep: bool = False) -> dict[str, Any]:
        """The town, its Redis and supervisor, and every agent with its inbox length."""
        from tinytown.ops.control import town_status

        return town_status(self, deep=deep)

    def supervisor_status(self) -> str:
        from tinytown.ops.control import supervisor_status

        return supervisor_status(self)

    def ensure_supervisor(self) -> int | None:
        """Start the town's supervisor unless one leads (or `autostart` is off); its pid."""
        from tinytown.ops.launcher import ensure_supervisor

        return ensure_supervisor(self.settings)

    def start_supervisor(self) -> int:
        """Start the town's supervisor service in the background; returns its pid."""
        from tinytown.ops.launcher import start_supervisor

        return start_supervisor(self.settings)

    def run_flower(self, port: int | None = None, address: str | None = None,
                   basic_auth: str | None = None) -> None:
        """Replace this process with Flower on the town's broker (see ops.flower)."""
        from tinytown.ops.flower import run_flower

        run_flower(self.settings, port, address, basic_auth)

    def worker_status(self, agent: Agent) -> tuple[bool, str]:
        """Whether the agent's worker runs (its pid on this host, else a heartbeat
        within the limit), and its Celery hostname."""
        return runtime.worker_status(self.store, agent,
                                     self.settings.supervisor.heartbeat_timeout_secs)

    def inbox_lens(self, agents: list[Agent]) -> dict[str, int]:
        return self.store.inbox_lens([a.id for a in agents])

    # --- spend --------------------------------------------------------------------

    def usage(self, agent_ref: str | None = None, task_id: str | None = None,
              since: str | None = None, by: str = "agent") -> dict[str, Any]:
        """Tokens and cost of the town's rounds (of one agent or task, since a time),
        grouped by agent, task, role or day."""
        from tinytown.ops.usage import report

        return report(self, agent_ref, task_id, since, by)

    def round_timings(self) -> dict[str, int]:
        """The rounds' durations as a cumulative histogram (count, failed, sum_ms,
        le_<secs> for each bound of `usage.ROUND_BUCKETS`)."""
        from tinytown.db.usage import round_timings

        return round_timings(self.store)

    def budgets(self) -> dict[str, Any]:
        """The town's budget and spend, and each agent's."""
        from tinytown.ops.usage import budget_status

        return budget_status(self)

    def set_budget(self, target: str, usd: float | None | Keep = KEEP,
                   tokens: int | None | Keep = KEEP) -> dict[str, Any]:
        """Cap an agent's (or, with "town", the town's) spend at `usd`, and its tokens
        at `tokens` (None: no cap of its own; KEEP: leave it). An agent held by its
        budget carries on after `resume`. `unpriced` names the agents whose cost a USD
        budget cannot see."""
        from tinytown.ops.usage import set_budget

        return set_budget(self, target, usd, tokens)

    def hosts(self) -> list[dict[str, Any]]:
        """The host daemons (`tt host`) that registered: state, load, agents."""
        from tinytown.ops.hosts import report

        return report(self)

    def drain_host(self, name: str) -> dict[str, Any]:
        """Host `name` moves its agents elsewhere and takes no new ones."""
        from tinytown.ops.hosts import drain

        return drain(self, name)

    def events(self, count: int = 20, agent_ref: str | None = None) -> list[dict[str, str]]:
        agent_id = self.resolve(agent_ref).id if agent_ref else None
        return self.store.read_events(count, agent_id)

    def follow_events(self, after: str, block_ms: int = 1000) -> list[dict[str, str]]:
        """Events newer than id `after` ("$": from now), waiting up to `block_ms`."""
        return self.store.follow_events(after, block_ms)

    # --- over HTTP: API keys, audit, health (`tt auth`, `tt serve`) -------------------

    def add_api_key(self, name: str, scope: str) -> tuple[ApiKey, str]:
        """Record an API key of scope read, write or admin; returns its record and the
        key itself, which is shown this once (the town keeps only its digest)."""
        from tinytown.ops.apikeys import add_key

        return add_key(self, name, scope)

    def api_keys(self) -> list[ApiKey]:
        """The town's API keys (names, scopes, when made and last used; never the keys)."""
        from tinytown.ops.apikeys import list_keys

        return list_keys(self)

    def revoke_api_key(self, name: str) -> ApiKey:
        from tinytown.ops.apikeys import revoke_key

        return revoke_key(self, name)

    def authenticate(self, key: str | None, needed: Scope) -> ApiKey:
        """The key's record when it may do what `needed` allows (KeyRefused, NotPermitted)."""
        from tinytown.ops.apikeys import authenticate

        return authenticate(self, key, needed)

    def audit(self, key_name: str, method: str, path: str, status: int) -> None:
        """Append an `api` event: a write made over HTTP with the key named `key_name`."""
        from tinytown.ops.apikeys import audit

        audit(self, key_name, method, path, status)

    def check_serve_address(self, address: str) -> None:
        """UsageError unless `address` is loopback or the town has an API key."""
        from tinytown.ops.apikeys import check_address

        check_address(self, address)

    def health(self) -> Health:
        """Whether the town's Redis answers and a supervisor leads (see ops.health)."""
        from tinytown.ops.health import health

        return health(self)

    def round_log(self, agent_ref: str, round_no: int | None = None,
                  limit: int = 64 * 1024) -> dict[str, Any]:
        """An agent's round logs that this machine holds (`.tt/logs/<name>/`, where its
        worker ran): the newest rounds' numbers, sizes and last writes, and the last
        `limit` bytes of one round's log, the newest by default (what `tt logs` prints).
        UsageError for a round this machine has no log of."""
        from tinytown.logs import round_log

        record = self.resolve(agent_ref)
        found = round_log(self.settings.logs_dir, record.name, round_no, limit,
                          ROUND_LOGS_LISTED)
        return {"agent": record.id, "name": record.name, **found}


def _check_spawn(fork: bool, parent: str | None, max_rounds: int | None,
                 budget: float | None, placed: bool = False, started: bool = True) -> None:
    """Refuse spawn options that do not go together, before anything is written."""
    if placed and not started:
        raise UsageError("--host/--on place a worker that Tinytown starts: they do not go"
                         " with --no-start or --foreground")
    if fork and parent is None:
        raise UsageError("--fork needs --parent: a forked agent inherits its parent's context")
    if max_rounds is not None and max_rounds < 1:
        raise UsageError("--max-rounds must be 1 or more")
    if budget is not None:
        validate_usd(budget)


def _warn_about(command: CliCommand, name: str) -> None:
    """Warn when the agent's CLI is missing here, or is known not to run as set up."""
    from tinytown.cli_health import known_problems

    if shutil.which(command.argv[0]) is None:
        log.warning("%r is not installed here (no %s on PATH): agent %s's rounds will"
                    " fail on this machine", command.name, command.argv[0], name)
    for problem in known_problems(command, {**os.environ, **command.env}, os.geteuid()):
        log.warning("agent %s: %s", name, problem)


class AgentHandle:
    """Operations on one agent, by id (it survives renames and restarts)."""

    def __init__(self, town: Town, agent_id: str) -> None:
        self.town = town
        self._id = agent_id

    @property
    def id(self) -> str:
        return self._id

    def state(self) -> Agent | None:
        """The agent's current record, or None once it has been pruned."""
        if self._id == keys.SUPERVISOR_ID:
            return Agent.supervisor()
        return self.town.store.get_agent(self._id)

    def record(self) -> Agent:
        """The agent's current record; AgentNotFound once it has been pruned."""
        agent = self.state()
        if agent is None:
            raise AgentNotFound(f"agent {self._id} no longer exists")
        return agent

    def inbox_len(self) -> int:
        return self.town.store.inbox_len(self._id)

    def inbox(self) -> list[Message]:
        return self.town.store.peek_inbox(self._id)

    def assign(self, task: Task | str) -> str:
        return self.town.assign(self._id, task)

    def send(
        self,
        message_type: MessageBody,
        priority: Priority | str = Priority.NORMAL,
        sender: str | None = None,
    ) -> Message:
        return self.town.channel.send(self._id, message_type, priority=priority, sender=sender)

    # control plane: see tinytown.ops.control
    def interrupt(self) -> Agent:
        from tinytown.ops.control import interrupt

        return interrupt(self.town, self._id)

    def resume(self) -> Agent:
        from tinytown.ops.control import resume

        return resume(self.town, self._id)

    def close(self) -> Agent:
        from tinytown.ops.control import close

        return close(self.town, self._id)

    def kill(self) -> Agent:
        from tinytown.ops.control import kill

        return kill(self.town, self._id)

    def restart(self) -> Agent:
        from tinytown.ops.control import restart

        return restart(self.town, self._id)

    def wait(
        self,
        timeout: float | None = None,
        on_poll: Callable[[Agent, float], None] | None = None,
    ) -> Agent:
        """Block until the agent is stopped, error or cold; returns the final record."""
        return wait_for(self, lambda a: a.state.is_terminal, timeout, on_poll, "a terminal state")

    def wait_for_state(self, *states: AgentState, timeout: float | None = None) -> Agent:
        return wait_for(self, lambda a: a.state in states, timeout, None,
                        "/".join(s.value for s in states))


def wait_for(
    handle: AgentHandle,
    done: Callable[[Agent], bool],
    timeout: float | None,
    on_poll: Callable[[Agent, float], None] | None,
    what: str,
) -> Agent:
    validate_timeout(timeout)
    start = time.monotonic()
    delay = 0.02
    while True:
        agent = handle.state()
        if agent is None:
            raise AgentNotFound(f"agent {handle.id} no longer exists")
        elapsed = time.monotonic() - start
        if done(agent):
            return agent
        if on_poll is not None:
            on_poll(agent, elapsed)
        if timeout is not None and elapsed >= timeout:
            raise WaitTimeout(
                f"agent {agent.name!r} is still {agent.state.value} after {timeout:g}s"
                f" (waiting for {what})"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


class Channel:
    """Messages between agents: inbox writes (with a round job) and reads."""

    def __init__(self, town: Town) -> None:
        self.town = town

    def _default_sender(self) -> str:
        env_id = os.environ.get("TINYTOWN_AGENT_ID")
        if env_id:
            return self.town.resolve(env_id).id
        env_name = os.environ.get("TINYTOWN_AGENT_NAME")
        if env_name:
            return self.town.resolve(env_name).id
        return keys.SUPERVISOR_ID

    def send(
        self,
        to: str,
        message_type: MessageBody,
        *,
        priority: Priority | str = Priority.NORMAL,
        sender: str | None = None,
        correlation_id: str | None = None,
    ) -> Message:
        """Deliver to `to` (an agent id or reference) and wake its worker."""
        recipient = self.town.resolve(to)
        sender_id = self.town.resolve(sender).id if sender else self._default_sender()
        message = Message(
            sender=sender_id,
            to=recipient.id,
            body=message_type,
            priority=Priority(priority),
            correlation_id=correlation_id,
        )
        self.deliver(message)
        if recipient.agent_type == AgentType.WORKER:
            self.town._work_for(recipient, "the message")
        return message

    def deliver(self, message: Message, pipe: TownPipeline | None = None) -> None:
        """Put the message in its inbox with a `sent` event and a round job, in one MULTI
        (or queued on `pipe`)."""
        deliver(self.town.store, [message], pipe)

    def broadcast(
        self,
        message_type: MessageBody,
        *,
        priority: Priority | str = Priority.NORMAL,
        sender: str | None = None,
    ) -> list[Message]:
        """Send to every live worker agent of the town, in one transaction."""
        sender_id = self.town.resolve(sender).id if sender else self._default_sender()
        sent = [
            Message(sender=sender_id, to=agent.id, body=message_type, priority=Priority(priority))
            for agent in self.town.list_agents()
            if not agent.state.is_terminal and agent.id != sender_id
        ]
        deliver(self.town.store, sent)
        return sent

    def receive(self, agent_ref: str, timeout: float) -> Message | None:
        """Take the next message from an inbox, waiting up to `timeout` seconds."""
        return self.town.store.blocking_pop(self.town.resolve(agent_ref).id, timeout)

    def try_receive(self, agent_ref: str) -> Message | None:
        return self.town.store.pop_message(self.town.resolve(agent_ref).id)

    def inbox_len(self, agent_ref: str) -> int:
        return self.town.store.inbox_len(self.town.resolve(agent_ref).id)

    def peek(self, agent_ref: str) -> list[Message]:
        return self.town.store.peek_inbox(self.town.resolve(agent_ref).id)


def _warn_if_waiting(agent: Agent, what: str) -> None:
    """Work for a stopped or errored agent is kept, but nobody runs it yet."""
    if agent.state.is_terminal and agent.state != AgentState.COLD:
        log.warning("%s is %s: %s waits in its inbox until `tt restart %s`",
                    agent.name, agent.state.value, what, agent.name)


def _ignore_runtime_dir(root: Path) -> None:
    gitignore = root / ".gitignore"
    lines = gitignore.read_text().splitlines() if gitignore.exists() else []
    if not any(line.strip() in (".tt", ".tt/", "/.tt", "/.tt/") for line in lines):
        with gitignore.open("a") as f:
            if lines and lines[-1].strip():
                f.write("\n")
            f.write(".tt/\n")
