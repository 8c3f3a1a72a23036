"""A task whose answer makes the real CLI run a shell tool that writes a file (aider: an
edit that creates it; it runs no shell commands): the task ends with the agent's
answer, and the round commits the file on the agent's branch. And the CLI, run alone,
starts its shell tool in a session of its own (setsid): a worker's kill of the CLI's
process group does not reach it, which is why the keeper exists (test_keeper.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.agent_clis.real.clis import BY_NAME, SETSID, TOOL, params, stub_of
from tests.agent_clis.real.towns import Preset
from tests.stubs._base import Text, ToolCall
from tests.stubs.realcli import Sandbox, installed

pytestmark = pytest.mark.realcli


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(root: Path) -> None:
    """The town's folder as a git repository with one commit on `main`: each agent then
    works on a branch of its own, in a worktree."""
    git(root, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Test"), ("user.email", "test@example.invalid")):
        git(root, "config", key, value)
    (root / ".gitignore").write_text(".tt/\nrecords/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")


@pytest.mark.parametrize("preset", params(TOOL), indirect=True)
def test_a_shell_tool_writes_a_file_and_the_round_commits_it(preset: Preset) -> None:
    root = preset.town.root
    make_repo(root)
    preset.make_file("FINAL-ANSWER: out.txt written")
    worker = preset.agent("a")
    state, result, task_id = preset.task(worker, "a", "Write out.txt (marker-first-task)")
    assert state == "completed", result
    if preset.name == "aider":  # plain text: the answer among aider's own lines
        assert "FINAL-ANSWER: out.txt written" in result
    else:
        assert result == "FINAL-ANSWER: out.txt written"
    assert "marker-first-task" in preset.conversation(0)
    agent = preset.town.town.resolve("a")
    assert agent.branch == "tt/a"
    worktree = Path(agent.workspace or "")
    assert (worktree / "out.txt").read_text().strip() == "made by the agent"
    assert not (root / "out.txt").exists()  # the town's own work tree is untouched
    # committed by the round, on the agent's branch
    task = preset.town.town.store.require_task(task_id)
    assert task.commits and task.commits[-1] == git(root, "rev-parse", "tt/a")
    assert git(root, "show", "tt/a:out.txt").strip() == "made by the agent"
    assert git(root, "log", "-1", "--format=%s", "tt/a") == \
        f"task {task_id[:8]}: Write out.txt (marker-first-task)"
    assert git(worktree, "status", "--porcelain") == ""


@pytest.mark.parametrize("name", params(SETSID))
def test_the_cli_alone_starts_its_shell_tool_in_a_session_of_its_own(
    name: str, sandbox: Sandbox,
) -> None:
    """The CLI, started here as a session leader, runs its shell tool with setsid: the
    tool is outside the CLI's process group and session."""
    cli = BY_NAME[name]
    binary = installed(cli.binary)
    for stub in stub_of(cli):
        # no $(...): Gemini CLI refuses command substitution
        stub.push(ToolCall("cat /proc/self/stat > stat.txt"), Text("done"))
        argv, stdin = cli.alone_argv(binary, sandbox, "show the process ids")
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=sandbox.work,
                                env=sandbox.env(cli.point(sandbox, stub)),
                                start_new_session=True)
        out, err = proc.communicate(stdin or "", timeout=120)
        assert proc.returncode == 0, f"{out}\n{err}"
    fields = (sandbox.work / "stat.txt").read_text().rsplit(")", 1)[1].split()
    pgid, sid = int(fields[2]), int(fields[3])
    assert pgid != proc.pid and sid != proc.pid  # not the CLI's group nor its session
    assert pgid == sid  # a session (and group) leader: setsid
