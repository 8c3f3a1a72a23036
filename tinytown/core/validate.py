"""What a user may name, nickname and wait for: checked in one place for the CLI and
the Python API alike (pure: the CLI checks before it opens a town)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from tinytown.core.errors import UsageError

RESERVED_NAMES = ("supervisor", "conductor")
_AGENT_NAME = re.compile(r"^(?!-)[A-Za-z0-9._-]{1,64}$")


def validate_agent_name(name: str) -> str:
    if not _AGENT_NAME.match(name):
        raise UsageError(
            f"invalid agent name {name!r}: use 1-64 letters, digits, '.', '_' or '-',"
            " not starting with '-'"
        )
    if name in (".", ".."):
        raise UsageError(f"invalid agent name {name!r}: it names a folder, not an agent")
    if name.lower() in RESERVED_NAMES:
        raise UsageError(f"{name!r} is reserved for the supervisor mailbox; pick another name")
    return name


def validate_nickname(nickname: str) -> str:
    """The nickname as stored: trimmed, 1-64 characters, not the supervisor's."""
    trimmed = nickname.strip()
    if not trimmed:
        raise UsageError("a nickname cannot be empty")
    if len(trimmed) > 64:
        raise UsageError(f"a nickname has at most 64 characters (this one has {len(trimmed)})")
    if trimmed.lower() in RESERVED_NAMES:
        raise UsageError(f"nickname {trimmed!r} is reserved for the supervisor mailbox")
    return trimmed


def utf8_size(text: str) -> int:
    """The text's size in bytes as stored; UsageError for text that is not UTF-8 (bytes
    that came in through an argument or standard input undecoded)."""
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        raise UsageError("text that is not valid UTF-8 cannot be stored;"
                         " give it as UTF-8") from None


def validate_timeout(timeout: float | None) -> float | None:
    """A wait's limit in seconds: None (no limit) or a finite number, 0 or more."""
    if timeout is not None and not (math.isfinite(timeout) and timeout >= 0):
        raise UsageError(f"a timeout is a finite number of seconds, 0 or more (not {timeout})")
    return timeout


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str, now: datetime) -> datetime:
    """`--since`: a duration back from now (`90s`, `30m`, `12h`, `2d`, `1w`) or a time
    (ISO 8601; UTC unless it says otherwise)."""
    found = _DURATION.match(value)
    if found:
        seconds = float(found.group(1)) * _SECONDS[found.group(2)]
        if seconds > 3650 * 86400:
            raise UsageError(f"--since {value!r}: more than ten years")
        return now - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"--since {value!r}: give a duration (30m, 12h, 2d) or a time"
                         " (2026-12-01T22:00)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def validate_usd(value: float) -> float:
    """A budget in USD: a finite number, 0 or more."""
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{value!r} is not a budget: give a finite number of USD, 0 or more")
    return value
