"""The machinery every stored record shares: ids, UTC times, and `WireModel`, a record
serialized exactly as shared/wire-format.md says, keeping the fields it does not know.

A module of its own (tinytown/core/models.py re-exports these names) so that the records
there and the message bodies in tinytown/core/message_bodies.py build on one base without
importing each other. msgspec structs: importing them costs a few milliseconds, where
pydantic would cost ~85 ms on every `tt` call.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import msgspec

from tinytown.core.errors import InvalidRecord, UsageError

# True while a stored document is parsed: readers accept what a writer may refuse to create
_reading: ContextVar[bool] = ContextVar("tinytown_reading", default=False)
# msgspec rounds a fraction past microseconds; the wire format's readers truncate it
_PAST_MICROSECONDS = re.compile(r"(\.\d{6})\d+")


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
