"""Messages: a message's type and that type's fields (`MessageType` and its subclasses,
one per `type` tag) and `Message`, one flat JSON object as shared/wire-format.md says.

Their own module, the largest concept of the records, to keep tinytown/core/models.py
small; import them from tinytown.core.models as before (it re-exports every name here).
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
