"""`tt` commands that run or steer processes: worker, supervisor, the control plane."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from tinytown.cli.common import (
    SECONDS,
    Context,
    emit_json,
    json_option,
    pass_ctx,
    progress_line,
    say,
)
from tinytown.errors import WorkerError


def _report(agent: Any, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(agent)
    else:
        say(f"{agent.name}: {verb} ({agent.state.value})")


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


@click.command()
@json_option
@pass_ctx
def stop(obj: Context, as_json: bool) -> None:
    """Kill every agent of the town."""
    killed = obj.town().stop_all()
    if as_json:
        emit_json(killed)
    else:
        say(f"stopping {len(killed)} agent(s)")


@click.command()
@click.argument("agent")
@click.option("--repo", type=click.Path(exists=True, file_okay=False),
              help="This host's clone of the repository (for the agent's worktree).")
@pass_ctx
def worker(obj: Context, agent: str, repo: str | None) -> None:
    """Run an existing agent's worker in the foreground (systemd, containers, other hosts)."""
    from tinytown.keeper import keep
    from tinytown.worker.app import run_worker

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


@click.command()
@click.option("--foreground", is_flag=True, help="Run attached (systemd, containers).")
@pass_ctx
def supervisor(obj: Context, foreground: bool) -> None:
    """Run the town's supervisor service (one leader per town; others stand by)."""
    town = obj.town()
    if foreground:
        import logging

        from tinytown.supervisor.service import run_supervisor

        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        sys.exit(run_supervisor(town.settings))
    status = town.supervisor_status()  # one leads already: this one stands by
    pid = town.start_supervisor()
    role = f" as a standby ({status})" if status != "not running" else ""
    say(f"supervisor started{role} (pid {pid}); log: {town.settings.logs_dir}"
               "/supervisor.log")


@click.command()
@click.option("--all", "all_agents", is_flag=True,
              help="Start every stopped or errored agent, not only those `tt down` stopped.")
@json_option
@pass_ctx
def up(obj: Context, all_agents: bool, as_json: bool) -> None:
    """Bring the town back after `tt down`: its Redis, a supervisor, and the agents that
    were running (cold ones stay cold: work wakes them)."""
    town = obj.town(note_start=False)  # starting the Redis is what was asked
    report = town.up(all_agents=all_agents)
    if as_json:
        emit_json(report)
    else:
        say(f"redis {report['redis']}; supervisor {report['supervisor']}")
        say(f"started {len(report['started'])} agent(s): {', '.join(report['started']) or '-'}")
        if report["already"]:
            say(f"already up: {', '.join(report['already'])}")
    for failed in report["failed"]:
        say(f"tt: {failed['name']} not started: {failed['error']}", err=True)
    if report["failed"]:
        sys.exit(1)


COMMANDS = [interrupt, resume, close, kill, restart, wait, prune, stop, worker, supervisor, up]
