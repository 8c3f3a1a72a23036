"""`tt`: a thin click layer over the Python API (`tinytown.ops.town.Town`).

Errors are TinytownError subclasses, printed as one line on stderr with their exit
code; nothing here holds logic the API lacks.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tinytown.cli.common import (
    SECONDS,
    Context,
    age,
    emit_json,
    json_option,
    pass_ctx,
    print_table,
    say,
    tags_option_value,
)
from tinytown.errors import TinytownError, UsageError
from tinytown.models import (
    AckKind,
    Agent,
    Message,
    MessageBody,
    MessageType,
    Priority,
    Task,
    TaskState,
)

if TYPE_CHECKING:
    from tinytown.ops.town import Town

# Process and operations commands live in their own modules, imported only when one
# of them runs or `tt --help` lists them: a `tt send` does not pay for them.
LAZY_COMMANDS = {
    **dict.fromkeys(("interrupt", "resume", "close", "kill", "restart", "wait", "prune",
                     "stop", "worker", "supervisor", "up"), "tinytown.cli.engine"),
    **dict.fromkeys(("flower", "events", "history", "logs", "recover", "reclaim", "save",
                     "restore", "backlog"), "tinytown.cli.ops"),
    "show": "tinytown.cli.show",
    "doctor": "tinytown.cli.doctor",
    **dict.fromkeys(("usage", "budget"), "tinytown.cli.spend"),
    **dict.fromkeys(("diff", "merge", "branch"), "tinytown.cli.git"),
    **dict.fromkeys(("serve", "auth", "mcp"), "tinytown.cli.serve"),
    **dict.fromkeys(("host", "hosts"), "tinytown.cli.hosts"),
}


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = LAZY_COMMANDS.get(name)
        if module is not None and name not in self.commands:
            for command in import_module(module).COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--town", "town_path", metavar="PATH", envvar="TINYTOWN_TOWN_ROOT",
    help="The town's folder (default: nearest tinytown.toml upwards).",
)
@click.version_option(package_name="tinytown", prog_name="tt")
@click.pass_context
def cli(ctx: click.Context, town_path: str | None) -> None:
    """Tinytown: coordinate AI coding agents through Redis and Celery."""
    ctx.obj = Context(town_path)


# --- the town -------------------------------------------------------------------


@cli.command()
@click.option("--name", help="Town name (default: <repo>-<branch>, else the folder's name).")
@click.option("--join", is_flag=True,
              help="Share a town of this name that already has data in the Redis.")
@click.option("--nested", is_flag=True,
              help="Make a town inside another town's folder (refused without it).")
@click.pass_obj
def init(obj: Context, name: str | None, join: bool, nested: bool) -> None:
    """Create tinytown.toml and .tt/ here, and start the town's Redis."""
    from tinytown.ops.town import Town
    from tinytown.urls import redact, redis_url

    town = Town.init(obj.town_path or ".", name=name, join=join, nested=nested)
    say(f"town {town.name!r} ready in {town.settings.root}")
    say(f"redis: {redact(redis_url(town.settings))}")
    _say_what_to_commit(town.settings.root)


def _say_what_to_commit(root: Path) -> None:
    """In a git repository: the files `init` made or changed, to commit (agents'
    worktrees start from a commit, and a merge wants the target's tracked files clean)."""
    import shlex

    from tinytown.workspace import uncommitted

    files = uncommitted(root, ["tinytown.toml", ".gitignore"])
    if files:
        git = "git" if root == Path.cwd().resolve() else f"git -C {shlex.quote(str(root))}"
        say(f"commit {' and '.join(files)}: {git} add {' '.join(files)} && {git} commit -m"
            " 'Add a Tinytown town'")


@cli.command()
@pass_ctx
def down(obj: Context) -> None:
    """Stop the town's workers, its supervisor and its embedded Redis (`tt up` brings
    them back)."""
    report = obj.town(note_start=False).down()
    redis_state = (
        "stopped" if report["redis"]
        else "not running" if report["embedded"] else "left running (external)"
    )
    say(
        f"stopped {report['workers']} worker(s); supervisor "
        f"{'stopped' if report['supervisor'] else 'not running'}; redis {redis_state}"
    )


# --- agents ---------------------------------------------------------------------


