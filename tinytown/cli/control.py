"""`tt interrupt`, `resume`, `close`, `kill`, `restart`, `wait`, `stop`, `prune`: steering
the agents that run."""

from __future__ import annotations

import sys
from typing import Any

import click

from tinytown.cli.common import (
    SECONDS,
    Context,
    emit,
    emit_json,
    json_option,
    pass_ctx,
    progress_line,
    say,
)


def _report(agent: Any, as_json: bool, verb: str) -> None:
    emit(agent, as_json, f"{agent.name}: {verb} ({agent.state.value})")


def _control_command(name: str, verb: str, doc: str) -> click.Command:
    @click.command(name=name, help=doc)
    @click.argument("agent")
    @json_option
    @pass_ctx
    def command(obj: Context, agent: str, as_json: bool) -> None:
        handle = obj.town().agent(agent)
        _report(getattr(handle, name)(), as_json, verb)

    return command


interrupt = _control_command("interrupt", "paused",
                             "Pause an agent: it takes no new round until resumed.")
resume = _control_command("resume", "resumed", "Resume a paused agent.")
close = _control_command("close", "draining", "Finish the current round, then shut down (cold).")
kill = _control_command("kill", "stopping", "Stop the agent at the start of its next round.")
restart = _control_command("restart", "restarting",
                           "Bring a stopped, cold or errored agent back (spawn mode resumed).")


@click.command()
@click.argument("agent")
@click.option("--timeout", type=SECONDS, help="Seconds; exit 124 after.")
@json_option
@pass_ctx
def wait(obj: Context, agent: str, timeout: float | None, as_json: bool) -> None:
    """Block until the agent is stopped, error or cold."""
    handle = obj.town().agent(agent)
    live = sys.stdout.isatty() and not as_json
    try:
        final = handle.wait(
            timeout=timeout,
            on_poll=(lambda a, t: progress_line(f"{a.name}: {a.state.value}", t)) if live else None,
        )
    finally:
        if live:
            say()
    _report(final, as_json, "done")


@click.command()
@json_option
@pass_ctx
def stop(obj: Context, as_json: bool) -> None:
    """Kill every agent of the town."""
    killed = obj.town().stop_all()
    emit(killed, as_json, f"stopping {len(killed)} agent(s)")


@click.command()
@click.option("--all", "all_agents", is_flag=True, help="Stop running agents first.")
@click.option("--force", is_flag=True,
              help="Also prune agents with pending messages or uncommitted work.")
@click.option("--delete-branches", is_flag=True, help="Also delete their tt/<agent> branches.")
@json_option
@pass_ctx
def prune(obj: Context, all_agents: bool, force: bool, delete_branches: bool,
          as_json: bool) -> None:
    """Remove terminal agents (records, inboxes, runtime keys, worktrees)."""
    result = obj.town().prune(all_agents=all_agents, force=force,
                              delete_branches=delete_branches)
    if as_json:
        emit_json(result)
        return
    say(f"pruned {len(result['pruned'])}: {', '.join(result['pruned']) or '-'}")
    for kept in result["kept"]:
        say(f"kept {kept['name']}: {kept['reason']}")
    if result["unfinished_tasks"]:
        say("unfinished tasks of pruned agents: " + ", ".join(result["unfinished_tasks"]))


COMMANDS = [interrupt, resume, close, kill, restart, wait, stop, prune]
