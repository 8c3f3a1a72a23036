"""The records' enumerations: agent and task states, agent types, spawn modes, session
policies and message priorities.

Their own module so that the records (tinytown/core/models.py) and the message bodies
(tinytown/core/message_bodies.py) share them without importing each other;
tinytown.core.models re-exports them.
"""

from __future__ import annotations

from enum import StrEnum


class AgentState(StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    WORKING = "working"
    PAUSED = "paused"
    DRAINING = "draining"
    COLD = "cold"
    STOPPED = "stopped"
    ERROR = "error"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_AGENT_STATES


TERMINAL_AGENT_STATES = frozenset({AgentState.STOPPED, AgentState.ERROR, AgentState.COLD})


class AgentType(StrEnum):
    WORKER = "worker"
    SUPERVISOR = "supervisor"


class SpawnMode(StrEnum):
    FRESH = "fresh"
    FORKED_CONTEXT = "forkedcontext"
    RESUMED = "resumed"


class SessionPolicy(StrEnum):
    """Whether an agent's CLI goes on with its session from one task to the next
    (`continue`: it remembers its earlier work) or starts each one afresh."""

    CONTINUE = "continue"
    FRESH = "fresh"


class TaskState(StrEnum):
    PENDING = "pending"
    BLOCKED = "blocked"  # waits for its dependencies (`after`); in no inbox or queue
    AWAITING_APPROVAL = "awaiting_approval"  # its gates passed; a person approves (`tt approve`)
    ASSIGNED = "assigned"
    RUNNING = "running"
    AWAITING_INPUT = "awaiting_input"  # its agent asked a person (`tt inbox`, `tt reply`)
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    IN_REVIEW = "in_review"  # its round ended well; a reviewer's verdict decides (gates.review)

    @classmethod
    def _missing_(cls, value: object) -> TaskState | None:
        return cls.RUNNING if value == "in_flight" else None

    @property
    def is_terminal(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)

    @property
    def at_gate(self) -> bool:
        """Its author's work is done and a gate holds it: no round finishes it again."""
        return self in (TaskState.IN_REVIEW, TaskState.AWAITING_APPROVAL)


class MissionState(StrEnum):
    """A mission's life (tinytown.db.mission_store): `planning` before its tasks exist (a
    conductor plans; a plan file skips it), `running`, `blocked` (nothing can proceed:
    a task failed, or over budget), then `done`, `failed` or `cancelled` for good."""

    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"  # `approve = true`: no task runs before `tt approve`
    RUNNING = "running"
    BLOCKED = "blocked"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (MissionState.DONE, MissionState.FAILED, MissionState.CANCELLED)


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def goes_first(self) -> bool:
        """urgent and high go to the head of the inbox (LPUSH), the rest to its tail."""
        return self in (Priority.HIGH, Priority.URGENT)
