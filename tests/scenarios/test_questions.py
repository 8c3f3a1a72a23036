"""Questions to a person with real workers: an agent CLI without Tinytown's MCP tools
(tests/support/fake_asker.py, Claude Code's output format, sessions) ends its result
with `QUESTION: which database?`; the task waits `awaiting_input` (its dependents
blocked), `tt inbox` and `tt status` show it, `tt reply` resumes the same session with
the question and the answer in the prompt, and the task completes. A reply is refused
when there is nothing to answer (a second one included); the supervisor reports a
question unanswered past `[missions] question_timeout_secs`, to the mission's
conductor when it has one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.helpers import SUPPORT, TownFixture, one_line_error, wait_until
from tinytown.core import keys
from tinytown.core.models import MAX_MESSAGE_BYTES, TaskState

pytestmark = pytest.mark.timeout(120)

ASKER = f"""
[agent_clis.asker]
command = "{sys.executable} {SUPPORT / 'fake_asker.py'}"
output = "claude-json"
resume_args = "--resume {{session}}"
"""


def _runs(town: TownFixture) -> list[dict[str, Any]]:
    path = town.records / "asker.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _asking_town(town_factory: Callable[..., TownFixture], extra: str = "") -> TownFixture:
    town = town_factory(extra=ASKER + extra)
    assert town.tt("spawn", "a", "--cli", "asker").code == 0
    town.wait_state("a", "idle")
    return town


def _assign(town: TownFixture, *args: str) -> str:
    r = town.tt("assign", *args)
    assert r.code == 0, r.err
    return r.out.strip()


def test_a_question_line_waits_for_tt_reply_which_resumes_the_session(
        town_factory: Callable[..., TownFixture]) -> None:
    town = _asking_town(town_factory)
    task_id = _assign(town, "a", "set up the app's storage")
    child = _assign(town, "a", "write the migrations @noask", "--after", task_id)
    town.wait_task(task_id, TaskState.AWAITING_INPUT, timeout=30)
    town.wait_state("a", "idle")  # the round ended; the task did not
    task = town.town.task(task_id)
    assert task.question == "which database?" and task.asked_at is not None
    assert task.result is None and task.completed_at is None
    assert town.task_state(child) == TaskState.BLOCKED  # dependents stay blocked
    assert len(_runs(town)) == 1
    assert "call the ask_human tool" in _runs(town)[0]["prompt"]  # how to ask, told
    r = town.tt("inbox")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["TASK", "AGENT", "ASKED", "QUESTION"]
    assert lines[1].split()[:2] == [task_id[:8], "a"] and lines[1].endswith("which database?")
    assert f"tt reply {task_id[:8]}" in r.out
    listed = json.loads(town.tt("inbox", "--questions", "--json").out)
    assert [(q["task"], q["agent_name"], q["question"]) for q in listed] == [
        (task_id, "a", "which database?")]
    assert json.loads(town.tt("inbox", "--json").out) == []  # the messages, as ever
    assert town.tt("inbox", "--questions").out.splitlines()[0].split() == [
        "TASK", "AGENT", "ASKED", "QUESTION"]
    assert "1 open question" in town.tt("status").out
    assert json.loads(town.tt("status", "--json").out)["questions"] == 1
    shown = town.tt("task", "show", task_id).out
    assert "which database?" in shown and "1 asked, 0 answered" in shown

    r = town.tt("reply", task_id[:8], "PostgreSQL 16, please")
    assert r.code == 0, r.err
    again = town.tt("reply", task_id, "MySQL")  # a second reply sends nothing
    assert "not awaiting input" in one_line_error(again, 1)
    town.wait_task(task_id, TaskState.COMPLETED, timeout=30)
    town.wait_task(child, TaskState.COMPLETED, timeout=30)

    first, second = _runs(town)[:2]
    assert "--resume" not in first["argv"]
    assert second["argv"][second["argv"].index("--resume") + 1] == first["session"]
    assert "which database?" in second["prompt"] and "PostgreSQL 16, please" in second["prompt"]
    assert "MySQL" not in json.dumps(_runs(town))
    done = town.town.task(task_id)
    assert done.result == "done, using PostgreSQL 16, please"
    assert done.question is None and done.answer == "PostgreSQL 16, please"
    assert [(q["question"], q["answer"]) for q in done.questions] == [
        ("which database?", "PostgreSQL 16, please")]
    assert len([r for r in _runs(town) if f"Your task (id {task_id})" in r["prompt"]]) == 2
    assert town.town.questions() == [] and "open question" not in town.tt("status").out
    kinds = [e["kind"] for e in town.town.events(200) if e.get("task") == task_id]
    assert kinds.count("question") == 1 and kinds.count("answered") == 1


def test_reply_refusals(town_factory: Callable[..., TownFixture]) -> None:
    town = town_factory()
    assert town.tt("spawn", "idle", "--no-start").code == 0
    waiting = _assign(town, "idle", "not started")
    assert "not awaiting input (it is assigned)" in one_line_error(
        town.tt("reply", waiting, "an answer"), 1)
    assert "no task" in one_line_error(town.tt("reply", "0000dead", "x"), 1).lower()
    town.town.cancel_task(waiting)
    assert "it is cancelled" in one_line_error(town.tt("reply", waiting, "x"), 1)
    assert town.town.store.inbox_len(town.town.resolve("idle").id) == 1  # the assignment only


def test_bad_answers_are_refused_and_nothing_is_written(
        town_factory: Callable[..., TownFixture]) -> None:
    town = _asking_town(town_factory)
    task_id = _assign(town, "a", "needs an answer")
    town.wait_task(task_id, TaskState.AWAITING_INPUT, timeout=30)
    assert "empty" in one_line_error(town.tt("reply", task_id, "  "), 2)
    r = town.tt("reply", task_id, "-", input="x" * (MAX_MESSAGE_BYTES + 1))
    assert "limit" in one_line_error(r, 1)
    r = town.tt("reply", task_id, "caf\udce9")  # an argument that is not UTF-8
    assert "not valid UTF-8" in one_line_error(r, 2)
    assert town.task_state(task_id) == TaskState.AWAITING_INPUT
    assert [q["task"] for q in town.town.questions()] == [task_id]
    r = town.tt("reply", task_id, "-", input="from standard input\n")
    assert r.code == 0, r.err
    town.wait_task(task_id, TaskState.COMPLETED, timeout=30)
    assert town.town.task(task_id).result == "done, using from standard input"


@contextmanager
def _supervisor(town: TownFixture) -> Iterator[None]:
    """The town's supervisor service, running inside the block."""
    proc = subprocess.Popen([sys.executable, "-m", "tinytown.supervisor", "--town",
                             str(town.root)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: town.town.redis.exists(keys.supervisor_leader(town.name)), 15,
                   "the supervisor to lead")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _events(town: TownFixture, kind: str) -> list[dict[str, str]]:
    return [e for e in town.town.events(500) if e["kind"] == kind]


def test_a_question_unanswered_too_long_is_reported_once(
        town_factory: Callable[..., TownFixture]) -> None:
    town = _asking_town(town_factory, "\n[missions]\nquestion_timeout_secs = 1\n")
    task_id = _assign(town, "a", "choose for me")
    town.wait_task(task_id, TaskState.AWAITING_INPUT, timeout=30)
    with _supervisor(town):
        found = wait_until(lambda: _events(town, "question_timeout"), 20,
                           "a question_timeout")
    assert found[0]["task"] == task_id and "conductor" not in found[0]
    assert town.task_state(task_id) == TaskState.AWAITING_INPUT  # it goes on waiting
    assert not town.town.redis.zscore(keys.questions_due(town.name), task_id)
    assert town.town.redis.zscore(keys.questions(town.name), task_id)  # still listed
    assert [q["task"] for q in town.town.questions()] == [task_id]
    assert len(_events(town, "question_timeout")) == 1  # reported once: not due any more


def test_a_mission_task_unanswered_too_long_wakes_the_conductor(
        town_factory: Callable[..., TownFixture]) -> None:
    town = _asking_town(town_factory, "\n[missions]\nquestion_timeout_secs = 1\n")
    assert town.tt("spawn", "boss", "--no-start").code == 0
    town.town.start_mission("m", {"task": [{"name": "pick", "text": "pick one", "agent": "a"}]},
                            conductor="boss")
    task_id = town.town.mission("m")["tasks"]["pick"]
    town.wait_task(task_id, TaskState.AWAITING_INPUT, timeout=30)
    assert town.town.mission("m")["state"] == "running"  # a question is work under way
    with _supervisor(town):
        found = wait_until(lambda: _events(town, "question_timeout"), 20,
                           "a question_timeout")
    boss = town.town.resolve("boss").id
    assert found[0]["conductor"] == boss
    [message] = town.town.channel.peek("boss")
    assert message.type == "task" and task_id in message.body.description  # type: ignore[union-attr]
    assert "which database?" in message.body.description  # type: ignore[union-attr]
    assert town.task_state(task_id) == TaskState.AWAITING_INPUT


def test_reclaim_keeps_the_question_open_for_the_new_owner(
        town_factory: Callable[..., TownFixture]) -> None:
    town = _asking_town(town_factory)
    assert town.tt("spawn", "b", "--cli", "asker").code == 0
    town.wait_state("b", "idle")
    task_id = _assign(town, "a", "needs a person")
    town.wait_task(task_id, TaskState.AWAITING_INPUT, timeout=30)
    assert town.tt("kill", "a").code == 0
    town.wait_state("a", "stopped", timeout=30)
    r = town.tt("reclaim", "--from", "a", "--to", "b")
    assert r.code == 0, r.err
    task = town.town.task(task_id)
    assert task.state == TaskState.AWAITING_INPUT and task.question == "which database?"
    assert task.assigned_to == town.town.resolve("b").id
    assert [q["agent_name"] for q in town.town.questions()] == ["b"]
    assert town.tt("reply", task_id, "SQLite").code == 0
    town.wait_task(task_id, TaskState.COMPLETED, timeout=30)
    assert town.town.task(task_id).result == "done, using SQLite"
