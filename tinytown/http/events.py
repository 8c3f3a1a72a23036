"""/v1/events: the town's event stream, as a list and live as Server-Sent Events.

The SSE id of each event is its Redis stream id, so a client that reconnects with
`Last-Event-ID` (EventSource does so by itself) gets every event it missed, as long
as the stream still holds it (it keeps about the last 10,000).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from tinytown.core.apikeys import Scope
from tinytown.core.errors import TinytownError
from tinytown.http import schemas as s
from tinytown.http.auth import needs, town_of
from tinytown.http.error_responses import responses
from tinytown.ops.facade import Town

router = APIRouter(prefix="/v1/events", tags=["events"])
TownDep = Annotated[Town, Depends(town_of)]
EVENT_ID = r"^\d{1,19}(-\d{1,19})?$"  # below 2**63: always a valid stream id
_KIND = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
BLOCK_MS = 1000  # one XREAD's wait: a stream notices a closed client at most this late
KEEP_ALIVE_SECS = 10  # a comment line when nothing happened, for proxies and clients


@router.get("", dependencies=[needs(Scope.READ)], responses=responses(404),
            response_model_exclude_unset=True)
def recent(town: TownDep, count: Annotated[int, Query(ge=1, le=10_000)] = 20,
           agent: Annotated[str | None, Query(max_length=200)] = None) -> list[s.Event]:
    """The newest `count` events (of one agent), oldest first (`tt events`)."""
    return [s.Event.model_validate(s.typed_event(e)) for e in town.events(count, agent)]


@router.get("/stream", dependencies=[needs(Scope.READ)], responses={
    **responses(404),
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
          "description": "`id:` the event's stream id, `event:` its kind, `data:` the event"
                         " as JSON; a `: keep-alive` comment when nothing happens"}})
async def stream(
    request: Request, town: TownDep,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    last_event_id: Annotated[str | None, Header(pattern=EVENT_ID)] = None,
) -> StreamingResponse:
    """Events as they happen (`tt events --follow`); with `Last-Event-ID`, from the one
    after it."""
    agent_id = (await anyio.to_thread.run_sync(town.resolve, agent)).id if agent else None
    after = last_event_id if last_event_id else await anyio.to_thread.run_sync(_newest, town)
    return StreamingResponse(_frames(town, after, agent_id, request.app.state.streams),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _newest(town: Town) -> str:
    """Where a new stream starts: after the newest event now (none: from the first)."""
    newest = town.events(1)
    return newest[-1]["id"] if newest else "0-0"


async def _frames(town: Town, after: str, agent_id: str | None,
                  limiter: anyio.CapacityLimiter) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    quiet = 0
    while True:
        try:
            events = await anyio.to_thread.run_sync(town.follow_events, after, BLOCK_MS,
                                                    limiter=limiter)
        except TinytownError as exc:  # Redis went away: say so; the client reconnects
            yield f"event: error\ndata: {json.dumps({'error': str(exc)})}\n\n"
            return
        if not events:
            quiet += 1
            if quiet * BLOCK_MS >= KEEP_ALIVE_SECS * 1000:
                quiet = 0
                yield ": keep-alive\n\n"
            continue
        quiet = 0
        for event in events:
            after = event["id"]
            if agent_id is None or event.get("agent") == agent_id:
                yield frame(event)


def frame(event: dict[str, str]) -> str:
    """One SSE message. The kind names the SSE event type only when it is a plain word
    (a foreign writer's kind cannot inject fields); the data is one JSON line."""
    kind = event.get("kind", "")
    name = kind if _KIND.match(kind) else "message"
    data = json.dumps(s.typed_event(event))
    return f"id: {event['id']}\nevent: {name}\ndata: {data}\n\n"
