"""Which CLI session a round continues, forks or starts, and which one it leaves.

An agent is one persistent worker: with `session = continue` (the default) each
round goes on with the session the CLI reported last time, so the agent remembers its
earlier tasks. A `forkedcontext` agent's first round forks its parent's session where
the CLI can (otherwise the prompt carries the parent's transcript); a `resumed` one
(`tt restart`, `tt spawn --resume`) continues the session it was given. A CLI that
keeps its conversation in a file (`session_args` naming `{state}`) gets a file of the
agent's own.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from tinytown.agent_clis.base import CliCommand, CliReport
from tinytown.core.models import Agent, SessionPolicy, SpawnMode


@dataclass(frozen=True)
class SessionPlan:
    argv: list[str]
    session: str | None = None  # the session continued (or forked)
    forked: bool = False
    named: str | None = None  # a new session's id, chosen by Tinytown (new_session_args)
    kept: bool = True  # whether the CLI keeps sessions Tinytown can continue

    def describe(self) -> str:
        if not self.kept:
            return "no session kept (the CLI has none Tinytown can continue)"
        if self.forked:
            return f"forks session {self.session}"
        if self.session:
            return f"continues session {self.session}"
        return f"starts session {self.named}" if self.named else "starts a new session"


def plan(command: CliCommand, agent: Agent, parent: Agent | None, state: Path,
         usage_file: str = "") -> SessionPlan:
    """The argv of the agent's next run and the session it works in."""
    if agent.spawn_mode == SpawnMode.FORKED_CONTEXT and agent.rounds_completed == 0 and \
            parent is not None and parent.session_id and parent.cli == agent.cli and \
            command.fork_args:
        return SessionPlan(command.round_argv(parent.session_id, fork=True, state=str(state),
                                              usage_file=usage_file),
                           parent.session_id, forked=True)
    resuming = agent.spawn_mode == SpawnMode.RESUMED and agent.rounds_completed == 0
    session = agent.session_id if (agent.session == SessionPolicy.CONTINUE or resuming) \
        else None
    if session and command.sessions:
        return SessionPlan(command.round_argv(session, state=str(state),
                                              usage_file=usage_file), session)
    named = str(uuid.uuid4()) if command.new_session_args else None
    return SessionPlan(command.round_argv(None, state=str(state), new_session=named,
                                          usage_file=usage_file),
                       named=named, kept=command.sessions or bool(command.fork_args))


def lost(command: CliCommand, planned: SessionPlan, exit_code: int | None,
         log_tail: str) -> bool:
    """Whether a run that continued a session failed because the session is gone (the
    CLI's files were cleaned up, or it runs in another folder now)."""
    return bool(planned.session and exit_code not in (0, None) and command.session_lost
                and re.search(command.session_lost, log_tail))


def left(command: CliCommand, planned: SessionPlan, report: CliReport, state: Path
         ) -> str | None:
    """The session the run leaves for the next one (None: the CLI keeps none); for a
    CLI that keeps its conversation in a file of the agent's own, that folder."""
    if report.session_id:
        return report.session_id
    if command.session_args:
        return f"file:{state}"
    if planned.named or (planned.session and not planned.forked):
        return planned.named or planned.session
    return None
