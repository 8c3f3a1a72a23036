"""/v1/agents/{ref}/inbox: an agent's pending messages, and sending it one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends

from tinytown.core.apikeys import Scope
from tinytown.http import schemas as s
from tinytown.http.agents import AgentRef
from tinytown.http.auth import needs, town_of
from tinytown.http.error_responses import responses
from tinytown.ops.facade import Town

router = APIRouter(prefix="/v1/agents", tags=["messages"])
TownDep = Annotated[Town, Depends(town_of)]


@router.get("/{ref}/inbox", dependencies=[needs(Scope.READ)], responses=responses(404))
def inbox(ref: AgentRef, town: TownDep) -> list[s.Message]:
    """Pending messages, next-to-read first, without taking them (`tt inbox`);
    `supervisor` is the human conductor's mailbox."""
    return [s.Message.of(m) for m in town.agent(ref).inbox()]


@router.post("/{ref}/inbox", status_code=201, dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 413))
def send(ref: AgentRef, body: Annotated[s.Send, Body()], town: TownDep) -> s.Message:
    """Put a message in the agent's inbox and wake it (`tt send`)."""
    sent = town.channel.send(ref, body.body(), priority=body.priority, sender=body.sender,
                             correlation_id=body.correlation_id)
    return s.Message.of(sent)
