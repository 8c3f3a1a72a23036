"""Who is asking: the bearer key of every request but /healthz and /readyz, checked
against the town's keys for the scope the route needs, and the audit of writes.

The key is read from the `Authorization` header only (never a query parameter), so it
never reaches an access log, which records the request line and not the headers.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinytown.apikeys import ApiKey
from tinytown.apikeys import Scope as KeyScope
from tinytown.errors import TinytownError
from tinytown.ops.town import Town

log = logging.getLogger("tinytown.http")

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", bearerFormat="tt_...",
                    description="A key from `tt auth add NAME --scope read|write|admin`")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def town_of(request: Request) -> Town:
    town: Town = request.app.state.town
    return town


def needs(scope: KeyScope) -> Any:
    """A dependency: the request's key, if the town knows it and its scope allows
    `scope` (401 or 403 otherwise). The audit reads it from the request's state."""

    def check(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None,
                                                       Depends(bearer)]) -> ApiKey:
        key = town_of(request).authenticate(credentials.credentials if credentials else None,
                                            KeyScope.READ)
        request.state.api_key = key  # a write it may not make is audited too
        key.require(scope)
        return key

    return Depends(check)


class Audit:
    """ASGI middleware: after each request that may write (not GET/HEAD/OPTIONS) made
    with a known key, an `api` event with the key's name, the method, path and status."""

    def __init__(self, app: ASGIApp, town: Town) -> None:
        self.app = app
        self.town = town

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            key = scope.get("state", {}).get("api_key")
            if isinstance(key, ApiKey):
                try:
                    await anyio.to_thread.run_sync(self.town.audit, key.name,
                                                   scope["method"], scope["path"], status)
                except TinytownError as exc:  # the answer is sent: say so in the log
                    log.warning("no audit event for %s %s by key %r: %s", scope["method"],
                                scope["path"], key.name, exc)
