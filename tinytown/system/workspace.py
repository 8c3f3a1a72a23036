"""An agent's own git workspace: a worktree on branch `tt/<agent>`, and its commits.

When the town's root is inside a git work tree, each agent gets a worktree under
`.tt/worktrees/<agent>` on a new branch `tt/<agent>` (from HEAD, a `--base`, or its
parent's branch for a fork), and its CLI runs there: agents never edit one checkout
at once. At the end of every round that changed files Tinytown commits them on the
agent's branch; a round cut short gets a work-in-progress commit, so nothing is lost
and the next round starts from it. Plain `git` (argv, never a shell); operations on
the repository are serialised by a lock file in its git folder, so concurrent rounds
do not race on `index.lock` or refs. No Redis here.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tinytown.core.errors import NameTaken, UsageError, WorkspaceError

BRANCH_PREFIX = "tt/"
AUTHOR_EMAIL = "tinytown@localhost"


class GitError(WorkspaceError):
    """Raised when a git command on an agent's workspace fails."""


@dataclass(frozen=True)
class Workspace:
    path: Path  # the worktree
    branch: str
    base: str  # the commit it started from


def git(cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run git in `cwd` (argv only); GitError with its first error line on failure."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=120, env={**os.environ, **(env or {}),
                                                "GIT_TERMINAL_PROMPT": "0"},
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise GitError("git is not installed: agents' workspaces need it") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} did not finish within 120 s") from None
    if check and done.returncode != 0:
        why = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise GitError(f"git {' '.join(args[:2])}: {why[-1] if why else 'failed'}")
    return done


def repo_root(path: Path) -> Path | None:
    """The top of the git work tree `path` is in (None: not in one, or no git)."""
    try:
        done = git(path, "rev-parse", "--show-toplevel", check=False)
    except GitError:
        return None
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def default_town_name(folder: Path) -> str:
    """`tt init`'s default town name: <repo>-<branch> inside a git work tree, else the
    folder's name; made valid."""
    name = folder.resolve().name
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=folder, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        branch = subprocess.run(
            ["git", "symbolic-ref", "--short", "-q", "HEAD"],
            cwd=folder, capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        name = f"{Path(top).name}-{branch}" if branch else Path(top).name
    except (OSError, subprocess.SubprocessError):
        pass
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:64]
    return cleaned or "town"


def has_commit(repo: Path) -> bool:
    return git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}",
               check=False).returncode == 0


@contextmanager
def locked(repo: Path) -> Iterator[None]:
    """One git operation on the repository at a time (worktrees share its refs)."""
    common = Path(git(repo, "rev-parse", "--git-common-dir").stdout.strip())
    if not common.is_absolute():
        common = repo / common
    with (common / "tinytown.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def branch_of(name: str) -> str:
    return f"{BRANCH_PREFIX}{name}"


def create(repo: Path, path: Path, name: str, base: str | None) -> Workspace:
    """A worktree at `path` on a new branch `tt/<name>` from `base` (default HEAD)."""
    branch = branch_of(name)
    with locked(repo):
        start = git(repo, "rev-parse", "--verify", f"{base or 'HEAD'}^{{commit}}",
                    check=False)
        if start.returncode != 0:
            raise UsageError(f"--base {base or 'HEAD'}: no such commit in {repo}"
                             " (a repository needs a first commit for agents' worktrees)")
        commit = start.stdout.strip()
        if git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}",
               check=False).returncode == 0:
            raise NameTaken(f"branch {branch} exists already, and no agent of this town"
                            f" has it (a pruned agent's, or another town's in this repository):"
                            f" pick another agent name (`git branch -d {branch}` deletes it"
                            " once its work is merged)")
        path.parent.mkdir(parents=True, exist_ok=True)
        git(repo, "worktree", "add", "-b", branch, str(path), commit)
    return Workspace(path, branch, commit)


def ensure(repo: Path, path: Path, branch: str, base: str | None = None,
           remote: str | None = None) -> bool:
    """Make the worktree at `path` (again) when it is not there: its folder was deleted
    by hand, or this is another host's clone. The branch as this clone has it, else as
    `remote` has it, else new from `base`. True when it was made."""
    if path.is_dir():
        return False
    with locked(repo):
        git(repo, "worktree", "prune")
        path.parent.mkdir(parents=True, exist_ok=True)
        if _has_ref(repo, f"refs/heads/{branch}"):
            git(repo, "worktree", "add", str(path), branch)
            return True
        start = base or "HEAD"
        if remote and git(repo, "fetch", "--quiet", remote, branch, check=False
                          ).returncode == 0:
            start = "FETCH_HEAD"
        elif remote and base and not _has_ref(repo, f"{base}^{{commit}}"):
            git(repo, "fetch", "--quiet", remote)
        git(repo, "worktree", "add", "-b", branch, str(path), start)
    return True