@cli.command()
@click.argument("name")
@click.option(
    "--cli", "cli_name", help="Preset (claude, codex, ...), [agent_clis] name or command."
)
@click.option("--role", help="Role for routing (worker, reviewer, ...).")
@click.option("--nickname", help="Display name (default: a 1920s name from the agent's id).")
@click.option("--parent", help="Parent agent (name, nickname or id).")
@click.option("--fork", is_flag=True, help="Inherit the parent's recent context (forkedcontext).")
@click.option("--max-rounds", type=click.IntRange(min=1), help="Go cold after N CLI runs.")
@click.option("--scope", help="Free-text description of the agent's assigned scope.")
@click.option("--foreground", is_flag=True, help="Run the worker attached to this terminal.")
@click.option("--no-start", is_flag=True, help="Only record the agent; start it with `tt worker`.")
@click.option("--session", type=click.Choice(["continue", "fresh"]),
              help="continue (default): each task goes on with the CLI's session; fresh:"
                   " each starts anew.")
@click.option("--resume", metavar="AGENT|SESSION",
              help="Continue another agent's CLI session (or a session id): resumed.")
@click.option("--budget", type=float, metavar="USD",
              help="What it may spend; it is held before a round once its cost reaches it.")
@click.option("--workspace", metavar="worktree|shared|PATH",
              help="Where its CLI runs (default in a git repository: its own worktree).")
@click.option("--base", metavar="REF", help="The commit its branch starts from (default HEAD).")
@click.option("--host", metavar="NAME|auto|local",
              help="The host daemon it runs on (default: auto while one runs, else local).")
@click.option("--on", "labels", metavar="LABEL", multiple=True,
              help="A label its host must have (repeatable).")
@click.option("--cold", is_flag=True, help="Start no process: work that arrives wakes it.")
@json_option
@pass_ctx
def spawn(
    obj: Context, name: str, cli_name: str | None, role: str | None, nickname: str | None,
    parent: str | None, fork: bool, max_rounds: int | None, scope: str | None,
    foreground: bool, no_start: bool, session: str | None, resume: str | None,
    budget: float | None, workspace: str | None, base: str | None, host: str | None,
    labels: tuple[str, ...], cold: bool, as_json: bool,
) -> None:
    """Record an agent and start its worker."""
    town = obj.town()
    if cold and (foreground or no_start):
        raise UsageError("--cold starts no process: it does not go with --foreground or"
                         " --no-start")
    handle = town.spawn_agent(
        name, cli=cli_name, role=role, nickname=nickname, parent=parent, fork=fork,
        max_rounds=max_rounds, scope=scope, start=not (foreground or no_start or cold),
        session=session, resume=resume, budget=budget, workspace=workspace, base=base,
        host=host, on=list(labels), cold=cold,
    )
    agent = handle.record()
    if as_json:
        emit_json(agent)
    else:
        say(f"spawned {agent.name} ({agent.display_nickname}) {agent.id}")
    if foreground:
        from tinytown.keeper import keep
        from tinytown.worker.app import run_worker

        town.close()
        keep()  # this process becomes the worker's keeper; the worker goes on below
        sys.exit(run_worker(town.settings, agent.id, revive=True))


@cli.command(name="list")
@json_option
@pass_ctx
def list_(obj: Context, as_json: bool) -> None:
    """List the town's agents."""
    town = obj.town()
    agents = town.list_agents()
    if as_json:
        emit_json(agents)
    else:
        _agents_table(town, agents, None)


@cli.command()
@click.option("--deep", is_flag=True, help="Also rounds, uptime and recent events per agent.")
@json_option
@pass_ctx
def status(obj: Context, deep: bool, as_json: bool) -> None:
    """The town, its Redis and supervisor, and every agent."""
    town = obj.town()
    report = town.status(deep=deep)
    if as_json:
        emit_json(report)
        return
    say(f"town {report['town']}  redis {report['redis']}  supervisor {report['supervisor']}")
    agents = town.list_agents()
    _agents_table(town, agents, None, inbox=report["inbox"])
    whys = [f"{a.name} {a.state.value}: {a.hold or a.halted}" for a in agents
            if a.hold or a.halted]  # under the table: a row stays a line
    if whys:
        say()
        for why in whys:
            say(why)
    if deep:
        for entry in report.get("deep", []):
            say(f"\n{entry['name']}: rounds {entry['rounds']}, uptime {entry['uptime']},"
                f" session {entry['session_id'] or 'none yet'} ({entry['session']})")
            for why in ("hold", "halted"):
                if entry.get(why):
                    say(f"  {why}: {entry[why]}")
            for event in entry["events"]:
                say(f"  {event}")
            if entry.get("log_tail"):
                say("  last round log:")
                for line in entry["log_tail"]:
                    say(f"    {line}")


