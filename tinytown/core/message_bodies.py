"""Messages: `Message`, one flat JSON object as shared/wire-format.md says, and its body.

One name per idea: a message's *body* is what it carries besides the envelope (from,
to, priority, ...): a `MessageBody`, one subclass per kind (`TaskBody`, `PingBody`, ...);
its *type* is only the wire's `type` tag, a string (`body.type`, `Message.type`).
`AnyBody` is the union of the body classes, the annotation msgspec decodes a body by
(its tag picks the class). `MessageType`, the name the spec and the public API
(`tinytown.MessageType.task(...)`) give the body's constructors, is `MessageBody`.

A module of its own, the largest concept of the records, to keep
tinytown/core/models.py small, which re-exports every name here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

import msgspec

from tinytown.core.enums import AgentState, Priority
from tinytown.core.records import WireModel, _Normalized, new_id, utcnow

MAX_MESSAGE_BYTES = 1024 * 1024


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


class MessageBody(_Normalized, tag_field="type"):
    """A message's body: its `type` tag and that type's own fields.

    Build one with the constructors: ``MessageBody.task("Build the API")``,
    ``MessageBody.status_request()``, ...
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
    def task(description: str) -> TaskBody:
        return TaskBody(description=description)

    @staticmethod
    def query(question: str) -> QueryBody:
        return QueryBody(question=question)

    @staticmethod
    def informational(summary: str) -> InformationalBody:
        return InformationalBody(summary=summary)

    @staticmethod
    def confirmation(
        ack: AckKind | str = AckKind.ACKNOWLEDGED, reason: str | None = None
    ) -> ConfirmationBody:
        return ConfirmationBody(ack_type=Ack(type=AckKind(ack), reason=reason))

    @staticmethod
    def task_assign(task_id: str) -> TaskAssignBody:
        return TaskAssignBody(task_id=task_id)

    @staticmethod
    def task_done(task_id: str, result: str) -> TaskDoneBody:
        return TaskDoneBody(task_id=task_id, result=result)

    @staticmethod
    def task_failed(task_id: str, error: str) -> TaskFailedBody:
        return TaskFailedBody(task_id=task_id, error=error)

    @staticmethod
    def status_request() -> StatusRequestBody:
        return StatusRequestBody()

    @staticmethod
    def status_response(state: AgentState | str, current_task: str | None) -> StatusResponseBody:
        return StatusResponseBody(state=AgentState(state), current_task=current_task)

    @staticmethod
    def ping() -> PingBody:
        return PingBody()

    @staticmethod
    def pong() -> PongBody:
        return PongBody()

    @staticmethod
    def shutdown() -> ShutdownBody:
        return ShutdownBody()

    @staticmethod
    def custom(kind: str, payload: str) -> CustomBody:
        return CustomBody(kind=kind, payload=payload)


class TaskBody(MessageBody, tag="task"):
    needs_cli: ClassVar[bool] = True
    description: str


class QueryBody(MessageBody, tag="query"):
    needs_cli: ClassVar[bool] = True
    question: str


class InformationalBody(MessageBody, tag="informational"):
    actionable: ClassVar[bool] = False
    summary: str


class ConfirmationBody(MessageBody, tag="confirmation"):
    actionable: ClassVar[bool] = False
    ack_type: Ack


class TaskAssignBody(MessageBody, tag="task_assign"):
    needs_cli: ClassVar[bool] = True
    _uuids = ("task_id",)
    task_id: str


class TaskDoneBody(MessageBody, tag="task_done"):
    actionable: ClassVar[bool] = False
    _uuids = ("task_id",)
    task_id: str
    result: str


class TaskFailedBody(MessageBody, tag="task_failed"):
    actionable: ClassVar[bool] = False
    _uuids = ("task_id",)
    task_id: str
    error: str


class StatusRequestBody(MessageBody, tag="status_request"):
    pass


class StatusResponseBody(MessageBody, tag="status_response"):
    actionable: ClassVar[bool] = False
    _uuids = ("current_task",)
    state: AgentState
    current_task: str | None = None


class PingBody(MessageBody, tag="ping"):
    pass


class PongBody(MessageBody, tag="pong"):
    actionable: ClassVar[bool] = False


class ShutdownBody(MessageBody, tag="shutdown"):
    pass


class CustomBody(MessageBody, tag="custom"):
    needs_cli: ClassVar[bool] = True
    kind: str
    payload: str


AnyBody = (
    TaskBody
    | QueryBody
    | InformationalBody
    | ConfirmationBody
    | TaskAssignBody
    | TaskDoneBody
    | TaskFailedBody
    | StatusRequestBody
    | StatusResponseBody
    | PingBody
    | PongBody
    | ShutdownBody
    | CustomBody
)
"""Any one body class: what `MessageBody.<kind>(...)` returns and `Message.body` holds."""

MessageType = MessageBody  # the spec's and the public API's name (`tinytown.MessageType`)

NEEDS_CLI: frozenset[str] = frozenset(
    str(cls.__struct_config__.tag) for cls in MessageBody.__subclasses__() if cls.needs_cli
)
"""The body types (tags) a round runs the agent CLI for; the others are answered by the
round itself (ping, status_request), end it (shutdown) or wait as notes."""

# each type's own fields, which sit beside the common ones in the flat document
_BODY_FIELDS: dict[str, frozenset[str]] = {
    str(cls.__struct_config__.tag): frozenset(cls.__struct_encode_fields__)
    for cls in MessageBody.__subclasses__()
}


class Message(WireModel, kw_only=True):
    """One flat JSON object: common fields, ``type`` and the type's fields side by side."""

    id: str = msgspec.field(default_factory=new_id)
    sender: str = msgspec.field(name="from")
    to: str
    body: AnyBody
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
