"""API keys for `tt serve`: scopes, minting and the stored record (pure: no Redis).

A key is shown once, by `tt auth add`; the town keeps only its SHA-256 digest, so a
read of Redis (or of a snapshot) gives nobody a working key. A key is 32 random bytes:
a plain hash is enough, there is no guessable password to slow down a search for.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

from tinytown.core.errors import InvalidRecord, NotPermitted, UsageError
from tinytown.core.models import format_timestamp, utcnow

KEY_PREFIX = "tt_"  # says what a leaked string is (and lets secret scanners find one)
_KEY = re.compile(r"^tt_[A-Za-z0-9_-]{43}$")  # the prefix and 32 bytes in URL-safe base64
_NAME = re.compile(r"^(?!-)[A-Za-z0-9._-]{1,64}$")


class Scope(StrEnum):
    """What a key may do, each including the ones before: read < write < admin."""

    READ = "read"  # every GET: agents, tasks, inboxes, events, usage, metrics
    WRITE = "write"  # assign, send, complete, interrupt, resume, close, the backlog
    ADMIN = "admin"  # spawn, kill, restart, prune: start and end processes

    def allows(self, needed: Scope) -> bool:
        order = list(Scope)
        return order.index(self) >= order.index(needed)


class ApiKey(msgspec.Struct, kw_only=True):
    """A key as the town records it (never the key itself: its digest is the hash field)."""

    name: str
    scope: Scope
    created_at: datetime = msgspec.field(default_factory=utcnow)
    last_used_at: datetime | None = None  # kept apart (see db/apikey_store.py), to the minute

    def require(self, needed: Scope) -> None:
        """NotPermitted unless this key's scope allows what `needed` allows."""
        if not self.scope.allows(needed):
            raise NotPermitted(f"key {self.name!r} has scope {self.scope.value};"
                               f" this needs {needed.value}")

    def to_json(self) -> str:
        """The stored document: name, scope and creation time."""
        return msgspec.json.encode({"name": self.name, "scope": self.scope.value,
                                    "created_at": format_timestamp(self.created_at)}).decode()

    @classmethod
    def from_json(cls, raw: str) -> ApiKey:
        try:
            return msgspec.json.decode(raw, type=cls)
        except msgspec.ValidationError as exc:
            raise InvalidRecord(str(exc)) from None
        except msgspec.DecodeError as exc:
            raise InvalidRecord(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """For `tt auth list --json`: what a person may see of a key."""
        return {"name": self.name, "scope": self.scope.value,
                "created_at": format_timestamp(self.created_at),
                "last_used_at": format_timestamp(self.last_used_at)
                if self.last_used_at else None}


def mint() -> str:
    """A new key: `tt_` and 32 random bytes."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    """What the town stores and looks a presented key up by."""
    return hashlib.sha256(key.encode()).hexdigest()


def well_formed(key: str) -> bool:
    """Whether `key` could be a key at all (anything else is refused without a lookup)."""
    return bool(_KEY.match(key))


def validate_key_name(name: str) -> str:
    if not _NAME.match(name) or name in (".", ".."):
        raise UsageError(f"invalid key name {name!r}: use 1-64 letters, digits, '.', '_'"
                         " or '-', not starting with '-'")
    return name


def parse_scope(scope: str) -> Scope:
    try:
        return Scope(scope)
    except ValueError:
        raise UsageError(f"unknown scope {scope!r}: give read, write or admin") from None
