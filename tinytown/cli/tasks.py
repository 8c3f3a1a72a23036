"""`tt assign`, `task ...`, `backlog ...`: tasks, given to an agent, a role or the backlog."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from tinytown.cli.common import (
    SECONDS,
    Context,
    age,
    emit,
    emit_json,
    json_option,
    pass_ctx,
    print_table,
    say,
    tags_option_value,
)
from tinytown.core.errors import UsageError
from tinytown.core.models import Gates, Priority, Task, TaskState

if TYPE_CHECKING:
    from tinytown.ops.facade import Town


@click.command()
@click.argument("args", nargs=-1, metavar="[AGENT] DESCRIPTION")
@click.option("--role", help="Queue it for whichever agent of this role is free (no AGENT).")
@click.option("--tags", help="Comma-separated tags.")
@click.option("--parent", "parent_task", help="Parent task id.")
@click.option("--after", "after", metavar="T1,T2",
              help="Comma-separated task ids (or prefixes): it is blocked until they are"
                   " all completed, then dispatched.")
@click.option("--urgent", is_flag=True, help="Put the assignment at the head of the inbox.")
@click.option("--check", "check", metavar="CMD",
              help="A gate: a command run in the agent's worktree after each round (no"
                   " shell); failing, its output goes back to the agent for a fix round.")
@click.option("--max-fix-rounds", type=click.IntRange(0, 100), metavar="N",
              help="With --check: fix rounds before the task fails (default 3).")
@click.option("--review", metavar="ROLE",
              help="A gate: when its round ends well (and its check passed), an agent of"
                   " ROLE reviews the branch's diff (approve, or changes back to the author).")
@click.option("--max-review-rounds", type=click.IntRange(1, 100), metavar="N",
              help="With --review: reviews before a person decides (default 3).")
@click.option("--approve", "approve", is_flag=True,
              help="A gate: the task awaits `tt approve` before it is completed.")
@click.option("--wait", "wait_", is_flag=True,
              help="Block until the task ends: exit 0 completed, 1 failed/cancelled, 124 timeout.")
@click.option("--timeout", type=SECONDS, help="With --wait: seconds.")
@click.option("--queue", is_flag=True,
              help="With --wait: wait for a stopped agent's restart (without it: exit 1 at once).")
@json_option
@pass_ctx
def assign(
    obj: Context, args: tuple[str, ...], role: str | None, tags: str | None,
    parent_task: str | None, after: str | None, urgent: bool, check: str | None,
    max_fix_rounds: int | None, review: str | None, max_review_rounds: int | None,
    approve: bool, wait_: bool, timeout: float | None, queue: bool, as_json: bool,
) -> None:
    """Create a task for an agent (or a role) and wake it; prints the task id.

    DESCRIPTION `-` reads the description from standard input.
    """
    from tinytown.cli.waiting import announce, interrupted_keeps, wait_and_report

    if role is not None and len(args) != 1:
        raise UsageError("with --role give only the DESCRIPTION, not an AGENT")
    if role is None and len(args) != 2:
        raise UsageError("give AGENT and DESCRIPTION (or --role ROLE and DESCRIPTION)")
    for given, option in ((timeout is not None, "--timeout"), (queue, "--queue")):
        if given and not wait_:
            raise UsageError(f"{option} goes with --wait")
    gates = _gates(check, max_fix_rounds, approve, review, max_review_rounds)
    description = sys.stdin.read() if args[-1] == "-" else args[-1]
    town = obj.town()
    parent_id = town.task(parent_task).id if parent_task else None
    task = Task(description, tags=tags_option_value(tags), parent_id=parent_id, gates=gates)
    deps = [ref.strip() for ref in (after or "").split(",") if ref.strip()]
    if after is not None and not deps:
        raise UsageError("--after needs task ids (comma-separated)")
    with interrupted_keeps(town, task.id, queue):
        if role is not None:
            task, live = town.assign_to_role(role, task, after=deps)
            where = f"queued for role {role}"
            if not live:
                say(f"tt: warning: no live agent has role {role!r}; the task waits in its"
                    " queue until one starts", err=True)
        else:
            town.assign(args[0], task, Priority.URGENT if urgent else Priority.NORMAL,
                        after=deps)
            live, where = [], f"assigned to {args[0]}"
        if deps and town.task(task.id).state == TaskState.BLOCKED:
            where += " (blocked until its dependencies are completed)"
        if not wait_:
            if as_json:  # the task as stored (read only for --json)
                emit_json(town.task(task.id))
            else:
                say(task.id)
            return
        announce(task.id, where, as_json)
        if role is not None and not live and not queue:
            from tinytown.core.errors import NotRunning

            raise NotRunning(f"not waiting for task {task.id[:8]}: no agent of role"
                             f" {role!r} runs (`tt task wait {task.id[:8]}` waits for one)")
        wait_and_report(town, task.id, timeout, queue, as_json)


def _gates(check: str | None, max_fix_rounds: int | None, approve: bool,
           review: str | None = None, max_review_rounds: int | None = None) -> Gates | None:
    """`tt assign`'s gates (None: none), checked before anything is written."""
    if max_fix_rounds is not None and check is None:
        raise UsageError("--max-fix-rounds goes with --check")
    if max_review_rounds is not None and review is None:
        raise UsageError("--max-review-rounds goes with --review")
    if check is not None:
        import shlex

        try:
            if not shlex.split(check):
                raise UsageError("--check needs a command")
        except ValueError as exc:
            raise UsageError(f"--check: cannot split the command: {exc}") from None
    if check is None and review is None and not approve:
        return None
    gates = Gates(check=check, review=review, approve=approve)
    if max_fix_rounds is not None:
        gates.max_fix_rounds = max_fix_rounds
    if max_review_rounds is not None:
        gates.max_review_rounds = max_review_rounds
    return gates


