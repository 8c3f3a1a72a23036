"""Agent, Task and Message, serialized exactly as shared/wire-format.md says.

msgspec structs: importing them costs a few milliseconds, where pydantic cost ~85 ms
on every `tt` call. Records keep the fields they do not know in ``extra`` so that a
read-modify-write by this version never drops what a newer writer added.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self

import msgspec

from tinytown.core import keys
from tinytown.core.errors import InvalidRecord, UsageError
from tinytown.core.usage import Usage

MAX_MESSAGE_BYTES = 1024 * 1024
# True while a stored document is parsed: readers accept what a writer may refuse to create
_reading: ContextVar[bool] = ContextVar("tinytown_reading", default=False)
# msgspec rounds a fraction past microseconds; the wire format's readers truncate it
_PAST_MICROSECONDS = re.compile(r"(\.\d{6})\d+")
Count = Annotated[int, msgspec.Meta(ge=0)]


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


class SessionPolicy(StrEnum):
    """Whether an agent's CLI goes on with its session from one task to the next
    (`continue`: it remembers its earlier work) or starts each one afresh."""

    CONTINUE = "continue"
    FRESH = "fresh"


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


class _Normalized(msgspec.Struct):
    """Ids as lowercase UUIDs and times in UTC, whether built in code or read.

    A bad id raises ValueError, which msgspec reports as a validation error on read.
    """

    _uuids: ClassVar[tuple[str, ...]] = ()
    _timestamps: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name in self._uuids:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, str(uuid.UUID(value)))
        for name in self._timestamps:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _to_utc(value))


def _decode_object(data: str | bytes) -> dict[str, Any]:
    try:
        doc = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidRecord(str(exc)) from None
    if not isinstance(doc, dict):
        raise InvalidRecord(f"expected a JSON object, got {type(doc).__name__}")
    return doc


class WireModel(_Normalized, dict=True):
    """A stored record: its wire fields in order, then the fields it does not know."""

    _wire_fields: ClassVar[tuple[str, ...]] = ()
    # Tinytown's own fields after the wire format's: written only when they say something
    _own_defaults: ClassVar[dict[str, Any]] = {}

    @property
    def extra(self) -> dict[str, Any]:
        """Fields of a newer writer: read with the record, written back with it."""
        extra: dict[str, Any] = self.__dict__.setdefault("_extra", {})
        return extra

    def to_wire(self) -> dict[str, Any]:
        doc = msgspec.to_builtins(self, builtin_types=(datetime,))
        out = {
            name: format_timestamp(doc[name]) if isinstance(doc[name], datetime) else doc[name]
            for name in self._wire_fields
            if name not in self._own_defaults or doc[name] != self._own_defaults[name]
        }
        out.update(self.extra)
        return out

    def to_json(self) -> str:
        try:
            return msgspec.json.encode(self.to_wire()).decode()
        except UnicodeEncodeError:  # text that came in as bytes that are not UTF-8
            raise UsageError("text that is not valid UTF-8 cannot be stored;"
                             " give it as UTF-8") from None

    @classmethod
    def from_json(cls, data: str | bytes) -> Self:
        """Parse a stored document; InvalidRecord when it is not JSON or not this record."""
        fields, extra = cls._split(_decode_object(data))
        token = _reading.set(True)
        try:
            record = msgspec.convert(fields, cls, strict=False)  # lax, as pydantic read: "7" is 7
        except msgspec.ValidationError as exc:
            raise InvalidRecord(str(exc)) from None
        finally:
            _reading.reset(token)
        record.extra.update(extra)
        return record

    @classmethod
    def _split(cls, doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The document's wire fields (as msgspec should read them) and the rest."""
        fields = {k: v for k, v in doc.items() if k in cls._wire_fields}
        for name in cls._timestamps:
            if isinstance(fields.get(name), str):
                fields[name] = _PAST_MICROSECONDS.sub(r"\1", fields[name], count=1)
        return fields, {k: v for k, v in doc.items() if k not in cls._wire_fields}


def wire(value: Any) -> Any:
    """Records (inside lists and dicts too) as their wire documents, ready for JSON: what
    `tt --json` prints and the MCP tools answer."""
    if isinstance(value, WireModel):
        return value.to_wire()
    if isinstance(value, list):
        return [wire(v) for v in value]
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    return value


# --- Agent --------------------------------------------------------------------


