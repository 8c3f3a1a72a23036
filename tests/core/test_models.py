"""The data model against the wire format (shared/wire-format.md), document by document.

Every literal below is written by hand from the wire format, not produced by the code:
parsing it and serializing it again must give back exactly the same document.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import tinytown
from tinytown.core.errors import InvalidRecord, UsageError
from tinytown.core.models import (
    AckKind,
    Agent,
    AgentState,
    AgentType,
    Message,
    MessageType,
    Priority,
    SpawnMode,
    Task,
    TaskState,
)
from tinytown.core.nicknames import default_nickname

SUP = "00000000-0000-0000-0000-000000000001"
AGENT = "550e8400-e29b-41d4-a716-446655440000"
TASK = "9d2b7c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
MSG = "0b6f0c1e-6f1a-4f53-9f0e-3c1b2f0d9a11"
WHEN = "2026-11-24T22:21:33.123456Z"
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def envelope(type_: str, priority: str = "normal", correlation_id: str | None = None,
             **fields: Any) -> dict[str, Any]:
    """A message document as the wire format lays it out: common fields, type, its fields."""
    return {"id": MSG, "from": SUP, "to": AGENT, "type": type_, **fields,
            "priority": priority, "created_at": WHEN, "correlation_id": correlation_id}


# (literal document, what the constructors build, actionable per the wire format table)
MESSAGES: list[tuple[dict[str, Any], MessageType, bool]] = [
    (envelope("task", description="Build the API"), MessageType.task("Build the API"), True),
    (envelope("query", question="Which port?", priority="high"),
     MessageType.query("Which port?"), True),
    (envelope("informational", summary="tests pass", priority="low"),
     MessageType.informational("tests pass"), False),
    (envelope("task_assign", task_id=TASK), MessageType.task_assign(TASK), True),
    (envelope("task_done", task_id=TASK, result="done: 3 files", correlation_id=MSG),
     MessageType.task_done(TASK, "done: 3 files"), False),
    (envelope("task_failed", task_id=TASK, error="exit 1", priority="urgent"),
     MessageType.task_failed(TASK, "exit 1"), False),
    (envelope("status_request"), MessageType.status_request(), True),
    (envelope("status_response", state="working", current_task=TASK),
     MessageType.status_response(AgentState.WORKING, TASK), False),
    (envelope("status_response", state="idle", current_task=None),
     MessageType.status_response("idle", None), False),
    (envelope("ping"), MessageType.ping(), True),
    (envelope("pong", correlation_id=MSG), MessageType.pong(), False),
    (envelope("shutdown", priority="urgent"), MessageType.shutdown(), True),
    (envelope("custom", kind="review.verdict", payload='{"ok": true, "notes": []}'),
     MessageType.custom("review.verdict", '{"ok": true, "notes": []}'), True),
]
for _kind in ("received", "acknowledged", "thanks", "approved"):
    MESSAGES.append((envelope("confirmation", ack_type={"type": _kind}),
                     MessageType.confirmation(_kind), False))
MESSAGES.append((envelope("confirmation", ack_type={"type": "rejected", "reason": "too big"}),
                 MessageType.confirmation(AckKind.REJECTED, "too big"), False))


def _id(case: tuple[dict[str, Any], MessageType, bool]) -> str:
    doc = case[0]
    return doc["type"] + (f"-{doc['ack_type']['type']}" if "ack_type" in doc else "")


@pytest.mark.parametrize("case", MESSAGES, ids=[_id(c) for c in MESSAGES])
def test_message_round_trip(case: tuple[dict[str, Any], MessageType, bool]) -> None:
    literal, body, actionable = case
    parsed = Message.from_json(json.dumps(literal))
    assert parsed.to_wire() == literal
    assert json.loads(parsed.to_json()) == literal
    assert parsed.type == literal["type"]
    assert parsed.actionable is actionable
    assert parsed.sender == SUP and parsed.to == AGENT
    assert parsed.priority == Priority(literal["priority"])
    # the writer side: the constructors build the same document
    built = Message(
        id=MSG, sender=SUP, to=AGENT, body=body, priority=Priority(literal["priority"]),
        created_at=datetime(2026, 11, 24, 22, 21, 33, 123456, tzinfo=UTC),
        correlation_id=literal["correlation_id"],
    )
    assert built.to_wire() == literal


def test_message_document_is_flat_with_the_wire_example() -> None:
    # the example of shared/wire-format.md, verbatim
    text = """{"id": "0b6f0c1e-6f1a-4f53-9f0e-3c1b2f0d9a11",
     "from": "00000000-0000-0000-0000-000000000001",
     "to": "550e8400-e29b-41d4-a716-446655440000",
     "type": "task_assign", "task_id": "9d2b7c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
     "priority": "normal", "created_at": "2026-11-24T22:21:33.123456Z",
     "correlation_id": null}"""
    message = Message.from_json(text)
    assert message.body.task_id == TASK  # type: ignore[union-attr]
    assert message.to_wire() == json.loads(text)
    assert "body" not in message.to_wire() and "sender" not in message.to_wire()


def test_rejection_without_reason_still_writes_a_reason_field() -> None:
    doc = envelope("confirmation", ack_type={"type": "rejected"})
    assert Message.from_json(json.dumps(doc)).to_wire()["ack_type"] == {
        "type": "rejected", "reason": ""}
    # only a rejection carries a reason
    approved = MessageType.confirmation("approved", reason="ignored")
    assert approved.to_dict() == {"type": "confirmation",
                                "ack_type": {"type": "approved"}}


def test_message_readers_accept_missing_optional_fields_and_keep_unknown_ones() -> None:
    doc = envelope("status_response", state="paused")
    del doc["correlation_id"]  # and current_task is not there either
    doc["trace"] = {"hop": 2}
    doc["x_new"] = "from a newer writer"
    parsed = Message.from_json(json.dumps(doc))
    assert parsed.correlation_id is None
    assert parsed.body.current_task is None  # type: ignore[union-attr]
    wire = parsed.to_wire()
    assert wire["trace"] == {"hop": 2} and wire["x_new"] == "from a newer writer"
    assert wire == {**doc, "current_task": None, "correlation_id": None}
    assert Message.from_json(json.dumps(wire)).to_wire() == wire


@pytest.mark.parametrize("bad", [
    {"type": "telepathy"},
    {"type": ["task"]},
    {"type": "task"},  # its field is missing
    {"priority": "critical"},
    {"to": "not-a-uuid"},
    {"type": "confirmation", "ack_type": {"type": "maybe"}},
])
def test_invalid_message_documents_are_refused(bad: dict[str, Any]) -> None:
    doc = {**envelope("task", description="x"), **bad}
    if bad.get("type") == "task":
        del doc["description"]
    with pytest.raises(InvalidRecord):
        Message.from_json(json.dumps(doc))


# --- Agent ------------------------------------------------------------------------

AGENT_DOC: dict[str, Any] = {
    "id": AGENT,
    "name": "backend",
    "nickname": "API Developer",
    "role_id": "worker",
    "parent_agent_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "spawn_mode": "forkedcontext",
    "agent_type": "worker",
    "state": "working",
    "cli": "claude",
    "current_task": TASK,
    "created_at": "2026-11-24T22:00:00.000000Z",
    "last_heartbeat": WHEN,
    "tasks_completed": 7,
    "rounds_completed": 12,
    "last_active_at": "2026-11-24T22:21:30.500000Z",
    "current_scope": "the HTTP layer",
}


def test_agent_round_trip() -> None:
    agent = Agent.from_json(json.dumps(AGENT_DOC))
    assert agent.to_wire() == AGENT_DOC
    assert agent.spawn_mode == SpawnMode.FORKED_CONTEXT
    assert agent.state == AgentState.WORKING and agent.tasks_completed == 7


def test_agent_old_record_without_new_fields() -> None:
    doc = copy.deepcopy(AGENT_DOC)
    for field in ("rounds_completed", "last_active_at", "role_id", "parent_agent_id",
                  "current_task", "current_scope"):
        del doc[field]
    agent = Agent.from_json(json.dumps(doc))
    assert agent.rounds_completed == 0
    assert agent.last_active_at == agent.created_at
    wire = agent.to_wire()
    assert wire["last_active_at"] == "2026-11-24T22:00:00.000000Z"
    assert wire["rounds_completed"] == 0
    assert wire["role_id"] is None and wire["current_task"] is None
    assert wire["parent_agent_id"] is None and wire["current_scope"] is None


def test_agent_without_nickname_shows_the_1920s_default() -> None:
    doc = {**AGENT_DOC, "nickname": None}
    agent = Agent.from_json(json.dumps(doc))
    # 0x55 0x0e: (85*256 + 14) % 400 = 21774 % 400 = 174 -> boys[174]
    assert agent.display_nickname == _names()["boys"][174]
    assert agent.to_wire() == doc  # a stored null stays null


def test_agent_keeps_unknown_fields() -> None:
    doc = {**AGENT_DOC, "max_rounds": 3, "labels": {"team": "core"}}
    agent = Agent.from_json(json.dumps(doc))
    assert agent.to_wire() == doc
    agent.tasks_completed += 1  # a read-modify-write keeps them
    assert Agent.from_json(agent.to_json()).to_wire() == {**doc, "tasks_completed": 8}


def test_extra_fields_are_kept_beside_the_record() -> None:
    agent = Agent("w", "claude", AgentType.WORKER)
    assert agent.extra == {}
    agent.extra["max_rounds"] = 3  # what `tt spawn --max-rounds` writes
    wire = agent.to_wire()
    assert list(wire)[-1] == "max_rounds" and wire["max_rounds"] == 3
    assert Agent.from_json(agent.to_json()).extra == {"max_rounds": 3}
    doc = {**envelope("ping"), "trace": [1, 2]}
    message = Message.from_json(json.dumps(doc))
    assert message.extra == {"trace": [1, 2]}
    message.to = SUP
    assert json.loads(message.to_json()) == {**doc, "to": SUP}


@pytest.mark.parametrize("model, text", [
    (Message, "{broken"), (Agent, "[1, 2]"), (Task, ""), (Agent, '"a string"'),
    (Message, json.dumps({**envelope("task", description="x"), "body": 1, "type": None})),
])
def test_documents_that_are_not_records_raise_invalid_record(model: Any, text: str) -> None:
    with pytest.raises(InvalidRecord):
        model.from_json(text)


@pytest.mark.parametrize("state", [s.value for s in AgentState])
def test_every_agent_state_reads(state: str) -> None:
    assert Agent.from_json(json.dumps({**AGENT_DOC, "state": state})).to_wire()["state"] == state


def test_terminal_agent_states() -> None:
    assert {s.value for s in AgentState if s.is_terminal} == {"stopped", "error", "cold"}


@pytest.mark.parametrize("bad", [{"state": "sleeping"}, {"agent_type": "boss"},
                                 {"spawn_mode": "forked_context"}, {"tasks_completed": -1},
                                 {"id": "nope"}, {"created_at": "yesterday"}])
def test_invalid_agent_documents_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidRecord):
        Agent.from_json(json.dumps({**AGENT_DOC, **bad}))


def test_agent_constructors_of_the_spec() -> None:
    worker = Agent("w", "claude", AgentType.WORKER)
    assert (worker.name, worker.cli, worker.agent_type) == ("w", "claude", AgentType.WORKER)
    assert worker.state == AgentState.STARTING and worker.spawn_mode == SpawnMode.FRESH
    assert worker.nickname == default_nickname(worker.id)
    assert worker.id == str(worker.id).lower() and len(worker.id) == 36
    sup = Agent.supervisor()
    assert sup.id == SUP == tinytown.SUPERVISOR_ID
    assert sup.agent_type == AgentType.SUPERVISOR
    assert Agent.supervisor("coordinator").name == "coordinator"


def test_public_names() -> None:
    from tinytown import (  # noqa: F401
        Agent,
        AgentState,
        AgentType,
        Message,
        MessageType,
        Priority,
        Task,
        TaskState,
        Town,
    )

    with pytest.raises(AttributeError):
        tinytown.NoSuchThing  # noqa: B018


# --- Task -------------------------------------------------------------------------

TASK_DOC: dict[str, Any] = {
    "id": TASK,
    "description": "Build the API",
    "state": "completed",
    "assigned_to": AGENT,
    "created_at": "2026-11-24T22:00:00.000000Z",
    "updated_at": "2026-11-24T22:30:00.250000Z",
    "started_at": "2026-11-24T22:01:00.000000Z",
    "completed_at": "2026-11-24T22:30:00.250000Z",
    "result": "3 endpoints, tests pass",
    "parent_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "tags": ["api", "backend"],
}


def test_task_round_trip() -> None:
    task = Task.from_json(json.dumps(TASK_DOC))
    assert task.to_wire() == TASK_DOC
    assert task.state == TaskState.COMPLETED and task.state.is_terminal


def test_task_readers_accept_missing_fields_and_in_flight() -> None:
    doc = {"id": TASK, "description": "x", "state": "in_flight", "assigned_to": None,
           "created_at": "2026-11-24T22:00:00Z", "updated_at": "2026-11-24T22:00:00Z",
           "completed_at": None, "result": None, "parent_id": None}
    task = Task.from_json(json.dumps(doc))
    assert task.state == TaskState.RUNNING
    assert task.tags == [] and task.started_at is None
    wire = task.to_wire()
    assert wire["state"] == "running" and wire["tags"] == [] and wire["started_at"] is None


def test_task_keeps_unknown_fields() -> None:
    doc = {**TASK_DOC, "estimate": {"hours": 2}}
    assert Task.from_json(json.dumps(doc)).to_wire() == doc


@pytest.mark.parametrize("state", [s.value for s in TaskState])
def test_every_task_state_reads(state: str) -> None:
    assert Task.from_json(json.dumps({**TASK_DOC, "state": state})).to_wire()["state"] == state


def test_task_constructor_refuses_an_empty_description() -> None:
    assert Task("Build the API").state == TaskState.PENDING
    for empty in ("", "   ", "\n"):
        with pytest.raises(UsageError):
            Task(empty)
    with pytest.raises(UsageError):
        Task()


def test_a_stored_document_without_description_is_invalid_not_a_usage_error() -> None:
    # what a listing sees under a task key: a validation error (so it can skip it)
    with pytest.raises(InvalidRecord):
        Task.from_json(json.dumps({k: v for k, v in TASK_DOC.items() if k != "description"}))
    with pytest.raises(InvalidRecord):
        Task.from_json(json.dumps(AGENT_DOC))


# --- timestamps -------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("2026-11-24T22:21:33Z", "2026-11-24T22:21:33.000000Z"),
    ("2026-11-24T22:21:33.1Z", "2026-11-24T22:21:33.100000Z"),
    ("2026-11-24T22:21:33.12Z", "2026-11-24T22:21:33.120000Z"),
    ("2026-11-24T22:21:33.123Z", "2026-11-24T22:21:33.123000Z"),
    ("2026-11-24T22:21:33.123456Z", "2026-11-24T22:21:33.123456Z"),
    ("2026-11-24T22:21:33.123456789Z", "2026-11-24T22:21:33.123456Z"),
    ("2026-11-24T22:21:33.123456+00:00", "2026-11-24T22:21:33.123456Z"),
    ("2026-11-24T22:21:33+00:00", "2026-11-24T22:21:33.000000Z"),
    ("2026-11-25T00:21:33.5+02:00", "2026-11-24T22:21:33.500000Z"),
])
def test_timestamps_read_any_fraction_and_offset_and_write_utc_z(text: str, expected: str) -> None:
    doc = {**TASK_DOC, "created_at": text, "started_at": text}
    wire = Task.from_json(json.dumps(doc)).to_wire()
    assert wire["created_at"] == expected and wire["started_at"] == expected
    msg = Message.from_json(json.dumps({**envelope("ping"), "created_at": text}))
    assert msg.to_wire()["created_at"] == expected


def test_new_records_write_rfc3339_z_timestamps() -> None:
    agent = Agent("w", "claude", AgentType.WORKER).to_wire()
    task = Task("x").to_wire()
    msg = Message(sender=SUP, to=AGENT, body=MessageType.ping()).to_wire()
    for value in (agent["created_at"], agent["last_heartbeat"], agent["last_active_at"],
                  task["created_at"], task["updated_at"], msg["created_at"]):
        assert RFC3339_Z.match(value), value


# --- nicknames --------------------------------------------------------------------


def _names() -> dict[str, Any]:
    path = Path(tinytown.__file__).parent / "data" / "nicknames-1920s.json"
    data: dict[str, Any] = json.loads(path.read_text())
    assert len(data["boys"]) == 200 and len(data["girls"]) == 200
    return data


@pytest.mark.parametrize("agent_id, expected_list, index", [
    # bytes 0x00 0x00: (0*256 + 0) % 400 = 0 -> boys[0]
    ("00000000-0000-4000-8000-000000000000", "boys", 0),
    # bytes 0x00 0xc7: (0*256 + 199) % 400 = 199 -> boys[199], the last boy
    ("00c71111-2222-4333-8444-555555555555", "boys", 199),
    # bytes 0x00 0xc8: (0*256 + 200) % 400 = 200 -> girls[0]
    ("00c81111-2222-4333-8444-555555555555", "girls", 0),
    # bytes 0x01 0x90: (1*256 + 144) % 400 = 400 % 400 = 0 -> boys[0]
    ("01901111-2222-4333-8444-555555555555", "boys", 0),
    # bytes 0xff 0xff: (255*256 + 255) % 400 = 65535 % 400 = 335 -> girls[135]
    ("ffffabcd-2222-4333-8444-555555555555", "girls", 135),
    # bytes 0x55 0x0e: (85*256 + 14) % 400 = 21774 % 400 = 174 -> boys[174]
    (AGENT, "boys", 174),
])
def test_nickname_rule(agent_id: str, expected_list: str, index: int) -> None:
    assert default_nickname(agent_id) == _names()[expected_list][index]


def test_nickname_rule_known_names() -> None:
    # names from the data file, as the spec lists them (boys[0] is Robert, girls[0] Mary)
    assert default_nickname("00000000-0000-4000-8000-000000000000") == "Robert"
    assert default_nickname("00c81111-2222-4333-8444-555555555555") == "Mary"
    assert default_nickname("ffffabcd-2222-4333-8444-555555555555") == "Carrie"
    assert default_nickname("FFFFABCD-2222-4333-8444-555555555555") == "Carrie"


def test_agent_record_gets_its_default_nickname_from_its_id() -> None:
    agent = Agent(name="w", id="00c81111-2222-4333-8444-555555555555")
    assert agent.nickname == "Mary"
    assert Agent(name="w", id="00c81111-2222-4333-8444-555555555555",
                 nickname="The Builder").nickname == "The Builder"
