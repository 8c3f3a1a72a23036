"""The MCP tools over streamable HTTP, for `tt serve` to mount at `/mcp`.

Stateless (each POST carries one JSON-RPC request and gets a JSON answer; no session is
kept), so any number of `tt serve` can answer one client and every request is checked
with the key it carries. Authenticating the key is the HTTP layer's (tinytown/http/
mcp.py) before a request gets here; `identify` then reads the caller off the request.
The SDK's DNS-rebinding check (Host and Origin headers) is off: a page in a browser
cannot send the bearer key, which every request needs.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings

from tinytown.mcp.tools import Audit, Identify, build
from tinytown.ops.facade import Town

Asgi = Any  # an ASGI callable: (scope, receive, send) -> None


class HttpTools:
    """The streamable-HTTP handler of the town's tools; `running()` must be entered
    (the app's lifespan) before it handles a request."""

    def __init__(self, town: Town, identify: Identify, audit: Audit,
                 max_body_bytes: int) -> None:
        self.server = build(town, identify, audit)
        self.server.streamable_http_app(
            stateless_http=True, json_response=True, max_request_body_size=max_body_bytes,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        self.manager = self.server.session_manager

    def running(self) -> AbstractAsyncContextManager[None]:
        """The session manager's task group, for the app's lifespan."""
        return self.manager.run()

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        await self.manager.handle_request(scope, receive, send)
