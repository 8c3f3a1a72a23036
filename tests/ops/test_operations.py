"""Operating a town: role queues, the backlog, plain Celery clients, recovery,
reclaim, snapshots, events and history, logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable

from tests.helpers import TownFixture, pid_gone, wait_until
from tinytown.core import keys
from tinytown.core.models import Task, TaskState

TownFactory = Callable[..., TownFixture]


def test_role_queue_goes_to_whichever_member_is_free(town: TownFixture) -> None:
    for name in ("rev-a", "rev-b"):
        assert town.tt("spawn", name, "--role", "reviewer").code == 0
    assert town.tt("spawn", "builder", "--role", "worker").code == 0
    for name in ("rev-a", "rev-b", "builder"):
        town.wait_state(name, "idle")
    slow = town.tt("assign", "--role", "reviewer", "review slowly @sleep 3", "--json")
    assert slow.code == 0, slow.err
    slow_task = json.loads(slow.out)
    busy = wait_until(lambda: town.town.store.require_task(slow_task["id"]).assigned_to, 10,
                      "a reviewer to take it")
    quick = json.loads(town.tt("assign", "--role", "reviewer", "quick look", "--json").out)
    town.wait_task(quick["id"], TaskState.COMPLETED)
    quick_owner = town.town.store.require_task(quick["id"]).assigned_to
    assert quick_owner != busy  # the free reviewer took it
    reviewers = {town.town.resolve(n).id for n in ("rev-a", "rev-b")}
    assert {busy, quick_owner} == reviewers
    town.wait_task(slow_task["id"], TaskState.COMPLETED)
    assert town.town.store.require_task(slow_task["id"]).role == "reviewer"


def test_role_without_live_agent_waits_and_is_reported(town: TownFixture) -> None:
    r = town.tt("assign", "--role", "tester", "write tests")
    assert r.code == 0, r.err
    assert "no live agent has role 'tester'" in r.err
    task_id = r.out.strip()
    assert town.task_state(task_id) == TaskState.PENDING
    assert town.tt("spawn", "qa", "--role", "tester").code == 0
    town.wait_task(task_id, TaskState.COMPLETED)
    assert town.town.store.require_task(task_id).assigned_to == town.town.resolve("qa").id


def test_name_matching_when_no_role_is_set(town: TownFixture) -> None:
    assert town.tt("spawn", "reviewer-1").code == 0  # no --role: its name says reviewer
    task_id = town.tt("assign", "--role", "reviewer", "check it").out.strip()
    town.wait_task(task_id, TaskState.COMPLETED)


def test_plain_celery_client_enqueues_for_an_agent_and_a_role(town: TownFixture) -> None:
    town.tt("spawn", "alice", "--role", "researcher")
    town.wait_state("alice", "idle")
    agent_id = town.town.resolve("alice").id
    script = f"""
from celery import Celery
app = Celery(broker={town.town.settings.redis_url.replace('unix://', 'redis+socket://')!r})
app.conf.broker_transport_options = {{"global_keyprefix": "tt:{town.name}:celery:"}}
app.send_task("tinytown.task", kwargs={{"description": "from plain celery"}},
              queue="tt.{town.name}.agent.{agent_id}", ignore_result=True)
app.send_task("tinytown.task", kwargs={{"description": "for any researcher", "tags": ["x"]}},
              queue="tt.{town.name}.role.researcher", ignore_result=True)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    wait_until(lambda: len([t for t in town.town.list_tasks(state="completed")]) == 2, 20,
               "both tasks")
    descriptions = {t.description for t in town.town.list_tasks()}
    assert descriptions == {"from plain celery", "for any researcher"}


