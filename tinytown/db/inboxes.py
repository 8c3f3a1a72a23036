"""Inboxes: each agent's list of messages, pushed at its priority's end, peeked, popped
(waiting or not) and counted; what does not parse goes to the dead letters.

A mixin of `Store` (tinytown/db/store.py), which it keeps under 500 lines: call these
as `store.push_message(...)` and so on. Delivering a message with its
wake-up is db/delivery.py's `deliver`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import InvalidRecord, MessageTooLarge, WrongType
from tinytown.core.models import MAX_MESSAGE_BYTES, Message
from tinytown.db.connection import BLOCK_SECS, TownRedis, text, texts

log = logging.getLogger("tinytown")


class Inboxes:
    """The inbox methods of `Store`; it gives them its client and town."""

    r: TownRedis
    town: str

    def push_message(self, message: Message, pipe: Pipeline | None = None) -> None:
        """Put a message in its recipient's inbox: urgent/high at the head, others at the tail."""
        data = message.to_json()
        if len(data.encode()) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(
                f"message is {len(data.encode())} bytes; the limit is {MAX_MESSAGE_BYTES} (1 MiB)"
            )
        target: Any = pipe if pipe is not None else self.r
        key = keys.inbox(self.town, message.to)
        if message.priority.goes_first:
            target.lpush(key, data)
        else:
            target.rpush(key, data)

    def peek_inbox(self, agent_id: str, limit: int = -1) -> list[Message]:
        key = keys.inbox(self.town, agent_id)
        try:
            raws = texts(self.r.lrange(key, 0, limit - 1 if limit > 0 else -1))
        except WrongType:
            log.warning("skipping %s: not a list", key)
            return []
        return self._parse_messages(key, raws)

    def inbox_len(self, agent_id: str) -> int:
        return int(self.r.llen(keys.inbox(self.town, agent_id)))

    def inbox_lens(self, agent_ids: list[str]) -> dict[str, int]:
        """Each agent's inbox length, in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.llen(keys.inbox(self.town, agent_id))
        lens = pipe.execute(raise_on_error=False) if agent_ids else []
        out = {}
        for agent_id, n in zip(agent_ids, lens, strict=True):
            if isinstance(n, Exception):  # another Redis type: counted as empty
                log.warning("skipping %s: not a list", keys.inbox(self.town, agent_id))
            out[agent_id] = n if isinstance(n, int) else 0
        return out

    def dead_letter(self, raw: str, pipe: Pipeline | None = None) -> None:
        """Keep an inbox element that is not a valid message for a human to look at."""
        log.warning("moving a message that does not parse to %s", keys.deadletter(self.town))
        target: Any = pipe if pipe is not None else self.r
        target.rpush(keys.deadletter(self.town), raw)

    def parse_messages(self, raws: list[str], pipe: Pipeline | None = None) -> list[Message]:
        """The messages among `raws`; those that do not parse go to the dead letters."""
        messages = []
        for raw in raws:
            try:
                messages.append(Message.from_json(raw))
            except InvalidRecord:
                self.dead_letter(raw, pipe)
        return messages

    def pop_message(self, agent_id: str) -> Message | None:
        """Take the inbox's first valid message (elements that are not one go to the
        dead letters on the way); None when the inbox holds none."""
        key = keys.inbox(self.town, agent_id)
        while True:
            try:
                popped = self.r.lpop(key)
            except WrongType:
                log.warning("skipping %s: not a list", key)
                return None
            raw = None if isinstance(popped, list) else text(popped)
            if raw is None:
                return None
            message = self._valid_message(raw)
            if message is not None:
                return message

    def blocking_pop(self, agent_id: str, timeout: float) -> Message | None:
        """`pop_message`, waiting up to `timeout` seconds for a valid message (0: as
        long as it takes, like BLPOP). One BLPOP waits at most BLOCK_SECS, under the
        client's read timeout: a dead Redis is noticed (RedisUnreachable) however long
        the wait."""
        key = keys.inbox(self.town, agent_id)
        deadline = time.monotonic() + timeout
        while True:
            left = BLOCK_SECS if timeout <= 0 else deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                # at least 10 ms: Redis reads a timeout under 1 ms as 0, for ever
                got = self.r.blpop([key], timeout=max(0.01, min(left, BLOCK_SECS)))
            except WrongType:
                log.warning("skipping %s: not a list", key)
                return None
            if not got:
                continue
            message = self._valid_message(str(text(got[1])))
            if message is not None:
                return message

    def _valid_message(self, raw: str) -> Message | None:
        try:
            return Message.from_json(raw)
        except InvalidRecord:
            self.dead_letter(raw)
            return None

    def _parse_messages(self, key: str, raws: list[str]) -> list[Message]:
        messages = []
        for i, raw in enumerate(raws):
            try:
                messages.append(Message.from_json(raw))
            except InvalidRecord:
                log.warning("skipping element %d of %s: not a valid Message", i, key)
        return messages
