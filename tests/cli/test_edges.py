"""Rough edges a new user meets in the CLI: `tt assign AGENT -` reads stdin; `--wait`
says the task id at once, keeps it on Ctrl-C, and does not sit out its timeout for a
stopped agent (unless `--queue`); `tt task wait`; a taken agent name says by whom;
`tt init` inside a town; `tt doctor` outside one; exit 1 for refusals, 2 for usage."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

from tests.helpers import TT, RedisServer, TownFixture, key_snapshot, one_line_error, tt, wait_until
from tinytown.core.models import AgentState, TaskState
from tinytown.db import states


def _stopped(town: TownFixture, name: str = "gone") -> None:
    town.tt("spawn", name, "--no-start")
    town.town.agent(name).kill()  # no worker: stopped at once
    town.wait_state(name, "stopped")


# --- tt assign AGENT - -------------------------------------------------------------


def test_assign_dash_reads_the_description_from_stdin(town: TownFixture) -> None:
    town.town.spawn_agent("alice", start=False)
    text = "Fix the login form\nIt rejects valid e-mail addresses."
    r = town.tt("assign", "alice", "-", input=text)
    assert r.code == 0, r.err
    assert town.town.task(r.out.strip()).description == text
    before = key_snapshot(town)
    assert "non-empty description" in one_line_error(
        town.tt("assign", "alice", "-", input="  \n"), 2)
    assert key_snapshot(town) == before
    roled = town.tt("assign", "--role", "worker", "-", input="for a worker")
    assert roled.code == 0, roled.err
    assert town.town.task(roled.out.strip()).description == "for a worker"


# --- tt assign --wait to an agent that does not run ----------------------------------


def test_wait_for_a_stopped_agent_exits_at_once_and_keeps_the_task(town: TownFixture) -> None:
    _stopped(town)
    started = time.monotonic()
    r = town.tt("assign", "gone", "later", "--wait", "--timeout", "20")
    assert time.monotonic() - started < 10, "waited out the timeout"
    assert r.code == 1, r
    assert "gone is stopped" in r.err and "tt restart gone" in r.err and "--queue" in r.err
    assert "Traceback" not in r.err
    [task] = town.town.list_tasks(state="assigned")  # kept: it runs after a restart
    assert f"task {task.id} assigned to gone" in r.err  # stdout is piped: id on stderr
    assert r.out == ""
    # `tt task wait` refuses the same way; --queue waits for the restart (here: times out)
    again = town.tt("task", "wait", task.id[:8])
    assert again.code == 1 and "tt restart gone" in again.err, again
    queued = town.tt("task", "wait", task.id[:8], "--queue", "--timeout", "0.5")
    assert queued.code == 124 and "still assigned" in queued.err, queued


def test_wait_for_an_errored_agent_waits_when_it_is_restarted(town: TownFixture) -> None:
    """`restart = "on-failure"` (the town's default): an agent in `error` comes back, so
    --wait waits for it; one a crash loop halted does not, and the wait ends at once."""
    town.tt("spawn", "crashy", "--no-start")
    agent = town.town.resolve("crashy")
    states.transition(town.town.store, agent.id, AgentState.ERROR, expect=None,
                      reason="test: crashed")
    r = town.tt("assign", "crashy", "soon", "--wait", "--timeout", "0.5")
    assert r.code == 124 and "still assigned" in r.err, r
    town.town.store.update_agents([agent.id], lambda a: setattr(a, "halted", "crash loop"))
    halted = town.tt("assign", "crashy", "never", "--wait", "--timeout", "20")
    assert halted.code == 1 and "crashy is error" in halted.err, halted


def test_wait_queue_waits_for_the_restart(town: TownFixture) -> None:
    _stopped(town)
    proc = subprocess.Popen([TT, "assign", "gone", "later", "--wait", "--queue", "--json"],
                            cwd=town.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        task = wait_until(lambda: next(iter(town.town.list_tasks(state="assigned")), None),
                          15, "the task")
        time.sleep(0.5)  # it goes on waiting: no exit for a stopped agent with --queue
        assert proc.poll() is None, proc.communicate()
        town.town.complete_task(task.id, "done by hand")
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out)["state"] == "completed"
    assert f"task {task.id} assigned to gone" in err


def test_queue_goes_with_wait(town: TownFixture) -> None:
    town.town.spawn_agent("alice", start=False)
    before = key_snapshot(town)
    assert "--queue goes with --wait" in one_line_error(
        town.tt("assign", "alice", "x", "--queue"), 2)
    assert key_snapshot(town) == before


def test_assign_to_a_stopped_agent_without_wait_warns_and_queues(town: TownFixture) -> None:
    _stopped(town)
    r = town.tt("assign", "gone", "later")
    assert r.code == 0 and "gone is stopped" in r.err, r
    assert town.town.task(r.out.strip()).state == TaskState.ASSIGNED


# --- Ctrl-C during tt assign --wait ----------------------------------------------------


def _read_until(proc: subprocess.Popen[str], want: str, timeout: float = 15) -> str:
    """Read the process's stderr until `want` appears (with a deadline, no fixed sleep)."""
    assert proc.stderr is not None
    seen = ""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while want not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {want!r} on stderr; got {seen!r}"
            if sel.select(left):
                chunk = os.read(proc.stderr.fileno(), 4096).decode()
                assert chunk, f"stderr closed; got {seen!r}"
                seen += chunk
    return seen


def test_ctrl_c_during_assign_wait_keeps_the_task_and_says_how_to_wait(
    town: TownFixture,
) -> None:
    town.town.spawn_agent("slow", start=False)  # no worker: the task stays assigned
    proc = subprocess.Popen([TT, "assign", "slow", "Build it", "--wait"], cwd=town.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = _read_until(proc, "assigned to slow\n")
        [task] = town.town.list_tasks()
        assert f"task {task.id} assigned to slow" in seen  # said before the wait
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, seen + err)
    short = task.id[:8]
    lines = [line for line in (seen + err).splitlines() if line.strip()]
    assert lines[-1] == f"tt: interrupted; task {short} goes on: tt task wait {short}"
    assert "" not in (seen + err).splitlines()  # no blank line
    assert out == ""
    assert town.town.task(task.id).state == TaskState.ASSIGNED  # the task goes on
    waited = town.tt("task", "wait", short, "--timeout", "0.3")
    assert waited.code == 124 and "still assigned" in waited.err, waited
    town.town.complete_task(task.id, "all built")
    done = town.tt("task", "wait", short)
    assert done.code == 0, done
    assert done.out.splitlines() == [f"{task.id} completed", "all built"]
    town.town.fail_task(town.town.assign("slow", "doomed"), "no")
    [failed] = town.town.list_tasks(state="failed")
    assert town.tt("task", "wait", failed.id, "--json").code == 1


# --- a taken agent name ---------------------------------------------------------------


def test_a_taken_name_says_by_whom_and_writes_nothing(town: TownFixture) -> None:
    town.town.spawn_agent("ann", start=False, nickname="Annie")
    ann = town.town.resolve("ann")
    before = key_snapshot(town)
    line = one_line_error(town.tt("spawn", "ann", "--no-start"), 1)
    assert "agent name 'ann' is taken" in line and "Annie" in line and ann.id[:8] in line
    assert ann.state.value in line and "delete" not in line
    assert key_snapshot(town) == before


# --- tt init inside a town --------------------------------------------------------------


def test_init_inside_a_town_is_refused_unless_nested(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = {"REDIS_URL": redis_server.url}
    outer = tmp_path / "outer"
    inner = outer / "services" / "api"
    inner.mkdir(parents=True)
    assert tt("init", "--name", "outer-town", cwd=outer, env=env).code == 0
    r = tt("init", cwd=inner, env=env)
    line = one_line_error(r, 1)
    assert str(outer) in line and "--nested" in line
    assert list(inner.iterdir()) == []  # nothing made
    assert tt("init", "--name", "inner-town", "--nested", cwd=inner, env=env).code == 0
    assert (inner / "tinytown.toml").is_file()


def test_init_in_a_repository_says_what_to_commit(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    repo = tmp_path / "webapp"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    r = tt("init", "--name", "webapp-t", cwd=repo, env={"REDIS_URL": redis_server.url})
    assert r.code == 0, r.err
    assert ("commit tinytown.toml and .gitignore: git add tinytown.toml .gitignore"
            " && git commit -m") in r.out
    other = tmp_path / "other"  # named with --town from elsewhere: git -C it
    subprocess.run(["git", "init", "-q", "-b", "main", str(other)], check=True)
    (other / ".gitignore").write_text("node_modules/\n")
    subprocess.run(["git", "-C", str(other), "add", ".gitignore"], check=True)
    subprocess.run(["git", "-C", str(other), "-c", "user.name=T", "-c", "user.email=t@e.invalid",
                    "commit", "-q", "-m", "start"], check=True)
    r = tt("--town", str(other), "init", "--name", "other-t", cwd=tmp_path,
           env={"REDIS_URL": redis_server.url})
    assert r.code == 0, r.err
    assert (f"commit tinytown.toml and .gitignore: git -C {other} add tinytown.toml"
            f" .gitignore && git -C {other} commit -m") in r.out
    outside = tmp_path / "plain"
    outside.mkdir()
    env = {"REDIS_URL": redis_server.url, "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    plain = tt("init", "--name", "plain-t", cwd=outside, env=env)
    assert plain.code == 0 and "commit" not in plain.out, plain


# --- tt doctor outside a town ----------------------------------------------------------


def test_doctor_outside_a_town_checks_the_clis(tmp_path: Path) -> None:
    r = tt("doctor", cwd=tmp_path)
    assert r.code in (0, 1) and "Traceback" not in r.err, r
    assert "no town here" in r.out and str(tmp_path) in r.out
    assert "claude *" in r.out and "codex" in r.out  # the CLI table, default CLI marked
    assert "not inside a town" not in r.err
    report = json.loads(tt("doctor", "--json", cwd=tmp_path).out)
    assert report["town"] is None and report["redis"] is None
    assert {c["name"] for c in report["clis"]} >= {"claude", "codex", "gemini"}
    assert [c["name"] for c in report["clis"] if c["used"]] == ["claude"]
    assert list(tmp_path.iterdir()) == []  # nothing made


# --- exit codes: 1 for refusals, 2 for bad usage ---------------------------------------


def test_refusals_exit_1_and_bad_usage_exits_2(town: TownFixture) -> None:
    town.town.spawn_agent("quiet", start=False)
    assert "no round logs yet" in one_line_error(town.tt("logs", "quiet"), 1)
    assert "no host named" in one_line_error(town.tt("host", "drain", "nowhere"), 1)
    assert "no agent" in one_line_error(town.tt("diff", "ghost"), 1)
    assert "no branch of its own" in one_line_error(town.tt("merge", "quiet"), 1)
    _stopped(town)
    line = one_line_error(town.tt("reclaim", "--to", "gone"), 1)
    assert "stopped" in line
    assert "--to AGENT or --to-backlog" in one_line_error(
        town.tt("reclaim", "--to", "quiet", "--to-backlog"), 2)


def test_one_line_is_the_first_line_that_says_something() -> None:
    """One rule for an error on one line, wherever it is said (tt's stderr, a CLI's
    report, an MCP tool's refusal, an HTTP error answer)."""
    from tinytown.core.errors import NameTaken, one_line

    assert one_line("\n  \n  Error: quota\nTraceback ...") == "Error: quota"
    assert one_line(NameTaken("\nname 'a' is taken\nby b")) == "name 'a' is taken"
    assert one_line(NameTaken()) == "NameTaken" and one_line(" \n") == ""
    assert one_line(ValueError("x" * 600)) == "x" * 499 + "…"
    assert one_line("y" * 20, limit=10) == "y" * 9 + "…"
