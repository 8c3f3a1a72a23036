"""Missions from a client's side: check a plan against the town, start a mission from
it, look at one, add a task to it, cancel or fail it. The plan's schema and checks are
tinytown.core.plans (pure); the records and the dispatcher are tinytown.db.mission_store.

A mission's tasks are created all at once, `blocked`; the mission releases them as
their dependencies complete, at most `parallel` at a time, none once its tasks' cost
reaches its budget (see tinytown.db.mission_store).
"""

from __future__ import annotations

from typing import Any

from tinytown import ops
from tinytown.core.errors import (
    AgentNotFound,
    AmbiguousReference,
    PlanInvalid,
    Refused,
    TaskNotFound,
    UsageError,
)
from tinytown.core.models import Gates, Mission, MissionState, Task, TaskState
from tinytown.core.plans import (
    MAX_BUDGET_USD,
    MAX_PARALLEL,
    NAME_RE,
    NAME_RULE,
    Plan,
    PlanTask,
    Problem,
    check_plan,
    plan_from_mapping,
    waves,
)
from tinytown.db import mission_store
from tinytown.db.task_writes import ensure_inboxes, queue_dispatch
from tinytown.ops.context import TownContext
from tinytown.ops.references import resolve

GATES_REFUSED = "gates (check/approve) are not supported yet"
RUNS = ("review", "max_review_rounds")  # the gates that run (tinytown.db.review_gate)
NO_PLAN = ("a mission without a plan needs a conductor, which is not built yet: pass"
           " --plan FILE for now")


# --- plans ------------------------------------------------------------------------------


def check(town: TownContext | None, text: str | bytes) -> Plan | list[Problem]:
    """The plan in a file's text, checked against the town when one is given (its roles
    and agents); the gates a plan sets are reported as problems, since they do not run
    yet and a mission must not silently do less than its plan says."""
    plan = check_plan(text)
    if isinstance(plan, list):
        return plan
    problems = runnable_problems(town, plan)
    return problems or plan


def runnable_problems(town: TownContext | None, plan: Plan) -> list[Problem]:
    problems = [Problem(t.line, f"task {t.name!r}: `{gate}`: {GATES_REFUSED}")
                for t, gate in plan.gates if gate not in RUNS]
    if town is not None:
        known = town.settings.known_roles()
        for t in plan.tasks:
            for role in (t.role, t.review):
                if role is not None and role not in known:
                    problems.append(Problem(t.line, f"task {t.name!r}: unknown role {role!r};"
                                            f" known roles: {', '.join(sorted(known))}"))
            if t.agent is not None:
                try:
                    _agent_id(town, t.agent)
                except (AgentNotFound, AmbiguousReference, UsageError) as exc:
                    problems.append(Problem(t.line, f"task {t.name!r}: {exc}"))
    return sorted(problems, key=lambda p: p.line)


def _agent_id(town: TownContext, ref: str) -> str:
    agent = resolve(town, ref)
    if agent.agent_type.value == "supervisor":
        raise UsageError(f"{ref!r} is the supervisor mailbox, not a worker agent")
    return agent.id


def plan_of(source: Plan | str | bytes | dict[str, Any]) -> Plan:
    """A Plan from a Plan, a plan file's text or its data (a request body); PlanInvalid
    listing every problem."""
    if isinstance(source, Plan):
        return source
    found = plan_from_mapping(source) if isinstance(source, dict) else check_plan(source)
    if isinstance(found, list):
        raise PlanInvalid(problems_text(found))
    return found


def problems_text(problems: list[Problem], where: str = "plan") -> str:
    return "\n".join(f"{where}:{p.line}: {p.message}" if p.line else f"{where}: {p.message}"
                     for p in problems)


# --- starting and changing missions ------------------------------------------------------


def start(town: TownContext, name: str, plan: Plan | None, goal: str | None = None,
          budget: float | None = None, parallel: int | None = None) -> Mission:
    """Create the mission and every task of its plan (`blocked`, dependencies as task
    ids) in one transaction; those that can run are released at once. The command
    line's name, goal, budget and parallel win over the plan's."""
    _check_name(name)
    if plan is None:
        raise Refused(NO_PLAN)
    problems = runnable_problems(town, plan)
    if any(GATES_REFUSED in p.message for p in problems):
        raise Refused(GATES_REFUSED)
    if problems:
        raise PlanInvalid(problems_text(problems))
    mission = Mission(name, goal=(goal or plan.goal or "").strip(),
                      budget_usd=_budget(budget if budget is not None else plan.budget),
                      parallel=_parallel(parallel if parallel is not None else plan.parallel))
    ids = {t.name: Task("-").id for t in plan.tasks}
    tasks = [_held(town, name, t, ids[t.name], [ids[a] for a in t.after]) for t in plan.tasks]
    mission.tasks = {t.name: ids[t.name] for t in plan.tasks}
    ensure_inboxes(town.store, tasks)
    created = mission_store.create(town.store, mission, tasks, queue_dispatch)
    _wake(town, tasks)
    return created


