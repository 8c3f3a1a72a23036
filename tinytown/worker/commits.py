"""The worker's git work: where the agent's CLI runs on this host, and its commits.

An agent with a branch of its own works in a worktree of this host's clone; what a
round changed there is committed on that branch after the round (and pushed when
`[workspace] push` says so), so no agent's work is lost with its worker. A round that
was cut short, or a dead predecessor's that nobody committed, is committed as work in
progress: the next round starts from it. Git's failures are logged, never a round's
failure: the work stays in the worktree for the next commit.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tinytown.core.models import Agent
from tinytown.core.settings import Settings
from tinytown.system import workspace
from tinytown.system.workspace import GitError
from tinytown.worker.state import RoundContext

log = logging.getLogger("tinytown.worker")


def local_workspace(settings: Settings, agent: Agent) -> Path | None:
    """Where the agent's CLI runs on this host: its worktree in this host's clone
    (`[workspace] repo`, else the repository the town's folder is in), made here when
    it is not (another host's agent, or a folder deleted by hand); a folder of the
    user's as given; None: the town's folder."""
    if not agent.branch:
        return Path(agent.workspace) if agent.workspace else None
    repo = Path(settings.workspace.repo) if settings.workspace.repo else \
        workspace.repo_root(settings.root)
    if repo is None:
        log.warning("%s: no git repository on this host: it works in the town's folder",
                    agent.name)
        return None
    path = settings.runtime_dir / "worktrees" / agent.name
    try:
        if workspace.ensure(repo, path, agent.branch, agent.base, settings.workspace.push):
            log.warning("%s: its worktree made here, on %s", agent.name, agent.branch)
    except GitError as exc:
        log.warning("%s: its worktree could not be made here: %s", agent.name, exc)
        return None
    return path


def keep_left_work(settings: Settings, agent: Agent, worktree: Path | None) -> None:
    """What a dead predecessor's round left in the agent's worktree is committed as
    work in progress: the next round starts from it."""
    if not (agent.branch and worktree) or not settings.workspace.auto_commit:
        return
    try:
        made = workspace.commit_all(
            worktree, agent.name,
            "WIP: left by a round whose worker stopped\n\nTinytown, at the next start"
            f" of {agent.name}")
    except GitError as exc:
        log.warning("%s: could not commit what its last round left: %s", agent.name, exc)
        return
    if made:
        log.warning("%s: committed what its last round left as %s", agent.name, made[:12])


def head(agent: Agent, worktree: Path | None) -> str | None:
    """The agent's branch head before its round (None: no branch of its own)."""
    if not (agent.branch and worktree):
        return None
    try:
        return workspace.head(worktree)
    except GitError as exc:
        log.warning("%s: cannot read its branch: %s", agent.name, exc)
        return None


def commit_round(r: RoundContext, wip: bool) -> list[str]:
    """Commit what the round changed on the agent's branch (work in progress when it
    was cut short); the commits the round made, the CLI's own included."""
    settings, agent, task, number = r.worker.settings, r.agent, r.task, r.number
    path = r.worker.state.worktree
    if r.before is None or path is None or not settings.workspace.auto_commit:
        return []
    title = f"task {task.id[:8]}: {task.description.strip().splitlines()[0][:60]}" \
        if task else f"round {number}"
    body = f"Tinytown round {number} of {agent.name}" + (f"\nTask: {task.id}" if task
                                                          else "")
    try:
        workspace.commit_all(path, agent.name, f"{'WIP: ' if wip else ''}{title}\n\n{body}")
        made = workspace.commits_since(path, r.before)
    except GitError as exc:
        log.warning("%s: could not commit its round: %s", agent.name, exc)
        return []
    if made and settings.workspace.push and agent.branch:
        try:
            workspace.push(path, settings.workspace.push, agent.branch)
        except GitError as exc:  # committed here all the same: the next push carries it
            log.warning("%s: could not push %s: %s", agent.name, agent.branch, exc)
    return made
