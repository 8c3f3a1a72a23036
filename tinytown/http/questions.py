"""/v1/questions: what agents asked a person (`tt inbox`), and POST
/v1/tasks/{ref}/reply: the answer, which resumes the agent's session (`tt reply`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from tinytown.core.apikeys import Scope
from tinytown.http import schemas as s
from tinytown.http.auth import needs, town_of
from tinytown.http.error_responses import responses
from tinytown.http.tasks import TaskRef
from tinytown.ops.facade import Town

router = APIRouter(prefix="/v1", tags=["questions"])
TownDep = Annotated[Town, Depends(town_of)]


class Question(BaseModel):
    """An open question: the task that waits for it, its agent, when it was asked."""

    task: s.Uuid
    agent: s.Uuid | None
    agent_name: str
    asked_at: s.Timestamp | None
    question: str
    mission: str | None
    description: str = Field(description="The first line of the task's text")


class Reply(s._Request):
    answer: s.Text = Field(min_length=1)


@router.get("/questions", dependencies=[needs(Scope.READ)], responses=responses())
def questions(town: TownDep) -> list[Question]:
    """The open questions, oldest first (`tt inbox`)."""
    return [Question.model_validate(q) for q in town.questions()]


@router.post("/tasks/{ref}/reply", dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409, 413))
def reply(ref: TaskRef, body: Reply, town: TownDep) -> s.Task:
    """Answer a task's open question (`tt reply`): the task goes back to its agent,
    whose next round, in the same session, reads the question and the answer; 409 when
    the task awaits no answer (a second reply included)."""
    return s.Task.of(town.reply(ref, body.answer))