def _agents_table(
    town: Town, agents: list[Agent], title: str | None, inbox: dict[str, int] | None = None
) -> None:
    if not agents:
        say("no agents (spawn one with `tt spawn NAME`)")
        return
    if inbox is None:
        inbox = town.inbox_lens(agents)
    fleet = any(a.host or a.restarts for a in agents)  # host columns only with hosts
    rows = [
        [
            a.name, a.display_nickname, a.role_id or "-",
            a.state.value, a.cli,  # one word: the why is in `tt show`, --deep, --json
            (a.current_task or "-")[:8], str(inbox.get(a.id, 0)), str(a.tasks_completed),
            a.usage.cost_text() if a.usage else "-", age(a.last_heartbeat),
            *([a.host or "-", str(a.restarts)] if fleet else []),
        ]
        for a in agents
    ]
    print_table(
        title,
        ["NAME", "NICKNAME", "ROLE", "STATE", "CLI", "TASK", "INBOX", "DONE", "COST",
         "HEARTBEAT", *(["HOST", "RESTARTS"] if fleet else [])],
        rows, squeeze=4,  # a long CLI command is cut on a terminal: a row is a line
    )


# --- messages -------------------------------------------------------------------


def _ack(text: str) -> MessageBody:
    kind, _, reason = text.partition(":")
    kind = kind.strip().lower()
    try:
        ack = AckKind(kind)
    except ValueError:
        raise UsageError(
            f"--ack takes one of {', '.join(k.value for k in AckKind)}"
            " (rejected may add ': reason')"
        ) from None
    return MessageType.confirmation(ack, reason.strip() if ack == AckKind.REJECTED else None)


@cli.command()
@click.argument("agent")
@click.argument("message")
@click.option("--query", "kind", flag_value="query", help="Send a question (query).")
@click.option("--info", "kind", flag_value="info", help="Send information (informational).")
@click.option("--ack", "kind", flag_value="ack", help="Send a confirmation; MESSAGE is its kind.")
@click.option("--urgent", is_flag=True, help="Same as --priority urgent.")
@click.option("--priority", type=click.Choice([p.value for p in Priority]), default=None)
@click.option("--from", "sender", help="Sender (default: $TINYTOWN_AGENT_ID, else supervisor).")
@json_option
@pass_ctx
def send(
    obj: Context, agent: str, message: str, kind: str | None, urgent: bool,
    priority: str | None, sender: str | None, as_json: bool,
) -> None:
    """Put a message in an agent's inbox (plain text is a task message).

    MESSAGE `-` reads the message from standard input.
    """
    if message == "-":
        message = sys.stdin.read()
    if not message.strip():
        raise UsageError("the message is empty")
    if urgent and priority and priority != "urgent":
        raise UsageError("--urgent contradicts --priority " + priority)
    body: MessageBody
    if kind == "query":
        body = MessageType.query(message)
    elif kind == "info":
        body = MessageType.informational(message)
    elif kind == "ack":
        body = _ack(message)
    else:
        body = MessageType.task(message)
    prio = Priority.URGENT if urgent else Priority(priority or "normal")
    sent = obj.town().channel.send(agent, body, priority=prio, sender=sender)
    if as_json:
        emit_json(sent)
    else:
        say(f"sent {sent.type} {sent.id} ({prio.value})")


