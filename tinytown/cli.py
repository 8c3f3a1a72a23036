"""`tt`: a thin click layer over the Python API (tinytown.town, tinytown.control).

Errors are TinytownError subclasses, printed as one line on stderr with their exit
code; nothing here holds logic the API lacks.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from tinytown.errors import TinytownError, UsageError
from tinytown.models import (
    AckKind,
    Agent,
    Message,
    MessageType,
    Priority,
    Task,
    TaskState,
    WireModel,
    utcnow,
)

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """Built once per command: the --town path, and the Town opened on first use."""

    def __init__(self, town_path: str | None) -> None:
        self.town_path = town_path
        self._town: Any = None

    def town(self) -> Any:
        if self._town is None:
            from tinytown.settings import Settings, find_root
            from tinytown.town import Town

            start = Path(self.town_path) if self.town_path else Path.cwd()
            if self.town_path and not start.exists():
                raise UsageError(f"--town {self.town_path}: no such folder")
            settings = Settings.load(find_root(start))
            if settings.embedded and settings.supervisor.autostart:
                os.environ.setdefault("TINYTOWN_AUTOSTART_SUPERVISOR", "1")
            self._town = Town.from_settings(settings)
        return self._town


pass_ctx = click.make_pass_decorator(Context)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON documents.")(f)


def emit_json(value: Any) -> None:
    def plain(v: Any) -> Any:
        if isinstance(v, WireModel):
            return v.to_wire()
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    click.echo(json.dumps(plain(value), indent=2))


def age(when: datetime | None) -> str:
    if when is None:
        return "-"
    secs = max(0.0, (utcnow() - when).total_seconds())
    if secs < 90:
        return f"{secs:.0f}s"
    if secs < 5400:
        return f"{secs / 60:.0f}m"
    if secs < 172800:
        return f"{secs / 3600:.0f}h"
    return f"{secs / 86400:.0f}d"


def print_table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(width=max(100, _terminal_width())).print(table)


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((120, 24)).columns


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.pass_obj
def init(obj: Context, name: str | None) -> None:
    """Create tinytown.toml and .tt/ here, and start the town's Redis."""
    from tinytown.connection import redact, redis_url
    from tinytown.town import Town

    town = Town.init(obj.town_path or ".", name=name)
    click.echo(f"town {town.name!r} ready in {town.settings.root}")
    click.echo(f"redis: {redact(redis_url(town.settings))}")


@cli.command()
@pass_ctx
def down(obj: Context) -> None:
    """Stop the town's workers, its supervisor and its embedded Redis."""
    report = obj.town().down()
    click.echo(
        f"stopped {report['workers']} worker(s); supervisor "
        f"{'stopped' if report['supervisor'] else 'not running'}; redis "
        f"{'stopped' if report['redis'] else 'left running (external)' if not report['embedded'] else 'not running'}"
    )


# --- agents ---------------------------------------------------------------------


@cli.command()
@click.argument("name")
@click.option("--cli", "cli_name", help="Preset (claude, codex, ...), [agent_clis] name or command.")
@click.option("--role", help="Role for routing (worker, reviewer, ...).")
@click.option("--nickname", help="Display name (default: a 1920s name from the agent's id).")
@click.option("--parent", help="Parent agent (name, nickname or id).")
@click.option("--fork", is_flag=True, help="Inherit the parent's recent context (forkedcontext).")
@click.option("--max-rounds", type=click.IntRange(min=1), help="Go cold after N CLI runs.")
@click.option("--scope", help="Free-text description of the agent's assigned scope.")
@click.option("--foreground", is_flag=True, help="Run the worker attached to this terminal.")
@click.option("--no-start", is_flag=True, help="Only record the agent; start it with `tt worker`.")
@json_option
@pass_ctx
def spawn(
    obj: Context, name: str, cli_name: str | None, role: str | None, nickname: str | None,
    parent: str | None, fork: bool, max_rounds: int | None, scope: str | None,
    foreground: bool, no_start: bool, as_json: bool,
) -> None:
    """Record an agent and start its worker."""
    town = obj.town()
    handle = town.spawn_agent(
        name, cli=cli_name, role=role, nickname=nickname, parent=parent, fork=fork,
        max_rounds=max_rounds, scope=scope, start=not (foreground or no_start),
    )
    agent = handle.state()
    if as_json:
        emit_json(agent)
    else:
        click.echo(f"spawned {agent.name} ({agent.nickname}) {agent.id}")
    if foreground:
        from tinytown.worker import run_worker

        sys.exit(run_worker(town.settings, agent.id))


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
    from tinytown.control import town_status

    town = obj.town()
    report = town_status(town, deep=deep)
    if as_json:
        emit_json(report)
        return
    click.echo(f"town {report['town']}  redis {report['redis']}  supervisor {report['supervisor']}")
    _agents_table(town, town.list_agents(), None, inbox=report["inbox"])
    if deep:
        for entry in report.get("deep", []):
            click.echo(f"\n{entry['name']}: rounds {entry['rounds']}, uptime {entry['uptime']}")
            for event in entry["events"]:
                click.echo(f"  {event}")
            if entry.get("log_tail"):
                click.echo("  last round log:")
                for line in entry["log_tail"]:
                    click.echo(f"    {line}")


