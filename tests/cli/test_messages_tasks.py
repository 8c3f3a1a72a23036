"""Messages and tasks without workers: `tt send`, `tt inbox`, `tt assign`, `tt task ...`,
`tt migrate`, `tt reset`, and the same operations through the Python API."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers import (
    RedisServer,
    TownFixture,
    key_snapshot,
    one_line_error,
    private_town,
    wait_until,
)
from tinytown import (
    Agent,
    AgentHandle,
    AgentState,
    AgentType,
    MessageType,
    Priority,
    Task,
    TaskState,
    Town,
)
from tinytown.core import keys
from tinytown.core.errors import (
    AgentNotFound,
    AmbiguousReference,
    InvalidTransition,
    MessageTooLarge,
    TaskNotFound,
    UsageError,
)

SUP = keys.SUPERVISOR_ID
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _spawn(town: TownFixture, name: str) -> str:
    """Register an agent (through the API: `tt spawn` has its own tests)."""
    return town.town.spawn_agent(name, start=False).id


def _assign(town: TownFixture, agent: str, description: str) -> str:
    return town.town.assign(agent, description)


def _inbox(town: TownFixture, agent_id: str) -> list[dict[str, Any]]:
    return [json.loads(m) for m in town.town.redis.lrange(keys.inbox(town.name, agent_id), 0, -1)]






# --- tt send --------------------------------------------------------------------------


@pytest.mark.parametrize("args, expected", [
    (["Build the API"], {"type": "task", "description": "Build the API"}),
    (["Which port?", "--query"], {"type": "query", "question": "Which port?"}),
    (["tests pass", "--info"], {"type": "informational", "summary": "tests pass"}),
    (["received", "--ack"], {"type": "confirmation", "ack_type": {"type": "received"}}),
    (["acknowledged", "--ack"], {"type": "confirmation", "ack_type": {"type": "acknowledged"}}),
    (["thanks", "--ack"], {"type": "confirmation", "ack_type": {"type": "thanks"}}),
    (["Approved", "--ack"], {"type": "confirmation", "ack_type": {"type": "approved"}}),
    (["rejected: too big, split it", "--ack"],
     {"type": "confirmation", "ack_type": {"type": "rejected", "reason": "too big, split it"}}),
    (["rejected", "--ack"], {"type": "confirmation", "ack_type": {"type": "rejected",
                                                                  "reason": ""}}),
])
def test_send_message_kinds(town: TownFixture, args: list[str], expected: dict[str, Any]) -> None:
    alice = _spawn(town, "alice")
    r = town.tt("send", "alice", *args, "--json")
    assert r.code == 0, r.err
    sent = json.loads(r.out)
    [stored] = _inbox(town, alice)
    assert sent == stored
    assert {k: v for k, v in stored.items() if k in expected} == expected
    assert set(stored) == {"id", "from", "to", "priority", "created_at", "correlation_id",
                           *expected}
    assert (stored["from"], stored["to"], stored["priority"]) == (SUP, alice, "normal")
    assert stored["correlation_id"] is None


def test_send_plain_output(town: TownFixture) -> None:
    _spawn(town, "alice")
    r = town.tt("send", "alice", "hello")
    assert r.code == 0
    assert re.fullmatch(rf"sent task {UUID_RE} \(normal\)", r.out.strip())


def test_send_bad_ack_kind(town: TownFixture) -> None:
    _spawn(town, "alice")
    before = key_snapshot(town)
    line = one_line_error(town.tt("send", "alice", "maybe", "--ack"), 2)
    for kind in ("received", "acknowledged", "thanks", "approved", "rejected"):
        assert kind in line
    assert key_snapshot(town) == before


def test_send_priorities(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    for args in (["n1"], ["u1", "--urgent"], ["l1", "--priority", "low"], ["h1", "--priority",
                 "high"], ["u2", "--priority", "urgent", "--urgent"], ["n2", "--priority",
                 "normal"]):
        assert town.tt("send", "alice", *args).code == 0, args
    got = [(m["description"], m["priority"]) for m in _inbox(town, alice)]
    assert got == [("u2", "urgent"), ("h1", "high"), ("u1", "urgent"), ("n1", "normal"),
                   ("l1", "low"), ("n2", "normal")]
    before = key_snapshot(town)
    assert "contradicts" in one_line_error(
        town.tt("send", "alice", "x", "--urgent", "--priority", "low"), 2)
    one_line_error(town.tt("send", "alice", "x", "--priority", "asap"), 2)
    assert key_snapshot(town) == before


def test_send_sender(town: TownFixture) -> None:
    alice, bob = _spawn(town, "alice"), _spawn(town, "bob")

    def sender(*args: str, env: dict[str, str] | None = None) -> str:
        r = town.tt("send", "alice", "hi", "--json", *args, env=env or {})
        assert r.code == 0, r.err
        return str(json.loads(r.out)["from"])

    assert sender() == SUP
    assert sender("--from", "bob") == bob
    assert sender("--from", bob[:6]) == bob
    assert sender(env={"TINYTOWN_AGENT_ID": bob}) == bob
    assert sender(env={"TINYTOWN_AGENT_NAME": "bob"}) == bob
    assert sender(env={"TINYTOWN_AGENT_ID": bob, "TINYTOWN_AGENT_NAME": "alice"}) == bob
    assert sender("--from", "alice", env={"TINYTOWN_AGENT_ID": bob}) == alice
    assert sender("--from", "supervisor", env={"TINYTOWN_AGENT_ID": bob}) == SUP
    before = key_snapshot(town)
    assert "ghost" in one_line_error(town.tt("send", "alice", "hi", "--from", "ghost"))
    assert "ghost" in one_line_error(
        town.tt("send", "alice", "hi", env={"TINYTOWN_AGENT_NAME": "ghost"}))
    assert key_snapshot(town) == before


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_send_empty_message_refused(town: TownFixture, text: str) -> None:
    _spawn(town, "alice")
    before = key_snapshot(town)
    assert "empty" in one_line_error(town.tt("send", "alice", text), 2)
    assert "empty" in one_line_error(town.tt("send", "alice", "-", input=text), 2)
    assert key_snapshot(town) == before


def test_send_to_the_supervisor(town: TownFixture) -> None:
    _spawn(town, "alice")
    for ref in ("supervisor", "conductor", SUP):
        r = town.tt("send", ref, f"to {ref}", "--info", "--from", "alice", "--json")
        assert r.code == 0, r.err
        assert json.loads(r.out)["to"] == SUP
    assert [m["summary"] for m in _inbox(town, SUP)] == [
        "to supervisor", "to conductor", f"to {SUP}"]
    # the supervisor has no worker to wake
    assert not town.town.redis.exists(keys.wake(town.name, SUP))


# --- tt inbox -------------------------------------------------------------------------


def test_inbox(town: TownFixture) -> None:
    alice, bob = _spawn(town, "alice"), _spawn(town, "bob")
    assert town.tt("send", "alice", "first").code == 0
    assert town.tt("send", "alice", "second", "--urgent").code == 0
    assert town.tt("send", "supervisor", "done", "--info", "--from", "bob").code == 0

    r = town.tt("inbox")  # default: the supervisor's mailbox
    assert r.code == 0, r.err
    assert "done" in r.out and "first" not in r.out
    assert r.out.splitlines()[0].split() == ["TO", "ID", "TYPE", "PRIORITY", "FROM", "AGE",
                                             "CONTENT"]
    row = next(line.split() for line in r.out.splitlines()[1:] if "done" in line)
    assert row[:5] == ["supervisor", _inbox(town, SUP)[0]["id"][:8], "informational",
                       "normal", "bob"]

    r = town.tt("inbox", "alice", "--json")
    assert json.loads(r.out) == _inbox(town, alice)
    assert [m["description"] for m in json.loads(r.out)] == ["second", "first"]

    r = town.tt("inbox", "--all", "--json")
    assert [m["to"] for m in json.loads(r.out)] == [SUP, alice, alice]
    r = town.tt("inbox", "--all")
    assert "first" in r.out and "second" in r.out and "done" in r.out

    r = town.tt("inbox", "--json", env={"TINYTOWN_AGENT_ID": alice})
    assert len(json.loads(r.out)) == 2
    assert json.loads(town.tt("inbox", "bob", "--json").out) == []
    assert "no pending messages" in town.tt("inbox", "bob").out
    # reading consumed nothing
    assert town.town.store.inbox_len(alice) == 2 and town.town.store.inbox_len(SUP) == 1
    assert town.town.store.inbox_len(bob) == 0
    assert "not both" in one_line_error(town.tt("inbox", "alice", "--all"), 2)
    assert town.tt("send", "bob", "line one\nline two").code == 0  # piped: a row a line
    lines = town.tt("inbox", "bob").out.splitlines()
    assert len(lines) == 2 and lines[1].rstrip().endswith("line one line two")


# --- tt assign ------------------------------------------------------------------------



def test_assign(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    r = town.tt("assign", "alice", "Build the API", "--tags", "api, backend,,")
    assert r.code == 0, r.err
    task_id = r.out.strip()
    assert re.fullmatch(UUID_RE, task_id)
    stored = json.loads(town.town.redis.get(keys.task(town.name, task_id)))
    assert stored["state"] == "assigned" and stored["assigned_to"] == alice
    assert stored["description"] == "Build the API"
    assert stored["tags"] == ["api", "backend"]
    assert stored["parent_id"] is None and stored["completed_at"] is None
    [message] = _inbox(town, alice)
    assert (message["type"], message["task_id"], message["from"]) == ("task_assign", task_id, SUP)

    r = town.tt("assign", alice[:4], "Write the tests", "--parent", task_id[:6], "--json")
    assert r.code == 0, r.err
    child = json.loads(r.out)
    assert child == json.loads(town.town.redis.get(keys.task(town.name, child["id"])))
    assert child["parent_id"] == task_id and child["tags"] == []
    assert [m["task_id"] for m in _inbox(town, alice)] == [task_id, child["id"]]

    assert town.tt("assign", "alice", "hotfix", "--urgent").code == 0
    assert _inbox(town, alice)[0]["priority"] == "urgent"


@pytest.mark.parametrize("args, code, says", [
    (["alice", ""], 2, "non-empty description"),
    (["alice", "   "], 2, "non-empty description"),
    (["ghost", "work"], 1, "no agent 'ghost'"),
    (["supervisor", "work"], 2, "worker agents"),
    (["alice", "work", "--parent", "00000000-0000-4000-8000-000000000000"], 1, "no task"),
    (["alice", "work", "--parent", "zz"], 1, "no task"),
])
def test_assign_refusals_write_nothing(
    town: TownFixture, args: list[str], code: int, says: str
) -> None:
    _spawn(town, "alice")
    before = key_snapshot(town)
    assert says in one_line_error(town.tt("assign", *args), code)
    assert key_snapshot(town) == before


# --- tt task --------------------------------------------------------------------------


def test_task_show(town: TownFixture) -> None:
    _spawn(town, "alice")
    task_id = town.town.assign("alice", Task("Build it", tags=["x"]))
    for ref in (task_id, task_id[:4], task_id.upper()):
        r = town.tt("task", "show", ref, "--json")
        assert r.code == 0, r.err
        assert json.loads(r.out) == json.loads(town.town.redis.get(keys.task(town.name,
                                                                             task_id)))
    r = town.tt("task", "show", task_id)
    fields = dict(line.split(None, 1) for line in r.out.splitlines())
    assert fields["id"] == task_id and fields["state"] == "assigned"
    assert fields["description"] == "Build it" and fields["completed_at"] == "-"
    assert "no task" in one_line_error(town.tt("task", "show", "00000000"))
    assert "no task" in one_line_error(town.tt("task", "show", "abc"))


def test_task_ambiguous_prefix(town: TownFixture) -> None:
    for ident in ("feed0001-0000-4000-8000-000000000000", "feed0002-0000-4000-8000-000000000000"):
        town.town.store.put_task(Task("t", id=ident))
    line = one_line_error(town.tt("task", "show", "feed"))
    assert "feed0001" in line and "feed0002" in line
    assert town.tt("task", "show", "feed0002").code == 0


def test_task_list_filters(town: TownFixture) -> None:
    alice, bob = _spawn(town, "alice"), _spawn(town, "bob")
    t1 = _assign(town, "alice", "one")
    t2 = _assign(town, "bob", "two")
    t3 = _assign(town, "alice", "three")
    town.town.store.put_task(Task("four"))
    assert town.tt("task", "complete", t3).code == 0

    def ids(*args: str) -> list[str]:
        r = town.tt("task", "list", "--json", *args)
        assert r.code == 0, r.err
        return [t["id"] for t in json.loads(r.out)]

    all_ids = ids()
    assert all_ids[:3] == [t1, t2, t3] and len(all_ids) == 4  # oldest first
    assert ids("--agent", "alice") == [t1, t3]
    assert ids("--agent", bob) == [t2]
    assert ids("--state", "assigned") == [t1, t2]
    assert ids("--state", "completed", "--agent", "alice") == [t3]
    assert ids("--state", "cancelled") == []
    assert len(ids("--state", "pending")) == 1
    r = town.tt("task", "list", "--agent", "alice")
    assert r.out.splitlines()[0].split() == ["ID", "STATE", "AGENT", "UPDATED", "TAGS",
                                             "DESCRIPTION"]
    assert t1[:8] in r.out and t3[:8] in r.out and t2[:8] not in r.out
    assert "alice" in r.out and alice not in r.out
    one_line_error(town.tt("task", "list", "--state", "lost"), 2)


def test_complete_counts_once(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    task_id = _assign(town, "alice", "job")
    r = town.tt("task", "complete", task_id[:8], "--result", "all good")
    assert r.code == 0, r.err
    assert r.out.strip() == f"task {task_id} completed"
    task = town.town.store.require_task(task_id)
    assert task.state == TaskState.COMPLETED and task.result == "all good"
    assert task.completed_at is not None
    assert town.town.store.require_agent(alice).tasks_completed == 1
    before = key_snapshot(town)
    for command in (["complete", task_id], ["fail", task_id], ["cancel", task_id]):
        assert "already completed" in one_line_error(town.tt("task", *command), 1)
    assert key_snapshot(town) == before
    assert town.town.store.require_agent(alice).tasks_completed == 1


def test_fail_and_cancel(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    t1 = _assign(town, "alice", "will fail")
    t2 = _assign(town, "alice", "will be cancelled")
    r = town.tt("task", "fail", t1, "--error", "exit 1", "--json")
    assert r.code == 0, r.err
    failed = json.loads(r.out)
    assert (failed["state"], failed["result"]) == ("failed", "exit 1")
    assert failed["completed_at"] is not None
    r = town.tt("task", "cancel", t2)
    assert r.code == 0 and r.out.strip() == f"task {t2} cancelled"
    assert "already cancelled" in one_line_error(town.tt("task", "complete", t2))
    assert town.town.store.require_agent(alice).tasks_completed == 0  # only completions count
    assert "no task" in one_line_error(town.tt("task", "complete",
                                                "00000000-0000-4000-8000-000000000000"))


def test_task_current(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    task_id = _assign(town, "alice", "current job")
    r = town.tt("task", "current", "alice")
    assert r.code == 0 and r.out.strip() == "no current task"
    assert json.loads(town.tt("task", "current", "alice", "--json").out) is None
    # what the worker does when it starts the task
    town.town.store.update_agent(alice, lambda a: setattr(a, "current_task", task_id))
    r = town.tt("task", "current", "alice", "--json")
    assert r.code == 0 and json.loads(r.out)["id"] == task_id
    for env in ({"TINYTOWN_AGENT_ID": alice}, {"TINYTOWN_AGENT_NAME": "alice"}):
        r = town.tt("task", "current", "--json", env=env)
        assert r.code == 0 and json.loads(r.out)["id"] == task_id
    assert "id" in town.tt("task", "current", "alice").out
    assert "AGENT" in one_line_error(town.tt("task", "current"), 2)


# --- tt migrate -----------------------------------------------------------------------

LEGACY_AGENT = "11111111-2222-4333-8444-555555555555"
LEGACY_TASK = "66666666-7777-4888-9999-aaaaaaaaaaaa"


def _legacy_agent_doc(name: str, ident: str = LEGACY_AGENT) -> str:
    return json.dumps({
        "id": ident, "name": name, "nickname": "Oldtimer", "role_id": None,
        "parent_agent_id": None, "spawn_mode": "fresh", "agent_type": "worker",
        "state": "idle", "cli": "claude", "current_task": None,
        "created_at": "2025-01-02T03:04:05.678Z", "last_heartbeat": "2025-01-02T03:04:05Z",
        "tasks_completed": 4})


@pytest.fixture
def legacy(tmp_path: Path) -> Iterator[tuple[TownFixture, redis.Redis]]:
    """A town with legacy keys, on a server of its own: legacy keys have no town segment."""
    with private_town(tmp_path) as (town, r):
        _write_legacy(r)
        yield town, r


def _write_legacy(r: redis.Redis) -> None:
    r.set(f"tt:agent:{LEGACY_AGENT}", _legacy_agent_doc("veteran"))
    r.rpush(f"tt:inbox:{LEGACY_AGENT}", json.dumps({
        "id": "0b6f0c1e-6f1a-4f53-9f0e-3c1b2f0d9a11", "from": SUP, "to": LEGACY_AGENT,
        "type": "task", "description": "old work", "priority": "normal",
        "created_at": "2025-01-02T03:04:05Z", "correlation_id": None}))
    r.set(f"tt:task:{LEGACY_TASK}", json.dumps({
        "id": LEGACY_TASK, "description": "old task", "state": "in_flight",
        "assigned_to": LEGACY_AGENT, "created_at": "2025-01-02T03:04:05Z",
        "updated_at": "2025-01-02T03:04:05Z", "completed_at": None, "result": None,
        "parent_id": None}))
    r.set("tt:agent:not-a-uuid", "left alone")


def test_migrate_dry_run_moves_nothing(legacy: tuple[TownFixture, redis.Redis]) -> None:
    legacy_town, r = legacy
    before = {k: r.dump(k) for k in r.scan_iter(count=1000)}
    out = legacy_town.tt("migrate", "--dry-run")
    assert out.code == 0, out.err
    assert f"would move: tt:agent:{LEGACY_AGENT} -> tt:{legacy_town.name}:agent:{LEGACY_AGENT}" \
        in out.out
    report = json.loads(legacy_town.tt("migrate", "--dry-run", "--json").out)
    assert {(e["from"], e["action"]) for e in report} == {
        (f"tt:agent:{LEGACY_AGENT}", "would move"), (f"tt:inbox:{LEGACY_AGENT}", "would move"),
        (f"tt:task:{LEGACY_TASK}", "would move")}
    assert {k: r.dump(k) for k in r.scan_iter(count=1000)} == before


def test_migrate_moves_legacy_keys(legacy: tuple[TownFixture, redis.Redis]) -> None:
    legacy_town, r = legacy
    t = legacy_town.name
    out = legacy_town.tt("migrate", "--json")
    assert out.code == 0, out.err
    assert {(e["from"], e["to"], e["action"]) for e in json.loads(out.out)} == {
        (f"tt:agent:{LEGACY_AGENT}", f"tt:{t}:agent:{LEGACY_AGENT}", "moved"),
        (f"tt:inbox:{LEGACY_AGENT}", f"tt:{t}:inbox:{LEGACY_AGENT}", "moved"),
        (f"tt:task:{LEGACY_TASK}", f"tt:{t}:task:{LEGACY_TASK}", "moved")}
    assert set(r.scan_iter(match="tt:agent:*")) == {"tt:agent:not-a-uuid"}
    assert not r.exists(f"tt:inbox:{LEGACY_AGENT}", f"tt:task:{LEGACY_TASK}")
    veteran = legacy_town.town.resolve("veteran")
    assert veteran.id == LEGACY_AGENT and veteran.tasks_completed == 4
    assert r.hget(keys.names(t), "veteran") == LEGACY_AGENT
    assert legacy_town.town.channel.inbox_len("veteran") == 1
    assert legacy_town.town.task(LEGACY_TASK).state == TaskState.RUNNING
    again = legacy_town.tt("migrate")
    assert again.code == 0 and again.out.strip() == "nothing to migrate"


def test_migrate_never_overwrites(legacy: tuple[TownFixture, redis.Redis]) -> None:
    legacy_town, r = legacy
    t = legacy_town.name
    existing = Task("already here", id=LEGACY_TASK).to_json()
    r.set(f"tt:{t}:task:{LEGACY_TASK}", existing)
    # a legacy agent whose name the town already uses
    other = "22222222-2222-4333-8444-555555555555"
    assert legacy_town.tt("spawn", "rookie", "--no-start").code == 0
    r.set(f"tt:agent:{other}", _legacy_agent_doc("rookie", other))
    dry = {e["from"]: e["action"] for e in json.loads(legacy_town.tt("migrate", "--dry-run",
                                                                     "--json").out)}
    assert dry[f"tt:task:{LEGACY_TASK}"] == "skipped: target exists"
    assert dry[f"tt:agent:{other}"] == "skipped: name 'rookie' taken"  # as the real run says
    assert dry[f"tt:agent:{LEGACY_AGENT}"] == "would move"
    report = {e["from"]: e["action"] for e in json.loads(legacy_town.tt("migrate",
                                                                        "--json").out)}
    assert report[f"tt:task:{LEGACY_TASK}"] == "skipped: target exists"
    assert report[f"tt:agent:{other}"].startswith("skipped: name")
    assert report[f"tt:agent:{LEGACY_AGENT}"] == "moved"
    assert r.get(f"tt:{t}:task:{LEGACY_TASK}") == existing
    assert r.exists(f"tt:task:{LEGACY_TASK}", f"tt:agent:{other}") == 2
    assert not r.exists(f"tt:{t}:agent:{other}")
    assert legacy_town.town.resolve("rookie").id != other


def test_migrate_skips_invalid_records_unless_forced(
    legacy: tuple[TownFixture, redis.Redis]
) -> None:
    legacy_town, r = legacy
    t = legacy_town.name
    junk = "33333333-2222-4333-8444-555555555555"
    r.set(f"tt:task:{junk}", "{corrupt")
    wrong_type = "44444444-2222-4333-8444-555555555555"
    r.hset(f"tt:agent:{wrong_type}", "name", "a hash")
    r.rpush(f"tt:inbox:{junk}", "not a message")
    out = legacy_town.tt("migrate")
    assert out.code == 0, out.err
    assert "Traceback" not in out.err
    for key in (f"tt:task:{junk}", f"tt:agent:{wrong_type}", f"tt:inbox:{junk}"):
        assert f"skipped: not a valid record (use --force to move it anyway): {key}" in out.out
        assert r.exists(key)
    out = legacy_town.tt("migrate", "--force")
    assert out.code == 0, out.err
    assert r.get(f"tt:{t}:task:{junk}") == "{corrupt"
    assert r.type(f"tt:{t}:agent:{wrong_type}") == "hash"
    assert r.lrange(f"tt:{t}:inbox:{junk}", 0, -1) == ["not a message"]
    # listings now skip them with a warning, and still work
    listed = legacy_town.tt("list", "--json")
    assert listed.code == 0 and [a["name"] for a in json.loads(listed.out)] == ["veteran"]
    assert f"tt:{t}:agent:{wrong_type}" in listed.err


# --- tt reset -------------------------------------------------------------------------


def _populate(town: TownFixture) -> str:
    _spawn(town, "alice")
    town.town.channel.send("alice", MessageType.task("hello"))
    task_id = _assign(town, "alice", "work")
    town.town.channel.send("supervisor", MessageType.informational("note"))
    return task_id


def test_reset_without_force_deletes_nothing(town_factory: Callable[..., TownFixture]) -> None:
    town = town_factory()
    _populate(town)
    before = key_snapshot(town)
    r = town.tt("reset")
    assert r.code == 0, r.err
    assert f"would delete {len(before)} key(s) (add --force to delete)" in r.out
    assert {line.strip() for line in r.out.splitlines()[1:]} == set(before)
    assert json.loads(town.tt("reset", "--json").out) == {"would_delete": sorted(before)}
    assert town.tt("reset", "--agents-only").code == 0
    assert key_snapshot(town) == before


def test_reset_force(town_factory: Callable[..., TownFixture]) -> None:
    town, neighbour = town_factory(), town_factory()
    _populate(town)
    _populate(neighbour)
    theirs = key_snapshot(neighbour)
    r = town.tt("reset", "--force", "--json")
    assert r.code == 0, r.err
    assert len(json.loads(r.out)["deleted"]) == 8
    assert town.town_keys() == set()
    assert key_snapshot(neighbour) == theirs
    assert town.tt("list", "--json").out.strip() == "[]"
    r = town.tt("reset", "--force")
    assert r.code == 0 and "deleted 0 key(s)" in r.out


def test_reset_agents_only_keeps_tasks(town: TownFixture) -> None:
    task_id = _populate(town)
    alice = town.town.resolve("alice").id
    r = town.tt("reset", "--force", "--agents-only")
    assert r.code == 0, r.err
    left = town.town_keys()
    assert left == {f"tt:{town.name}:task:{task_id}", keys.events(town.name)}
    assert not any(alice in k or SUP in k for k in left)  # nor the agent's round queue
    assert keys.names(town.name) not in left
    assert json.loads(town.tt("task", "list", "--json").out)[0]["id"] == task_id
    assert town.tt("list", "--json").out.strip() == "[]"
    assert town.tt("spawn", "alice", "--no-start").code == 0  # the name is free again


# --- the Python API -------------------------------------------------------------------


def test_town_connect_and_spawn(town: TownFixture) -> None:
    (town.root / "deep" / "er").mkdir(parents=True)
    api = Town.connect(town.root / "deep" / "er")
    assert api.name == town.name and api.settings.root == town.root.resolve()
    handle = api.spawn_agent("w1", "claude", role="worker", nickname="Willa", start=False)
    assert isinstance(handle, AgentHandle)
    assert re.fullmatch(UUID_RE, handle.id)
    agent = handle.state()
    assert agent is not None
    assert (agent.name, agent.cli, agent.role_id, agent.nickname, agent.state) == (
        "w1", "claude", "worker", "Willa", AgentState.STARTING)
    assert agent.agent_type == AgentType.WORKER
    child = api.spawn_agent("w2", parent="Willa", start=False)
    assert child.state().parent_agent_id == handle.id  # type: ignore[union-attr]
    assert [a.name for a in api.list_agents()] == ["w1", "w2"]
    assert api.agent("w1").id == handle.id
    assert not api.redis.exists(keys.runtime(api.name, handle.id))  # nothing started
    with pytest.raises(UsageError):
        api.spawn_agent("bad name", start=False)
    with pytest.raises(UsageError):
        api.spawn_agent("w3", role="wizard", start=False)
    with pytest.raises(AgentNotFound):
        api.agent("ghost")
    api.redis.close()


def test_agent_handle_operations(town: TownFixture) -> None:
    api = town.town
    handle = api.spawn_agent("w1", "claude", start=False)
    assert handle.inbox_len() == 0
    task_id = handle.assign(Task("Build the API", tags=["api"]))
    task = api.store.require_task(task_id)
    assert (task.state, task.assigned_to, task.tags) == (TaskState.ASSIGNED, handle.id, ["api"])
    sent = handle.send(MessageType.ping(), priority=Priority.URGENT)
    handle.send(MessageType.status_request(), priority="low")
    assert handle.inbox_len() == 3
    assert [m.type for m in handle.inbox()] == ["ping", "task_assign", "status_request"]
    assert handle.inbox()[0].id == sent.id and sent.sender == SUP
    supervisor = api.agent("supervisor")
    assert supervisor.id == SUP
    record = supervisor.state()
    assert record is not None
    expected = Agent.supervisor()
    assert (record.id, record.name, record.agent_type) == (
        expected.id, expected.name, AgentType.SUPERVISOR)
    with pytest.raises(UsageError):
        supervisor.assign(Task("no"))
    with pytest.raises(UsageError):
        handle.assign(Task(""))
    with pytest.raises(TaskNotFound):
        api.assign("w1", Task("child", parent_id="00000000-0000-4000-8000-000000000000"))
    assert handle.inbox_len() == 3


def test_api_task_lifecycle(town: TownFixture) -> None:
    api = town.town
    handle = api.spawn_agent("w1", start=False)
    task_id = api.assign("w1", "do it")
    assert [t.id for t in api.list_tasks(state="assigned", agent_ref="w1")] == [task_id]
    done = api.complete_task(task_id[:6], "ok")
    assert done.state == TaskState.COMPLETED and done.result == "ok"
    with pytest.raises(InvalidTransition):
        api.complete_task(task_id)
    assert handle.state().tasks_completed == 1  # type: ignore[union-attr]
    other = api.assign("w1", "other")
    assert api.cancel_task(other).state == TaskState.CANCELLED
    with pytest.raises(TaskNotFound):
        api.task("ffffffff")
    with pytest.raises(AmbiguousReference):
        for ident in ("beef0001-0000-4000-8000-000000000000",
                      "beef0002-0000-4000-8000-000000000000"):
            api.store.put_task(Task("t", id=ident))
        api.task("beef")


def test_channel(town: TownFixture) -> None:
    api = town.town
    a = api.spawn_agent("a", start=False)
    b = api.spawn_agent("b", start=False)
    c = api.spawn_agent("c", start=False)
    api.store.update_agent(c.id, lambda agent: setattr(agent, "state", AgentState.STOPPED))

    assert api.channel.try_receive("a") is None
    assert api.channel.receive("a", timeout=0.1) is None  # waits, then gives up
    query = api.channel.send("a", MessageType.query("which port?"), sender="b",
                             correlation_id="0b6f0c1e-6f1a-4f53-9f0e-3c1b2f0d9a11")
    assert api.channel.inbox_len("a") == 1
    got = api.channel.receive("a", timeout=5)
    assert got is not None and got.id == query.id and got.sender == b.id
    assert got.correlation_id == "0b6f0c1e-6f1a-4f53-9f0e-3c1b2f0d9a11"
    assert got.body.question == "which port?"  # type: ignore[union-attr]
    assert api.channel.inbox_len("a") == 0

    sent = api.channel.broadcast(MessageType.informational("release at 5"), sender="a")
    assert {m.to for m in sent} == {b.id}  # not the sender, not a stopped agent
    sent = api.channel.broadcast(MessageType.shutdown(), priority="urgent")
    assert {m.to for m in sent} == {a.id, b.id}
    assert [m.type for m in b.inbox()] == ["shutdown", "informational"]
    assert c.inbox_len() == 0
    assert api.channel.try_receive("b").type == "shutdown"  # type: ignore[union-attr]


def test_channel_receive_waits_for_a_message(town: TownFixture) -> None:
    api = town.town
    api.spawn_agent("a", start=False)
    receiver = Town.connect(town.root)  # its own client, closed below
    received: list[Any] = []
    waiter = threading.Thread(target=lambda: received.append(receiver.channel.receive("a", 20)))
    blocked_before = int(api.redis.info("clients")["blocked_clients"])
    waiter.start()
    try:
        wait_until(lambda: int(api.redis.info("clients")["blocked_clients"]) > blocked_before,
                   10, "receive to block")
        assert not received
        sent = api.channel.send("a", MessageType.task("wake up"))
    finally:
        waiter.join(30)
        receiver.redis.close()
    assert [m.id for m in received] == [sent.id]


def test_town_init_api(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    made = Town.init(tmp_path, name="api-town")
    assert made.name == "api-town" and (tmp_path / "tinytown.toml").exists()
    made.redis.close()
    again = Town.connect(tmp_path)
    assert again.name == "api-town" and again.redis.ping()
    again.redis.close()
    with pytest.raises(Exception, match="already exists"):
        Town.init(tmp_path)
    with pytest.raises(UsageError):
        Town.init(tmp_path / "x", name="no spaces")


def test_task_description_over_1_mib_refused(town: TownFixture) -> None:
    town.tt("spawn", "alice", "--no-start")
    with pytest.raises(MessageTooLarge):
        town.town.assign("alice", Task("y" * (1024 * 1024 + 1)))
    assert town.town.list_tasks() == []


def test_completing_a_task_whose_agent_record_is_damaged(town: TownFixture) -> None:
    town.tt("spawn", "alice", "--no-start")
    task_id = town.tt("assign", "alice", "finish me").out.strip()
    agent_id = town.town.resolve("alice").id
    town.town.redis.set(keys.agent(town.name, agent_id), "{not json")
    r = town.tt("task", "complete", task_id, "--result", "done anyway")
    assert r.code == 0, r.err
    assert "not counting the task" in r.err
    assert town.town.store.require_task(task_id).state == TaskState.COMPLETED


def test_task_show_lists_tags_plainly(town: TownFixture) -> None:
    town.tt("spawn", "alice", "--no-start")
    task_id = town.tt("assign", "alice", "tagged", "--tags", "api,urgent").out.strip()
    out = town.tt("task", "show", task_id).out
    assert re.search(r"^tags\s+api, urgent$", out, re.M), out


# --- readable views: inbox, task show, task list after prune, diff --------------------


def test_inbox_shows_readable_text_and_never_cuts_a_pipe(town: TownFixture) -> None:
    """CONTENT was cut at 80 characters even when piped, and task outcomes were raw JSON
    (a failed task's error cut off): the text, whole, with the task it is about."""
    _spawn(town, "alice")
    task_id = _assign(town, "alice", "Refactor the parser so that it reports line numbers")
    error = "API Error: 529 overloaded; " + "the provider said more " * 8 + "THE END"
    channel = town.town.channel
    channel.send("supervisor", MessageType.task_failed(task_id, error), sender="alice")
    channel.send("supervisor", MessageType.task_done(task_id, "all good"), sender="alice")
    channel.send("supervisor", MessageType.confirmation("rejected", "not mine"), sender="alice")
    out = town.tt("inbox").out
    rows = out.splitlines()[1:]
    assert len(rows) == 3, out  # a row a line
    assert rows[0].rstrip().endswith(f"task {task_id[:8]} failed: {error}"), rows[0]
    assert rows[1].rstrip().endswith(f"task {task_id[:8]} done: all good")
    assert rows[2].rstrip().endswith("rejected: not mine")
    assert "{" not in out  # no JSON
    assigned = town.tt("inbox", "alice").out.splitlines()[1]
    assert assigned.rstrip().endswith(
        f"task {task_id[:8]}: Refactor the parser so that it reports line numbers")


def test_task_show_labels_a_failed_tasks_error(town: TownFixture) -> None:
    _spawn(town, "alice")
    failed, done = _assign(town, "alice", "will fail"), _assign(town, "alice", "will do")
    assert town.tt("task", "fail", failed, "--error", "exit 1: no such file").code == 0
    assert town.tt("task", "complete", done, "--result", "it works").code == 0
    fields = dict(line.split(None, 1) for line in town.tt("task", "show", failed).out
                  .splitlines())
    assert fields["error"] == "exit 1: no such file" and "result" not in fields
    fields = dict(line.split(None, 1) for line in town.tt("task", "show", done).out
                  .splitlines())
    assert fields["result"] == "it works" and "error" not in fields
    assert json.loads(town.tt("task", "show", failed, "--json").out)["result"] == \
        "exit 1: no such file"  # the wire format keeps its field


def test_task_list_names_a_pruned_agent(town: TownFixture) -> None:
    """After `tt prune` the agent's record is gone: its tasks showed an id prefix."""
    gone = _spawn(town, "alice")
    task_id = _assign(town, "alice", "old work")
    assert town.tt("task", "cancel", task_id).code == 0
    town.town.store.update_agent(gone, lambda a: setattr(a, "state", AgentState.STOPPED))
    assert town.tt("prune", "--force").code == 0  # its task_assign is still queued
    assert town.town.store.get_agent(gone) is None
    row = next(line for line in town.tt("task", "list").out.splitlines()
               if line.startswith(f" {task_id[:8]}"))
    assert "alice (pruned)" in row and gone[:8] not in row
    # with its events gone too (the stream is capped), what is left is said plainly
    town.town.redis.delete(keys.events(town.name))
    row = next(line for line in town.tt("task", "list").out.splitlines()
               if line.startswith(f" {task_id[:8]}"))
    assert f"pruned agent {gone[:8]}" in row


def test_diff_with_no_changes_says_so(town_factory: Callable[..., TownFixture]) -> None:
    import subprocess

    town = town_factory()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=town.root, check=True, capture_output=True)
    git("init", "-q", "-b", "main")
    git("config", "user.name", "Test")
    git("config", "user.email", "test@example.invalid")
    (town.root / ".gitignore").write_text(".tt/\nrecords/\n")
    git("add", "-A")
    git("commit", "-q", "-m", "start")
    town.town.spawn_agent("ann", start=False)
    r = town.tt("diff", "ann")
    assert r.code == 0 and r.out == ""  # nothing for a script to apply
    assert r.err.startswith("no changes: tt/ann has no commits since") and \
        len(r.err.splitlines()) == 1
    worktree = Path(town.town.resolve("ann").workspace or "")
    (worktree / "draft.txt").write_text("not committed\n")
    assert "worktree has changes not committed" in town.tt("diff", "ann", "--stat").err
