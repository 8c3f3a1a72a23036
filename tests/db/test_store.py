"""Storage: the exact key layout, inbox order, atomic updates under concurrency, bad
values under town keys, the message size limit, and no KEYS command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
import redis

import tinytown
from tests.helpers import TownFixture, private_town, wait_until
from tinytown.core import keys
from tinytown.core.errors import MessageTooLarge
from tinytown.core.models import MAX_MESSAGE_BYTES, Agent, AgentState, Message, MessageType, Task
from tinytown.db.wakeup import queue_key

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def lone_town(tmp_path: Path) -> Iterator[tuple[TownFixture, redis.Redis]]:
    """A town alone on a redis-server of its own, to see every key and command it gets."""
    with private_town(tmp_path) as pair:
        yield pair


def _spawn(town: TownFixture, name: str) -> str:
    return town.town.spawn_agent(name, start=False).id


# --- key layout -----------------------------------------------------------------------


def test_exact_key_layout_after_spawn_send_assign(
    lone_town: tuple[TownFixture, redis.Redis]
) -> None:
    town, client = lone_town
    t = town.name
    assert town.tt("spawn", "alice", "--no-start").code == 0
    alice = town.town.resolve("alice").id
    assert town.town_keys() == {f"tt:{t}:agent:{alice}", f"tt:{t}:names", f"tt:{t}:events"}

    assert town.tt("send", "alice", "hello").code == 0
    task_id = town.tt("assign", "alice", "write docs").out.strip()
    assert re.fullmatch(UUID_RE, task_id)
    assert town.tt("send", "supervisor", "a note for the human", "--info").code == 0

    expected = {
        f"tt:{t}:agent:{alice}",
        f"tt:{t}:names",
        f"tt:{t}:events",
        f"tt:{t}:inbox:{alice}",
        f"tt:{t}:task:{task_id}",
        f"tt:{t}:inbox:{keys.SUPERVISOR_ID}",
        # the wake-up of alice's worker: one coalesced round job in its Celery queue
        f"tt:{t}:wake:{alice}",
        queue_key(t, keys.agent_queue(t, alice)),
    }
    assert town.town_keys() == expected
    # nothing outside the town's prefix, on a Redis that holds only this town
    assert set(client.scan_iter(count=1000)) == expected
    types = {k: client.type(k) for k in expected}
    assert types[f"tt:{t}:agent:{alice}"] == "string"
    assert types[f"tt:{t}:task:{task_id}"] == "string"
    assert types[f"tt:{t}:inbox:{alice}"] == "list"
    assert types[f"tt:{t}:names"] == "hash"
    assert types[f"tt:{t}:events"] == "stream"
    assert client.hgetall(f"tt:{t}:names") == {"alice": alice}
    assert json.loads(client.get(f"tt:{t}:agent:{alice}"))["id"] == alice
    assert json.loads(client.get(f"tt:{t}:task:{task_id}"))["assigned_to"] == alice
    inbox = [json.loads(m) for m in client.lrange(f"tt:{t}:inbox:{alice}", 0, -1)]
    assert [m["type"] for m in inbox] == ["task", "task_assign"]
    assert inbox[1]["task_id"] == task_id
    # sending twice more queues no second round job while one is pending
    assert town.tt("send", "alice", "again").code == 0
    assert client.llen(queue_key(t, keys.agent_queue(t, alice))) == 1


def test_two_towns_on_one_redis_do_not_see_each_other(
    town_factory: Callable[..., TownFixture],
) -> None:
    one, two = town_factory(), town_factory()
    _spawn(one, "alice")
    _spawn(two, "alice")  # the same name in another town is fine
    assert one.tt("send", "alice", "for one").code == 0
    assert [a.name for a in one.town.list_agents()] == ["alice"]
    assert [a.name for a in two.town.list_agents()] == ["alice"]
    assert one.town.resolve("alice").id != two.town.resolve("alice").id
    assert two.town.channel.inbox_len("alice") == 0
    assert all(k.startswith(f"tt:{one.name}:") for k in one.town_keys())


# --- inbox order ----------------------------------------------------------------------


def test_inbox_priority_placement(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    for text, prio in (("A", "normal"), ("B", "normal"), ("C", "urgent"), ("D", "high"),
                       ("E", "low")):
        r = town.tt("send", "alice", text, "--priority", prio)
        assert r.code == 0, r.err
    raw = town.town.redis.lrange(keys.inbox(town.name, alice), 0, -1)
    # urgent/high LPUSH to the head (newest first), normal/low RPUSH to the tail
    assert [json.loads(m)["description"] for m in raw] == ["D", "C", "A", "B", "E"]
    assert [json.loads(m)["priority"] for m in raw] == ["high", "urgent", "normal", "normal",
                                                        "low"]
    # readers take from the head
    taken = [town.town.channel.try_receive("alice") for _ in range(5)]
    assert [m.body.description for m in taken if m] == ["D", "C", "A", "B", "E"]  # type: ignore[union-attr]
    assert town.town.channel.try_receive("alice") is None


# --- concurrency ----------------------------------------------------------------------

_WRITER = """
import os, sys
from tinytown.core.models import AgentState
from tinytown.ops.facade import Town