def test_backlog_add_list_claim_assign_all_remove(town_factory: TownFactory) -> None:
    town = town_factory()
    town.tt("spawn", "alice", "--role", "worker", "--no-start")
    ids = [town.tt("backlog", "add", f"item {i}", "--tags", "b").out.strip() for i in range(3)]
    review = town.tt("backlog", "add", "needs review", "--role", "reviewer").out.strip()
    listed = json.loads(town.tt("backlog", "list", "--json").out)
    assert [t["id"] for t in listed] == [*ids, review]
    # a bad agent name strands nothing
    r = town.tt("backlog", "claim", ids[0], "nobody")
    assert r.code != 0 and len(json.loads(town.tt("backlog", "list", "--json").out)) == 4
    assert town.tt("backlog", "claim", ids[0][:8], "alice").code == 0
    assert town.task_state(ids[0]) == TaskState.ASSIGNED
    r = town.tt("backlog", "assign-all", "alice", "--json")
    assert {t["id"] for t in json.loads(r.out)} == set(ids[1:])  # not the reviewer's one
    assert town.tt("backlog", "remove", review).code == 0
    assert town.task_state(review) == TaskState.CANCELLED
    assert json.loads(town.tt("backlog", "list", "--json").out) == []
    assert town.town.channel.inbox_len("alice") == 3


def test_recover_marks_dead_workers_and_returns_work(town: TownFixture) -> None:
    town.tt("spawn", "alice")
    task_id = town.town.assign("alice", Task("@sleep 30"))
    sleeping = town.records / "alice-1.sleeping"
    wait_until(sleeping.exists, 20, "the round to start")
    pid = int(town.town.redis.hget(keys.runtime(town.name, town.town.resolve("alice").id), "pid"))
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: pid_gone(pid), 10, "the worker to die")
    r = town.tt("recover", "--json")
    assert r.code == 0, r.err
    assert [a["name"] for a in json.loads(r.out)] == ["alice"]
    assert town.agent_state("alice") == "error"
    assert town.task_state(task_id) == TaskState.ASSIGNED
    assert town.town.channel.inbox_len("alice") == 1


def test_reclaim_lists_then_moves(town: TownFixture) -> None:
    town.tt("spawn", "old", "--no-start")
    town.tt("spawn", "new", "--no-start")
    task_id = town.tt("assign", "old", "unfinished").out.strip()
    town.tt("send", "old", "a note", "--info")
    assert town.tt("kill", "old").code == 0
    r = town.tt("reclaim", "--json")
    assert json.loads(r.out) == [{"agent": "old", "messages": 2, "tasks": [task_id],
                                  "action": "listed"}]
    assert town.town.channel.inbox_len("old") == 2  # listing moved nothing
    r = town.tt("reclaim", "--to", "new", "--from", "old")
    assert r.code == 0, r.err
    assert town.town.channel.inbox_len("old") == 0
    moved = town.town.store.peek_inbox(town.town.resolve("new").id)
    assert sorted(m.type for m in moved) == ["informational", "task_assign"]
    assert town.town.store.require_task(task_id).assigned_to == town.town.resolve("new").id


def test_reclaim_to_backlog_keeps_other_messages(town: TownFixture) -> None:
    town.tt("spawn", "old", "--no-start")
    task_id = town.tt("assign", "old", "unfinished").out.strip()
    town.tt("send", "old", "a question?", "--query")
    town.tt("kill", "old")
    r = town.tt("reclaim", "--to-backlog")
    assert r.code == 0 and "1 other message(s) stay in the inbox" in r.out
    assert [m.type for m in town.town.store.peek_inbox(town.town.resolve("old").id)] == ["query"]
    assert town.task_state(task_id) == TaskState.PENDING
    assert town.town.redis.lrange(keys.backlog(town.name), 0, -1) == [task_id]


def test_orphan_tasks(town: TownFixture) -> None:
    town.tt("spawn", "gone", "--no-start")
    task_id = town.tt("assign", "gone", "left behind").out.strip()
    town.tt("kill", "gone")
    assert town.tt("prune", "--force").code == 0
    r = town.tt("reclaim", "--orphan-tasks", "--json")
    assert [t["id"] for t in json.loads(r.out)] == [task_id]
    assert town.task_state(task_id) == TaskState.ASSIGNED
    assert town.tt("reclaim", "--orphan-tasks", "--to-backlog").code == 0
    assert town.task_state(task_id) == TaskState.PENDING


