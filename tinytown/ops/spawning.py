"""Spawning an agent: check the options, its name, role and CLI; place it (a host, a
workspace); record it; start its worker (or leave it cold).

Everything that can be refused is refused before anything is written, and a record
that cannot be written takes its new worktree with it: a refused spawn leaves nothing
behind.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import TYPE_CHECKING

from tinytown.core.errors import AgentNotFound, NameTaken, Refused, UsageError
from tinytown.core.models import Agent, AgentState, AgentType, SessionPolicy, SpawnMode
from tinytown.core.validate import validate_agent_name, validate_nickname, validate_usd
from tinytown.ops import hosting, starting, workspaces
from tinytown.ops.context import TownContext
from tinytown.ops.references import resolve

if TYPE_CHECKING:
    from tinytown.core.presets import CliCommand

log = logging.getLogger("tinytown")


def spawn(
    town: TownContext,
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
) -> Agent:
    """Record a new agent (state `starting`, or `cold`) and start its worker unless
    `start` is false; the options are `Town.spawn_agent`'s."""
    validate_agent_name(name)
    _check_spawn(fork, parent, max_rounds, budget, placed=bool(host or on),
                 started=start or cold)
    _check_name_free(town, name)
    policy = SessionPolicy(session) if session else SessionPolicy.CONTINUE
    resumed_from: Agent | None = None
    if resume is not None:
        if fork:
            raise UsageError("--resume and --fork do not go together: pick one")
        resumed_from, session_id = _session_to_resume(town, resume)
        if cli is None and resumed_from is not None:
            cli = resumed_from.cli
    role_config = None
    if role is not None:
        known = town.settings.known_roles()
        if role not in known:
            raise UsageError(f"unknown role {role!r}; known roles: {', '.join(sorted(known))}")
        role_config = known[role]
    if cli is None:
        cli = (role_config.cli if role_config else None) or town.settings.agent.default_cli
    from tinytown.core.presets import resolve_cli

    command = resolve_cli(town.settings, cli)  # refuse an empty or unparsable one now
    if start:  # warn, don't refuse: the worker may run on another machine
        _warn_about(command, name)
    if nickname is not None:
        nickname = validate_nickname(nickname)
    parent_agent = resolve(town, parent) if parent else None
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
    _place(town, agent, start or cold, host, on, cold)
    notice = workspaces.place(town, agent, workspace, base, parent_agent if fork else None)
    try:
        town.store.create_agent(agent)
    except BaseException:  # its name was taken meanwhile: no worktree left behind
        workspaces.remove(town, agent, force=True, delete_branch=True)
        raise
    if notice:
        log.warning("%s", notice)
    if start and not cold:
        _start(town, agent)
    return agent


def _check_name_free(town: TownContext, name: str) -> None:
    """Refuse a name an agent of the town has, saying which, before anything is
    written (its branch tt/<name> is that agent's: never advice to delete it)."""
    owner_id = town.store.name_owner(name)
    owner = town.store.get_agent(owner_id) if owner_id else None
    if owner is None or owner.name != name:
        return
    done = " (`tt prune` removes it)" if owner.state.is_terminal \
        and owner.state != AgentState.COLD else ""
    raise NameTaken(f"agent name {name!r} is taken: that agent already exists in town"
                    f" {town.name!r} ({owner.display_nickname}, {owner.state.value}, id"
                    f" {owner.id[:8]}); pick another name{done}")


def _place(town: TownContext, agent: Agent, started: bool, host: str | None,
           on: list[str] | None, cold: bool) -> None:
    """Which host daemon runs the new agent (none: here), and whether it starts cold."""
    if started:
        hosting.place(town, agent, host, on or [])
    if cold:
        agent.state = AgentState.COLD


def _start(town: TownContext, agent: Agent) -> None:
    """A new agent's worker: its host daemon starts it, or it starts here."""
    if agent.host is None:
        starting.start_worker(town.store, town.settings, agent)
        return
    starting.ensure_supervisor(town.settings)
    hosting.start_placed(town, agent)


def _session_to_resume(town: TownContext, ref: str) -> tuple[Agent | None, str]:
    """The agent `ref` names and its CLI session, or `ref` itself as a session id."""
    try:
        source = resolve(town, ref)
    except AgentNotFound:
        if not ref.strip() or any(c.isspace() for c in ref):
            raise UsageError(f"--resume {ref!r}: no such agent, and not a session id"
                             ) from None
        return None, ref.strip()
    if not source.session_id:
        raise Refused(f"agent {source.name!r} has no CLI session to resume yet"
                      " (its CLI reports none, or it has not run a round)")
    return source, source.session_id


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
    from tinytown.system.cli_health import known_problems

    if shutil.which(command.argv[0]) is None:
        log.warning("%r is not installed here (no %s on PATH): agent %s's rounds will"
                    " fail on this machine", command.name, command.argv[0], name)
    for problem in known_problems(command, {**os.environ, **command.env}, os.geteuid()):
        log.warning("agent %s: %s", name, problem)