def _describe(m: Message, tasks: dict[str, Task]) -> str:
    """A message's content as text: what a task message says, not its JSON."""
    from tinytown import models as mt

    b = m.body
    if isinstance(b, mt.TaskDoneMsg):
        return f"task {b.task_id[:8]} done: {b.result}"
    if isinstance(b, mt.TaskFailedMsg):
        return f"task {b.task_id[:8]} failed: {b.error}"
    if isinstance(b, mt.TaskAssignMsg):
        found = tasks.get(b.task_id)
        return f"task {b.task_id[:8]}: {found.description if found else '(no such task)'}"
    if isinstance(b, mt.ConfirmationMsg):
        reason = b.ack_type.reason if isinstance(b.ack_type.reason, str) else None
        return b.ack_type.type.value + (f": {reason}" if reason else "")
    if isinstance(b, mt.StatusResponseMsg):
        return b.state.value + (f", task {b.current_task[:8]}" if b.current_task else "")
    if isinstance(b, mt.CustomMsg):
        return f"{b.kind}: {b.payload}"
    body = b.to_dict()
    body.pop("type", None)
    if not body:
        return ""
    if len(body) == 1:
        value = next(iter(body.values()))
        return value if isinstance(value, str) else json.dumps(value)
    return json.dumps(body)


@cli.command()
@click.argument("agent", required=False)
@click.option("--all", "all_", is_flag=True, help="Every agent's inbox, and the supervisor's.")
@json_option
@pass_ctx
def inbox(obj: Context, agent: str | None, all_: bool, as_json: bool) -> None:
    """Show pending messages without consuming them."""
    town = obj.town()
    if all_ and agent:
        raise UsageError("give an AGENT or --all, not both")
    from tinytown.models import Agent as AgentModel

    if all_:
        targets = [AgentModel.supervisor(), *town.list_agents()]
    else:
        ref = agent or os.environ.get("TINYTOWN_AGENT_ID") or "supervisor"
        targets = [town.resolve(ref)]
    from tinytown.ops.town import AgentHandle

    messages = [m for a in targets for m in AgentHandle(town, a.id).inbox()]
    if as_json:
        emit_json(messages)
        return
    names = {a.id: a.name for a in [AgentModel.supervisor(), *town.list_agents()]}
    if not messages:
        say("no pending messages")
        return
    assigned = {str(getattr(m.body, "task_id", "")) for m in messages if m.type == "task_assign"}
    tasks = {t.id: t for t in (town.store.get_task(i) for i in assigned) if t is not None}
    cut = 80 if sys.stdout.isatty() else None  # a pipe or a file gets the whole text
    rows = [
        [names.get(m.to, m.to[:8]), m.id[:8], m.type, m.priority.value,
         names.get(m.sender, m.sender[:8]), age(m.created_at), _cut(_describe(m, tasks), cut)]
        for m in messages
    ]
    print_table(None, ["TO", "ID", "TYPE", "PRIORITY", "FROM", "AGE", "CONTENT"], rows)


