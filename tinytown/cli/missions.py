"""`tt mission ...` and `tt plan check`: missions, a goal run as a graph of tasks from a
plan file (see tinytown.core.plans for the file, tinytown.ops.mission_control for the rest)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tinytown.cli.common import Context, emit, emit_json, json_option, pass_ctx, print_table, say
from tinytown.core.errors import TownNotFound, UsageError

if TYPE_CHECKING:
    from tinytown.core.plans import Plan

WATCH_SECS = 2.0


def _read_plan(path: str) -> bytes:
    """The plan file's bytes ('-': standard input); one-line UsageError if unreadable."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read plan {path}: {exc.strerror or exc}") from None


def _checked(obj: Context, path: str, town_too: bool) -> Plan:
    """The plan in FILE, checked (against the town when `town_too`). With problems:
    each on stderr as FILE:LINE: problem (as a compiler says them), exit 1."""
    from tinytown.ops import mission_control

    found = mission_control.check(obj.town().context if town_too else None, _read_plan(path))
    if isinstance(found, list):
        for line in mission_control.problems_text(found, path).splitlines():
            say(line, err=True)
        raise click.exceptions.Exit(1)
    return found


@click.group()
def plan() -> None:
    """Check plan files (a mission's tasks and their order, as TOML)."""


@plan.command(name="check")
@click.argument("file")
@click.option("--no-town", is_flag=True,
              help="Check the file alone (not its roles and agents against the town).")
@json_option
@pass_ctx
def plan_check(obj: Context, file: str, no_town: bool, as_json: bool) -> None:
    """Print the waves a plan would run in, or every problem as FILE:LINE: problem.

    Inside a town (or with --town) its roles and agents are checked against the town
    too; elsewhere the file alone, and a note on stderr says so. Exit 1 on problems.
    """
    town_too = not no_town
    if town_too:
        try:
            obj.settings()
        except TownNotFound:
            town_too = False
            say("tt: note: no town here: roles and agents not checked (see --town)", err=True)
    found = _checked(obj, file, town_too)
    waves = found.waves()
    if as_json:
        emit_json({"name": found.name, "goal": found.goal, "budget": found.budget,
                   "parallel": found.parallel, "waves": waves})
        return
    for number, wave in enumerate(waves, 1):
        say(f"wave {number}: {', '.join(wave)}")


@click.group()
def mission() -> None:
    """Missions: a goal run as a graph of tasks (see `tt plan check`)."""


@mission.command(name="start")
@click.argument("name")
@click.argument("goal", required=False)
@click.option("--plan", "plan_file", metavar="FILE", help="The plan file (TOML; - reads stdin).")
@click.option("--conductor", metavar="AGENT", help="The agent that plans the goal and is woken"
              " to decide (default without --plan: a new agent NAME-conductor).")
@click.option("--conductor-cli", metavar="CLI", help="Spawn the conductor NAME-conductor with"
              " this agent CLI (default: the conductor role's CLI, else the town's).")
@click.option("--budget", type=float, metavar="USD", help="Its tasks' cost at which it stops"
              " dispatching (wins over the plan's).")
@click.option("--parallel", type=int, metavar="N",
              help="At most N of its tasks at work at once (wins over the plan's).")
@click.option("--approve", is_flag=True,
              help="It awaits `tt approve NAME` before any task is dispatched.")
@json_option
@pass_ctx
def mission_start(obj: Context, name: str, goal: str | None, plan_file: str | None,
                  conductor: str | None, conductor_cli: str | None, budget: float | None,
                  parallel: int | None, approve: bool, as_json: bool) -> None:
    """Start mission NAME from a plan: every task is created at once and runs as soon
    as the tasks it comes after are completed. Without --plan, GOAL goes to a conductor
    agent that plans it with the mission tools (MCP) and is woken, in the same session,
    when a task fails or the tasks that could run are done. With --approve (or the
    plan's approve = true) it waits for `tt approve NAME` first."""
    found = _checked(obj, plan_file, True) if plan_file else None  # problems as FILE:LINE
    if found is None and not (goal or "").strip():
        raise UsageError("give the mission's GOAL (its conductor plans it) or --plan FILE")
    started = obj.town().start_mission(name, found, goal, budget, parallel, conductor,
                                       conductor_cli, approve)
    by = ""
    if started.conductor:
        by = f", conducted by {obj.town().resolve(started.conductor).name}"
    then = f"`tt approve {started.name}` to run it" if started.state == \
        "awaiting_approval" else f"`tt mission status {started.name}`"
    emit(started, as_json, f"mission {started.name} {started.state.value}:"
         f" {len(started.tasks)} tasks{by} ({then})")