def _agents_table(
    town: Any, agents: list[Agent], title: str | None, inbox: dict[str, int] | None = None
) -> None:
    if not agents:
        click.echo("no agents (spawn one with `tt spawn NAME`)")
        return
    if inbox is None:
        pipe = town.redis.pipeline(transaction=False)
        from tinytown import keys

        for a in agents:
            pipe.llen(keys.inbox(town.name, a.id))
        inbox = {a.id: n for a, n in zip(agents, pipe.execute(), strict=True)}
    rows = [
        [
            a.name, a.display_nickname, a.role_id or "-", a.state.value, a.cli,
            (a.current_task or "-")[:8], str(inbox.get(a.id, 0)), str(a.tasks_completed),
            age(a.last_heartbeat),
        ]
        for a in agents
    ]
    print_table(
        title,
        ["NAME", "NICKNAME", "ROLE", "STATE", "CLI", "TASK", "INBOX", "DONE", "HEARTBEAT"],
        rows,
    )


# --- messages -------------------------------------------------------------------


def _ack(text: str) -> MessageType:
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
    """Put a message in an agent's inbox (plain text is a task message)."""
    if not message.strip():
        raise UsageError("the message is empty")
    if urgent and priority and priority != "urgent":
        raise UsageError("--urgent contradicts --priority " + priority)
    body: MessageType
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
        click.echo(f"sent {sent.type} {sent.id} ({prio.value})")


def _describe(m: Message) -> str:
    body = m.body.model_dump(mode="json")
    body.pop("type", None)
    if not body:
        return ""
    if len(body) == 1:
        return str(next(iter(body.values())))
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
    messages = [m for a in targets for m in town.store.peek_inbox(a.id)]
    if as_json:
        emit_json(messages)
        return
    names = {a.id: a.name for a in [AgentModel.supervisor(), *town.list_agents()]}
    if not messages:
        click.echo("no pending messages")
        return
    rows = [
        [names.get(m.to, m.to[:8]), m.id[:8], m.type, m.priority.value,
         names.get(m.sender, m.sender[:8]), age(m.created_at), _describe(m)[:80]]
        for m in messages
    ]
    print_table(None, ["TO", "ID", "TYPE", "PRIORITY", "FROM", "AGE", "CONTENT"], rows)


# --- tasks ----------------------------------------------------------------------


def _tags(value: str | None) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()] if value else []


@cli.command()
@click.argument("agent")
@click.argument("description")
@click.option("--tags", help="Comma-separated tags.")
@click.option("--parent", "parent_task", help="Parent task id.")
@click.option("--urgent", is_flag=True, help="Put the assignment at the head of the inbox.")
@json_option
@pass_ctx
def assign(
    obj: Context, agent: str, description: str, tags: str | None, parent_task: str | None,
    urgent: bool, as_json: bool,
) -> None:
    """Create a task for an agent and put a task_assign in its inbox; prints the task id."""
    town = obj.town()
    parent_id = town.task(parent_task).id if parent_task else None
    task = Task(description, tags=_tags(tags), parent_id=parent_id)
    task_id = town.assign(agent, task, Priority.URGENT if urgent else Priority.NORMAL)
    if as_json:
        emit_json(town.store.require_task(task_id))
    else:
        click.echo(task_id)


@cli.group()
def task() -> None:
    """Show and change tasks."""


def _print_task(t: Task, as_json: bool) -> None:
    if as_json:
        emit_json(t)
        return
    for key, value in t.to_wire().items():
        click.echo(f"{key:13} {value if value is not None else '-'}")


@task.command(name="show")
@click.argument("task_id")
@json_option
@pass_ctx
def task_show(obj: Context, task_id: str, as_json: bool) -> None:
    """One task."""
    _print_task(obj.town().task(task_id), as_json)


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
        click.echo("no tasks")
        return
    names = {a.id: a.name for a in town.list_agents()}
    rows = [
        [t.id[:8], t.state.value, names.get(t.assigned_to or "", (t.assigned_to or "-")[:8]),
         age(t.updated_at), ",".join(t.tags), t.description[:60]]
        for t in tasks
    ]
    print_table(None, ["ID", "STATE", "AGENT", "UPDATED", "TAGS", "DESCRIPTION"], rows)


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
            click.echo(f"task {t.id} {t.state.value}")

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
            click.echo("no current task")
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
        click.echo("nothing to migrate")
    for entry in report:
        click.echo(f"{entry['action']}: {entry['from']} -> {entry['to']}")


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
    click.echo(f"{verb} {len(deleted)} key(s)" + ("" if force else " (add --force to delete)"))
    for key in deleted:
        click.echo(f"  {key}")


# --- engine commands live in cli_engine to keep this file readable ----------------

from tinytown.cli_engine import register  # noqa: E402

register(cli, pass_ctx, json_option, emit_json)


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("tt: warning: %(message)s"))
    logger = logging.getLogger("tinytown")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def main(argv: list[str] | None = None) -> None:
    _setup_logging()
    try:
        code = cli.main(args=argv, prog_name="tt", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("tt: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TinytownError as exc:
        click.echo(f"tt: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("tt: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)

