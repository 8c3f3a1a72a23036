"""Where a town's Redis is, as redis-py and kombu spell it, and passwords kept out of
sight. Pure: no Redis client, so the CLI, Celery's configuration and the data layer
all share it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from tinytown.core.settings import Settings

SOCKET_FALLBACK = "/tmp/tinytown-{uid}"  # when .tt/redis.sock is too long for AF_UNIX
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux


def redact(url: str) -> str:
    """The URL with any password replaced by ***."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:  # cannot tell where a password is: show none of it
        return f"{url.split('://', 1)[0]}://<unparsable>"
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
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    for k, v in parse_qsl(urlsplit(url).query):
        if k.lower() == "password":
            password = v
    return text.replace(password, "***") if password else text


def socket_path_for(runtime_dir: Path) -> Path:
    """.tt/redis.sock, or a short path under /tmp when that one is too long for AF_UNIX."""
    path = runtime_dir.resolve() / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:16]
    return Path(SOCKET_FALLBACK.format(uid=os.getuid())) / f"{digest}.sock"


def redis_url(settings: Settings) -> str:
    """The URL redis-py connects to (the embedded server is a unix socket)."""
    if settings.redis_url:
        return settings.redis_url
    return f"unix://{socket_path_for(settings.runtime_dir)}"


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
