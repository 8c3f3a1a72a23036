"""Missions from a client's side: check a plan against the town, start a mission from
it, look at one, add a task to it, cancel or fail it. The plan's schema and checks are
tinytown.core.plans (pure); the records and the dispatcher are tinytown.db.mission_store.

A mission's tasks are created all at once, `blocked`; the mission releases them as
their dependencies complete, at most `parallel` at a time, none once its tasks' cost
reaches its budget (see tinytown.db.mission_store). A mission without a plan gets a
conductor: an agent whose first task is the goal, who adds the tasks with the mission
tools and is woken to decide (tinytown.db.conductor_wakes); only it (and the human,
whom `by=None` stands for) may change the mission through them.
"""

from __future__ import annotations

from typing import Any

from tinytown import ops
from tinytown.core import keys
from tinytown.core.conductor_briefs import first_task
from tinytown.core.errors import (
    AgentNotFound,
    AmbiguousReference,
    NameTaken,
    NotPermitted,
    PlanInvalid,
    TaskNotFound,
    UsageError,
)
from tinytown.core.models import Mission, MissionState, Task, TaskState
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
    read_plan,
    waves,
)
from tinytown.db import conductor_wakes, mission_store
from tinytown.db.task_writes import ensure_inboxes, queue_dispatch
from tinytown.ops.context import TownContext
from tinytown.ops.references import resolve

CONDUCTOR_ROLE = "conductor"
RESULT_TAIL = 600  # characters of each task's result in a mission's status


# --- plans ------------------------------------------------------------------------------


def check(town: TownContext | None, text: str | bytes) -> Plan | list[Problem]:
    """The plan in a file's text, checked against the town when one is given (its roles
    and agents)."""
    plan, problems = read_plan(text)
    if plan is not None:  # the town's checks too, so one run names every problem
        problems += runnable_problems(town, plan)
    return sorted(problems, key=lambda p: p.line) if problems or plan is None else plan


def runnable_problems(town: TownContext | None, plan: Plan) -> list[Problem]:
    problems: list[Problem] = []
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
          budget: float | None = None, parallel: int | None = None,
          conductor: str | None = None, conductor_cli: str | None = None,
          approve: bool = False) -> Mission:
    """Create the mission and every task of its plan (`blocked`, dependencies as task
    ids) in one transaction; those that can run are released at once, unless it is
    gated (`approve`, or the plan's `approve = true`): then it awaits `tt approve`
    first. The command line's name, goal, budget and parallel win over the plan's.

    Without a plan it gets a conductor: agent `conductor`, or a new agent
    `<name>-conductor` (role conductor) with CLI `conductor_cli` (default: the role's
    CLI, else the town's); its first task is the goal, and the mission is `planning`
    until it adds tasks. With a plan, a conductor given is woken as the plan runs."""
    _check_name(name)
    if conductor is not None and conductor_cli is not None:
        raise UsageError("give --conductor AGENT or --conductor-cli CLI, not both")
    if plan is not None:
        problems = runnable_problems(town, plan)
        if problems:
            raise PlanInvalid(problems_text(problems))
    goal = (goal or (plan.goal if plan else None) or "").strip()
    if plan is None and not goal:
        raise UsageError("a mission without a plan needs a goal (its conductor's first task)")
    mission = Mission(name, goal=goal,
                      budget_usd=_budget(budget if budget is not None else
                                         plan.budget if plan else None),
                      parallel=_parallel(parallel if parallel is not None else
                                         plan.parallel if plan else None))
    specs = plan.tasks if plan else []
    ids = {t.name: Task("-").id for t in specs}
    tasks = [_held(town, name, t, ids[t.name], [ids[a] for a in t.after]) for t in specs]
    mission.tasks = {t.name: ids[t.name] for t in specs}
    if approve or (plan is not None and plan.approve):
        mission.state = MissionState.AWAITING_APPROVAL
    if plan is None or conductor is not None or conductor_cli is not None:
        if mission_store.get(town.store, name) is not None:  # before an agent is spawned
            raise NameTaken(f"a mission named {name!r} exists already")
        mission.conductor = _conductor(town, name, conductor, conductor_cli)
    if plan is None:
        first = conductor_wakes.conductor_task(mission, first_task(name, goal))
        mission.conductor_tasks = [first.id]
        tasks.append(first)
    ensure_inboxes(town.store, tasks)
    created = mission_store.create(town.store, mission, tasks, queue_dispatch)
    _wake(town, tasks)
    return created


def _conductor(town: TownContext, mission: str, ref: str | None, cli: str | None) -> str:
    """The conductor's agent id: agent `ref`, or a new one spawned for the mission."""
    if ref is not None:
        return _agent_id(town, ref)
    from tinytown.ops.spawning import spawn

    agent_name = f"{mission[:54]}-conductor"
    try:
        return spawn(town, agent_name, cli=cli, role=CONDUCTOR_ROLE).id
    except NameTaken as exc:
        raise NameTaken(f"{exc}; or pass --conductor {agent_name} to make it this"
                        " mission's conductor") from None


