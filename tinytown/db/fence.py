"""Fencing: at most one worker serves an agent, on any host.

A worker start takes the agent over (`runtime.acquire`): the agent's epoch key
`tt:<town>:epoch:<agent-id>` goes up by one, and its new value is the start's fencing
token. A second start is refused while the holder lives. Every write a worker makes
for its agent checks the token atomically: the Lua steps compare it, the WATCH
transactions watch the key and read it before their MULTI. A worker that froze, was
declared dead and was replaced (a newer epoch) has each write refused (`Fenced`): it
stops its CLI and exits without touching the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinytown.core.errors import Fenced, WrongType
from tinytown.db.connection import text


@dataclass(frozen=True)
class Fence:
    """One worker start's fencing token for one agent."""

    key: str  # the agent's epoch key
    epoch: int

    @property
    def token(self) -> str:
        """The epoch as the Lua steps compare it."""
        return str(self.epoch)

    def check(self, pipe: Any) -> None:
        """Inside a WATCH transaction that watches `key`, before its MULTI: raise
        Fenced unless the epoch is still this worker's."""
        try:
            self.verify(text(pipe.get(self.key)))
        except WrongType:
            self.verify(None)

    def verify(self, current: str | None) -> None:
        """Raise Fenced unless `current` (the epoch key as read) is this worker's epoch."""
        if current != self.token:
            raise Fenced(f"epoch {self.epoch} is stale (now {current}):"
                         " a newer worker serves the agent")


def token(fence: Fence | None) -> str:
    """The token a Lua step compares ('' for an unfenced caller: recovery, tests)."""
    return fence.token if fence is not None else ""


def watching(fence: Fence | None, *watch: str) -> list[str]:
    """The keys a transaction watches, the epoch key included when fenced."""
    return [*watch, fence.key] if fence is not None else list(watch)


def check(fence: Fence | None, pipe: Any) -> None:
    if fence is not None:
        fence.check(pipe)
