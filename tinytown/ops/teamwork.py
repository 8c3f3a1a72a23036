"""The team's side of the Python API: dependencies between tasks, missions, and
questions to a person. A mixin of `Town` (ops/facade.py), kept apart so that each file
stays one topic; every method calls the ops module that does it on the town's
`TownContext`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinytown import ops
from tinytown.core.models import MissionState, Task
from tinytown.ops.context import TownContext

if TYPE_CHECKING:
    from tinytown.core.models import Mission
    from tinytown.core.plans import Plan


class TeamworkApi:
    """Tasks that wait for each other, missions, and what agents ask a person."""

    context: TownContext

    # --- dependencies and questions -------------------------------------------------

    def retry_task(self, ref: str, to: str | None = None, role: str | None = None) -> Task:
        """Run a failed or cancelled task again: for its agent (or role), for agent
        `to`, or for `role`; the tasks blocked on it wait for it again."""
        return ops.ordering.retry(self.context, ref, to, role)

    def unblock_task(self, ref: str) -> Task:
        """A task blocked by a failed or cancelled dependency goes on without it:
        dispatched when nothing else it waits for is unfinished."""
        return ops.ordering.unblock(self.context, ref)

    def add_dependencies(self, ref: str, after: Iterable[str]) -> Task:
        """More dependencies for a blocked task (a cycle is refused, naming it)."""
        return ops.ordering.add(self.context, ref, after)

    def reply(self, task_ref: str, answer: str) -> Task:
        """Answer a task's open question: its agent's next round (same session) reads it."""
        return ops.inquiries.reply(self.context, task_ref, answer)

    def questions(self) -> list[dict[str, Any]]:
        return ops.inquiries.questions(self.context)  # open questions, oldest first

    # --- missions -------------------------------------------------------------------

    def start_mission(self, name: str, plan: Plan | Path | str | dict[str, Any] | None,
                      goal: str | None = None, budget: float | None = None,
                      parallel: int | None = None, conductor: str | None = None,
                      conductor_cli: str | None = None, approve: bool = False) -> Mission:
        """Start a mission from a plan (a `Plan`, a plan file's Path, its TOML text or its
        data), or from a goal its conductor plans (see ops.mission_control); with
        `approve`, it awaits `approve(name)` before any task is dispatched."""
        source = plan.read_bytes() if isinstance(plan, Path) else plan
        found = ops.mission_control.plan_of(source) if source is not None else None
        return ops.mission_control.start(self.context, name, found, goal, budget, parallel,
                                         conductor, conductor_cli, approve)

    def mission(self, name: str) -> dict[str, Any]:
        """The mission (brought up to date) and its tasks in waves."""
        return ops.mission_control.status(self.context, name)

    def missions(self) -> list[Mission]:
        return ops.mission_control.list_missions(self.context)

    def cancel_mission(self, name: str, fail: bool = False, reason: str | None = None
                       ) -> Mission:
        """End the mission as `cancelled` (or `failed`); its unfinished tasks are cancelled."""
        state = MissionState.FAILED if fail else MissionState.CANCELLED
        return ops.mission_control.end(self.context, name, state, reason)

    def add_mission_task(self, name: str, text: str, agent: str | None = None,
                         role: str | None = None, after: list[str] | tuple[str, ...] = (),
                         label: str | None = None, by: str | None = None) -> Task:
        """Add a task to a mission while it runs (after some of its tasks, by name or id)."""
        return ops.mission_control.add_task(self.context, name, text, agent, role, after, label, by)

    def add_mission_dependency(self, name: str, task: str, after: list[str],
                               by: str | None = None) -> Task:
        return ops.mission_control.add_dependency(self.context, name, task, after, by)

    def finish_mission(self, name: str, state: str, summary: str | None = None,
                       by: str | None = None) -> Mission:
        return ops.mission_control.finish(self.context, name, state, summary, by)

    def set_mission_budget(self, name: str, usd: float | None) -> Mission:
        return ops.mission_control.set_budget(self.context, name, usd)
