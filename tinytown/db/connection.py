"""Redis clients for a town, with redis-py's errors turned into ours at this boundary.

`TownRedis` maps connection, timeout and authentication failures of every command
(and of pipelines) to `RedisUnreachable`, naming where it tried with the password
redacted. Nothing else in Tinytown catches redis-py's connection errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import redis
from redis.client import Pipeline

from tinytown.core.errors import RedisUnreachable, WrongType
from tinytown.core.settings import Settings
from tinytown.core.urls import redact, redact_text, redis_url

# Every reply within this, or RedisUnreachable: a Redis that died or froze does not
# hold a caller (an API thread, a worker's beat, the supervisor) for longer. redis-py 8
# has this default, older versions wait for ever.
SOCKET_TIMEOUT = 5.0
# A blocking command (BLPOP, XREAD BLOCK) waits at most this long per call, well under
# SOCKET_TIMEOUT (its reply comes when the block ends); longer waits loop.
BLOCK_SECS = 2.0

# InvalidResponse: what answered is not a Redis server
_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError,
                redis.exceptions.InvalidResponse)


@contextmanager
def map_redis_errors(url: str) -> Iterator[None]:
    try:
        yield
    except _UNREACHABLE as exc:
        reason = redact_text(str(exc), url).splitlines()[0] if str(exc) else type(exc).__name__
        raise RedisUnreachable(f"cannot reach Redis at {redact(url)}: {reason}") from None
    except redis.ResponseError as exc:
        if "WRONGTYPE" in str(exc):  # a foreign key where Tinytown keeps one of its own
            raise WrongType(str(exc).splitlines()[0]) from None
        if "DB index" not in str(exc):  # a command's own error: the caller's to handle
            raise
        raise RedisUnreachable(f"cannot use Redis at {redact(url)}: {exc}") from None


class TownPipeline(Pipeline):
    tt_url = ""
    tt_client: TownRedis  # the client it came from (scripts are registered on it)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        with map_redis_errors(self.tt_url):
            result: list[Any] = super().execute(raise_on_error)
            return result

    def execute_command(self, *args: Any, **options: Any) -> Any:
        with map_redis_errors(self.tt_url):
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


class TownRedis(redis.Redis):
    tt_url = ""
    tt_started = False  # connecting started the town's embedded server (it was down)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        with map_redis_errors(self.tt_url):
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> TownPipeline:
        pipe = TownPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.tt_url = self.tt_url
        pipe.tt_client = self
        return pipe


def connect(settings: Settings, start: bool = True) -> TownRedis:
    """A client for the town's Redis; starts the embedded server when needed."""
    url = redis_url(settings)
    started = False
    if settings.embedded and start:
        from tinytown.db.embedded import EmbeddedRedis

        started = EmbeddedRedis(settings.runtime_dir).ensure_running()
    if not re.match(r"^(redis|rediss|unix)://", url):
        from tinytown.core.errors import ConfigError

        raise ConfigError(f"unsupported Redis URL {redact(url)}: use redis://, rediss:// or unix://")
    try:
        client = TownRedis.from_url(
            url, decode_responses=True, socket_connect_timeout=5, health_check_interval=30,
            socket_timeout=SOCKET_TIMEOUT,
            encoding_errors="replace",  # a foreign non-UTF-8 value is skipped, not a crash
        )
    except ValueError as exc:  # a port out of range, a bad IPv6 literal, a bad db index
        raise RedisUnreachable(f"invalid Redis URL {redact(url)}: {exc}") from None
    assert isinstance(client, TownRedis)  # from_url builds the class it is called on
    client.tt_url = url
    client.tt_started = started
    return client


# redis-py types replies as `bytes | str`: the encoding is chosen at run time. A town's
# clients always decode (decode_responses=True), so replies are str; these narrow the
# types at the data layer's boundary, and would fail loudly on an undecoded client.


def text(reply: bytes | str | None) -> str | None:
    """One reply of a decoding client."""
    if reply is None or isinstance(reply, str):
        return reply
    raise TypeError("a Tinytown Redis client decodes replies: got bytes")


def texts(replies: Iterable[bytes | str]) -> list[str]:
    return [t for t in map(text, replies) if t is not None]


def text_map(reply: Mapping[bytes | str, bytes | str] | None) -> dict[str, str]:
    """A hash (or a stream entry's fields) of a decoding client."""
    return {str(text(k)): str(text(v)) for k, v in (reply or {}).items()}
