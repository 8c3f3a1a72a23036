"""The API's bodies as pydantic models: what /openapi.json documents.

Records (Agent, Task, Message) are the wire format itself (shared/wire-format.md):
the models are built from `to_wire()` and their JSON is that document, field for
field. Timestamps stay the wire's RFC 3339 strings (a `datetime` would be re-spelled);
Tinytown's own fields and a newer writer's pass through as extra fields.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tinytown.core.models import (
    AckKind,
    AgentState,
    AgentType,
    AnyBody,
    MessageBody,
    MissionState,
    Priority,
    SessionPolicy,
    SpawnMode,
    TaskState,
    WireModel,
)

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"},
                                 examples=["2026-11-24T22:21:33.123456Z"])]
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
Text = Annotated[str, Field(max_length=1024 * 1024)]  # the message size limit, roughly
Ref = Annotated[str, Field(min_length=1, max_length=200,
                           description="A name, nickname, id or id prefix of 4+ characters")]


class _Record(BaseModel):
    """A stored record: its wire fields, then any others it carries."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @classmethod
    def of(cls, record: WireModel) -> Self:
        return cls.model_validate(record.to_wire())


class Agent(_Record):
    id: Uuid
    name: str
    nickname: str | None
    role_id: str | None
    parent_agent_id: Uuid | None
    spawn_mode: SpawnMode
    agent_type: AgentType
    state: AgentState
    cli: str
    current_task: Uuid | None
    created_at: Timestamp
    last_heartbeat: Timestamp
    tasks_completed: int = Field(ge=0)
    rounds_completed: int = Field(ge=0)
    last_active_at: Timestamp
    current_scope: str | None


class Task(_Record):
    id: Uuid
    description: str
    state: TaskState
    assigned_to: Uuid | None
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None = None
    completed_at: Timestamp | None
    result: str | None
    parent_id: Uuid | None
    tags: list[str] = []
    # Tinytown's own fields pass through as extra ones, written only when they say
    # something (the wire document, field for field): `after` (the tasks it waits for),
    # `blocked_reason`, `role`, `priority`, `usage`, `branch`, `commits`


class Message(_Record):
    """One flat message: these common fields and its type's own fields beside them
    (`description` for a task, `question` for a query, ...: see the wire format)."""

    id: Uuid
    sender: Uuid = Field(alias="from")
    to: Uuid
    type: str
    priority: Priority
    created_at: Timestamp
    correlation_id: Uuid | None


class Mission(_Record):
    """A mission's record (`tt:<town>:mission:<name>`): `tasks` maps each task's name in
    the mission to its task id."""

    id: Uuid
    name: str
    goal: str
    state: MissionState
    reason: str | None
    budget_usd: float | None
    parallel: int | None
    tasks: dict[str, Uuid]
    created_at: Timestamp
    updated_at: Timestamp
    finished_at: Timestamp | None


class MissionTaskRow(BaseModel):
    """One task of a mission as `tt mission status` shows it."""

    model_config = ConfigDict(extra="allow")
    name: str
    id: Uuid
    state: str
    agent: str | None = None
    role: str | None = None
    after: list[str] = []
    cost_usd: float | None = None
    branch: str | None = None
    blocked_reason: str | None = None


class MissionStatus(Mission):
    spent_usd: float
    waves: list[list[MissionTaskRow]]


# --- requests -----------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Spawn(_Request):
    """`tt spawn`'s options."""

    name: str = Field(min_length=1, max_length=64)
    cli: str | None = Field(None, max_length=4096,
                            description="Preset (one of `tt doctor`'s), [agent_clis] name or"
                                        " command; default: the role's, else the town's")
    role: str | None = None
    nickname: str | None = None
    parent: str | None = None
    fork: bool = False
    max_rounds: int | None = Field(None, ge=1)
    scope: str | None = None
    start: bool = Field(True, description="Start its worker (false: only record it)")
    session: SessionPolicy | None = None
    resume: str | None = None
    budget_usd: float | None = Field(None, ge=0)
    workspace: str | None = Field(None, description="worktree, shared or a folder's path")
    base: str | None = None

    @field_validator("budget_usd")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("a budget is a finite amount of USD")
        return value


class Assign(_Request):
    """A new task for an agent (`agent`) or for whichever agent of a role is free
    (`role`): give exactly one of them."""

    description: Text = Field(min_length=1)
    agent: str | None = None
    role: str | None = None
    tags: list[str] = []
    parent_id: str | None = None
    urgent: bool = Field(False, description="At the head of the agent's inbox")
    after: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        [], max_length=1000,
        description="Task ids (or prefixes of 4+): it is blocked until they are all"
                    " completed, then dispatched")
    gates: TaskGates | None = Field(None, description="What it must pass to complete")


