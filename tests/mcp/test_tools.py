"""The town's MCP tools through the official `mcp` client SDK: `tt mcp` over stdio (the
way an agent's CLI launches it) and `/mcp` under a real `tt serve` (with keys).

Each test works against a real town: `alice` has a real worker running the fake agent
CLI; `bob` is recorded with no worker (`--no-start`), so what reaches his inbox stays
there to be looked at. Over stdio the server speaks for the agent its environment
names (TINYTOWN_AGENT_ID, as a worker sets it for a round); over HTTP for the agent the
`X-Tinytown-Agent` header names, with the rights of the bearer key.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.helpers import TT, TownFixture, one_line_error, wait_until
from tests.http.test_api import Server, add_key, start_server
from tinytown.core import keys
from tinytown.core.models import TaskState

T = TypeVar("T")
TOOLS = {"whoami", "list_agents", "send_message", "read_inbox", "ack_inbox", "assign_task",
         "complete_task", "fail_task", "ask_human", "review_verdict", "retry_task",
         "unblock_task", "list_backlog", "claim_backlog", "spawn_helper", "start_mission",
         "mission_status", "add_mission_task", "add_mission_dependency", "finish_mission"}
READ_TOOLS = {"whoami", "list_agents", "read_inbox", "list_backlog", "mission_status"}


def run(session_of: Callable[[], Any], body: Callable[[ClientSession], Awaitable[T]]) -> T:
    """Open a client session (`session_of()`: an async context manager) and run `body`
    with it, in an event loop of its own."""

    async def main() -> T:
        async with session_of() as session:
            return await body(session)

    try:
        return anyio.run(main)
    except BaseExceptionGroup as group:  # the task groups' wrapping: the failure itself
        failure: BaseException = group
        while isinstance(failure, BaseExceptionGroup) and len(failure.exceptions) == 1:
            failure = failure.exceptions[0]
        raise failure from None


async def call(session: ClientSession, tool: str, **args: Any) -> Any:
    """The tool's answer (its JSON text, parsed); the call must succeed."""
    result = await session.call_tool(tool, args)
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, text
    answer = json.loads(text)
    assert result.structured_content == (answer if isinstance(answer, dict)
                                         else {"result": answer})
    return answer


async def refused(session: ClientSession, tool: str, **args: Any) -> str:
    """The one line a refused tool call answers."""
    result = await session.call_tool(tool, args)
    assert result.is_error, result
    [block] = result.content
    text = block.text  # type: ignore[union-attr]
    assert "\n" not in text and "Traceback" not in text and text.strip() == text
    return str(text)


# --- over stdio ----------------------------------------------------------------------------


@pytest.fixture
def agents(town: TownFixture) -> TownFixture:
    assert town.tt("spawn", "alice").code == 0
    assert town.tt("spawn", "bob", "--no-start").code == 0
    town.wait_state("alice", "idle")
    return town


def stdio(town: TownFixture, *args: str, **env: str) -> Callable[[], Any]:
    """`tt mcp ARGS` launched as the lead's worker launches it: the absolute `tt` beside
    the interpreter, the town and the agent in the environment (no cwd in the town)."""

    @asynccontextmanager
    async def session() -> AsyncIterator[ClientSession]:
        params = StdioServerParameters(
            command=TT, args=["mcp", *args], cwd="/",
            env={"TINYTOWN_TOWN_ROOT": str(town.root), "FAKE_AGENT_DIR": str(town.records),
                 **env})
        log = town.root / "mcp-stdio.log"
        with log.open("a") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), \
                    ClientSession(read, write) as client:
                await client.initialize()
                yield client
        assert "Traceback" not in log.read_text()

    return session


def as_agent(town: TownFixture, ref: str, *args: str, **env: str) -> Callable[[], Any]:
    agent = town.town.resolve(ref)
    return stdio(town, *args, TINYTOWN_AGENT_ID=agent.id, TINYTOWN_AGENT_NAME=agent.name,
                 **env)