@mission.command(name="status")
@click.argument("name")
@click.option("--watch", is_flag=True, help="Print it again every 2 s until it ends.")
@json_option
@pass_ctx
def mission_status(obj: Context, name: str, watch: bool, as_json: bool) -> None:
    """The mission's state and its tasks, wave by wave: state, agent, cost, branch."""
    town = obj.town()
    while True:
        status = town.mission(name)
        if as_json:
            emit_json(status)
        else:
            _print_status(status)
        if not watch or status["state"] in ("done", "failed", "cancelled"):
            return
        time.sleep(WATCH_SECS)
        if not as_json:
            say()


def _print_status(status: dict[str, Any]) -> None:
    budget = status.get("budget_usd")
    spend = f"${status['spent_usd']:.4f}" + (f" of ${budget:g}" if budget else "")
    reason = f" ({status['reason']})" if status.get("reason") else ""
    say(f"mission {status['name']}: {status['state']}{reason}; spent {spend}")
    if status.get("goal"):
        say(f"goal: {status['goal']}")
    if status.get("conductor_name"):
        doing = "deciding" if status.get("conductor_deciding") else "waiting to be woken"
        say(f"conductor: {status['conductor_name']} ({doing})")
    if status.get("summary"):
        say(f"summary: {status['summary']}")
    rows = []
    for number, wave in enumerate(status["waves"], 1):
        for row in wave:
            cost = row.get("cost_usd")
            why = row.get("blocked_reason") or ""
            rows.append([str(number), row["name"], row["state"],
                         row.get("agent") or (f"role {row['role']}" if row.get("role") else "-"),
                         f"${cost:.4f}" if cost is not None else "-",
                         row.get("branch") or "-", row["id"][:8], why])
    print_table(None, ["wave", "task", "state", "agent", "cost", "branch", "id", "waiting"],
                rows, squeeze=7)


@mission.command(name="list")
@json_option
@pass_ctx
def mission_list(obj: Context, as_json: bool) -> None:
    """The town's missions."""
    found = obj.town().missions()
    if as_json:
        emit_json(found)
        return
    print_table(None, ["name", "state", "tasks", "budget", "parallel", "goal"],
                [[m.name, m.state.value + (f" ({m.reason})" if m.reason else ""),
                  str(len(m.tasks)), f"${m.budget_usd:g}" if m.budget_usd else "-",
                  str(m.parallel or "-"), m.goal] for m in found], squeeze=5)


@mission.command(name="cancel")
@click.argument("name")
@json_option
@pass_ctx
def mission_cancel(obj: Context, name: str, as_json: bool) -> None:
    """Cancel the mission: its tasks not ended yet are cancelled."""
    ended = obj.town().cancel_mission(name)
    emit(ended, as_json, f"mission {ended.name} cancelled")


@mission.command(name="fail")
@click.argument("name")
@click.argument("reason", required=False)
@json_option
@pass_ctx
def mission_fail(obj: Context, name: str, reason: str | None, as_json: bool) -> None:
    """End the mission as failed (with a reason): its tasks not ended are cancelled."""
    ended = obj.town().cancel_mission(name, fail=True, reason=reason)
    emit(ended, as_json, f"mission {ended.name} failed")


@mission.command(name="budget")
@click.argument("name")
@click.argument("usd")
@json_option
@pass_ctx
def mission_budget(obj: Context, name: str, usd: str, as_json: bool) -> None:
    """Set the mission's budget in USD (`none`: no budget); a mission held over budget
    goes on if the new one allows."""
    try:
        value = None if usd.lower() == "none" else float(usd)
    except ValueError:
        raise UsageError(f"{usd!r} is not a number of USD (or `none`)") from None
    changed = obj.town().set_mission_budget(name, value)
    emit(changed, as_json, f"mission {changed.name}: budget"
         f" {'none' if value is None else f'${value:g}'}, {changed.state.value}")


@mission.command(name="add-task")
@click.argument("name")
@click.argument("text")
@click.option("--agent", help="The agent that does it.")
@click.option("--role", help="The role whose free agent does it.")
@click.option("--after", metavar="NAME-OR-ID,...", help="Tasks of the mission it waits for.")
@click.option("--name", "label", help="Its name in the mission (default: task-N).")
@json_option
@pass_ctx
def mission_add_task(obj: Context, name: str, text: str, agent: str | None, role: str | None,
                     after: str | None, label: str | None, as_json: bool) -> None:
    """Add a task to a mission while it runs; TEXT `-` reads it from standard input."""
    if (agent is None) == (role is None):
        raise UsageError("give --agent or --role (one of them)")
    body = sys.stdin.read() if text == "-" else text
    refs = [a.strip() for a in (after or "").split(",") if a.strip()]
    added = obj.town().add_mission_task(name, body, agent, role, refs, label)
    emit(added, as_json, added.id)


COMMANDS = [plan, mission]