class Agent(WireModel):
    # the first three fields come first so that Agent("w", "claude", AgentType.WORKER) works
    name: str
    cli: str = "claude"
    agent_type: AgentType = AgentType.WORKER
    id: str = msgspec.field(default_factory=new_id)
    nickname: str | None = None
    role_id: str | None = None
    parent_agent_id: str | None = None
    spawn_mode: SpawnMode = SpawnMode.FRESH
    state: AgentState = AgentState.STARTING
    current_task: str | None = None
    created_at: datetime = msgspec.field(default_factory=utcnow)
    last_heartbeat: datetime = msgspec.field(default_factory=utcnow)
    tasks_completed: Count = 0
    rounds_completed: Count = 0
    last_active_at: datetime = msgspec.field(default_factory=utcnow)
    current_scope: str | None = None
    # Tinytown's own fields, after the wire format's (readers ignore what they don't know)
    session: SessionPolicy = SessionPolicy.CONTINUE  # continue the CLI's session, or not
    session_id: str | None = None  # the agent CLI's session to continue next round
    session_usage: dict[str, Any] | None = None  # a session's totals as its CLI reported
    usage: Usage | None = None  # tokens and cost of all its rounds
    budget_usd: float | None = None  # it runs no round once its cost reaches this
    budget_tokens: int | None = None  # nor once its tokens (input, cached, output) do
    hold: str | None = None  # why it is paused by Tinytown itself (budget, usage limit)
    resume_at: datetime | None = None  # when the supervisor resumes it (a usage limit)
    workspace: str | None = None  # the folder its CLI runs in (None: the town's root)
    branch: str | None = None  # its git branch, when the workspace is a worktree
    base: str | None = None  # the commit its branch started from
    host: str | None = None  # the host daemon it is placed on (None: started by hand/locally)
    host_labels: list[str] = msgspec.field(default_factory=list)  # a host must have these
    restarts: Count = 0  # how many times its host restarted it after a crash
    crashes: list[float] = msgspec.field(default_factory=list)  # recent crash times (Unix s)
    halted: str | None = None  # why its host stopped restarting it (a crash loop)

    _uuids = ("id", "parent_agent_id", "current_task")
    _timestamps = ("created_at", "last_heartbeat", "last_active_at", "resume_at")
    _own_defaults: ClassVar[dict[str, Any]] = {
        "session": SessionPolicy.CONTINUE, "session_id": None, "session_usage": None,
        "usage": None, "budget_usd": None, "budget_tokens": None, "hold": None, "resume_at": None,
        "workspace": None, "branch": None, "base": None, "host": None, "host_labels": [],
        "restarts": 0, "crashes": [], "halted": None}
    _wire_fields = (
        "id", "name", "nickname", "role_id", "parent_agent_id", "spawn_mode", "agent_type",
        "state", "cli", "current_task", "created_at", "last_heartbeat", "tasks_completed",
        "rounds_completed", "last_active_at", "current_scope", *_own_defaults,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nickname is None and not _reading.get():  # a stored null stays null
            from tinytown.core.nicknames import default_nickname

            self.nickname = default_nickname(self.id)

    @classmethod
    def _split(cls, doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        fields, extra = super()._split(doc)
        if "last_active_at" not in fields and "created_at" in fields:  # an old record
            fields["last_active_at"] = fields["created_at"]
        return fields, extra

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
        from tinytown.core.nicknames import default_nickname

        return self.nickname or default_nickname(self.id)


# --- Task ---------------------------------------------------------------------


class Task(WireModel):
    # description first and optional, so Task("Build the API") works and Task() is
    # a UsageError like Task(""), not a TypeError
    description: str = ""
    id: str = msgspec.field(default_factory=new_id)
    state: TaskState = TaskState.PENDING
    assigned_to: str | None = None
    created_at: datetime = msgspec.field(default_factory=utcnow)
    updated_at: datetime = msgspec.field(default_factory=utcnow)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: str | None = None
    parent_id: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    usage: Usage | None = None  # Tinytown's own: tokens and cost of the rounds it took
    branch: str | None = None  # the branch its rounds committed to
    commits: list[str] = msgspec.field(default_factory=list)  # those commits, in order

    _uuids = ("id", "assigned_to", "parent_id")
    _timestamps = ("created_at", "updated_at", "started_at", "completed_at")
    _own_defaults: ClassVar[dict[str, Any]] = {"usage": None, "branch": None, "commits": []}
    _wire_fields = (
        "id", "description", "state", "assigned_to", "created_at", "updated_at", "started_at",
        "completed_at", "result", "parent_id", "tags", *_own_defaults,
    )

    if TYPE_CHECKING:  # as before: callers may pass an unchecked `str | None`
        def __init__(self, description: str | None = None, **fields: Any) -> None: ...

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _reading.get() and not (self.description or "").strip():
            raise UsageError("a task needs a non-empty description")

    @classmethod
    def _split(cls, doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        # a stored task without a description is invalid (skipped), not a usage error
        if "description" not in doc:
            raise InvalidRecord("Object missing required field `description`")
        return super()._split(doc)


# --- Messages -----------------------------------------------------------------


class AckKind(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    THANKS = "thanks"
    APPROVED = "approved"
    REJECTED = "rejected"


class Ack(msgspec.Struct):
    """A confirmation's kind; only a rejection carries a reason ("" when none given)."""

    type: AckKind = AckKind.ACKNOWLEDGED
    reason: str | None | msgspec.UnsetType = msgspec.UNSET  # UNSET: not written

    def __post_init__(self) -> None:
        rejected = self.type == AckKind.REJECTED
        self.reason = (self.reason or "") if rejected else msgspec.UNSET


class MessageType(_Normalized, tag_field="type"):
    """A message's type and that type's own fields.

    Build one with the constructors: ``MessageType.task("Build the API")``,
    ``MessageType.status_request()``, ...
    """

    actionable: ClassVar[bool] = True  # needs the agent CLI (or a direct answer)
    needs_cli: ClassVar[bool] = False  # a round runs the agent CLI for it (NEEDS_CLI)

    @property
    def type(self) -> str:
        return str(self.__struct_config__.tag)

    def to_dict(self) -> dict[str, Any]:
        """``type`` and the type's fields as JSON values, as the flat message holds them."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

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


class TaskMsg(MessageType, tag="task"):
    needs_cli: ClassVar[bool] = True
    description: str


class QueryMsg(MessageType, tag="query"):
    needs_cli: ClassVar[bool] = True
    question: str


class InformationalMsg(MessageType, tag="informational"):
    actionable: ClassVar[bool] = False
    summary: str


class ConfirmationMsg(MessageType, tag="confirmation"):
    actionable: ClassVar[bool] = False
    ack_type: Ack


class TaskAssignMsg(MessageType, tag="task_assign"):
    needs_cli: ClassVar[bool] = True
    _uuids = ("task_id",)
    task_id: str


class TaskDoneMsg(MessageType, tag="task_done"):
    actionable: ClassVar[bool] = False
    _uuids = ("task_id",)
    task_id: str
    result: str


class TaskFailedMsg(MessageType, tag="task_failed"):
    actionable: ClassVar[bool] = False
    _uuids = ("task_id",)
    task_id: str
    error: str


class StatusRequestMsg(MessageType, tag="status_request"):
    pass


class StatusResponseMsg(MessageType, tag="status_response"):
    actionable: ClassVar[bool] = False
    _uuids = ("current_task",)
    state: AgentState
    current_task: str | None = None


class PingMsg(MessageType, tag="ping"):
    pass


class PongMsg(MessageType, tag="pong"):
    actionable: ClassVar[bool] = False


class ShutdownMsg(MessageType, tag="shutdown"):
    pass


class CustomMsg(MessageType, tag="custom"):
    needs_cli: ClassVar[bool] = True
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

NEEDS_CLI: frozenset[str] = frozenset(
    str(cls.__struct_config__.tag) for cls in MessageType.__subclasses__() if cls.needs_cli
)
"""The message types a round runs the agent CLI for; the others are answered by the
round itself (ping, status_request), end it (shutdown) or wait as notes."""

# each type's own fields, which sit beside the common ones in the flat document
_BODY_FIELDS: dict[str, frozenset[str]] = {
    str(cls.__struct_config__.tag): frozenset(cls.__struct_encode_fields__)
    for cls in MessageType.__subclasses__()
}


class Message(WireModel, kw_only=True):
    """One flat JSON object: common fields, ``type`` and the type's fields side by side."""

    id: str = msgspec.field(default_factory=new_id)
    sender: str = msgspec.field(name="from")
    to: str
    body: MessageBody
    priority: Priority = Priority.NORMAL
    created_at: datetime = msgspec.field(default_factory=utcnow)
    correlation_id: str | None = None

    _uuids = ("id", "sender", "to", "correlation_id")
    _timestamps = ("created_at",)
    _wire_fields = ("id", "from", "to", "priority", "created_at", "correlation_id")

    def to_wire(self) -> dict[str, Any]:
        rest = super().to_wire()  # common fields, then the extra ones
        flat = {name: rest.pop(name) for name in ("id", "from", "to")}
        return {**flat, **self.body.to_dict(), **rest}

    @classmethod
    def _split(cls, doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        kind = doc.get("type")
        own = _BODY_FIELDS.get(kind, frozenset()) if isinstance(kind, str) else frozenset()
        body = {k: v for k, v in doc.items() if k in own or k == "type"}
        fields, extra = super()._split({k: v for k, v in doc.items() if k not in body})
        fields["body"] = body
        return fields, extra

    @property
    def type(self) -> str:
        return self.body.type

    @property
    def actionable(self) -> bool:
        return self.body.actionable

    @property
    def needs_cli(self) -> bool:
        return self.body.needs_cli
