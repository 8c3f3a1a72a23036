"""Agents: `tt spawn --no-start` records, names, roles, references, `tt list`, `tt status`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from tests.helpers import TT, Result, TownFixture, in_terminal, key_snapshot, one_line_error
from tinytown.core import keys
from tinytown.core.models import Agent
from tinytown.core.nicknames import default_nickname
from tinytown.core.settings import BUILTIN_ROLES

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _spawn(town: TownFixture, name: str, *args: str) -> dict:
    r = town.tt("spawn", name, "--no-start", "--json", *args)
    assert r.code == 0, r.err
    doc: dict = json.loads(r.out)
    return doc






# --- spawn ----------------------------------------------------------------------------


def test_spawn_records_an_agent(town: TownFixture) -> None:
    r = town.tt("spawn", "alice", "--no-start")
    assert r.code == 0, r.err
    agent = town.town.resolve("alice")
    assert r.out.strip() == f"spawned alice ({agent.nickname}) {agent.id}"
    assert re.fullmatch(UUID_RE, agent.id)
    assert agent.state.value == "starting"
    assert agent.nickname == default_nickname(agent.id)
    assert agent.role_id is None and agent.parent_agent_id is None
    assert agent.agent_type.value == "worker" and agent.spawn_mode.value == "fresh"
    assert agent.cli == town.town.settings.agent.default_cli
    assert agent.tasks_completed == 0 and agent.current_task is None
    assert town.town.redis.hget(keys.names(town.name), "alice") == agent.id
    # --no-start started nothing
    assert not town.town.redis.exists(keys.runtime(town.name, agent.id))


def test_spawn_json_is_the_wire_document(town: TownFixture) -> None:
    doc = _spawn(town, "backend", "--role", "worker", "--cli", "claude")
    stored = town.town.redis.get(keys.agent(town.name, doc["id"]))
    assert doc == json.loads(stored)
    assert set(doc) == {
        "id", "name", "nickname", "role_id", "parent_agent_id", "spawn_mode", "agent_type",
        "state", "cli", "current_task", "created_at", "last_heartbeat", "tasks_completed",
        "rounds_completed", "last_active_at", "current_scope"}
    assert (doc["name"], doc["role_id"], doc["cli"], doc["state"]) == (
        "backend", "worker", "claude", "starting")


def test_spawn_with_role_nickname_parent_scope(town: TownFixture) -> None:
    parent = _spawn(town, "backend", "--role", "worker")
    qa = _spawn(town, "qa", "--role", "reviewer", "--nickname", "Quality Gate", "--cli", "auggie")
    assert (qa["role_id"], qa["nickname"], qa["cli"]) == ("reviewer", "Quality Gate", "auggie")
    alice = _spawn(town, "alice", "--role", "researcher", "--parent", "backend",
                   "--scope", "the search API")
    assert alice["parent_agent_id"] == parent["id"]
    assert alice["current_scope"] == "the search API"
    # the parent by nickname and by id prefix, too
    assert _spawn(town, "sub1", "--parent", "Quality Gate")["parent_agent_id"] == qa["id"]
    assert _spawn(town, "sub2", "--parent", qa["id"][:6])["parent_agent_id"] == qa["id"]


@pytest.mark.parametrize("role", sorted(BUILTIN_ROLES))
def test_builtin_roles(town: TownFixture, role: str) -> None:
    assert _spawn(town, f"a-{role}", "--role", role)["role_id"] == role


def test_unknown_role_lists_the_known_ones(town: TownFixture) -> None:
    before = key_snapshot(town)
    line = one_line_error(town.tt("spawn", "x", "--no-start", "--role", "wizard"))
    assert "wizard" in line
    for role in ("worker", "reviewer", "researcher", "architect", "tester", "devops"):
        assert role in line
    assert key_snapshot(town) == before


def test_roles_from_the_config(town: TownFixture) -> None:
    config = town.root / "tinytown.toml"
    config.write_text(config.read_text() + '\n[roles.docs]\ndescription = "Writes docs"\n'
                      'cli = "claude"\n\n[roles.triage]\ndescription = "Sorts issues"\n')
    docs = _spawn(town, "writer", "--role", "docs")
    assert (docs["role_id"], docs["cli"]) == ("docs", "claude")  # the role's default CLI
    assert _spawn(town, "w2", "--role", "docs", "--cli", "codex")["cli"] == "codex"
    triage = _spawn(town, "sorter", "--role", "triage")
    assert triage["cli"] == town.town.settings.agent.default_cli
    line = one_line_error(town.tt("spawn", "x", "--no-start", "--role", "wizard"))
    assert "docs" in line and "triage" in line and "worker" in line


@pytest.mark.parametrize("args, exit_code, says", [
    (["a b"], 2, "invalid agent name"),
    (["a/b"], 2, "invalid agent name"),
    (["a:b"], 2, "invalid agent name"),
    (["zoë"], 2, "invalid agent name"),
    (["--", "-bad"], 2, "invalid agent name"),
    (["-bad"], 2, "No such option"),  # click reads it as an option: still one line
    (["x" * 65], 2, "invalid agent name"),
    ([""], 2, "invalid agent name"),
    (["supervisor"], 2, "reserved"),
    (["conductor"], 2, "reserved"),
    (["Supervisor"], 2, "reserved"),
    (["alice"], 1, "already exists"),
    (["bob", "--nickname", " "], 2, "nickname"),
    (["bob", "--parent", "ghost"], 1, "no agent 'ghost'"),
])
def test_spawn_refusals_write_nothing(
    town: TownFixture, args: list[str], exit_code: int, says: str
) -> None:
    _spawn(town, "alice")
    before = key_snapshot(town)
    options = ["--no-start"] if args[0] == "--" else []
    r = town.tt("spawn", *options, *args, *([] if options else ["--no-start"]))
    assert r.code == exit_code, r
    assert says in one_line_error(r)
    assert key_snapshot(town) == before


def test_name_length_limit_and_allowed_characters(town: TownFixture) -> None:
    for name in ("x" * 64, "a.b_c-D9", "9lives", "_private", "Alice"):
        assert _spawn(town, name)["name"] == name
    # names are case-sensitive, unique as written
    assert _spawn(town, "alice")["name"] == "alice"


# --- references -----------------------------------------------------------------------


def _send_to(town: TownFixture, ref: str) -> Result:
    return town.tt("send", ref, "hello", "--json")


def test_references_by_name_nickname_uuid_and_prefix(town: TownFixture) -> None:
    alice = _spawn(town, "alice", "--nickname", "The Builder")
    _spawn(town, "bob")
    for ref in ("alice", "The Builder", "the builder", alice["id"], alice["id"].upper(),
                alice["id"][:4], alice["id"][:13]):
        r = _send_to(town, ref)
        assert r.code == 0, (ref, r.err)
        assert json.loads(r.out)["to"] == alice["id"], ref
    assert town.town.store.inbox_len(alice["id"]) == 7
    assert town.town.agent(alice["id"][:4]).id == alice["id"]


def test_default_nickname_is_a_reference(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    r = _send_to(town, alice["nickname"])
    assert r.code == 0 and json.loads(r.out)["to"] == alice["id"]


def test_a_name_wins_over_a_nickname(town: TownFixture) -> None:
    alice = _spawn(town, "alice")
    _spawn(town, "bob", "--nickname", "alice")
    assert json.loads(_send_to(town, "alice").out)["to"] == alice["id"]


def test_ambiguous_nickname_lists_the_candidates(town: TownFixture) -> None:
    one = _spawn(town, "one", "--nickname", "Twin")
    two = _spawn(town, "two", "--nickname", "Twin")
    before = key_snapshot(town)
    line = one_line_error(_send_to(town, "Twin"))
    assert "several agents" in line
    assert "one" in line and "two" in line
    assert one["id"][:8] in line and two["id"][:8] in line
    assert key_snapshot(town) == before


def test_ambiguous_and_short_uuid_prefixes(town: TownFixture) -> None:
    for name, ident in (("p1", "abcd1111-0000-4000-8000-000000000001"),
                        ("p2", "abcd2222-0000-4000-8000-000000000002")):
        town.town.store.create_agent(Agent(name=name, id=ident))
    line = one_line_error(_send_to(town, "abcd"))
    assert "p1" in line and "p2" in line
    assert json.loads(_send_to(town, "abcd2").out)["to"].startswith("abcd2222")
    assert "no agent 'abc'" in one_line_error(_send_to(town, "abc"))  # under 4 characters
    assert "no agent" in one_line_error(_send_to(town, "abcd3"))


def test_unknown_agent(town: TownFixture) -> None:
    _spawn(town, "alice")
    before = key_snapshot(town)
    for command in (["send", "ghost", "hi"], ["assign", "ghost", "work"], ["inbox", "ghost"],
                    ["task", "list", "--agent", "ghost"], ["task", "current", "ghost"],
                    ["send", "00000000-0000-4000-8000-00000000beef", "hi"]):
        line = one_line_error(town.tt(*command))
        assert "no agent" in line and town.name in line, line
    assert key_snapshot(town) == before


# --- tt list, tt status ---------------------------------------------------------------


def test_list_on_an_empty_town(town: TownFixture) -> None:
    r = town.tt("list")
    assert r.code == 0 and "no agents" in r.out
    r = town.tt("list", "--json")
    assert r.code == 0 and json.loads(r.out) == []


def test_list_table_and_json(town: TownFixture) -> None:
    alice = _spawn(town, "alice", "--role", "reviewer", "--cli", "claude")
    bob = _spawn(town, "bob", "--nickname", "Bobby", "--cli", "codex")
    for _ in range(3):
        assert town.tt("send", "alice", "x").code == 0
    town.town.store.update_agent(bob["id"], lambda a: setattr(a, "tasks_completed", 5))

    r = town.tt("list")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["NAME", "NICKNAME", "ROLE", "STATE", "CLI", "TASK", "INBOX",
                                "DONE", "COST", "HEARTBEAT"]
    row_a = next(line.split() for line in lines if line.split()[:1] == ["alice"])
    row_b = next(line.split() for line in lines if line.split()[:1] == ["bob"])
    assert row_a[:8] == ["alice", alice["nickname"], "reviewer", "starting", "claude", "-",
                         "3", "0"]
    assert row_b[:8] == ["bob", "Bobby", "-", "starting", "codex", "-", "0", "5"]
    assert row_a[8] == "-"  # no round has run: no cost yet
    assert re.fullmatch(r"\d+[smhd]", row_a[9])

    r = town.tt("list", "--json")
    docs = json.loads(r.out)
    assert [d["name"] for d in docs] == ["alice", "bob"]  # oldest first
    for doc in docs:
        assert doc == json.loads(town.town.redis.get(keys.agent(town.name, doc["id"])))


def test_status(town: TownFixture) -> None:
    alice = _spawn(town, "alice", "--cli", "claude")
    assert town.tt("send", "alice", "x").code == 0
    r = town.tt("status")
    assert r.code == 0, r.err
    first = r.out.splitlines()[0]
    assert first.startswith(f"town {town.name}") and "redis unix://" in first
    assert "supervisor not running" in first
    assert any(line.split()[:1] == ["alice"] for line in r.out.splitlines())

    r = town.tt("status", "--json")
    report = json.loads(r.out)
    assert report["town"] == town.name
    assert report["root"] == str(town.root.resolve())
    assert report["redis"].startswith("unix://")
    [agent] = report["agents"]
    assert agent["inbox_len"] == 1
    assert {k: v for k, v in agent.items() if k != "inbox_len"} == json.loads(
        town.town.redis.get(keys.agent(town.name, alice["id"])))


def test_status_on_an_empty_town(town_factory: Callable[..., TownFixture]) -> None:
    town = town_factory()
    r = town.tt("status", "--json")
    assert r.code == 0 and json.loads(r.out)["agents"] == []


def test_reserved_nickname_refused(town: TownFixture) -> None:
    r = town.tt("spawn", "alice", "--no-start", "--nickname", "Conductor")
    assert r.code == 2 and "reserved for the supervisor mailbox" in r.err
    assert town.town.list_agents() == []


def _in_terminal(town: TownFixture, *args: str, columns: int = 100) -> str:
    """`tt ARGS` with a terminal of `columns` as its stdout (rich draws the table)."""
    out = in_terminal([TT, *args], town.root, 30, columns)
    return re.sub(r"\x1b\[[0-9;]*m", "", out).replace("\r\n", "\n")


def test_a_paused_agent_keeps_its_row_on_one_line(town: TownFixture) -> None:
    """STATE is one word: the hold's reason goes to `tt show`, `tt status --deep` and
    --json, not into the table, where it wrapped a row over many lines."""
    from tinytown.core.models import AgentState

    reason = ("budget: spent $0.0020 of $0.001 (raise it with `tt budget set backend USD`,"
              " then `tt resume backend`)")
    held = _spawn(town, "backend", "--cli", "claude")
    _spawn(town, "frontend", "--cli", "codex")
    _spawn(town, "scripted", "--cli", "python3 /opt/tools/a-rather-long-path/to/its/own/"
           "agent_cli.py --model some-model --verbose")  # a long cell is cut, not wrapped

    def pause(a: Agent) -> None:
        a.state, a.hold = AgentState.PAUSED, reason
    town.town.store.update_agent(held["id"], pause)
    for command in ("list", "status"):
        piped = town.tt(command)
        assert piped.code == 0, piped.err
        drawn = _in_terminal(town, command)
        for out in (piped.out, drawn):
            lines = out.splitlines()
            table = lines[1:] if command == "status" else lines
            table = table[:table.index("")] if "" in table else table
            assert len(table) == 4, out  # the header and one line per agent
            assert table[0].split()[:4] == ["NAME", "NICKNAME", "ROLE", "STATE"], out
            assert "HEARTBEAT" in table[0]
            row = next(line.split() for line in table if line.split()[0] == "backend")
            assert row[3] == "paused" and "budget" not in " ".join(row)
            if out is drawn:  # a pipe gets whole cells; the terminal, its width
                assert all(len(line) <= 100 for line in table), out
                assert "python3 /opt/tools/" in table[3] and "…" in table[3], out
            else:
                assert "agent_cli.py --model some-model --verbose" in table[3]
    assert f"backend paused: {reason}" in town.tt("status").out  # under the table
    shown = town.tt("show", "backend")
    assert shown.code == 0 and reason in shown.out and "paused" in shown.out
    assert reason in town.tt("status", "--deep").out
    assert json.loads(town.tt("list", "--json").out)[0]["hold"] == reason