def test_save_and_restore_move_a_town(town_factory: TownFactory) -> None:
    src, dst = town_factory(), town_factory()
    src.tt("spawn", "alice", "--no-start", "--role", "worker")
    task_id = src.tt("assign", "alice", "keep me").out.strip()
    alice = src.town.resolve("alice").id
    src.town.redis.set(keys.epoch(src.name, alice), "7")  # a worker's fencing token
    src.tt("budget", "set", "town", "12.5")
    snapshot = src.root / "snap.jsonl"
    r = src.tt("save", str(snapshot))
    assert r.code == 0, r.err
    saved = [json.loads(line).get("key") for line in snapshot.read_text().splitlines()]
    assert "budget" in saved and f"epoch:{alice}" not in saved
    r = dst.tt("restore", str(snapshot))
    assert r.code == 0, r.err
    assert dst.town.resolve("alice").role_id == "worker"
    assert dst.town.task(task_id).description == "keep me"
    assert dst.town.channel.inbox_len("alice") == 1
    assert json.loads(dst.tt("budget", "show", "--json").out)["town"]["budget_usd"] == 12.5
    r = dst.tt("restore", str(snapshot))
    assert r.code != 0 and "--force" in r.err
    assert dst.tt("restore", str(snapshot), "--force").code == 0
    r = dst.tt("restore", str(src.root / "tinytown.toml"))
    assert r.code == 2 and "not a Tinytown snapshot" in r.err


def test_restored_agents_come_back_stopped_or_started(town_factory: TownFactory) -> None:
    """A snapshot taken mid-round, restored into new towns: the agent has no worker
    there, so it is `stopped` with its work handed back (assign warns; `tt up` starts
    it), or started at once with `tt restore --start`; the task completes."""
    src = town_factory(restart="never")
    assert src.tt("spawn", "alice").code == 0
    task_id = src.tt("assign", "alice", "the job @sleep 60").out.strip()
    src.wait_task(task_id, TaskState.RUNNING, timeout=30)
    snapshot = src.root / "snap.jsonl"
    assert src.tt("save", str(snapshot)).code == 0
    src.tt("down")
    # the restored towns run the job short (the snapshot keeps the record as it was)
    snapshot.write_text(snapshot.read_text().replace(" @sleep 60", ""))

    dst = town_factory()
    r = dst.tt("restore", str(snapshot))
    assert r.code == 0, r.err
    assert "stopped here" in r.out and "alice" in r.out
    assert dst.agent_state("alice") == "stopped"
    assert dst.task_state(task_id) == TaskState.ASSIGNED  # handed back, nothing lost
    assert [m.type for m in dst.town.channel.peek("alice")] == ["task_assign"]
    assigned = dst.tt("assign", "alice", "more")
    assert assigned.code == 0 and "alice is stopped" in assigned.err
    up = dst.tt("up")
    assert up.code == 0 and "started 1 agent(s): alice" in up.out, up
    dst.wait_task(task_id, TaskState.COMPLETED, timeout=30)

    again = town_factory()
    r = again.tt("restore", str(snapshot), "--start")
    assert r.code == 0 and "started 1 agent(s): alice" in r.out, r
    again.wait_task(task_id, TaskState.COMPLETED, timeout=30)
    again.wait_state("alice", "idle")


def test_events_history_and_logs(town: TownFixture) -> None:
    town.tt("spawn", "alice")
    task_id = town.tt("assign", "alice", "log me").out.strip()
    town.wait_task(task_id, TaskState.COMPLETED)
    town.wait_state("alice", "idle")
    events = json.loads(town.tt("events", "--agent", "alice", "--json").out)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "spawned" and "assigned" in kinds and "task_completed" in kinds
    changes = [(e["old"], e["new"]) for e in events if e["kind"] == "state"]
    assert ("starting", "idle") in changes and ("idle", "working") in changes
    history = json.loads(town.tt("history", "--json").out)
    assert any(h["kind"] == "task_completed" and h["task"] == task_id for h in history)
    r = town.tt("logs", "alice")
    assert r.code == 0 and "fake agent alice round 1" in r.out
    r = town.tt("logs", "alice", "--round", "7")
    assert r.code != 0 and "round 7" in r.err
    follow = subprocess.Popen([sys.executable, "-m", "tinytown.cli", "events", "--follow"],
                              cwd=town.root, stdout=subprocess.PIPE, text=True)
    try:
        town.tt("send", "alice", "ping please", "--info")
        town.tt("interrupt", "alice")
        line = ""
        while "paused" not in line:
            line = follow.stdout.readline()  # type: ignore[union-attr]
            assert line, "events --follow ended"
    finally:
        follow.terminate()
        follow.wait()
        follow.stdout.close()  # type: ignore[union-attr]