def test_stdio_lists_the_tools_and_says_who_it_speaks_for(agents: TownFixture) -> None:
    town = agents

    async def body(session: ClientSession) -> None:
        listed = (await session.list_tools()).tools
        assert {t.name for t in listed} == TOOLS
        for tool in listed:
            assert tool.description and tool.annotations is not None
            assert tool.annotations.read_only_hint is (tool.name in READ_TOOLS), tool.name
        send = next(t for t in listed if t.name == "send_message")
        assert set(send.input_schema["required"]) == {"to", "text"}
        me = await call(session, "whoami")
        assert me == {"agent": town.town.resolve("bob").to_wire(), "scope": "write",
                      "task": None}
        names = [a["name"] for a in await call(session, "list_agents")]
        assert names == ["alice", "bob"]
        templates = (await session.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {"tinytown://agent/{ref}",
                                                       "tinytown://task/{id}"}

    run(as_agent(town, "bob"), body)

    async def anonymous(session: ClientSession) -> None:  # no agent named: the supervisor
        me = await call(session, "whoami")
        assert me["agent"]["id"] == keys.SUPERVISOR_ID and me["scope"] == "read"
        line = await refused(session, "send_message", to="bob", text="hi")
        assert line == ("`tt mcp` runs with scope read; this needs write (start it with"
                        " `--scope write`)")

    run(stdio(town, "--scope", "read"), anonymous)
    assert town.town.channel.peek("bob") == []


def test_stdio_messages_inbox_and_errors(agents: TownFixture) -> None:
    town = agents
    bob = town.town.resolve("bob")

    async def body(session: ClientSession) -> None:
        sent = await call(session, "send_message", to="supervisor", text="status: fine",
                          kind="informational")
        assert sent["type"] == "informational" and sent["summary"] == "status: fine"
        assert sent["from"] == bob.id and sent["to"] == keys.SUPERVISOR_ID
        [seen] = town.town.channel.peek("supervisor")
        assert seen.to_wire() == sent  # in the recipient's inbox, as sent
        first = await call(session, "send_message", to="bob", text="a question?",
                           kind="query")
        second = await call(session, "send_message", to=bob.id, text="do this",
                            priority="high")
        assert first["type"] == "query" and second["type"] == "task"
        inbox = await call(session, "read_inbox")
        assert [m["id"] for m in inbox] == [second["id"], first["id"]]  # high goes first
        assert await call(session, "read_inbox") == inbox  # a peek takes nothing
        taken = await call(session, "ack_inbox")
        assert [m["id"] for m in taken] == [second["id"]]
        assert [m["id"] for m in await call(session, "read_inbox")] == [first["id"]]
        assert [m["id"] for m in await call(session, "ack_inbox", count=5)] == [first["id"]]
        assert await call(session, "ack_inbox") == []
        assert await call(session, "read_inbox") == []

        # errors: the one line `tt` prints, never a traceback
        line = await refused(session, "send_message", to="nobody", text="x")
        assert "tt: " + line == one_line_error(town.tt("send", "nobody", "x"), 1)
        assert await refused(session, "send_message", to="alice", text="  ") == \
            "the message is empty"
        assert await refused(session, "ack_inbox", count=0) == "count must be 1 to 100"
        bad = await session.call_tool("send_message", {"to": "alice", "text": "x",
                                                       "kind": "shout"})
        assert bad.is_error  # refused by the tool's input schema
        assert "no current task: give task_id" in await refused(
            session, "complete_task", result="done")
        assert "give `agent` or `role`" in await refused(session, "assign_task",
                                                          description="whose?")
        line = await refused(session, "spawn_helper", name="helper")
        assert line == ("`tt mcp` runs with scope write; this needs admin (start it with"
                        " `--scope admin`)")
        # resources: the wire format; unknown ones are a protocol error with the line
        read = await session.read_resource("tinytown://agent/bob")
        assert json.loads(read.contents[0].text) == town.town.resolve("bob").to_wire()  # type: ignore[union-attr]
        assert read.contents[0].mime_type == "application/json"
        with pytest.raises(MCPError) as raised:
            await session.read_resource("tinytown://agent/nobody")
        assert str(raised.value.error.message).startswith("no agent 'nobody' in town")
        with pytest.raises(MCPError) as raised:
            await session.read_resource("tinytown://task/ffffffff")
        assert "no task with id 'ffffffff'" in raised.value.error.message

    run(as_agent(town, "bob"), body)
    assert town.town.channel.peek("bob") == []
    assert [m.type for m in town.town.channel.peek("supervisor")] == ["informational"]
    assert town.town.store.name_owner("helper") is None


def test_stdio_tasks_assign_complete_fail_and_the_backlog(agents: TownFixture) -> None:
    town = agents
    bob = town.town.resolve("bob")
    alice = town.town.resolve("alice")
    state: dict[str, Any] = {}

    async def body(session: ClientSession) -> None:
        task = await call(session, "assign_task", description="real work", agent="alice")
        # the task as read back: alice's worker may have taken it up already
        assert task["assigned_to"] == alice.id
        assert task["state"] in ("assigned", "running", "completed")
        state["alice_task"] = task["id"]
        queued = await call(session, "assign_task", description="review it", role="reviewer")
        assert queued["state"] == "pending" and queued["role"] == "reviewer"
        mine = await call(session, "assign_task", description="for me", agent="bob")
        state["mine"] = mine["id"]
        [assign] = await call(session, "read_inbox")
        assert assign["type"] == "task_assign" and assign["task_id"] == mine["id"]
        resource = await session.read_resource(f"tinytown://task/{mine['id'][:8]}")
        assert json.loads(resource.contents[0].text) == town.town.task(mine["id"]).to_wire()  # type: ignore[union-attr]
        other = await call(session, "assign_task", description="to fail", agent="bob")
        failed = await call(session, "fail_task", error="cannot", task_id=other["id"])
        assert failed["state"] == "failed" and failed["result"] == "cannot"
        assert "failed" in await refused(session, "fail_task", error="again",
                                         task_id=other["id"])

        later = town.town.backlog_add("from the backlog")
        backlog = await call(session, "list_backlog")
        assert [t["id"] for t in backlog] == [later.id]
        claimed = await call(session, "claim_backlog", task_id=later.id[:8])
        assert claimed["assigned_to"] == bob.id and claimed["state"] == "assigned"
        assert await call(session, "list_backlog") == []
        assert "no backlog task" in await refused(session, "claim_backlog",
                                                  task_id=later.id)

    run(as_agent(town, "bob"), body)
    town.wait_task(state["alice_task"], TaskState.COMPLETED)  # alice's worker ran it
    assert "fake agent alice" in (town.town.task(state["alice_task"]).result or "")

    # as a round launches it: $TINYTOWN_TASK_ID is the task complete_task finishes
    async def in_a_round(session: ClientSession) -> None:
        me = await call(session, "whoami")
        assert me["task"]["id"] == state["mine"]
        done = await call(session, "complete_task", result="done by bob")
        assert done["id"] == state["mine"] and done["state"] == "completed"
        assert done["result"] == "done by bob"
        assert "completed" in await refused(session, "complete_task", result="again")

    run(as_agent(town, "bob", TINYTOWN_TASK_ID=state["mine"]), in_a_round)
    assert town.task_state(state["mine"]) == TaskState.COMPLETED


def test_stdio_completes_the_agents_current_task_while_its_round_runs(
        agents: TownFixture) -> None:
    """Without $TINYTOWN_TASK_ID: the task the agent's round is running (its record's
    current task), completed by the tool while the CLI still runs; the round then keeps
    the tool's result."""
    town = agents
    task_id = town.town.assign("alice", "@sleep 10 then finish")  # time to call the tool
    wait_until(lambda: list(town.records.glob("alice-*.sleeping")), 20,
               "alice's CLI to run")
    assert town.town.current_task("alice").id == task_id  # type: ignore[union-attr]

    async def body(session: ClientSession) -> None:
        me = await call(session, "whoami")
        assert me["task"]["id"] == task_id and me["task"]["state"] == "running"
        done = await call(session, "complete_task", result="finished through MCP")
        assert done["id"] == task_id and done["state"] == "completed"

    run(as_agent(town, "alice"), body)
    town.wait_state("alice", "idle", timeout=40)  # once its CLI is done
    task = town.town.task(task_id)
    assert task.state == TaskState.COMPLETED and task.result == "finished through MCP"
    completions = [e for e in town.town.events(200) if e["kind"] == "task_completed"
                   and e.get("task") == task_id]
    assert len(completions) == 1


def test_stdio_with_admin_scope_spawns_a_helper(agents: TownFixture) -> None:
    town = agents

    async def body(session: ClientSession) -> None:
        helper = await call(session, "spawn_helper", name="helper")
        assert helper["name"] == "helper"
        assert helper["parent_agent_id"] == town.town.resolve("alice").id
        assert "already exists" in await refused(session, "spawn_helper", name="helper")

    run(as_agent(town, "alice", "--scope", "admin"), body)
    town.wait_state("helper", "idle")  # its real worker started


def test_stdio_also_runs_as_python_m_tinytown(agents: TownFixture) -> None:
    """The other way the lead may launch it: `sys.executable -m tinytown mcp`."""
    town = agents
    bob = town.town.resolve("bob")
    python = str(Path(TT).parent / "python")

    @asynccontextmanager
    async def session() -> AsyncIterator[ClientSession]:
        params = StdioServerParameters(
            command=python, args=["-m", "tinytown", "mcp"], cwd="/",
            env={"TINYTOWN_TOWN_ROOT": str(town.root), "TINYTOWN_AGENT_NAME": "bob"})
        with (town.root / "mcp-m.log").open("a") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), \
                    ClientSession(read, write) as client:
                await client.initialize()
                yield client

    async def body(client: ClientSession) -> None:
        assert (await call(client, "whoami"))["agent"]["id"] == bob.id

    run(session, body)


