"""Who is asking: the bearer key of every request but /healthz and /readyz, checked
against the town's keys for the scope the route needs, and the audit of writes.

The key is read from the `Authorization` header (never a query parameter), so it never
reaches an access log, which records the request line and not the headers. A browser
(the dashboard, whose EventSource cannot set a header) sends it instead in the session
cookie that `POST /login` sets: HttpOnly (no script reads it), SameSite=Strict (no
other site's page sends it), Secure and `__Host-` prefixed under TLS. A request that may
write with the cookie must also carry `X-Requested-With` (which a cross-site form cannot
send, and a cross-site script cannot without a CORS preflight this server never grants)
and, when the browser names one, come from this server's own origin.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinytown.core.apikeys import ApiKey
from tinytown.core.apikeys import Scope as KeyScope
from tinytown.core.errors import NotPermitted, TinytownError
from tinytown.ops.facade import Town

log = logging.getLogger("tinytown.http")

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", bearerFormat="tt_...",
                    description="A key from `tt auth add NAME --scope read|write|admin`")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "tt_session"  # over plain HTTP
SECURE_SESSION_COOKIE = "__Host-tt_session"  # over TLS: Secure, Path=/, no Domain
CSRF_HEADER = "X-Requested-With"


def town_of(request: Request) -> Town:
    town: Town = request.app.state.town
    return town


def needs(scope: KeyScope) -> Any:
    """A dependency: the request's key, if the town knows it and its scope allows
    `scope` (401 or 403 otherwise). The audit reads it from the request's state."""

    def check(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None,
                                                       Depends(bearer)]) -> ApiKey:
        # a request with an Authorization header is judged by it alone
        cookie = None if "authorization" in request.headers else session_key(request)
        presented = credentials.credentials if credentials else cookie
        key = town_of(request).authenticate(presented, KeyScope.READ)
        request.state.api_key = key  # a write it may not make is audited too
        if cookie is not None and request.method not in SAFE_METHODS:
            check_same_origin(request)
        key.require(scope)
        return key

    return Depends(check)


def session_cookie(request: Request) -> str:
    """The session cookie's name for this request: `__Host-` prefixed under TLS."""
    return SECURE_SESSION_COOKIE if request.url.scheme == "https" else SESSION_COOKIE


def session_key(request: Request) -> str | None:
    """The key a browser's session cookie holds (None: no session)."""
    return request.cookies.get(session_cookie(request)) or None


def check_same_origin(request: Request) -> None:
    """NotPermitted unless a request made with the session cookie is the dashboard's
    own: it carries `X-Requested-With`, and its `Origin`, when the browser sends one,
    is this server (scheme, host and port)."""
    if not request.headers.get(CSRF_HEADER):
        raise NotPermitted(f"a write with the session cookie needs the {CSRF_HEADER}"
                           " header (send `Authorization: Bearer <key>` from a script)")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin is not None and origin.lower() != own.lower():
        raise NotPermitted("a write with the session cookie must come from this server's"
                           " own pages")


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