root, agent_id, index, rounds = sys.argv[1:]
town = Town.connect(root)
town.redis.incr(os.environ["TT_READY"])
assert town.redis.blpop([os.environ["TT_GO"]], timeout=30), "no start signal"

def change(agent):
    agent.tasks_completed += 1
    agent.state = AgentState.IDLE if agent.state == AgentState.WORKING else AgentState.WORKING
    if int(index) % 2:
        agent.rounds_completed += 1

for _ in range(int(rounds)):
    town.store.update_agent(agent_id, change)
"""

_FINISHER = """
import os, sys
from tinytown.core.errors import InvalidTransition
from tinytown.ops.facade import Town

root, *task_ids = sys.argv[1:]
town = Town.connect(root)
town.redis.incr(os.environ["TT_READY"])
assert town.redis.blpop([os.environ["TT_GO"]], timeout=30), "no start signal"
won = 0
for task_id in task_ids:
    try:
        town.complete_task(task_id, "done")
        won += 1
    except InvalidTransition:
        pass
print(won)
"""


def _race(town: TownFixture, script: str, argvs: list[list[str]]) -> list[str]:
    """Start one process per argv, release them all at once, return their outputs."""
    go, ready = f"tt:{town.name}:test:go", f"tt:{town.name}:test:ready"
    env = {**os.environ, "TT_GO": go, "TT_READY": ready}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(town.root), *argv], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for argv in argvs
    ]
    try:
        wait_until(lambda: int(town.town.redis.get(ready) or 0) == len(procs), 30,
                   "every writer to be ready")
        town.town.redis.rpush(go, *["go"] * len(procs))
        outs = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            outs.append(out.strip())
        return outs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_concurrent_writers_lose_no_update(town: TownFixture) -> None:
    agent_id = _spawn(town, "busy")
    processes, rounds = 8, 50
    _race(town, _WRITER, [[agent_id, str(i), str(rounds)] for i in range(processes)])
    agent = town.town.store.require_agent(agent_id)
    assert agent.tasks_completed == processes * rounds
    assert agent.rounds_completed == (processes // 2) * rounds
    # the state flipped once per update, starting from `starting`: 400 flips end on idle
    assert agent.state == AgentState.IDLE
    assert agent.name == "busy" and agent.nickname == town.town.resolve("busy").nickname


def test_concurrent_completions_count_each_task_once(town: TownFixture) -> None:
    agent_id = _spawn(town, "worker")
    task_ids = [town.town.assign("worker", f"task {i}") for i in range(15)]
    outs = _race(town, _FINISHER, [task_ids for _ in range(6)])
    assert sum(int(o) for o in outs) == 15  # each task completed by exactly one process
    assert town.town.store.require_agent(agent_id).tasks_completed == 15
    assert {t.state.value for t in town.town.list_tasks()} == {"completed"}


# --- bad values under town keys -------------------------------------------------------


def _plant_bad_values(town: TownFixture) -> list[str]:
    """Corrupted and foreign values under agent and task keys; returns their keys."""
    path = town.town.redis.connection_pool.connection_kwargs["path"]
    values: list[tuple[str, bytes | str]] = [
        ("agent", "{not json"),
        ("agent", json.dumps([1, 2, 3])),
        ("agent", Task("a task, not an agent").to_json()),
        ("agent", json.dumps({"id": "x", "name": "bad id"})),
        ("agent", Agent(name="intruder").to_json()),  # a valid agent, but another key's
        ("agent", json.dumps({"name": "no id at all"})),
        ("agent", b"\xff\xfe\x00garbage"),
        ("task", ""),
        ("task", json.dumps({"name": "an agent, not a task"})),
        ("task", json.dumps({"description": "x", "state": "lost"})),
    ]
    planted = [f"tt:{town.name}:{kind}:{uuid.uuid4()}" for kind, _ in values]
    hash_key = f"tt:{town.name}:agent:{uuid.uuid4()}"
    list_key = f"tt:{town.name}:task:{uuid.uuid4()}"
    with redis.Redis(unix_socket_path=path) as raw:  # bytes as they are, no decoding
        for key, (_, value) in zip(planted, values, strict=True):
            raw.set(key, value)
        raw.hset(hash_key, mapping={"name": "a hash"})
        raw.rpush(list_key, "a", "list")
    return [*planted, hash_key, list_key]


def _check_warnings(err: str, bad_keys: list[str]) -> None:
    assert "Traceback" not in err
    lines = err.splitlines()
    for key in bad_keys:
        naming = [line for line in lines if key in line]
        assert len(naming) == 1, (key, err)
        assert naming[0].startswith("tt: warning: skipping "), naming[0]


def test_listings_skip_corrupted_and_foreign_records(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    _spawn(town, "bob")
    task_id = town.town.assign("alice", "the good task")
    bad = _plant_bad_values(town)
    bad_agents = [k for k in bad if ":agent:" in k]
    bad_tasks = [k for k in bad if ":task:" in k]

    r = town.tt("list")
    assert r.code == 0
    assert "alice" in r.out and "bob" in r.out and "intruder" not in r.out
    _check_warnings(r.err, bad_agents)
    assert len(r.err.splitlines()) == len(bad_agents)

    r = town.tt("list", "--json")
    assert r.code == 0
    assert [a["name"] for a in json.loads(r.out)] == ["alice", "bob"]
    _check_warnings(r.err, bad_agents)

    r = town.tt("task", "list", "--json")
    assert r.code == 0, r.err
    assert [t["id"] for t in json.loads(r.out)] == [task_id]
    _check_warnings(r.err, bad_tasks)

    r = town.tt("task", "list")
    assert r.code == 0 and task_id[:8] in r.out
    _check_warnings(r.err, bad_tasks)

    for command in (["status"], ["inbox", "--all"]):
        r = town.tt(*command)
        assert r.code == 0, (command, r.err)
        _check_warnings(r.err, bad_agents)
    r = town.tt("send", "alice", "still works")  # by name: one lookup, no listing
    assert r.code == 0 and r.err == ""
    assert town.town.store.inbox_len(alice) == 2


def test_lookups_of_a_bad_record_say_not_found(town: TownFixture) -> None:
    bad = _plant_bad_values(town)
    for key in bad:
        kind, ident = key.split(":")[2:]
        command = ["task", "show", ident] if kind == "task" else ["send", ident, "hi"]
        r = town.tt(*command)
        assert r.code == 1, (key, r)
        assert "Traceback" not in r.err
        assert r.err.splitlines()[-1].startswith("tt: no "), r.err


def test_a_corrupted_inbox_element_is_skipped(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    assert town.tt("send", "alice", "good one").code == 0
    town.town.redis.rpush(keys.inbox(town.name, alice), "{broken")
    r = town.tt("inbox", "alice", "--json")
    assert r.code == 0
    assert [m["description"] for m in json.loads(r.out)] == ["good one"]
    assert "tt: warning: skipping element 1 of " + keys.inbox(town.name, alice) in r.err


# --- message size ---------------------------------------------------------------------


def _message_of_size(to: str, size: int) -> Message:
    empty = Message(sender=keys.SUPERVISOR_ID, to=to, body=MessageType.task("x"))
    pad = size - len(empty.to_json().encode()) + 1
    message = msgspec.structs.replace(empty, body=MessageType.task("x" * pad))
    assert len(message.to_json().encode()) == size
    return message


def test_message_size_limit_in_the_store(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    store = town.town.store
    store.push_message(_message_of_size(alice, MAX_MESSAGE_BYTES))  # exactly 1 MiB: fine
    assert store.inbox_len(alice) == 1
    with pytest.raises(MessageTooLarge, match="1 MiB"):
        store.push_message(_message_of_size(alice, MAX_MESSAGE_BYTES + 1))
    assert store.inbox_len(alice) == 1


def test_message_over_1_mib_is_refused_and_nothing_written(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    before = town.town_keys()
    with pytest.raises(MessageTooLarge):
        town.town.channel.send("alice", MessageType.task("y" * (MAX_MESSAGE_BYTES + 10)))
    with pytest.raises(tinytown.MessageTooLarge):
        town.town.agent("alice").send(MessageType.custom("blob", "z" * MAX_MESSAGE_BYTES))
    # a multi-byte text counts in bytes: 300k characters of 4 bytes each
    with pytest.raises(MessageTooLarge):
        town.town.channel.send("alice", MessageType.informational("\U0001f600" * 300_000))
    r = town.tt("send", "alice", "-", input="w" * (MAX_MESSAGE_BYTES + 1))
    assert r.code != 0
    assert len(r.err.strip().splitlines()) == 1 and "1 MiB" in r.err
    assert town.town_keys() == before  # no inbox, no wake flag, no round job
    assert town.town.store.inbox_len(alice) == 0
    # just under the limit through the CLI is delivered
    r = town.tt("send", "alice", "-", input="w" * (MAX_MESSAGE_BYTES - 1000))
    assert r.code == 0, r.err
    assert town.town.store.inbox_len(alice) == 1


# --- no KEYS --------------------------------------------------------------------------


def test_no_keys_command_in_the_source() -> None:
    package = Path(tinytown.__file__).parent
    # r.keys("tt:*"), r.keys(pattern), redis.call('KEYS', ...), execute_command("keys", ...)
    calls = re.compile(r"""\.keys\(\s*(?:["'f]|pattern|match)|(?i:["']keys["'])""")
    offenders = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if calls.search(line)
    ]
    assert offenders == []
    # the pattern does catch the spellings it is meant to catch
    for line in ('r.keys("tt:*")', "client.keys(f'tt:{town}:*')", "redis.call('KEYS', p)",
                 'execute_command("KEYS", "*")', "r.keys(pattern)"):
        assert calls.search(line), line


def test_no_keys_command_reaches_redis(lone_town: tuple[TownFixture, redis.Redis]) -> None:
    town, client = lone_town
    _spawn(town, "alice")
    town.town.redis.set(f"tt:agent:{uuid.uuid4()}", "legacy junk")
    for command in (["list"], ["status"], ["task", "list"], ["inbox", "--all"],
                    ["send", "alice", "hi"], ["assign", "alice", "x"], ["migrate", "--dry-run"],
                    ["reset"], ["task", "show", "abcd"]):
        town.tt(*command)
    stats = client.info("commandstats")
    assert "cmdstat_scan" in stats  # the listings did run
    assert "cmdstat_keys" not in stats
