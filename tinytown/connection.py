"""Redis clients for a town, with redis-py's errors turned into ours at this boundary.

`TownRedis` maps connection, timeout and authentication failures of every command
(and of pipelines) to `RedisUnreachable`, naming where it tried with the password
redacted. Nothing else in Tinytown catches redis-py's connection errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
from redis.client import Pipeline

from tinytown.errors import RedisUnreachable
from tinytown.settings import Settings

_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError)


def redact(url: str) -> str:
    """The URL with any password replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo or user else f"***@{host}"
    query = urlencode(
        [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)],
        safe="*",
    )
    return _join(parts.scheme, netloc, parts.path, query)


def _join(scheme: str, netloc: str, path: str, query: str) -> str:
    """urlunsplit drops the // of an empty netloc (unix:///path); keep it."""
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


def redact_text(text: str, url: str) -> str:
    """Remove the URL's password from any text (error messages, logs)."""
    password = urlsplit(url).password
    for k, v in parse_qsl(urlsplit(url).query):
        if k.lower() == "password":
            password = v
    return text.replace(password, "***") if password else text


@contextmanager
def map_redis_errors(url: str) -> Iterator[None]:
    try:
        yield
    except _UNREACHABLE as exc:
        reason = redact_text(str(exc), url).splitlines()[0] if str(exc) else type(exc).__name__
        raise RedisUnreachable(f"cannot reach Redis at {redact(url)}: {reason}") from None


class TownPipeline(Pipeline):
    tt_url = ""

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        with map_redis_errors(self.tt_url):
            result: list[Any] = super().execute(raise_on_error)
            return result

    def execute_command(self, *args: Any, **options: Any) -> Any:
        with map_redis_errors(self.tt_url):
            return super().execute_command(*args, **options)


class TownRedis(redis.Redis):
    tt_url = ""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        with map_redis_errors(self.tt_url):
            return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> TownPipeline:
        pipe = TownPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.tt_url = self.tt_url
        return pipe


def redis_url(settings: Settings) -> str:
    """The URL redis-py connects to (the embedded server is a unix socket)."""
    if settings.redis_url:
        return settings.redis_url
    from tinytown.redis_server import EmbeddedRedis

    return EmbeddedRedis(settings.runtime_dir).url


def celery_url(settings: Settings) -> str:
    """The same Redis as kombu spells it: unix sockets are redis+socket:// there."""
    url = redis_url(settings)
    parts = urlsplit(url)
    if parts.scheme != "unix":
        return url
    query = dict(parse_qsl(parts.query))
    db = query.pop("db", None)
    if db is not None:
        query["virtual_host"] = db
    netloc = parts.netloc if "@" in parts.netloc else ""
    return _join("redis+socket", netloc, parts.path, urlencode(query))


def connect(settings: Settings, start: bool = True) -> TownRedis:
    """A client for the town's Redis; starts the embedded server when needed."""
    url = redis_url(settings)
    if settings.embedded and start:
        from tinytown.redis_server import EmbeddedRedis

        EmbeddedRedis(settings.runtime_dir).ensure_running()
    if not re.match(r"^(redis|rediss|unix)://", url):
        from tinytown.errors import ConfigError

        raise ConfigError(f"unsupported Redis URL {redact(url)}: use redis://, rediss:// or unix://")
    client: TownRedis = TownRedis.from_url(
        url, decode_responses=True, socket_connect_timeout=5, health_check_interval=30,
        encoding_errors="replace",  # a foreign non-UTF-8 value is skipped, not a crash
    )
    client.tt_url = url
    return client
