"""A cap on request bodies, checked before anything reads one.

FastAPI reads a body before it resolves a route's dependencies (the key check among
them): without a cap, anyone who reaches the port could make the server hold a body of
any size in memory. The largest useful body is a message or a task of 1 MiB (the
town's limit), a few times that as JSON escapes.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinytown.http.error_responses import error

MAX_BODY_BYTES = 8 * 1024 * 1024
TOO_LARGE = f"the request body is over {MAX_BODY_BYTES // (1024 * 1024)} MiB"


class BodyLimit:
    """ASGI middleware: 413 for a body over MAX_BODY_BYTES, by its Content-Length or,
    for a chunked one, as soon as the bytes read pass the cap (FastAPI lets an
    HTTPException from reading the body through, to the error handlers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or
                                     int(declared) > MAX_BODY_BYTES):
            await error(413, TOO_LARGE)(scope, receive, send)
            return
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    raise HTTPException(413, TOO_LARGE)
            return message

        await self.app(scope, counting, send)
