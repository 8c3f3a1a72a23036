"""/mcp: the town's MCP tools (tinytown/mcp/) over streamable HTTP, with the REST
API's keys and scopes.

Every request needs a bearer key, as everywhere but /healthz and /readyz: none, or an
unknown or revoked one, is a 401 before the MCP SDK sees the request. Any key may list
the tools and call the read ones; each write tool checks the key's scope itself (a read
key is refused send_message, spawn_helper needs admin). Who "me" is (whose inbox, whose
task, who sends) is the `X-Tinytown-Agent` header (a name, nickname or id), else the
supervisor: the key, not the header, is what grants anything. Each write tool call is
audited as an `api` event (method `MCP`, path `/mcp/<tool>`, the status the REST API
would have answered), a refused one too.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from tinytown.core.apikeys import ApiKey
from tinytown.core.apikeys import Scope as KeyScope
from tinytown.core.errors import TinytownError, one_line
from tinytown.http.error_responses import error, status_of
from tinytown.http.limits import MAX_BODY_BYTES
from tinytown.mcp.streamable_http import HttpTools
from tinytown.mcp.tools import Caller
from tinytown.ops.facade import Town

log = logging.getLogger("tinytown.http")

AGENT_HEADER = "X-Tinytown-Agent"
_KEY = "tinytown.api_key"  # where the request's checked key waits for the tools


def bearer_token(headers: Headers) -> str | None:
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def identify(request: Any) -> Caller:
    """The caller of a tool: the request's key (checked by `McpEndpoint`) and agent."""
    key = request.scope[_KEY]
    assert isinstance(key, ApiKey)
    return Caller(agent=request.headers.get(AGENT_HEADER) or None, scope=key.scope, key=key)


class McpEndpoint:
    """The ASGI app at /mcp: the key first, then the SDK's streamable HTTP."""

    def __init__(self, town: Town) -> None:
        self.town = town
        self.tools = HttpTools(town, identify, self.audit, MAX_BODY_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = bearer_token(Headers(scope=scope))
        try:
            key = await anyio.to_thread.run_sync(self.town.authenticate, token, KeyScope.READ)
        except TinytownError as exc:
            status = status_of(exc)
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            await error(status, one_line(exc), headers)(scope, receive, send)
            return
        scope[_KEY] = key
        await self.tools.handle(scope, receive, send)

    def audit(self, caller: Caller, tool: str, failure: BaseException | None) -> None:
        """An `api` event for a write tool's call (run in the tool's thread), with the
        status the REST API would have answered."""
        if caller.key is None:
            return
        status = (200 if failure is None else status_of(failure)
                  if isinstance(failure, TinytownError) else 500)
        try:
            self.town.audit(caller.key.name, "MCP", f"/mcp/{tool}", status)
        except TinytownError as exc:  # the answer stands: say so in the log
            log.warning("no audit event for MCP tool %s by key %r: %s", tool,
                        caller.key.name, exc)