class TaskGates(_Request):
    """A task's gates (`tt assign --check CMD --max-fix-rounds N --review ROLE
    --max-review-rounds N --approve`), passed in this order."""

    check: str | None = Field(None, min_length=1, max_length=4096,
                              description="A command run in the agent's worktree after"
                                          " each round (no shell); failing, a fix round")
    max_fix_rounds: int = Field(3, ge=0, le=100)
    review: str | None = Field(None, min_length=1, max_length=64,
                               description="A review gate: the role that reviews its branch"
                               " when its round ends well (`tt assign --review`)")
    max_review_rounds: int = Field(3, ge=1, le=100,
                                   description="With review: reviews before a person decides")
    approve: bool = Field(False, description="It awaits a person's approval to complete")


class Decision(_Request):
    """A person's approval or rejection (`tt approve` / `tt reject`)."""

    note: str | None = Field(None, max_length=8000)
    fail: bool = Field(False, description="reject: fail the task instead of sending it back")


class Verdict(_Request):
    """A review's answer (`tt review`): approve, or request changes with notes for the
    author."""

    verdict: Literal["approve", "request_changes"]
    notes: Text = ""


class Retry(_Request):
    """Run a failed or cancelled task again: for its agent (or role), or for another
    agent (`to`) or role (`role`)."""

    to: str | None = None
    role: str | None = None


class PlanTask(_Request):
    """One task of a plan: a [[task]] table of a plan file (tinytown/core/plans.py)."""

    name: str = Field(min_length=1, max_length=64)
    text: Text = Field(min_length=1)
    role: str | None = Field(None, description="A role (whichever agent of it is free)...")
    agent: str | None = Field(None, description="... or one agent: give one of the two")
    after: list[str] = Field([], description="Names of the plan's tasks it waits for")
    review: str | None = Field(None, description="A review gate: the role that reviews its"
                               " branch's diff (approve, or changes back to its author)")
    max_review_rounds: int | None = Field(None, ge=1, le=100,
                                          description="With review: reviews before a person"
                                          " decides (default 3)")
    approve: bool = Field(False, description="A gate: it awaits a person's approval")
    check: str | None = Field(None, description="A gate: a command run after each round")
    max_fix_rounds: int | None = Field(None, ge=0, le=100)


class StartMission(_Request):
    """`tt mission start NAME --plan FILE`: the plan file's settings and its tasks
    (`task`, as the file's [[task]] tables)."""

    name: str = Field(min_length=1, max_length=64)
    goal: str | None = Field(None, max_length=1024 * 1024)
    budget: float | None = Field(None, gt=0, description="USD for all its tasks")
    parallel: int | None = Field(None, ge=1, le=1000,
                                 description="At most this many of its tasks at work at once")
    approve: bool = Field(False, description="It awaits a person's approval before it runs")
    task: list[PlanTask] = Field(min_length=1, max_length=500)

    def plan(self) -> dict[str, Any]:
        """The plan as data, for tinytown.core.plans (keys not given left out)."""
        doc: dict[str, Any] = self.model_dump(exclude_none=True, exclude_defaults=True,
                                              exclude={"task"})
        doc["name"] = self.name
        doc["task"] = [t.model_dump(exclude_none=True, exclude_defaults=True) | {
            "name": t.name, "text": t.text} for t in self.task]
        return doc


class AddMissionTask(_Request):
    """`tt mission add-task`: a task for an agent or a role, after some of the
    mission's tasks (their names in it or their ids)."""

    text: Text = Field(min_length=1)
    agent: str | None = None
    role: str | None = None
    after: list[str] = []
    name: str | None = Field(None, min_length=1, max_length=64)


class Complete(_Request):
    result: Text | None = None


class Fail(_Request):
    error: Text | None = None


class Prune(_Request):
    all: bool = Field(False, description="Kill running agents first")
    force: bool = Field(False, description="Also agents with pending messages or"
                                           " uncommitted work")
    delete_branches: bool = False


class BacklogAdd(_Request):
    description: Text = Field(min_length=1)
    tags: list[str] = []
    role: str | None = None


class Claim(_Request):
    agent: Ref


class _Send(_Request):
    priority: Priority = Priority.NORMAL
    sender: str | None = Field(None, alias="from",
                               description="An agent (default: the supervisor mailbox)")
    correlation_id: Uuid | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def body(self) -> AnyBody:
        raise NotImplementedError


class SendTask(_Send):
    type: Literal["task"]
    description: Text = Field(min_length=1)

    def body(self) -> AnyBody:
        return MessageBody.task(self.description)