def test_tt_mcp_fails_in_one_line_outside_a_town(tmp_path: Path) -> None:
    r = subprocess.run([TT, "mcp"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60, input="", env={**os.environ, "HOME": str(tmp_path)})
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.startswith("tt: ") and len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""  # nothing on the protocol's channel


# --- over HTTP, under tt serve ---------------------------------------------------------------


KEY_NAMES = {"read": "reader", "write": "writer", "admin": "boss"}


@pytest.fixture
def served(agents: TownFixture, supervisor: subprocess.Popen[bytes]
           ) -> Iterator[tuple[TownFixture, Server, dict[str, str]]]:
    made = {scope: add_key(agents, name, scope) for scope, name in KEY_NAMES.items()}
    server = start_server(agents)
    try:
        yield agents, server, made
    finally:
        server.stop()
    log = server.log_text()
    assert "Traceback" not in log, log
    for key in made.values():
        assert key not in log, "an API key reached the server's log"


def http(server: Server, key: str | None, agent: str | None = None) -> Callable[[], Any]:
    @asynccontextmanager
    async def session() -> AsyncIterator[ClientSession]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if agent:
            headers["X-Tinytown-Agent"] = agent
        async with httpx2.AsyncClient(headers=headers, timeout=30) as client, \
                streamable_http_client(f"{server.base}/mcp", http_client=client) as (
                    read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session

    return session


def test_http_tools_with_a_write_key(served: tuple[TownFixture, Server, dict[str, str]]
                                     ) -> None:
    town, server, made = served
    bob = town.town.resolve("bob")
    state: dict[str, Any] = {}

    async def body(session: ClientSession) -> None:
        assert {t.name for t in (await session.list_tools()).tools} == TOOLS
        me = await call(session, "whoami")
        assert me["agent"] == town.town.resolve("bob").to_wire() and me["scope"] == "write"
        sent = await call(session, "send_message", to="supervisor", text="over http",
                          kind="informational")
        assert sent["from"] == bob.id
        assert [m.id for m in town.town.channel.peek("supervisor")] == [sent["id"]]
        await call(session, "send_message", to="bob", text="note to self")
        assert len(await call(session, "read_inbox")) == 1
        assert len(await call(session, "ack_inbox")) == 1
        assert await call(session, "read_inbox") == []
        task = await call(session, "assign_task", description="over mcp", agent="alice")
        state["alice_task"] = task["id"]
        mine = await call(session, "assign_task", description="bob's", agent="bob")
        done = await call(session, "complete_task", result="ok", task_id=mine["id"])
        assert done["state"] == "completed" and done["result"] == "ok"
        later = town.town.backlog_add("later")
        assert (await call(session, "claim_backlog", task_id=later.id))["assigned_to"] == \
            bob.id
        line = await refused(session, "send_message", to="nobody", text="x")
        assert line.startswith("no agent 'nobody' in town")
        read = await session.read_resource("tinytown://agent/alice")
        assert json.loads(read.contents[0].text)["name"] == "alice"  # type: ignore[union-attr]
        assert await refused(session, "spawn_helper", name="helper") == \
            "key 'writer' has scope write; this needs admin"

    run(http(server, made["write"], agent="bob"), body)
    town.wait_task(state["alice_task"], TaskState.COMPLETED)

    async def supervisor(session: ClientSession) -> None:  # no agent header
        assert (await call(session, "whoami"))["agent"]["id"] == keys.SUPERVISOR_ID

    run(http(server, made["write"]), supervisor)

    def audited() -> list[tuple[str, str, str, str]]:
        return [(e["key_name"], e["method"], e["path"], e["status"])
                for e in town.town.events(500) if e["kind"] == "api"]

    expected = [("writer", "MCP", f"/mcp/{tool}", status) for tool, status in (
        ("send_message", "200"), ("send_message", "200"), ("ack_inbox", "200"),
        ("assign_task", "200"), ("assign_task", "200"), ("complete_task", "200"),
        ("claim_backlog", "200"), ("send_message", "404"), ("spawn_helper", "403"))]
    wait_until(lambda: len(audited()) >= len(expected), 10, "the audit events")
    assert sorted(audited()) == sorted(expected)  # writes only, each once; no reads


def test_http_keys_and_scopes(served: tuple[TownFixture, Server, dict[str, str]]) -> None:
    town, server, made = served
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "curl", "version": "0"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    with httpx.Client(base_url=server.base, timeout=30) as client:
        for headers in ({}, {"Authorization": "Bearer tt_" + "x" * 43},
                        {"Authorization": "Basic eDp5"}):
            r = client.post("/mcp", json=initialize, headers={**accept, **headers})
            assert r.status_code == 401, r.text
            assert r.headers["www-authenticate"] == "Bearer"
            assert list(r.json()) == ["error"] and "\n" not in r.json()["error"]
        assert "needs an API key" in client.post("/mcp", json=initialize,
                                                 headers=accept).json()["error"]
        ok = client.post("/mcp", json=initialize,
                         headers={**accept, "Authorization": f"Bearer {made['read']}"})
        assert ok.status_code == 200 and ok.json()["result"]["serverInfo"]["name"] == "tinytown"
        # a client of the 2025 protocol (today's agent CLIs): plain JSON-RPC POSTs
        whoami = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                  "params": {"name": "whoami", "arguments": {}}}
        r = client.post("/mcp", json=whoami, headers={
            **accept, "Authorization": f"Bearer {made['read']}", "X-Tinytown-Agent": "bob",
            "MCP-Protocol-Version": "2025-06-18"})
        assert r.status_code == 200, r.text
        answer = r.json()["result"]
        assert not answer.get("isError") and answer["structuredContent"]["scope"] == "read"
        assert answer["structuredContent"]["agent"]["name"] == "bob"
    with pytest.raises(Exception):  # noqa: B017 - the SDK's client gives up on a 401
        run(http(server, None), lambda session: call(session, "whoami"))

    inbox_before = town.town.channel.peek("supervisor")

    async def reader(session: ClientSession) -> None:
        me = await call(session, "whoami")
        assert me["scope"] == "read" and me["agent"]["name"] == "alice"
        assert [a["name"] for a in await call(session, "list_agents")] == ["alice", "bob"]
        line = await refused(session, "send_message", to="supervisor", text="x")
        assert line == "key 'reader' has scope read; this needs write"
        assert "this needs write" in await refused(session, "ack_inbox")
        assert "this needs admin" in await refused(session, "spawn_helper", name="h")

    run(http(server, made["read"], agent="alice"), reader)
    assert town.town.channel.peek("supervisor") == inbox_before  # nothing written
    assert town.town.store.name_owner("h") is None
    refusals = [(e["key_name"], e["path"], e["status"]) for e in town.town.events(500)
                if e["kind"] == "api"]
    assert sorted(refusals) == [("reader", "/mcp/ack_inbox", "403"),
                                ("reader", "/mcp/send_message", "403"),
                                ("reader", "/mcp/spawn_helper", "403")]

    # a revoked key is refused at once
    assert town.tt("auth", "revoke", "reader").code == 0
    with httpx.Client(base_url=server.base, timeout=30) as client:
        r = client.post("/mcp", json=initialize,
                        headers={**accept, "Authorization": f"Bearer {made['read']}"})
        assert r.status_code == 401 and "not valid" in r.json()["error"]


def test_http_admin_key_spawns_a_helper(served: tuple[TownFixture, Server, dict[str, str]]
                                        ) -> None:
    town, server, made = served

    async def body(session: ClientSession) -> None:
        helper = await call(session, "spawn_helper", name="helper", role="reviewer")
        assert helper["name"] == "helper" and helper["role_id"] == "reviewer"
        assert helper["parent_agent_id"] == town.town.resolve("alice").id

    run(http(server, made["admin"], agent="alice"), body)
    town.wait_state("helper", "idle")  # a real worker started for it
    task_id = town.town.assign("helper", "hello helper")
    town.wait_task(task_id, TaskState.COMPLETED)
    assert ("boss", "/mcp/spawn_helper", "200") in [
        (e["key_name"], e["path"], e["status"]) for e in town.town.events(500)
        if e["kind"] == "api"]
