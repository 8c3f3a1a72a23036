"""Agents' git workspaces, with real git: a worktree and branch per agent, each round's
work committed, work in progress kept when a worker dies, diff and merge back, forks
from the parent's branch, prune that never drops uncommitted work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import InProcessWorker, TownFixture, wait_until
from tinytown.core.models import TaskState
from tinytown.db import runtime

Workers = Callable[..., InProcessWorker]
APPEND = "sh -c 'echo \"line from $TINYTOWN_AGENT_NAME\" >> shared.txt'"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo_town(town_factory: Callable[..., TownFixture]) -> TownFixture:
    """A town whose root is a git repository with one commit on `main`."""
    town = town_factory(cli=APPEND)
    git(town.root, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Test"), ("user.email", "test@example.invalid")):
        git(town.root, "config", key, value)
    (town.root / "shared.txt").write_text("first line\n")
    (town.root / ".gitignore").write_text(".tt/\nrecords/\n")
    git(town.root, "add", "-A")
    git(town.root, "commit", "-q", "-m", "start")
    return town


def _log(path: Path, branch: str) -> list[str]:
    return git(path, "log", "--format=%s", branch).splitlines()


def test_two_agents_edit_the_same_file_on_their_own_branches(
    repo_town: TownFixture, worker_in_process: Workers,
) -> None:
    town = repo_town
    workers = []
    for name in ("ann", "bob"):
        town.town.spawn_agent(name, start=False)
        workers.append(worker_in_process(town, name))
    tasks = [town.town.assign(name, f"append a line ({name})") for name in ("ann", "bob")]
    threads = [threading.Thread(target=w.run_round) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for name, task_id in zip(("ann", "bob"), tasks, strict=True):
        agent = town.town.resolve(name)
        assert agent.branch == f"tt/{name}"
        worktree = Path(agent.workspace or "")
        assert worktree == town.root / ".tt" / "worktrees" / name
        assert (worktree / "shared.txt").read_text() == f"first line\nline from {name}\n"
        assert _log(town.root, f"tt/{name}")[0] == f"task {task_id[:8]}: append a line ({name})"
        task = json.loads(town.tt("task", "show", task_id, "--json").out)
        assert task["state"] == "completed" and task["branch"] == f"tt/{name}"
        assert task["commits"] == [git(town.root, "rev-parse", f"tt/{name}")]
    # the town's own work tree is untouched
    assert (town.root / "shared.txt").read_text() == "first line\n"
    assert git(town.root, "status", "--porcelain") == ""
    assert "+line from ann" in town.tt("diff", "ann").out
    assert "shared.txt" in town.tt("diff", "bob", "--stat").out
    assert town.tt("branch", "bob").out.strip() == "tt/bob"


def test_merge_fast_forwards_and_a_conflict_leaves_the_target_clean(
    repo_town: TownFixture, worker_in_process: Workers,
) -> None:
    town = repo_town
    for name in ("ann", "bob"):
        town.town.spawn_agent(name, start=False)
        worker = worker_in_process(town, name)
        town.town.assign(name, "append")
        worker.run_round()
    head = git(town.root, "rev-parse", "HEAD")
    merged = town.tt("merge", "ann", "--json")
    assert merged.code == 0, merged.err
    result = json.loads(merged.out)
    assert result["merged"] and result["fast_forward"] and result["into"] == "main"
    assert (town.root / "shared.txt").read_text() == "first line\nline from ann\n"
    before = git(town.root, "rev-parse", "HEAD")
    assert before != head
    conflict = town.tt("merge", "bob")  # the same line, changed differently
    assert conflict.code == 1 and "shared.txt" in conflict.err, conflict
    assert git(town.root, "rev-parse", "HEAD") == before
    assert git(town.root, "status", "--porcelain") == ""
    (town.root / "shared.txt").write_text("dirty\n")
    refused = town.tt("merge", "bob")
    assert refused.code == 1 and "not committed" in refused.err


def test_merge_on_a_fresh_town_ignores_untracked_files_it_does_not_touch(
    town_factory: Callable[..., TownFixture], worker_in_process: Workers,
) -> None:
    """As after `tt init` in a repository: tinytown.toml and .gitignore not committed
    yet. Only an untracked file the merge would overwrite stands in its way."""
    town = town_factory(cli="sh -c 'echo made > new.txt; echo more >> shared.txt'")
    git(town.root, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Test"), ("user.email", "test@example.invalid")):
        git(town.root, "config", key, value)
    (town.root / "shared.txt").write_text("first line\n")
    git(town.root, "add", "shared.txt")
    git(town.root, "commit", "-q", "-m", "start")
    (town.root / ".gitignore").write_text(".tt/\n")  # as `tt init` leaves it: untracked
    town.town.spawn_agent("ann", start=False)
    worker = worker_in_process(town, "ann")
    town.town.assign("ann", "make new.txt")
    worker.run_round()
    (town.root / "new.txt").write_text("mine, not tracked\n")
    before = git(town.root, "rev-parse", "HEAD")
    blocked = town.tt("merge", "ann")
    assert blocked.code == 1 and "new.txt" in blocked.err and "overwrite" in blocked.err, blocked
    assert len(blocked.err.strip().splitlines()) == 1
    assert (town.root / "new.txt").read_text() == "mine, not tracked\n"
    assert git(town.root, "rev-parse", "HEAD") == before
    (town.root / "new.txt").unlink()
    merged = town.tt("merge", "ann")
    assert merged.code == 0, merged.err
    assert (town.root / "new.txt").read_text() == "made\n"
    assert (town.root / "tinytown.toml").is_file()  # untouched, still untracked
    assert set(git(town.root, "status", "--porcelain").splitlines()) == {
        "?? .gitignore", "?? tinytown.toml"}
    # merged again with nothing new: said as such, not "merged"
    again = town.tt("merge", "ann")
    assert again.code == 0 and "already up to date" in again.out, again


def test_a_fork_starts_from_the_parents_latest_commit(
    repo_town: TownFixture, worker_in_process: Workers,
) -> None:
    town = repo_town
    town.town.spawn_agent("p", start=False)
    worker = worker_in_process(town, "p")
    town.town.assign("p", "append")
    worker.run_round()
    town.town.spawn_agent("c", parent="p", fork=True, start=False)
    child = town.town.resolve("c")
    assert child.base == git(town.root, "rev-parse", "tt/p")
    assert (Path(child.workspace or "") / "shared.txt").read_text().endswith("line from p\n")


def test_prune_never_drops_uncommitted_work(repo_town: TownFixture) -> None:
    town = repo_town
    town.town.spawn_agent("d", start=False)
    agent = town.town.resolve("d")
    town.town.agent("d").kill()  # no worker: stopped at once
    town.wait_state("d", "stopped")
    (Path(agent.workspace or "") / "unsaved.txt").write_text("not committed\n")
    kept = json.loads(town.tt("prune", "--json").out)
    assert kept["pruned"] == [] and "not committed" in kept["kept"][0]["reason"]
    assert json.loads(town.tt("prune", "--force", "--json").out)["pruned"] == ["d"]
    assert not Path(agent.workspace or "").exists()
    assert git(town.root, "branch", "--list", "tt/d")  # the branch stays


def test_outside_git_an_agent_shares_the_town_folder(town: TownFixture) -> None:
    spawned = town.tt("spawn", "plain", "--no-start")
    assert spawned.code == 0 and "not in a git work tree" in spawned.err
    assert town.town.resolve("plain").workspace is None


def test_a_killed_worker_leaves_its_work_committed_as_wip(repo_town: TownFixture) -> None:
    town = repo_town
    cli = ("sh -c 'if [ -f wip.txt ]; then echo done > done.txt;"
           " else echo half > wip.txt; sleep 60; fi'")
    assert town.tt("spawn", "k", "--cli", cli).code == 0
    town.wait_state("k", "idle", timeout=30)
    agent = town.town.resolve("k")
    worktree = Path(agent.workspace or "")
    task_id = town.town.assign("k", "do it in two goes")
    wait_until(lambda: (worktree / "wip.txt").exists(), 30, "the half-done edit")
    pid = runtime.local_pid(town.town.store, agent.id)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _alive(pid), 10, "the worker to die")
    assert town.tt("restart", "k").code == 0  # its work is handed back, a new worker
    town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
    log = _log(town.root, "tt/k")
    assert any(line.startswith("WIP: left by a round") for line in log), log
    assert git(town.root, "show", "tt/k:wip.txt") == "half"
    assert git(town.root, "show", "tt/k:done.txt") == "done"  # the next round saw it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def test_a_worktree_deleted_by_hand_is_reported_and_made_again(
    repo_town: TownFixture, worker_in_process: Workers,
) -> None:
    import shutil

    town = repo_town
    town.town.spawn_agent("s", start=False)
    worktree = Path(town.town.resolve("s").workspace or "")
    shutil.rmtree(worktree)
    report = json.loads(town.tt("doctor", "--json").out)
    assert [w["agent"] for w in report["stale_worktrees"]] == ["s"]
    worker = worker_in_process(town, "s")  # its start makes it again
    assert (worktree / "shared.txt").exists()
    task_id = town.town.assign("s", "append")
    worker.run_round()
    assert town.task_state(task_id) == TaskState.COMPLETED
    assert json.loads(town.tt("doctor", "--json").out)["stale_worktrees"] == []


def test_a_worker_on_another_host_works_in_its_own_clone_and_pushes(
    repo_town: TownFixture, worker_in_process: Workers, tmp_path: Path,
) -> None:
    """"Host B": a folder with the same tinytown.toml and a clone of its own; `origin` is
    a bare repository both know."""
    from tinytown.ops.facade import Town

    town = repo_town
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(town.root, "remote", "add", "origin", str(origin))
    git(town.root, "push", "-q", "origin", "main")
    clone = tmp_path / "host-b" / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    for key, value in (("user.name", "B"), ("user.email", "b@example.invalid")):
        git(clone, "config", key, value)
    b_root = tmp_path / "host-b" / "town"
    b_root.mkdir()
    (b_root / "tinytown.toml").write_text(
        (town.root / "tinytown.toml").read_text()
        + f'\n[workspace]\nrepo = "{clone}"\npush = "origin"\n')
    town.town.spawn_agent("r", start=False)  # recorded on host A: its worktree is A's
    host_b = TownFixture(b_root, town.name, Town.connect(b_root), town.records)
    worker = worker_in_process(host_b, "r")
    assert worker.runtime.worktree == b_root / ".tt" / "worktrees" / "r"
    task_id = town.town.assign("r", "append on host B")
    worker.run_round()
    assert town.task_state(task_id) == TaskState.COMPLETED
    pushed = git(origin, "rev-parse", "tt/r")
    assert git(origin, "show", f"{pushed}:shared.txt") == "first line\nline from r"
    assert town.town.store.require_task(task_id).commits == [pushed]
    assert (town.root / "shared.txt").read_text() == "first line\n"  # A's tree untouched


def test_two_agents_never_share_a_folder_of_their_own(repo_town: TownFixture,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    assert repo_town.tt("spawn", "one", "--workspace", str(folder), "--no-start").code == 0
    second = repo_town.tt("spawn", "two", "--workspace", str(folder), "--no-start")
    assert second.code == 1 and "never share" in second.err
    assert repo_town.tt("spawn", "three", "--workspace", "shared", "--base", "HEAD",
                        "--no-start").code == 2


def test_a_taken_name_is_said_before_its_branch(repo_town: TownFixture) -> None:
    town = repo_town
    town.town.spawn_agent("ann", start=False)
    taken = town.tt("spawn", "ann", "--no-start")
    assert taken.code == 1 and "agent name 'ann' is taken" in taken.err, taken
    assert "delete" not in taken.err
    git(town.root, "branch", "tt/zed")  # a pruned agent's, or another town's
    left = town.tt("spawn", "zed", "--no-start")
    assert left.code == 1 and "branch tt/zed exists already" in left.err, left
    assert "pick another agent name" in left.err
    assert [a.name for a in town.town.list_agents()] == ["ann"]
    assert not (town.root / ".tt" / "worktrees" / "zed").exists()
