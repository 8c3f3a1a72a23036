"""Agent and Task, serialized exactly as shared/wire-format.md says; and, re-exported,
every record name Tinytown has, so `from tinytown.core.models import X` works for them all.

msgspec structs: importing them costs a few milliseconds, where pydantic would cost ~85 ms
on every `tt` call. Records keep the fields they do not know in ``extra`` so that a
read-modify-write by this version never drops what a newer writer added. The shared
base (tinytown/core/records.py), the enums (tinytown/core/enums.py) and the messages
(tinytown/core/message_bodies.py) live in modules of their own to keep each one small.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec

from tinytown.agent_clis import DEFAULT_CLI
from tinytown.core import keys
from tinytown.core.enums import TERMINAL_AGENT_STATES as TERMINAL_AGENT_STATES
from tinytown.core.enums import AgentState as AgentState
from tinytown.core.enums import AgentType as AgentType
from tinytown.core.enums import MissionState as MissionState
from tinytown.core.enums import Priority as Priority
from tinytown.core.enums import SessionPolicy as SessionPolicy
from tinytown.core.enums import SpawnMode as SpawnMode
from tinytown.core.enums import TaskState as TaskState
from tinytown.core.errors import InvalidRecord, UsageError
from tinytown.core.message_bodies import MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES
from tinytown.core.message_bodies import NEEDS_CLI as NEEDS_CLI
from tinytown.core.message_bodies import Ack as Ack
from tinytown.core.message_bodies import AckKind as AckKind
from tinytown.core.message_bodies import AnyBody as AnyBody
from tinytown.core.message_bodies import ConfirmationBody as ConfirmationBody
from tinytown.core.message_bodies import CustomBody as CustomBody
from tinytown.core.message_bodies import InformationalBody as InformationalBody
from tinytown.core.message_bodies import Message as Message
from tinytown.core.message_bodies import MessageBody as MessageBody
from tinytown.core.message_bodies import MessageType as MessageType
from tinytown.core.message_bodies import PingBody as PingBody
from tinytown.core.message_bodies import PongBody as PongBody
from tinytown.core.message_bodies import QueryBody as QueryBody
from tinytown.core.message_bodies import ShutdownBody as ShutdownBody
from tinytown.core.message_bodies import StatusRequestBody as StatusRequestBody
from tinytown.core.message_bodies import StatusResponseBody as StatusResponseBody
from tinytown.core.message_bodies import TaskAssignBody as TaskAssignBody
from tinytown.core.message_bodies import TaskBody as TaskBody
from tinytown.core.message_bodies import TaskDoneBody as TaskDoneBody
from tinytown.core.message_bodies import TaskFailedBody as TaskFailedBody
from tinytown.core.records import WireModel as WireModel
from tinytown.core.records import _reading
from tinytown.core.records import format_timestamp as format_timestamp
from tinytown.core.records import new_id as new_id
from tinytown.core.records import utcnow as utcnow
from tinytown.core.records import wire as wire
from tinytown.core.usage_rules import Usage

Count = Annotated[int, msgspec.Meta(ge=0)]


# --- Agent --------------------------------------------------------------------


class Agent(WireModel):
    # the first three fields come first so that Agent("w", CLI, AgentType.WORKER) works
    name: str
    cli: str = DEFAULT_CLI
    agent_type: AgentType = AgentType.WORKER
    id: str = msgspec.field(default_factory=new_id)
    nickname: str | None = None
    role_id: str | None = None
    parent_agent_id: str | None = None
    spawn_mode: SpawnMode = SpawnMode.FRESH
    state: AgentState = AgentState.STARTING
    current_task: str | None = None
    created_at: datetime = msgspec.field(default_factory=utcnow)
    last_heartbeat: datetime = msgspec.field(default_factory=utcnow)
    tasks_completed: Count = 0
    rounds_completed: Count = 0
    last_active_at: datetime = msgspec.field(default_factory=utcnow)
    current_scope: str | None = None
    # Tinytown's own fields, after the wire format's (readers ignore what they don't know)
    session: SessionPolicy = SessionPolicy.CONTINUE  # continue the CLI's session, or not
    session_id: str | None = None  # the agent CLI's session to continue next round
    session_usage: dict[str, Any] | None = None  # a session's totals as its CLI reported
    usage: Usage | None = None  # tokens and cost of all its rounds
    budget_usd: float | None = None  # it runs no round once its cost reaches this
    budget_tokens: int | None = None  # nor once its tokens (input, cached, output) do
    hold: str | None = None  # why it is paused by Tinytown itself (budget, usage limit)
    resume_at: datetime | None = None  # when the supervisor resumes it (a usage limit)
    workspace: str | None = None  # the folder its CLI runs in (None: the town's root)
    branch: str | None = None  # its git branch, when the workspace is a worktree
    base: str | None = None  # the commit its branch started from
    host: str | None = None  # the host daemon it is placed on (None: started by hand/locally)
    host_labels: list[str] = msgspec.field(default_factory=list)  # a host must have these
    restarts: Count = 0  # how many times its host restarted it after a crash
    crashes: list[float] = msgspec.field(default_factory=list)  # recent crash times (Unix s)
    halted: str | None = None  # why its host stopped restarting it (a crash loop)

    _uuids = ("id", "parent_agent_id", "current_task")
    _timestamps = ("created_at", "last_heartbeat", "last_active_at", "resume_at")
    _own_defaults: ClassVar[dict[str, Any]] = {
        "session": SessionPolicy.CONTINUE, "session_id": None, "session_usage": None,
        "usage": None, "budget_usd": None, "budget_tokens": None, "hold": None, "resume_at": None,
        "workspace": None, "branch": None, "base": None, "host": None, "host_labels": [],
        "restarts": 0, "crashes": [], "halted": None}
    _wire_fields = (
        "id", "name", "nickname", "role_id", "parent_agent_id", "spawn_mode", "agent_type",
        "state", "cli", "current_task", "created_at", "last_heartbeat", "tasks_completed",
        "rounds_completed", "last_active_at", "current_scope", *_own_defaults,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nickname is None and not _reading.get():  # a stored null stays null
            from tinytown.core.nicknames import default_nickname

            self.nickname = default_nickname(self.id)

    @classmethod
    def _split(cls, doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        fields, extra = super()._split(doc)
        if "last_active_at" not in fields and "created_at" in fields:  # an old record
            fields["last_active_at"] = fields["created_at"]
        return fields, extra

    @classmethod
    def supervisor(cls, name: str = "supervisor", cli: str = "tt") -> Agent:
        """The well-known supervisor (the human conductor's mailbox)."""
        return cls(
            name=name,
            cli=cli,
            agent_type=AgentType.SUPERVISOR,
            id=keys.SUPERVISOR_ID,
            nickname="Conductor",
            state=AgentState.IDLE,
        )

    @property
    def display_nickname(self) -> str:
        from tinytown.core.nicknames import default_nickname

        return self.nickname or default_nickname(self.id)


# --- Task ---------------------------------------------------------------------


class Gates(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    """What a task must pass after its author's round ends well, in this order:
    check -> review -> approve; it completes (and releases its dependents) only after
    the last one (tinytown/db/gate_store.py; the review: tinytown/db/review_gate.py)."""

    check: str | None = None        # a command run in the agent's worktree after a round
    max_fix_rounds: int = 3
    review: str | None = None       # the role that reviews the task's branch
    max_review_rounds: int = 3
    approve: bool = False           # a person approves before the task is completed

    @property
    def any(self) -> bool:
        return bool(self.check or self.review or self.approve)


class CheckRun(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    """A check gate's last run (`Task.last_check`): its command, exit code (None: it
    timed out or could not start), whether it passed, its output's tail and log file."""

    command: str
    passed: bool
    exit_code: int | None = None
    tail: str = ""
    log: str | None = None
    round: int | None = None
    secs: float = 0.0



class Task(WireModel):
    # description first and optional, so Task("Build the API") works and Task() is
    # a UsageError like Task(""), not a TypeError
    description: str = ""
    id: str = msgspec.field(default_factory=new_id)
    state: TaskState = TaskState.PENDING
    assigned_to: str | None = None
    created_at: datetime = msgspec.field(default_factory=utcnow)
    updated_at: datetime = msgspec.field(default_factory=utcnow)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: str | None = None
    parent_id: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    usage: Usage | None = None  # Tinytown's own: tokens and cost of the rounds it took
    branch: str | None = None  # the branch its rounds committed to
    commits: list[str] = msgspec.field(default_factory=list)  # those commits, in order
    # dependencies (tinytown/db/graph.py): the ids of the tasks it waits for; `blocked`
    # until all are completed, then dispatched to `assigned_to` or to `role`'s queue
    after: list[str] = msgspec.field(default_factory=list)
    blocked_reason: str | None = None  # why a blocked task cannot go on (a failed dependency)
    role: str | None = None  # the role whose queue it is for (`tt assign --role`, the backlog)
    priority: Priority = Priority.NORMAL  # its task_assign's, when it is dispatched later
    mission: str | None = None  # the mission it belongs to (tinytown/db/mission_store.py)
    # questions to a person (tinytown/db/question_store.py): the open one and when it was
    # asked (`awaiting_input`), the last answer (the next round's prompt carries it), and
    # the recent questions with their answers (clipped), oldest first
    question: str | None = None
    asked_at: datetime | None = None
    answer: str | None = None
    questions: list[dict[str, str]] = msgspec.field(default_factory=list)
    gates: Gates | None = None  # what it must pass before it completes (check, review, approve)
    fix_rounds: Count = 0  # rounds the check gate sent back to its agent (since a rejection)
    # what its next round is told (a failed check, a review's changes, a rejection)
    follow_up: str | None = None
    last_check: CheckRun | None = None  # the check gate's last run
    review_task: str | None = None  # its current review task (gates.review)
    reviews: str | None = None  # on a review task: the task it reviews
    review_rounds: Count = 0  # how many reviews it was given
    # each verdict: {"round", "review_task", "reviewer", "verdict", "notes", "at"}
    review_history: list[dict[str, Any]] = msgspec.field(default_factory=list)

    _uuids = ("id", "assigned_to", "parent_id", "review_task", "reviews")
    _timestamps = ("created_at", "updated_at", "started_at", "completed_at", "asked_at")
    _own_defaults: ClassVar[dict[str, Any]] = {
        "usage": None, "branch": None, "commits": [], "after": [], "blocked_reason": None,
        "role": None, "priority": Priority.NORMAL, "mission": None, "question": None,
        "asked_at": None, "answer": None, "questions": [], "gates": None,
        "fix_rounds": 0, "follow_up": None, "last_check": None, "review_task": None,
        "reviews": None, "review_rounds": 0, "review_history": []}
    _wire_fields = (
        "id", "description", "state", "assigned_to", "created_at", "updated_at", "started_at",
        "completed_at", "result", "parent_id", "tags", *_own_defaults,
    )

    if TYPE_CHECKING:  # for type checkers: callers may pass an unchecked `str | None`
        def __init__(self, description: str | None = None, **fields: Any) -> None: ...

    def __post_init__(self) -> None:
        super().__post_init__()
        self.after = [str(uuid.UUID(x)) for x in self.after]  # ids, as the other ids
        if not _reading.get() and not (self.description or "").strip():
            raise UsageError("a task needs a non-empty description")

    @classmethod
    def _split(cls, doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        # a stored task without a description is invalid (skipped), not a usage error
        if "description" not in doc:
            raise InvalidRecord("Object missing required field `description`")
        return super()._split(doc)


# --- Mission --------------------------------------------------------------------


class Mission(WireModel):
    """A named graph of tasks with a goal, a budget and a cap on how many of its tasks
    are dispatched at once (`tt:<town>:mission:<name>`, written by tinytown.db.mission_store
    only). `tasks` maps each task's name in the mission to its task id, in plan order;
    the dependencies live on the tasks (`after`)."""

    name: str
    goal: str = ""
    id: str = msgspec.field(default_factory=new_id)
    state: MissionState = MissionState.PLANNING
    reason: str | None = None  # why it is blocked, failed or cancelled
    budget_usd: float | None = None  # its tasks' cost at which it dispatches no more
    parallel: int | None = None  # at most this many of its tasks assigned or running
    tasks: dict[str, str] = msgspec.field(default_factory=dict)  # task name -> task id
    created_at: datetime = msgspec.field(default_factory=utcnow)
    updated_at: datetime = msgspec.field(default_factory=utcnow)
    finished_at: datetime | None = None
    # its conductor (tinytown/db/conductor_wakes.py): the agent that plans it and is woken
    # to decide; its tasks (the goal, then each wake) are not in `tasks`; `reported`: each
    # task's ending the conductor was told of (task id -> "state@completed_at")
    conductor: str | None = None
    conductor_tasks: list[str] = msgspec.field(default_factory=list)
    reported: dict[str, str] = msgspec.field(default_factory=dict)
    summary: str | None = None  # what its conductor said as it finished it

    _uuids = ("id", "conductor")
    _timestamps = ("created_at", "updated_at", "finished_at")
    _own_defaults: ClassVar[dict[str, Any]] = {
        "conductor": None, "conductor_tasks": [], "reported": {}, "summary": None}
    _wire_fields = ("id", "name", "goal", "state", "reason", "budget_usd", "parallel", "tasks",
                    "created_at", "updated_at", "finished_at", *_own_defaults)
