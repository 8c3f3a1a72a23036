"""The ASGI app of `tt serve`: one town, its routes, its errors, its audit.

FastAPI (on Starlette) because its routes are declared with the pydantic models of
`schemas.py`, which both check the requests and write /openapi.json: the document
cannot drift from the code. Handlers are plain functions that call the `Town` API,
run in Starlette's thread pool (the Redis client is synchronous and thread-safe).
"""

from __future__ import annotations

import anyio
from fastapi import FastAPI

from tinytown.http import agents, backlog, errors, events, health, messages, metrics, tasks, usage
from tinytown.http.auth import Audit
from tinytown.http.limits import BodyLimit
from tinytown.ops.town import Town

WAITS = 64  # task waits at once (each holds a thread while it polls)
STREAMS = 64  # event streams at once (each holds a thread while XREAD blocks)


def create_app(town: Town) -> FastAPI:
    from importlib.metadata import version

    app = FastAPI(
        title=f"Tinytown: town {town.name}", version=version("tinytown"),
        description="Drive and watch a Tinytown town. Every route but /healthz and"
                    " /readyz needs `Authorization: Bearer <key>` (`tt auth add`).",
        openapi_url=None, docs_url=None, redoc_url=None,  # /openapi.json needs a key
    )
    app.state.town = town
    app.state.waits = anyio.CapacityLimiter(WAITS)
    app.state.streams = anyio.CapacityLimiter(STREAMS)
    app.state.registry = metrics.registry_for(town)
    for module in (agents, messages, tasks, backlog, events, usage, metrics, health):
        app.include_router(module.router)
    errors.install(app)
    app.add_middleware(Audit, town=town)
    app.add_middleware(BodyLimit)  # added last: it runs first
    return app