def _cut(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[:width - 1] + "…"


# --- tasks ----------------------------------------------------------------------


@cli.command()
@click.argument("args", nargs=-1, metavar="[AGENT] DESCRIPTION")
@click.option("--role", help="Queue it for whichever agent of this role is free (no AGENT).")
@click.option("--tags", help="Comma-separated tags.")
@click.option("--parent", "parent_task", help="Parent task id.")
@click.option("--urgent", is_flag=True, help="Put the assignment at the head of the inbox.")
@click.option("--wait", "wait_", is_flag=True,
              help="Block until the task ends: exit 0 completed, 1 failed/cancelled, 124 timeout.")
@click.option("--timeout", type=SECONDS, help="With --wait: seconds.")
@click.option("--queue", is_flag=True,
              help="With --wait: wait for a stopped agent's restart (without it: exit 1 at once).")
@json_option
@pass_ctx
def assign(
    obj: Context, args: tuple[str, ...], role: str | None, tags: str | None,
    parent_task: str | None, urgent: bool, wait_: bool, timeout: float | None, queue: bool,
    as_json: bool,
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
    description = sys.stdin.read() if args[-1] == "-" else args[-1]
    town = obj.town()
    parent_id = town.task(parent_task).id if parent_task else None
    task = Task(description, tags=tags_option_value(tags), parent_id=parent_id)
    with interrupted_keeps(town, task.id, queue):
        if role is not None:
            task, live = town.assign_to_role(role, task)
            where = f"queued for role {role}"
            if not live:
                say(f"tt: warning: no live agent has role {role!r}; the task waits in its"
                    " queue until one starts", err=True)
        else:
            town.assign(args[0], task, Priority.URGENT if urgent else Priority.NORMAL)
            live, where = [], f"assigned to {args[0]}"
        if not wait_:
            if as_json:
                emit_json(town.task(task.id))
            else:
                say(task.id)
            return
        announce(task.id, where, as_json)
        if role is not None and not live and not queue:
            from tinytown.errors import NotRunning

            raise NotRunning(f"not waiting for task {task.id[:8]}: no agent of role"
                             f" {role!r} runs (`tt task wait {task.id[:8]}` waits for one)")
        wait_and_report(town, task.id, timeout, queue, as_json)


@cli.group()
def task() -> None:
    """Show and change tasks."""


def _print_task(t: Task, as_json: bool) -> None:
    if as_json:
        emit_json(t)
        return
    for key, value in t.to_wire().items():
        if key == "usage":
            continue
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or None
        if key == "result" and t.state == TaskState.FAILED:
            key = "error"  # a failed task's `result` is its error text
        say(f"{key:13} {value if value is not None else '-'}")
    if t.usage is not None:
        u = t.usage
        if u.unknown_rounds >= u.rounds:
            say(f"{'cost':13} unknown ({u.rounds} round(s); its CLI reported no usage)")
        else:
            say(f"{'cost':13} {u.cost_text()} ({u.rounds} round(s): {u.input_tokens} input,"
                f" {u.cached_input_tokens} cached, {u.output_tokens} output tokens)")


@task.command(name="show")
@click.argument("task_id")
@json_option
@pass_ctx
def task_show(obj: Context, task_id: str, as_json: bool) -> None:
    """One task."""
    _print_task(obj.town().task(task_id), as_json)


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
    print_table(None, ["ID", "STATE", "AGENT", "UPDATED", "TAGS", "DESCRIPTION"], rows)


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
        if as_json:
            emit_json(t)
        else:
            say(f"task {t.id} {t.state.value}")

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
        if as_json:
            emit_json(None)
        else:
            say("no current task")
        return
    _print_task(current, as_json)


# --- maintenance ----------------------------------------------------------------


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only report what would move.")
@click.option("--force", is_flag=True, help="Also move records that do not parse.")
@json_option
@pass_ctx
def migrate(obj: Context, dry_run: bool, force: bool, as_json: bool) -> None:
    """Move old un-isolated keys (tt:agent:<id>, ...) under tt:<town>:."""
    report = obj.town().migrate(dry_run=dry_run, force=force)
    if as_json:
        emit_json(report)
        return
    if not report:
        say("nothing to migrate")
    for entry in report:
        say(f"{entry['action']}: {entry['from']} -> {entry['to']}")


@cli.command()
@click.option("--force", is_flag=True, help="Really delete (without it, only report).")
@click.option("--agents-only", is_flag=True, help="Only agents, inboxes and their runtime keys.")
@json_option
@pass_ctx
def reset(obj: Context, force: bool, agents_only: bool, as_json: bool) -> None:
    """Delete the town's data from Redis."""
    deleted = obj.town().reset(force=force, agents_only=agents_only)
    if as_json:
        emit_json({"deleted" if force else "would_delete": deleted})
        return
    verb = "deleted" if force else "would delete"
    say(f"{verb} {len(deleted)} key(s)" + ("" if force else " (add --force to delete)"))
    for key in deleted:
        say(f"  {key}")




class _Once(logging.Filter):
    """A command may read a bad record several times: warn about it once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Once())
    handler.setFormatter(logging.Formatter("tt: warning: %(message)s"))
    logger = logging.getLogger("tinytown")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def main(argv: list[str] | None = None) -> None:
    _setup_logging()
    try:
        code = cli.main(args=argv, prog_name="tt", standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's word for Ctrl-C (and end of input)
        if isinstance(exc.__cause__, KeyboardInterrupt):
            say("tt: interrupted", err=True)
            sys.exit(130)
        say("tt: aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:  # one line, like every other error
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        say(f"tt: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        say(f"tt: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except TinytownError as exc:
        say(f"tt: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        say("tt: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # a bug: still one line (TT_DEBUG=1 shows the traceback)
        if os.environ.get("TT_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        say(f"tt: unexpected {type(exc).__name__}: {first} (set TT_DEBUG=1 for the"
                   " traceback, and please report it)", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)



if __name__ == "__main__":
    main()
