"""`tt init`, `up`, `down`, `status`, `supervisor`, `migrate`, `reset`: the town as a whole."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tinytown.cli.agents import agents_table
from tinytown.cli.common import Context, emit_json, json_option, pass_ctx, say

if TYPE_CHECKING:
    from tinytown.ops.facade import Town


@click.command()
@click.option("--name", help="Town name (default: <repo>-<branch>, else the folder's name).")
@click.option("--join", is_flag=True,
              help="Share a town of this name that already has data in the Redis.")
@click.option("--nested", is_flag=True,
              help="Make a town inside another town's folder (refused without it).")
@click.pass_obj
def init(obj: Context, name: str | None, join: bool, nested: bool) -> None:
    """Create tinytown.toml and .tt/ here, and start the town's Redis."""
    from tinytown.core.urls import redact, redis_url
    from tinytown.ops.facade import Town

    town = Town.init(obj.town_path or ".", name=name, join=join, nested=nested)
    say(f"town {town.name!r} ready in {town.settings.root}")
    say(f"redis: {redact(redis_url(town.settings))}")
    _say_what_to_commit(town.settings.root)


def _say_what_to_commit(root: Path) -> None:
    """In a git repository: the files `init` made or changed, to commit (agents'
    worktrees start from a commit, and a merge wants the target's tracked files clean)."""
    import shlex

    from tinytown.system.workspace import uncommitted

    files = uncommitted(root, ["tinytown.toml", ".gitignore"])
    if files:
        git = "git" if root == Path.cwd().resolve() else f"git -C {shlex.quote(str(root))}"
        say(f"commit {' and '.join(files)}: {git} add {' '.join(files)} && {git} commit -m"
            " 'Add a Tinytown town'")


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


@click.command()
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


@click.command()
@click.option("--deep", is_flag=True, help="Also rounds, uptime and recent events per agent.")
@json_option
@pass_ctx
def status(obj: Context, deep: bool, as_json: bool) -> None:
    """The town, its Redis and supervisor, and every agent."""
    town = obj.town()
    report = town.status(deep=deep)
    report["awaiting_approval"] = _awaiting_approval(town)
    if as_json:
        emit_json(report)
        return
    say(f"town {report['town']}  redis {report['redis']}  supervisor {report['supervisor']}")
    agents = town.list_agents()
    agents_table(town, agents, None, inbox=report["inbox"])
    whys = [f"{a.name} {a.state.value}: {a.hold or a.halted}" for a in agents
            if a.hold or a.halted]  # under the table: a row stays a line
    whys += [f"awaiting approval: {w['kind']} {w['ref']} {w['title']} (`tt approve"
             f" {w['ref']}` or `tt reject {w['ref']} --note ...`)"
             for w in report["awaiting_approval"]]
    if whys:
        say()
        for why in whys:
            say(why)
    if report.get("questions"):
        count = report["questions"]
        say(f"\n{count} open question{'s' if count > 1 else ''} from agents: `tt inbox` shows"
            " them, `tt reply TASK \"answer\"` answers")
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


def _awaiting_approval(town: Town) -> list[dict[str, str]]:
    """The tasks and missions that wait for a person's `tt approve`."""
    from tinytown.core.models import MissionState, TaskState

    out = [{"kind": "mission", "ref": m.name, "title": m.goal[:80]}
           for m in town.missions() if m.state == MissionState.AWAITING_APPROVAL]
    for t in town.list_tasks(TaskState.AWAITING_APPROVAL):
        lines = t.description.strip().splitlines() or [""]
        out.append({"kind": "task", "ref": t.id[:8], "title": lines[0][:80]})
    return out


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


@click.command()
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


COMMANDS = [init, up, down, status, supervisor, migrate, reset]
