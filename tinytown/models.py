"""Agent, Task and Message, serialized exactly as shared/wire-format.md says.

Models keep fields they do not know (``extra="allow"``) so that a read-modify-write
by this version never drops what a newer writer added.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from tinytown import keys
from tinytown.errors import UsageError

MAX_MESSAGE_BYTES = 1024 * 1024
# True while a stored document is parsed: readers accept what a writer may refuse to create
_reading: ContextVar[bool] = ContextVar("tinytown_reading", default=False)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _normal_uuid(value: str) -> str:
    return str(uuid.UUID(value))


Timestamp = Annotated[
    datetime, AfterValidator(_to_utc), PlainSerializer(format_timestamp, return_type=str)
]
Uuid = Annotated[str, AfterValidator(_normal_uuid)]


class AgentState(StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    WORKING = "working"
    PAUSED = "paused"
    DRAINING = "draining"
    COLD = "cold"
    STOPPED = "stopped"
    ERROR = "error"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_AGENT_STATES


TERMINAL_AGENT_STATES = frozenset({AgentState.STOPPED, AgentState.ERROR, AgentState.COLD})


class AgentType(StrEnum):
    WORKER = "worker"
    SUPERVISOR = "supervisor"


class SpawnMode(StrEnum):
    FRESH = "fresh"
    FORKED_CONTEXT = "forkedcontext"
    RESUMED = "resumed"


class TaskState(StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def _missing_(cls, value: object) -> TaskState | None:
        return cls.RUNNING if value == "in_flight" else None

    @property
    def is_terminal(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def goes_first(self) -> bool:
        """urgent and high go to the head of the inbox (LPUSH), the rest to its tail."""
        return self in (Priority.HIGH, Priority.URGENT)


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, validate_assignment=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_json(cls, data: str | bytes) -> Self:
        token = _reading.set(True)
        try:
            return cls.model_validate_json(data)
        finally:
            _reading.reset(token)


# --- Agent --------------------------------------------------------------------


class Agent(WireModel):
    id: Uuid = Field(default_factory=new_id)
    name: str
    nickname: str | None = None
    role_id: str | None = None
    parent_agent_id: Uuid | None = None
    spawn_mode: SpawnMode = SpawnMode.FRESH
    agent_type: AgentType = AgentType.WORKER
    state: AgentState = AgentState.STARTING
    cli: str = "claude"
    current_task: Uuid | None = None
    created_at: Timestamp = Field(default_factory=utcnow)
    last_heartbeat: Timestamp = Field(default_factory=utcnow)
    tasks_completed: int = Field(default=0, ge=0)
    rounds_completed: int = Field(default=0, ge=0)
    last_active_at: Timestamp = Field(default_factory=utcnow)
    current_scope: str | None = None

    def __init__(
        self,
        name: str | None = None,
        cli: str | None = None,
        agent_type: AgentType | None = None,
        **data: Any,
    ) -> None:
        """Agent("worker-1", "claude", AgentType.WORKER), as the spec writes it."""
        if name is not None:
            data["name"] = name
        if cli is not None:
            data["cli"] = cli
        if agent_type is not None:
            data["agent_type"] = agent_type
        super().__init__(**data)
        if self.nickname is None and not _reading.get():  # a stored null stays null
            from tinytown.nicknames import default_nickname

            self.nickname = default_nickname(self.id)

    @model_validator(mode="before")
    @classmethod
    def _old_records(cls, data: Any) -> Any:
        if isinstance(data, dict) and "last_active_at" not in data and "created_at" in data:
            data = {**data, "last_active_at": data["created_at"]}
        return data

    @classmethod
    def supervisor(cls, name: str = "supervisor", cli: str = "tt") -> Agent:
        """The well-known supervisor (the human conductor's mailbox)."""
        return cls(
            name=name,
            cli=cli,
            agent_type=AgentType.SUPERVISOR,
            id=keys.SUPERVISOR_ID,
            nickname="Conductor",
            state=AgentState.IDLE,
        )

    @property
    def display_nickname(self) -> str:
        from tinytown.nicknames import default_nickname

        return self.nickname or default_nickname(self.id)


# --- Task ---------------------------------------------------------------------


class Task(WireModel):
    id: Uuid = Field(default_factory=new_id)
    description: str
    state: TaskState = TaskState.PENDING
    assigned_to: Uuid | None = None
    created_at: Timestamp = Field(default_factory=utcnow)
    updated_at: Timestamp = Field(default_factory=utcnow)
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    result: str | None = None
    parent_id: Uuid | None = None
    tags: list[str] = Field(default_factory=list)

    def __init__(self, description: str | None = None, **data: Any) -> None:
        """Task("Build the API"); an empty description is refused."""
        if description is not None:
            data["description"] = description
        # pydantic also runs __init__ when parsing a stored task: there a missing or odd
        # description is a validation error (the record is skipped), not a usage error
        if not _reading.get() and not str(data.get("description", "")).strip():
            raise UsageError("a task needs a non-empty description")
        super().__init__(**data)


# --- Messages -----------------------------------------------------------------


class AckKind(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    THANKS = "thanks"
    APPROVED = "approved"
    REJECTED = "rejected"


class Ack(BaseModel):
    type: AckKind = AckKind.ACKNOWLEDGED
    reason: str | None = None

    @model_serializer(mode="wrap")
    def _only_rejected_has_reason(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        if self.type != AckKind.REJECTED:
            out.pop("reason", None)
        elif out.get("reason") is None:
            out["reason"] = ""
        return out


class MessageType(BaseModel):
    """A message's type and that type's own fields.

    Build one with the constructors: ``MessageType.task("Build the API")``,
    ``MessageType.status_request()``, ...
    """

    model_config = ConfigDict(extra="forbid")

    type: str
    actionable: ClassVar[bool] = True  # needs the agent CLI (or a direct answer)

    @staticmethod
    def task(description: str) -> TaskMsg:
        return TaskMsg(description=description)

    @staticmethod
    def query(question: str) -> QueryMsg:
        return QueryMsg(question=question)

    @staticmethod
    def informational(summary: str) -> InformationalMsg:
        return InformationalMsg(summary=summary)

    @staticmethod
    def confirmation(
        ack: AckKind | str = AckKind.ACKNOWLEDGED, reason: str | None = None
    ) -> ConfirmationMsg:
        return ConfirmationMsg(ack_type=Ack(type=AckKind(ack), reason=reason))

    @staticmethod
    def task_assign(task_id: str) -> TaskAssignMsg:
        return TaskAssignMsg(task_id=task_id)

    @staticmethod
    def task_done(task_id: str, result: str) -> TaskDoneMsg:
        return TaskDoneMsg(task_id=task_id, result=result)

    @staticmethod
    def task_failed(task_id: str, error: str) -> TaskFailedMsg:
        return TaskFailedMsg(task_id=task_id, error=error)

    @staticmethod
    def status_request() -> StatusRequestMsg:
        return StatusRequestMsg()

    @staticmethod
    def status_response(state: AgentState | str, current_task: str | None) -> StatusResponseMsg:
        return StatusResponseMsg(state=AgentState(state), current_task=current_task)

    @staticmethod
    def ping() -> PingMsg:
        return PingMsg()

    @staticmethod
    def pong() -> PongMsg:
        return PongMsg()

    @staticmethod
    def shutdown() -> ShutdownMsg:
        return ShutdownMsg()

    @staticmethod
    def custom(kind: str, payload: str) -> CustomMsg:
        return CustomMsg(kind=kind, payload=payload)


class TaskMsg(MessageType):
    type: Literal["task"] = "task"
    description: str


class QueryMsg(MessageType):
    type: Literal["query"] = "query"
    question: str


class InformationalMsg(MessageType):
    type: Literal["informational"] = "informational"
    actionable: ClassVar[bool] = False
    summary: str


class ConfirmationMsg(MessageType):
    type: Literal["confirmation"] = "confirmation"
    actionable: ClassVar[bool] = False
    ack_type: Ack


class TaskAssignMsg(MessageType):
    type: Literal["task_assign"] = "task_assign"
    task_id: Uuid


class TaskDoneMsg(MessageType):
    type: Literal["task_done"] = "task_done"
    actionable: ClassVar[bool] = False
    task_id: Uuid
    result: str


class TaskFailedMsg(MessageType):
    type: Literal["task_failed"] = "task_failed"
    actionable: ClassVar[bool] = False
    task_id: Uuid
    error: str


class StatusRequestMsg(MessageType):
    type: Literal["status_request"] = "status_request"


class StatusResponseMsg(MessageType):
    type: Literal["status_response"] = "status_response"
    actionable: ClassVar[bool] = False
    state: AgentState
    current_task: Uuid | None = None


class PingMsg(MessageType):
    type: Literal["ping"] = "ping"


class PongMsg(MessageType):
    type: Literal["pong"] = "pong"
    actionable: ClassVar[bool] = False


class ShutdownMsg(MessageType):
    type: Literal["shutdown"] = "shutdown"


class CustomMsg(MessageType):
    type: Literal["custom"] = "custom"
    kind: str
    payload: str


MessageBody = (
    TaskMsg
    | QueryMsg
    | InformationalMsg
    | ConfirmationMsg
    | TaskAssignMsg
    | TaskDoneMsg
    | TaskFailedMsg
    | StatusRequestMsg
    | StatusResponseMsg
    | PingMsg
    | PongMsg
    | ShutdownMsg
    | CustomMsg
)
"""Any one message type's body: what `MessageType.<kind>(...)` returns."""
Body = Annotated[MessageBody, Field(discriminator="type")]

_BODY_FIELDS: dict[str, frozenset[str]] = {}
_COMMON_FIELDS = ("id", "from", "to", "priority", "created_at", "correlation_id")


def _body_fields(kind: str) -> frozenset[str]:
    if not _BODY_FIELDS:
        for cls in MessageType.__subclasses__():
            name = cls.model_fields["type"].default
            _BODY_FIELDS[name] = frozenset(cls.model_fields) - {"type"}
    return _BODY_FIELDS.get(kind, frozenset())


class Message(WireModel):
    """One flat JSON object: common fields, ``type`` and the type's fields side by side."""

    id: Uuid = Field(default_factory=new_id)
    sender: Uuid = Field(alias="from")
    to: Uuid
    body: Body
    priority: Priority = Priority.NORMAL
    created_at: Timestamp = Field(default_factory=utcnow)
    correlation_id: Uuid | None = None

    @model_validator(mode="before")
    @classmethod
    def _nest_body(cls, data: Any) -> Any:
        if isinstance(data, dict) and "body" not in data and "type" in data:
            data = dict(data)
            kind = data.pop("type")
            body = {"type": kind}
            for field in _body_fields(kind):
                if field in data:
                    body[field] = data.pop(field)
            data["body"] = body
        return data

    @model_serializer(mode="wrap")
    def _flatten_body(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        body = out.pop("body")
        sender = out.pop("from", None)
        if sender is None:
            sender = out.pop("sender")
        flat: dict[str, Any] = {"id": out.pop("id"), "from": sender, "to": out.pop("to")}
        flat.update(body)
        for field in ("priority", "created_at", "correlation_id"):
            flat[field] = out.pop(field)
        flat.update(out)  # fields of a newer writer, kept
        return flat

    @property
    def type(self) -> str:
        return self.body.type

    @property
    def actionable(self) -> bool:
        return self.body.actionable