@click.command()
@click.argument("task_id")
@click.argument("verdict", type=click.Choice(["approve", "request-changes"]))
@click.option("--notes", default="", help="What the author should change (or why it is good).")
@json_option
@pass_ctx
def review(obj: Context, task_id: str, verdict: str, notes: str, as_json: bool) -> None:
    """Answer a review by hand: TASK_ID is the review task or the task in review.

    approve: the task goes on (its approve gate, or completed, its dependents released);
    request-changes: NOTES go back to its author, in its session, for another round.
    """
    t = obj.town().review_verdict(task_id, verdict == "approve", notes)
    emit(t, as_json, f"task {t.id} {t.state.value}")


@click.group()
def task() -> None:
    """Show and change tasks."""


def _print_task(t: Task, as_json: bool, town: Town | None = None) -> None:
    if as_json:
        emit_json(t)
        return
    for key, value in t.to_wire().items():
        if key in ("usage", "gates", "last_check", "follow_up", "review_history", "fix_rounds"):
            continue
        if key == "after" and town is not None:
            value = ", ".join(_dependency(town, i) for i in t.after)
        if key == "questions":  # to a person: how many, and how many were answered
            value = f"{len(t.questions)} asked, {sum('answer' in q for q in t.questions)} answered"
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or None
        if key == "result" and t.state == TaskState.FAILED:
            key = "error"  # a failed task's `result` is its error text
        say(f"{key:13} {value if value is not None else '-'}")
    _print_gates(t)
    if t.usage is not None:
        u = t.usage
        if u.unknown_rounds >= u.rounds:
            say(f"{'cost':13} unknown ({u.rounds} round(s); its CLI reported no usage)")
        else:
            say(f"{'cost':13} {u.cost_text()} ({u.rounds} round(s): {u.input_tokens} input,"
                f" {u.cached_input_tokens} cached, {u.output_tokens} output tokens)")
    for entry in t.review_history:  # oldest first: round, verdict, reviewer, notes
        who = str(entry.get("reviewer") or "?")
        if town is not None and (agent := town.store.get_agent(who)) is not None:
            who = agent.name
        notes = " ".join(str(entry.get("notes") or "").split())
        review = str(entry.get("review_task", ""))[:8]
        say(f"{'review ' + str(entry.get('round', '?')):13} {entry.get('verdict')} by {who}"
            f" (review task {review}){': ' + notes if notes else ''}")


def _print_gates(t: Task) -> None:
    """Its gates, its check's last run (with the end of the output) and its follow-up."""
    g = t.gates
    if g is None:
        return
    parts = [f"check `{g.check}` (at most {g.max_fix_rounds} fix rounds)"] if g.check else []
    parts += [f"review by role {g.review} (at most {g.max_review_rounds} rounds)"] \
        if g.review else []
    parts += ["approve"] if g.approve else []
    say(f"{'gates':13} {', '.join(parts) or '-'}")
    if g.check:
        say(f"{'fix_rounds':13} {t.fix_rounds}")
    c = t.last_check
    if c is not None:
        code = f"exit {c.exit_code}" if c.exit_code is not None else "no exit code"
        say(f"{'last_check':13} {'passed' if c.passed else 'failed'} ({code}, round"
            f" {c.round}, {c.secs:g}s) log {c.log or '-'}")
        if not c.passed:
            for line in c.tail.rstrip().splitlines()[-10:]:
                say(f"{'':13} | {line}")
    if t.follow_up:
        first = t.follow_up.strip().splitlines()[0] if t.follow_up.strip() else ""
        say(f"{'follow_up':13} {first[:200]}")