class SendQuery(_Send):
    type: Literal["query"]
    question: Text = Field(min_length=1)

    def body(self) -> AnyBody:
        return MessageBody.query(self.question)


class SendInformational(_Send):
    type: Literal["informational"]
    summary: Text = Field(min_length=1)

    def body(self) -> AnyBody:
        return MessageBody.informational(self.summary)


class AckType(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: AckKind = AckKind.ACKNOWLEDGED
    reason: str | None = None


class SendConfirmation(_Send):
    type: Literal["confirmation"]
    ack_type: AckType = AckType()

    def body(self) -> AnyBody:
        return MessageBody.confirmation(self.ack_type.type, self.ack_type.reason)


class SendCustom(_Send):
    type: Literal["custom"]
    kind: str = Field(min_length=1, max_length=200)
    payload: Text

    def body(self) -> AnyBody:
        return MessageBody.custom(self.kind, self.payload)


class SendPing(_Send):
    type: Literal["ping"]

    def body(self) -> AnyBody:
        return MessageBody.ping()


class SendStatusRequest(_Send):
    type: Literal["status_request"]

    def body(self) -> AnyBody:
        return MessageBody.status_request()


class SendShutdown(_Send):
    type: Literal["shutdown"]

    def body(self) -> AnyBody:
        return MessageBody.shutdown()


Send = Annotated[
    SendTask | SendQuery | SendInformational | SendConfirmation | SendCustom | SendPing
    | SendStatusRequest | SendShutdown,
    Field(discriminator="type"),
]
"""A message to put in an agent's inbox: the wire format's fields for its type, and
optionally its priority, sender and the message it answers."""


# --- other answers --------------------------------------------------------------------


class Error(BaseModel):
    error: str = Field(description="The one-line message `tt` prints for the same error")


class Kept(BaseModel):
    name: str
    reason: str


class PruneReport(BaseModel):
    pruned: list[str]
    kept: list[Kept]
    unfinished_tasks: list[Uuid]


class Event(BaseModel):
    """One entry of the town's event stream: its id, kind and time, then its fields
    (`agent`, `old`/`new` for a state change, `key_name`/`method`/`path` for `api`...).
    The stream keeps text; the fields below are numbers here (`typed_event`), and a
    `round` event's unknown cost is null. Fields an event does not have are absent."""

    model_config = ConfigDict(extra="allow")
    id: str
    kind: str
    time: Timestamp
    round: int | None = Field(None, description="`round`: the agent's round number")
    input_tokens: int | None = Field(None, description="`round`: uncached input tokens")
    cached_input_tokens: int | None = Field(None, description="`round`: cached input tokens")
    output_tokens: int | None = Field(None, description="`round`: output tokens")
    cost_usd: float | None = Field(None, description="`round`: its cost in USD; null when"
                                                     " unknown (no report, or no price)")
    tasks: int | None = Field(None, description="`reclaimed`: how many tasks moved")
    after: float | None = Field(None, description="`restarted`: seconds it waited")


EVENT_NUMBERS: dict[str, type[int] | type[float]] = {
    "round": int, "input_tokens": int, "cached_input_tokens": int, "output_tokens": int,
    "cost_usd": float, "tasks": int, "after": float}


def typed_event(event: dict[str, str]) -> dict[str, object]:
    """An event as the API gives it: the stream's text, with the fields of known number
    type as numbers (text that is not one, as a `round`'s cost `""` or `unknown`: null).
    The stored format stays as it is, so old entries read the same way."""
    out: dict[str, object] = dict(event)
    for name, kind in EVENT_NUMBERS.items():
        value = event.get(name)
        if value is None:
            continue
        try:
            number = kind(value)
        except ValueError:
            out[name] = None
            continue
        out[name] = number if number == number and abs(number) != float("inf") else None
    return out


class UsageTotals(BaseModel):
    model_config = ConfigDict(extra="allow")
    rounds: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = Field(description="What the rounds of known cost cost; null"
                                               " when no round's cost is known")
    cost_known: bool = Field(description="`cost_usd` is the whole cost (every round's"
                                         " cost is known)")
    cost: str = Field(description="The cost as `tt usage` shows it ($1.23, $1.23+?,"
                                  " unknown)")


class UsageRow(UsageTotals):
    key: str
    name: str


class UsageReport(BaseModel):
    by: Literal["agent", "task", "role", "day"]
    since: str | None
    agent: Uuid | None
    task: Uuid | None
    rows: list[UsageRow]
    total: UsageTotals


class Ready(BaseModel):
    ready: bool
    supervisor: str | None = Field(description="The supervisor that leads (pid@host)")


class Alive(BaseModel):
    status: Literal["ok"] = "ok"