def _has_ref(repo: Path, ref: str) -> bool:
    return git(repo, "rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0


def push(path: Path, remote: str, branch: str) -> None:
    """The branch to `remote` (the agent's work, reviewable from anywhere)."""
    with locked(path):
        git(path, "push", "--quiet", remote, f"HEAD:refs/heads/{branch}")


def dirty(path: Path) -> bool:
    """Whether the worktree has changes not committed (untracked files included)."""
    return bool(git(path, "status", "--porcelain", "--untracked-files=all").stdout.strip())


def changed(path: Path) -> bool:
    """Whether tracked files have changes not committed (staged or not); untracked files
    do not count (a merge leaves the ones it does not touch alone)."""
    return bool(git(path, "status", "--porcelain", "--untracked-files=no").stdout.strip())


def uncommitted(folder: Path, names: list[str]) -> list[str]:
    """Which of the files `names` in `folder` are untracked or changed since the last
    commit (empty outside a git work tree): what `tt init` asks the user to commit."""
    if repo_root(folder) is None:
        return []
    return [name for name in names if (folder / name).exists() and git(
        folder, "status", "--porcelain", "--untracked-files=all", "--", name,
        check=False).stdout.strip()]


def _in_the_way(where: Path, branch: str) -> list[str]:
    """Files not tracked in the work tree `where` (ignored ones too) that merging
    `branch` would write: the merge must not overwrite them. Untracked files it does not
    touch never stand in its way (git's own rule)."""
    base = git(where, "merge-base", "HEAD", branch, check=False).stdout.strip()
    if not base:
        return []
    touched = [p for p in git(where, "diff", "--name-only", "-z", "--no-renames",
                              f"{base}..{branch}").stdout.split("\0") if p]
    if not touched:
        return []
    tracked = set(git(where, "ls-files", "-z", "--", *touched).stdout.split("\0"))
    return [p for p in touched if p not in tracked and os.path.lexists(where / p)]


def commit_all(path: Path, agent: str, message: str) -> str | None:
    """Commit every change in the worktree on its branch as the agent; the new commit's
    id, or None when nothing changed."""
    if not path.is_dir() or not dirty(path):
        return None
    env = {"GIT_AUTHOR_NAME": agent, "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
           "GIT_COMMITTER_NAME": "tinytown", "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL}
    with locked(path):
        git(path, "add", "--all")
        git(path, "commit", "--quiet", "--no-verify", "-m", message, env=env)
        return git(path, "rev-parse", "HEAD").stdout.strip()


def commits_since(path: Path, since: str) -> list[str]:
    """Commit ids on the worktree's HEAD after `since`, oldest first."""
    out = git(path, "rev-list", "--reverse", f"{since}..HEAD").stdout.split()
    return out


def head(path: Path) -> str:
    return git(path, "rev-parse", "HEAD").stdout.strip()


def diff(repo: Path, base: str, branch: str, stat: bool = False) -> str:
    """The branch's changes since it left `base` (three-dot: what the agent did)."""
    return git(repo, "diff", *(["--stat"] if stat else []), f"{base}...{branch}").stdout


def merge(repo: Path, branch: str, into: str | None, squash: bool, agent: str) -> dict[str, object]:
    """Merge `branch` into `into` (default: the branch checked out at `repo`), in the
    work tree where `into` is checked out. Refuses a target with changes to tracked
    files not committed, or untracked files the merge would overwrite (others, such as
    a fresh town's tinytown.toml, do not matter); a conflict is reported (its files)
    and the target left as it was."""
    with locked(repo):
        target = into or git(repo, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
        where = _checked_out_at(repo, target)
        if where is None:
            raise GitError(f"branch {target} is not checked out in any work tree here:"
                           " check it out (or pass --into a branch that is)")
        if changed(where):
            raise GitError(f"{where} has changes not committed: commit or stash them"
                           f" before merging into {target}")
        blocking = _in_the_way(where, branch)
        if blocking:
            listed = ", ".join(blocking[:5]) + (f" and {len(blocking) - 5} more"
                                                if len(blocking) > 5 else "")
            raise GitError(f"{branch} would overwrite files not tracked in {where}:"
                           f" {listed}: move them away (or commit them) before merging")
        before = head(where)
        args = ["merge", "--no-edit", *(["--squash"] if squash else []), branch]
        done = git(where, *args, check=False)
        if done.returncode != 0:
            conflicts = git(where, "diff", "--name-only", "--diff-filter=U",
                            check=False).stdout.split()
            git(where, "merge", "--abort", check=False)
            git(where, "reset", "--hard", "--quiet", before, check=False)
            if not conflicts:  # git refused before merging: say why, not "conflicts in ?"
                lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
                why = [ln for ln in lines if ln.startswith(("error:", "fatal:"))] or lines
                raise GitError(f"git merge {branch}: {why[0] if why else 'failed'}"
                               f" ({target} is as it was)")
            return {"merged": False, "into": target, "conflicts": conflicts,
                    "error": (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]}
        if squash and changed(where):
            git(where, "commit", "--quiet", "-m", f"{agent}: squashed {branch}")
        after = head(where)
        return {"merged": True, "into": target, "head": after,
                "fast_forward": "Fast-forward" in done.stdout, "conflicts": [],
                "up_to_date": after == before}  # nothing to merge: no commit of its own


def _checked_out_at(repo: Path, branch: str) -> Path | None:
    listing = git(repo, "worktree", "list", "--porcelain").stdout
    path: Path | None = None
    for line in listing.splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
        elif line == f"branch refs/heads/{branch}":
            return path
    return None


def remove(repo: Path, path: Path, branch: str, force: bool, delete_branch: bool) -> None:
    """Remove the worktree (refused with uncommitted work unless `force`), and the
    branch only when asked."""
    with locked(repo):
        if path.is_dir():
            if dirty(path) and not force:
                raise GitError(f"{path} has work not committed: commit it, or prune"
                                 " with --force to drop it")
            git(repo, "worktree", "remove", *(["--force"] if force else []), str(path))
        else:
            git(repo, "worktree", "prune", check=False)
        if delete_branch:
            git(repo, "branch", "-D", branch, check=False)