def _held(town: TownContext, mission: str, spec: PlanTask, task_id: str, after: list[str]
          ) -> Task:
    task = Task(spec.text, id=task_id, state=TaskState.BLOCKED, mission=mission, after=after,
                blocked_reason="waiting to start", tags=[f"mission:{mission}"])
    if spec.agent is not None:
        task.assigned_to = _agent_id(town, spec.agent)
    task.role = spec.role
    task.gates = spec.to_gates()
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
             label: str | None = None, by: str | None = None) -> Task:
    """A task added to a mission while it runs: after some of its tasks (by their names
    in the mission or their ids); released at once when they are all completed. `by`:
    the agent asking (only the mission's conductor may; None: the human)."""
    if (agent is None) == (role is None):
        raise UsageError("give the task an agent or a role (one of them)")
    if role is not None and role not in (known := town.settings.known_roles()):
        raise UsageError(f"unknown role {role!r}; known roles: {', '.join(sorted(known))}")
    mission = _changed_by(town, name, by)
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


def _changed_by(town: TownContext, name: str, by: str | None) -> Mission:
    """The mission, if agent `by` may change it: its conductor, or the human (None, or
    the supervisor mailbox); NotPermitted for any other agent."""
    mission = mission_store.require(town.store, name)
    if by is None or by in (keys.SUPERVISOR_ID, mission.conductor):
        return mission
    who = f"its conductor ({_agent_name(town, mission.conductor)})" if mission.conductor \
        else "a person (it has no conductor)"
    raise NotPermitted(f"only {who} may change mission {name!r}")


def _agent_name(town: TownContext, agent_id: str) -> str:
    agent = town.store.get_agent(agent_id)
    return agent.name if agent is not None else agent_id[:8]


def add_dependency(town: TownContext, name: str, task: str, after: list[str] | tuple[str, ...],
                   by: str | None = None) -> Task:
    """A task of the mission not started yet also waits for `after` (names in the
    mission or ids); a cycle is refused, naming it."""
    mission = _changed_by(town, name, by)
    if not after:
        raise UsageError("give the tasks it waits for (`after`)")
    task_id = _mission_task(mission, task)
    view = mission_store.add_dependency(town.store, name, task_id,
                                        [_mission_task(mission, a) for a in after],
                                        queue_dispatch)
    _wake(town, [view.tasks[task_id]])
    return view.tasks[task_id]


def finish(town: TownContext, name: str, state: MissionState | str,
           summary: str | None = None, by: str | None = None) -> Mission:
    """Its conductor (or the human) ends the mission: `done` once every task is
    completed (refused before, saying which are not), or `failed`."""
    if state not in ("done", "failed"):
        raise UsageError(f"a mission is finished `done` or `failed` (not {state!r})")
    _changed_by(town, name, by)
    return mission_store.finish(town.store, name, MissionState(state),
                                (summary or "").strip() or None).mission


def end(town: TownContext, name: str, state: MissionState = MissionState.CANCELLED,
        reason: str | None = None) -> Mission:
    """Cancel (or fail) the mission: its tasks not ended are cancelled."""
    return mission_store.end(town.store, name, state, reason).mission


def approve(town: TownContext, name: str, by: str | None, note: str | None) -> Mission:
    """A mission that awaits approval runs (its first tasks released, their agents
    woken); Refused when it does not await approval."""
    view = mission_store.approve(town.store, name, queue_dispatch, by, note)
    _wake(town, list(view.tasks.values()))
    return view.mission


def reject(town: TownContext, name: str, by: str | None, note: str | None) -> Mission:
    """A mission that awaits approval is cancelled, with the note as its reason."""
    reason = f"rejected by {by or 'a person'}" + (f": {note}" if note else "")
    return mission_store.end(town.store, name, MissionState.CANCELLED, reason,
                             awaiting=True).mission


def set_budget(town: TownContext, name: str, usd: float | None) -> Mission:
    return mission_store.set_budget(town.store, name, _budget(usd), queue_dispatch).mission


# --- looking ------------------------------------------------------------------------------


def list_missions(town: TownContext) -> list[Mission]:
    found = [mission_store.get(town.store, n) for n in mission_store.names(town.store)]
    return [m for m in found if m is not None]


def status(town: TownContext, name: str) -> dict[str, Any]:
    """The mission, brought up to date, and its tasks in waves: each one's name, id,
    state, agent, role, cost, branch, dependencies, why it waits and its result's
    tail; its conductor's name and whether it is deciding."""
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
                "branch": t.branch, "blocked_reason": t.blocked_reason,
                "result": (t.result or "")[-RESULT_TAIL:] or None}

    extra: dict[str, Any] = {}
    if mission.conductor:
        extra = {"conductor_name": agents.get(mission.conductor, mission.conductor),
                 "conductor_deciding": conductor_wakes.turn_open(mission, tasks)}
    return {**mission.to_wire(), **extra, "spent_usd": mission_store.spent(view),
            "waves": [[row(n) for n in wave] for wave in waves(graph)]}
