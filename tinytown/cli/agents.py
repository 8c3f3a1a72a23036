"""`tt spawn`, `list`, `show`, `worker`: the town's agents, made, listed, one shown,
one run in the foreground."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tinytown.cli.common import (
    Context,
    age,
    emit,
    emit_json,
    json_option,
    pass_ctx,
    print_table,
    say,
)
from tinytown.core.errors import UsageError, WorkerError
from tinytown.core.models import Agent

if TYPE_CHECKING:
    from tinytown.ops.facade import Town


@click.command()
@click.argument("name")
@click.option(
    "--cli", "cli_name", help="Preset (`tt doctor` lists them), [agent_clis] name or command."
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
    emit(agent, as_json, f"spawned {agent.name} ({agent.display_nickname}) {agent.id}")
    if foreground:
        from tinytown.system.keeper import keep
        from tinytown.worker.agent_worker import run_worker

        town.close()
        keep()  # this process becomes the worker's keeper; the worker goes on below
        sys.exit(run_worker(town.settings, agent.id, revive=True))


@click.command(name="list")
@json_option
@pass_ctx
def list_(obj: Context, as_json: bool) -> None:
    """List the town's agents."""
    town = obj.town()
    agents = town.list_agents()
    if as_json:
        emit_json(agents)
    else:
        agents_table(town, agents, None)


def agents_table(
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


@click.command()
@click.argument("agent")
@json_option
@pass_ctx
def show(obj: Context, agent: str, as_json: bool) -> None:
    """One agent: its state and why, task, cost, budget, workspace and host."""
    town = obj.town()
    record = town.resolve(agent)
    if as_json:
        emit_json(record)
        return
    inbox = town.inbox_lens([record])
    for key, value in record.to_wire().items():
        if key in ("usage", "session_usage", "crashes"):
            continue
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or None
        say(f"{key:16} {value if value is not None else '-'}")
    say(f"{'inbox':16} {inbox.get(record.id, 0)}")
    for t in town.list_tasks(state="blocked", agent_ref=record.id):  # waiting for others
        why = f": {t.blocked_reason}" if t.blocked_reason else ""
        say(f"{'blocked_task':16} {t.id[:8]} after {','.join(i[:8] for i in t.after)}{why}")
    say(f"{'heartbeat_age':16} {age(record.last_heartbeat)}")
    if record.usage is not None:
        u = record.usage
        say(f"{'cost':16} {u.cost_text()} ({u.rounds} round(s): {u.input_tokens} input,"
            f" {u.cached_input_tokens} cached, {u.output_tokens} output tokens)")


@click.command()
@click.argument("agent")
@click.option("--repo", type=click.Path(exists=True, file_okay=False),
              help="This host's clone of the repository (for the agent's worktree).")
@pass_ctx
def worker(obj: Context, agent: str, repo: str | None) -> None:
    """Run an existing agent's worker in the foreground (systemd, containers, other hosts)."""
    from tinytown.system.keeper import keep
    from tinytown.worker.agent_worker import run_worker

    town = obj.town()
    if repo is not None:
        town.settings.workspace.repo = str(Path(repo).resolve())
    record = town.resolve(agent)
    alive, hostname = town.worker_status(record)
    if alive and not record.state.is_terminal:
        raise WorkerError(f"agent {record.name!r} already has a running worker ({hostname})")
    town.ensure_supervisor()  # a worker nobody watches would crash unnoticed
    town.close()
    keep()  # this process becomes the worker's keeper; the worker goes on below
    sys.exit(run_worker(town.settings, record.id, revive=True))


COMMANDS = [spawn, list_, show, worker]