def _held(town: TownContext, mission: str, spec: PlanTask, task_id: str, after: list[str]
          ) -> Task:
    task = Task(spec.text, id=task_id, state=TaskState.BLOCKED, mission=mission, after=after,
                blocked_reason="waiting to start", tags=[f"mission:{mission}"])
    if spec.agent is not None:
        task.assigned_to = _agent_id(town, spec.agent)
    task.role = spec.role
    if spec.review is not None:  # the plan's gate keys onto the task's Gates
        task.gates = Gates(review=spec.review, max_review_rounds=spec.max_review_rounds or 3)
    return task


def _wake(town: TownContext, tasks: list[Task]) -> None:
    """A released task's agent that sleeps (scale to zero) is woken for it."""
    for task in tasks:
        if task.state == TaskState.ASSIGNED and task.assigned_to:
            agent = town.store.get_agent(task.assigned_to)
            if agent is not None:
                ops.assignments.work_arrived(town, agent, "the task")


def _check_name(name: str, what: str = "mission name") -> str:
    if not NAME_RE.match(name):
        raise UsageError(f"invalid {what} {name!r}: use {NAME_RULE}")
    return name


def _budget(usd: float | None) -> float | None:
    import math

    if usd is not None and not (math.isfinite(usd) and 0 < usd <= MAX_BUDGET_USD):
        raise UsageError(f"a mission's budget is a number of USD above 0 and at most"
                         f" {MAX_BUDGET_USD:,.0f} (not {usd})")
    return usd


def _parallel(n: int | None) -> int | None:
    if n is not None and not 1 <= n <= MAX_PARALLEL:
        raise UsageError(f"--parallel is a whole number from 1 to {MAX_PARALLEL} (not {n})")
    return n


def add_task(town: TownContext, name: str, text: str, agent: str | None = None,
             role: str | None = None, after: list[str] | tuple[str, ...] = (),
             label: str | None = None) -> Task:
    """A task added to a mission while it runs: after some of its tasks (by their names
    in the mission or their ids); released at once when they are all completed."""
    if (agent is None) == (role is None):
        raise UsageError("give the task an agent or a role (one of them)")
    if role is not None and role not in (known := town.settings.known_roles()):
        raise UsageError(f"unknown role {role!r}; known roles: {', '.join(sorted(known))}")
    mission = mission_store.require(town.store, name)
    label = _check_name(label, "task name") if label else _free_label(mission)
    after_ids = [_mission_task(mission, ref) for ref in after]
    spec = PlanTask(label, text, role, agent)
    if not text.strip():
        raise UsageError("a task needs a non-empty description")
    task = _held(town, name, spec, Task("-").id, list(dict.fromkeys(after_ids)))
    ensure_inboxes(town.store, [task])
    view = mission_store.add_task(town.store, name, task, label, queue_dispatch)
    _wake(town, [task])
    return view.tasks[task.id]


def _free_label(mission: Mission) -> str:
    n = len(mission.tasks) + 1
    while f"task-{n}" in mission.tasks:
        n += 1
    return f"task-{n}"


def _mission_task(mission: Mission, ref: str) -> str:
    ref = ref.strip()
    if ref in mission.tasks:
        return mission.tasks[ref]
    found = [i for i in mission.tasks.values() if len(ref) >= 4 and i.startswith(ref.lower())]
    if len(found) != 1:
        raise TaskNotFound(f"{ref!r} is no task of mission {mission.name!r} (give a task"
                           " name of the mission or its id)" if not found else
                           f"{ref!r} matches several tasks of mission {mission.name!r}")
    return found[0]


def end(town: TownContext, name: str, state: MissionState = MissionState.CANCELLED,
        reason: str | None = None) -> Mission:
    """Cancel (or fail) the mission: its tasks not ended are cancelled."""
    return mission_store.end(town.store, name, state, reason).mission


def set_budget(town: TownContext, name: str, usd: float | None) -> Mission:
    return mission_store.set_budget(town.store, name, _budget(usd), queue_dispatch).mission


# --- looking ------------------------------------------------------------------------------


def list_missions(town: TownContext) -> list[Mission]:
    found = [mission_store.get(town.store, n) for n in mission_store.names(town.store)]
    return [m for m in found if m is not None]


def status(town: TownContext, name: str) -> dict[str, Any]:
    """The mission, brought up to date, and its tasks in waves: each one's name, id,
    state, agent, role, cost, branch, dependencies and why it waits."""
    mission_store.require(town.store, name)
    view = mission_store.advance(town.store, name, queue_dispatch)
    mission, tasks = view.mission, view.tasks
    label = {task_id: n for n, task_id in mission.tasks.items()}
    graph = {n: tuple(label.get(a, a) for a in (tasks[i].after if i in tasks else []))
             for n, i in mission.tasks.items()}
    agents = {a.id: a.name for a in town.store.list_agents()}

    def row(n: str) -> dict[str, Any]:
        t = tasks.get(mission.tasks[n])
        if t is None:
            return {"name": n, "id": mission.tasks[n], "state": "missing"}
        return {"name": n, "id": t.id, "state": t.state.value,
                "agent": agents.get(t.assigned_to or "", t.assigned_to),
                "role": t.role, "after": list(graph[n]),
                "cost_usd": t.usage.cost_usd if t.usage else None,
                "branch": t.branch, "blocked_reason": t.blocked_reason}

    return {**mission.to_wire(), "spent_usd": mission_store.spent(view),
            "waves": [[row(n) for n in wave] for wave in waves(graph)]}