def _dependency(town: Town, task_id: str) -> str:
    """A dependency as `tt task show` lists it: its short id and its state."""
    found = town.store.get_task(task_id)
    return f"{task_id[:8]} ({found.state.value if found else 'gone'})"


@task.command(name="show")
@click.argument("task_id")
@json_option
@pass_ctx
def task_show(obj: Context, task_id: str, as_json: bool) -> None:
    """One task (a blocked one: what it waits for and why)."""
    town = obj.town()
    _print_task(town.task(task_id), as_json, town)


@task.command(name="retry")
@click.argument("task_id")
@click.option("--to", "to", metavar="AGENT", help="Run it on this agent instead.")
@click.option("--role", help="Queue it for this role instead.")
@json_option
@pass_ctx
def task_retry(obj: Context, task_id: str, to: str | None, role: str | None,
               as_json: bool) -> None:
    """Run a failed or cancelled task again (same agent, or --to / --role); the tasks
    blocked on it wait for it again."""
    if to is not None and role is not None:
        raise UsageError("give --to AGENT or --role ROLE, not both")
    t = obj.town().retry_task(task_id, to=to, role=role)
    emit(t, as_json, f"task {t.id} {t.state.value}")


@task.command(name="unblock")
@click.argument("task_id")
@json_option
@pass_ctx
def task_unblock(obj: Context, task_id: str, as_json: bool) -> None:
    """Let a task blocked by a failed or cancelled dependency go on without it."""
    t = obj.town().unblock_task(task_id)
    emit(t, as_json, f"task {t.id} {t.state.value}")


@task.command(name="wait")
@click.argument("task_id")
@click.option("--timeout", type=SECONDS, help="Seconds; exit 124 after.")
@click.option("--queue", is_flag=True,
              help="Wait for a stopped agent's restart (without it: exit 1 at once).")
@json_option
@pass_ctx
def task_wait(obj: Context, task_id: str, timeout: float | None, queue: bool,
              as_json: bool) -> None:
    """Block until a task ends: exit 0 completed, 1 failed/cancelled, 124 timeout."""
    from tinytown.cli.waiting import interrupted_keeps, wait_and_report

    town = obj.town()
    found = town.task(task_id).id
    with interrupted_keeps(town, found, queue):
        wait_and_report(town, found, timeout, queue, as_json)


@task.command(name="list")
@click.option("--state", type=click.Choice([s.value for s in TaskState]))
@click.option("--agent", help="Only tasks assigned to this agent.")
@json_option
@pass_ctx
def task_list(obj: Context, state: str | None, agent: str | None, as_json: bool) -> None:
    """Tasks, oldest first."""
    town = obj.town()
    tasks = town.list_tasks(state=state, agent_ref=agent)
    if as_json:
        emit_json(tasks)
        return
    if not tasks:
        say("no tasks")
        return
    names = _agent_names(town, tasks)
    rows = [
        [t.id[:8], t.state.value, names.get(t.assigned_to or "", "-"),
         age(t.updated_at), ",".join(t.tags), t.description[:60]]
        for t in tasks
    ]
    headers = ["ID", "STATE", "AGENT", "UPDATED", "TAGS", "DESCRIPTION"]
    if any(t.after for t in tasks):  # a graph: what each waits for (and why it cannot)
        headers[4:4] = ["AFTER"]
        for row, t in zip(rows, tasks, strict=True):
            row.insert(4, ",".join(i[:8] for i in t.after) or "-")
            if t.blocked_reason:
                row[-1] = f"{row[-1]} [{t.blocked_reason[:60]}]"
    print_table(None, headers, rows)


