"""The ASGI app of `tt serve`: one town, its routes, its errors, its audit.

FastAPI (on Starlette) because its routes are declared with the pydantic models of
`schemas.py`, which both check the requests and write /openapi.json: the document
cannot drift from the code. Handlers are plain functions that call the `Town` API,
run in Starlette's thread pool (the Redis client is synchronous and thread-safe).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from starlette.routing import Route

from tinytown.http import (
    agents,
    backlog,
    error_responses,
    events,
    health,
    messages,
    metrics,
    missions,
    questions,
    tasks,
    usage,
)
from tinytown.http.auth import Audit
from tinytown.http.dashboard import router as dashboard
from tinytown.http.limits import BodyLimit
from tinytown.http.mcp import McpEndpoint
from tinytown.ops.facade import Town

WAITS = 64  # task waits at once (each holds a thread while it polls)
STREAMS = 64  # event streams at once (each holds a thread while XREAD blocks)


def create_app(town: Town) -> FastAPI:
    from importlib.metadata import version

    mcp = McpEndpoint(town)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with mcp.tools.running():  # the MCP SDK's task group, for /mcp
            yield

    app = FastAPI(
        title=f"Tinytown: town {town.name}", version=version("tinytown"),
        description="Drive and watch a Tinytown town. Every route but /healthz and"
                    " /readyz needs `Authorization: Bearer <key>` (`tt auth add`).",
        openapi_url=None, docs_url=None, redoc_url=None,  # /openapi.json needs a key
        lifespan=lifespan,
    )
    app.state.town = town
    app.state.waits = anyio.CapacityLimiter(WAITS)
    app.state.streams = anyio.CapacityLimiter(STREAMS)
    app.state.registry = metrics.registry_for(town)
    for module in (agents, messages, tasks, questions, missions, backlog, events, usage,
                   metrics, health):
        app.include_router(module.router)
    app.include_router(dashboard)  # /, /agents/{ref}, /login, /static/ and their reads
    # an ASGI app, not a FastAPI route: the MCP SDK answers the requests it takes
    app.router.routes.append(Route("/mcp", mcp, methods=["GET", "POST", "DELETE"],
                                   include_in_schema=False))
    error_responses.install(app)
    app.add_middleware(Audit, town=town)
    app.add_middleware(BodyLimit)  # added last: it runs first
    return app
