"""What a mission's conductor is told: its first task (the goal, and how to plan it with
the mission tools) and each wake-up (what ended since it last decided, with the
results' tails and branches). Pure text building, no I/O: the wake-ups are written by
tinytown.db.conductor_wakes inside the transaction that ends a task.
"""

from __future__ import annotations

from collections.abc import Sequence

from tinytown.core.models import Task

RESULT_CHARS = 1500  # of each task's result in a wake-up
RESULTS_CHARS = 8000  # of all of them together

TOOLS = """\
The mission tools (Tinytown's MCP server; only you, its conductor, may use the ones
that change it):
- add_mission_task(mission, text, agent | role, after=[task names], name): a task for
  one agent (list_agents names them) or for whichever agent of a role is free, run
  once every task named in `after` is completed (their results go into its prompt).
- add_mission_dependency(mission, task, after=[task names]): a task not started yet
  also waits for these.
- mission_status(name): the graph in waves, each task's state, agent, branch and the
  tail of its result.
- retry_task(task_id, to=agent) / unblock_task(task_id): a failed task run again, or a
  task blocked by a failed one let go on without it.
- finish_mission(mission, status="done" | "failed", summary): the mission ends
  (`done` only once every task is completed)."""


def first_task(mission: str, goal: str) -> str:
    """The conductor's first task: the goal, and what to do with it."""
    return (f"You are the conductor of the Tinytown mission {mission!r}. Its goal:\n\n"
            f"{goal.strip()}\n\n"
            "Plan the work as tasks with dependencies, for the town's agents, with the"
            f" mission tools below (mission {mission!r}); do not do the work yourself."
            " Tasks that do not depend on each other run in parallel. When the plan is"
            " in, end your turn: you are woken, in this same session, when a task fails"
            " or when the tasks that could run are all done (with their results), to"
            " decide what comes next.\n\n" + TOOLS + "\n")


def wake(mission: str, failed: Sequence[tuple[str, Task]], done: Sequence[tuple[str, Task]],
         idle: bool) -> str:
    """A wake-up: the tasks (name, task) that failed or were cancelled and those that
    completed since the conductor last decided; `idle`: nothing runs any more."""
    if failed:
        head = (f"Mission {mission!r}: {len(failed)} task(s) did not complete. Decide:"
                " retry it (retry_task, perhaps for another agent), replace it (new tasks;"
                " unblock_task lets the tasks waiting for it go on without it), or"
                " finish_mission(status=\"failed\").")
    else:
        head = (f"Mission {mission!r}: the tasks that could run are done"
                f"{' and nothing is running' if idle else ''}. Decide: add the next tasks,"
                " or finish_mission(status=\"done\") if the goal is met.")
    out = [head, ""]
    left = RESULTS_CHARS
    for label, task in [*failed, *done]:
        out.append(f"### {label} ({task.state.value}, task {task.id})")
        if task.branch:
            out.append(f"Branch: {task.branch} ({len(task.commits)} commit(s))")
        result = (task.result or "").strip()
        shown = result[-max(0, min(RESULT_CHARS, left)):] if left > 0 else ""
        left -= len(shown)
        if len(shown) < len(result):
            shown = "[...]" + shown
        out += [f"Result: {shown}" if shown else "Result: (none given)", ""]
    out.append("mission_status shows the whole graph. End your turn when you have decided:"
               " you are woken again when there is something to decide.")
    return "\n".join(out) + "\n"
