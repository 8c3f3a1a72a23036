"""Agents' git workspaces from the town's side: placing a new agent, `tt diff`, `tt
merge`, `tt branch`, and removing a worktree with its agent (`tt prune`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tinytown.core.errors import UsageError, WorkspaceError
from tinytown.core.models import Agent
from tinytown.ops.context import TownContext
from tinytown.ops.references import resolve
from tinytown.system import workspace

log = logging.getLogger("tinytown")


def place(town: TownContext, agent: Agent, mode: str | None, base: str | None,
          parent: Agent | None) -> str | None:
    """Give a new agent its workspace (before its record is written: a failure here
    leaves nothing behind); a one-line notice when it shares the town's folder for want
    of a repository (the caller says it once the agent is recorded)."""
    mode = mode or town.settings.workspace.mode
    if mode == "shared":
        if base:
            raise UsageError("--base needs a worktree: a shared agent has no branch")
        return None
    if mode != "worktree":  # a folder of the user's
        folder = Path(mode).expanduser()
        if not folder.is_absolute():
            folder = town.settings.root / folder
        if not folder.is_dir():
            raise UsageError(f"--workspace {mode}: no such folder (or give shared|worktree)")
        taken = [a.name for a in town.store.list_agents()
                 if a.workspace == str(folder.resolve()) and not a.state.is_terminal]
        if taken:
            raise WorkspaceError(f"--workspace {mode}: agent {taken[0]!r} works there; two"
                                 " agents never share a workspace")
        agent.workspace = str(folder.resolve())
        return None
    repo = workspace.repo_root(town.settings.root)
    if repo is None:
        if base:
            raise UsageError("--base needs a git repository: the town's folder is not in one")
        return (f"{town.settings.root} is not in a git work tree: agent {agent.name} works"
                " in the town's folder (shared)")
    start = base or (parent.branch if parent is not None and parent.branch else None)
    if start is None and not workspace.has_commit(repo):
        return (f"{repo} has no commit yet: agent {agent.name} works in the town's folder"
                " (shared) until there is one")
    made = workspace.create(repo, town.settings.runtime_dir / "worktrees" / agent.name,
                     agent.name, start)
    agent.workspace, agent.branch, agent.base = str(made.path), made.branch, made.base
    return None


def _repo(town: TownContext) -> Path:
    repo = workspace.repo_root(town.settings.root)
    if repo is None:
        raise WorkspaceError(f"{town.settings.root} is not in a git work tree")
    return repo


def _branched(town: TownContext, ref: str) -> Agent:
    agent = resolve(town, ref)
    if not agent.branch or not agent.base:
        raise WorkspaceError(f"agent {agent.name!r} has no branch of its own (its workspace"
                             f" is {agent.workspace or 'the town folder'})")
    return agent


def diff(town: TownContext, ref: str, stat: bool = False) -> str:
    agent = _branched(town, ref)
    return workspace.diff(_repo(town), agent.base or "", agent.branch or "", stat)


def merge(town: TownContext, ref: str, into: str | None = None, squash: bool = False
          ) -> dict[str, Any]:
    agent = _branched(town, ref)
    return {"agent": agent.name, "branch": agent.branch,
            **workspace.merge(_repo(town), agent.branch or "", into, squash, agent.name)}


def branch(town: TownContext, ref: str) -> str:
    return _branched(town, ref).branch or ""


def can_remove(agent: Agent, force: bool) -> str | None:
    """Why the agent's worktree must stay (work not committed), if it must."""
    if agent.branch and agent.workspace and Path(agent.workspace).is_dir() and not force \
            and workspace.dirty(Path(agent.workspace)):
        return "its worktree has work not committed; --force drops it"
    return None


def remove(town: TownContext, agent: Agent, force: bool, delete_branch: bool) -> None:
    if agent.branch and agent.workspace:
        repo = workspace.repo_root(town.settings.root)
        if repo is not None:
            workspace.remove(repo, Path(agent.workspace), agent.branch, force, delete_branch)
