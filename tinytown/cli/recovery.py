"""`tt recover`, `reclaim`, `save`, `restore`: getting work back after a crash, and
snapshots of the town's data."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tinytown.cli.common import Context, emit, emit_json, json_option, pass_ctx, say
from tinytown.core.errors import UsageError


@click.command()
@json_option
@pass_ctx
def recover(obj: Context, as_json: bool) -> None:
    """Mark agents whose worker is gone as error and hand their work back."""
    recovered = obj.town().recover()
    names = ", ".join(a.name for a in recovered)
    emit(recovered, as_json,
         f"recovered {len(recovered)} agent(s)" + (f": {names}" if names else ""))


@click.command()
@click.option("--to", "to_agent", help="Move everything to this agent.")
@click.option("--to-backlog", is_flag=True, help="Move the tasks to the backlog.")
@click.option("--from", "source", help="Only this (terminal) agent's work.")
@click.option("--orphan-tasks", is_flag=True, help="Tasks whose agent no longer exists.")
@click.option("--cancel", is_flag=True, help="With --orphan-tasks: cancel them.")
@json_option
@pass_ctx
def reclaim(obj: Context, to_agent: str | None, to_backlog: bool, source: str | None,
            orphan_tasks: bool, cancel: bool, as_json: bool) -> None:
    """Move terminal agents' messages and unfinished tasks (only lists without a destination)."""
    town = obj.town()
    if orphan_tasks:
        if to_agent or source:
            raise UsageError("--orphan-tasks takes --to-backlog or --cancel")
        tasks = town.orphan_tasks(to_backlog=to_backlog, cancel=cancel)
        if as_json:
            emit_json(tasks)
            return
        verb = "cancelled" if cancel else "moved to the backlog" if to_backlog else "found"
        say(f"{len(tasks)} orphan task(s) {verb}")
        for t in tasks:
            say(f"  {t.id} {t.state.value} {t.description[:60]}")
        return
    if cancel:
        raise UsageError("--cancel goes with --orphan-tasks")
    report = town.reclaim(source=source, to_agent=to_agent, to_backlog=to_backlog)
    if as_json:
        emit_json(report)
        return
    if not report:
        say("nothing to reclaim")
    for entry in report:
        say(f"{entry['agent']}: {entry['messages']} message(s),"
                   f" {len(entry['tasks'])} unfinished task(s): {entry['action']}")


@click.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def save(obj: Context, path: Path | None) -> None:
    """Snapshot the town's data to a file (default: .tt/snapshots/)."""
    written, count = obj.town().save(path)
    say(f"saved {count} key(s) to {written}")


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace keys that already exist.")
@click.option("--start", is_flag=True, help="Start the agents that were running in the snapshot.")
@pass_ctx
def restore(obj: Context, path: Path, force: bool, start: bool) -> None:
    """Load a snapshot made by `tt save` into this town. Agents that were running come
    back stopped (they have no worker here; `tt up` starts them), or started (--start)."""
    report = obj.town().restore(path, force=force, start=start)
    say(f"restored {report['restored_keys']} key(s) from {path}")
    if report["started"]:
        say(f"started {len(report['started'])} agent(s): {', '.join(report['started'])}")
    elif report["stopped"]:
        say(f"{len(report['stopped'])} agent(s) were running: stopped here, with no worker"
            f" ({', '.join(report['stopped'])}); `tt up` starts them")
    for failed in report["failed"]:
        say(f"tt: {failed['name']} not started: {failed['error']}", err=True)
    if report["failed"]:
        sys.exit(1)


COMMANDS = [recover, reclaim, save, restore]