def _agent_names(town: Town, tasks: list[Task]) -> dict[str, str]:
    """Agent id -> name for a task listing. A pruned agent's record is gone; its name is
    read back from the events (`assigned`, `spawned`) while the stream still has them:
    `NAME (pruned)`, else `pruned agent <id prefix>`."""
    names = {a.id: a.name for a in town.list_agents()}
    gone = {t.assigned_to for t in tasks if t.assigned_to and t.assigned_to not in names}
    if gone:
        for event in reversed(town.events(10_000)):  # the newest name wins
            agent_id = event.get("agent", "")
            if agent_id in gone and event.get("name") and agent_id not in names:
                names[agent_id] = f"{event['name']} (pruned)"
        names.update({g: f"pruned agent {g[:8]}" for g in gone if g not in names})
    return names


def _finish(kind: str) -> Callable[..., None]:
    def command(obj: Context, task_id: str, text: str | None, as_json: bool) -> None:
        town = obj.town()
        if kind == "complete":
            t = town.complete_task(task_id, text)
        elif kind == "fail":
            t = town.fail_task(task_id, text)
        else:
            t = town.cancel_task(task_id)
        emit(t, as_json, f"task {t.id} {t.state.value}")

    return command


for _kind, _option, _help in (
    ("complete", "--result", "Mark a task completed."),
    ("fail", "--error", "Mark a task failed."),
    ("cancel", None, "Cancel a task."),
):
    _cmd = _finish(_kind)
    _cmd = json_option(_cmd)
    if _option:
        _cmd = click.option(_option, "text", help="Text kept as the task's result.")(_cmd)
    else:
        _cmd = click.option("--text", "text", hidden=True)(_cmd)
    _cmd = click.argument("task_id")(_cmd)
    task.command(name=_kind, help=_help)(pass_ctx(_cmd))


@task.command(name="current")
@click.argument("agent", required=False)
@json_option
@pass_ctx
def task_current(obj: Context, agent: str | None, as_json: bool) -> None:
    """The task an agent is working on (default: $TINYTOWN_AGENT_ID)."""
    ref = agent or os.environ.get("TINYTOWN_AGENT_ID") or os.environ.get("TINYTOWN_AGENT_NAME")
    if not ref:
        raise UsageError("give an AGENT (or run inside an agent, where TINYTOWN_AGENT_ID is set)")
    current = obj.town().current_task(ref)
    if current is None:
        emit(None, as_json, "no current task")
        return
    _print_task(current, as_json)


@click.group()
def backlog() -> None:
    """Unassigned tasks that agents (or you) claim."""


@backlog.command(name="add")
@click.argument("description")
@click.option("--tags", help="Comma-separated tags.")
@click.option("--role", help="Only agents of this role take it with assign-all.")
@json_option
@pass_ctx
def backlog_add(obj: Context, description: str, tags: str | None, role: str | None,
                as_json: bool) -> None:
    """Add a task to the backlog; prints its id."""
    from tinytown.core.models import Task

    task = obj.town().backlog_add(Task(description, tags=tags_option_value(tags)), role=role)
    emit(task, as_json, task.id)


@backlog.command(name="list")
@json_option
@pass_ctx
def backlog_list(obj: Context, as_json: bool) -> None:
    """The backlog, oldest first."""
    tasks = obj.town().backlog()
    if as_json:
        emit_json(tasks)
    elif not tasks:
        say("the backlog is empty")
    else:
        print_table(None, ["ID", "ROLE", "TAGS", "DESCRIPTION"], [
            [t.id[:8], t.role or "-", ",".join(t.tags),
             t.description[:70]] for t in tasks])


@backlog.command(name="claim")
@click.argument("task_id")
@click.argument("agent")
@json_option
@pass_ctx
def backlog_claim(obj: Context, task_id: str, agent: str, as_json: bool) -> None:
    """Assign a backlog task to an agent."""
    task = obj.town().backlog_claim(task_id, agent)
    emit(task, as_json, f"task {task.id} assigned")


@backlog.command(name="assign-all")
@click.argument("agent")
@json_option
@pass_ctx
def backlog_assign_all(obj: Context, agent: str, as_json: bool) -> None:
    """Assign every backlog task the agent may take."""
    tasks = obj.town().backlog_assign_all(agent)
    emit(tasks, as_json, f"assigned {len(tasks)} task(s)")


@backlog.command(name="remove")
@click.argument("task_id")
@json_option
@pass_ctx
def backlog_remove(obj: Context, task_id: str, as_json: bool) -> None:
    """Take a task out of the backlog (it is kept as cancelled)."""
    task = obj.town().backlog_remove(task_id)
    emit(task, as_json, f"task {task.id} removed from the backlog")


COMMANDS = [assign, task, review, backlog]
