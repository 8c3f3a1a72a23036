"""`tt diff`, `tt merge`, `tt branch`: reviewing and merging agents' branches."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tinytown.cli.common import Context, emit_json, json_option, pass_ctx, say


@click.command()
@click.argument("agent")
@click.option("--stat", is_flag=True, help="Files changed, not the changes.")
@pass_ctx
def diff(obj: Context, agent: str, stat: bool) -> None:
    """The agent's branch against the commit it started from."""
    town = obj.town()
    text = town.diff(agent, stat)
    if text:
        sys.stdout.write(text)
        return
    record = town.resolve(agent)  # nothing on stdout, for scripts; the reason on stderr
    from tinytown.system.workspace import dirty

    pending = record.workspace and Path(record.workspace).is_dir() and \
        dirty(Path(record.workspace))
    say(f"no changes: {record.branch} has no commits since {(record.base or '?')[:12]}"
        + ("; its worktree has changes not committed" if pending else ""), err=True)


@click.command()
@click.argument("agent")
@click.option("--into", help="The branch to merge into (default: the one checked out).")
@click.option("--squash", is_flag=True, help="One commit instead of the agent's history.")
@json_option
@pass_ctx
def merge(obj: Context, agent: str, into: str | None, squash: bool, as_json: bool) -> None:
    """Merge the agent's branch; on a conflict, name the files and leave the target clean."""
    result = obj.town().merge(agent, into, squash)
    if as_json:
        emit_json(result)
    elif result.get("up_to_date"):
        say(f"{result['branch']} -> {result['into']}: already up to date (no commits to merge),"
            f" at {result['head'][:12]}")
    elif result["merged"]:
        how = "fast-forward" if result.get("fast_forward") else "merged"
        say(f"{result['branch']} -> {result['into']}: {how}, now at {result['head'][:12]}")
    else:
        say(f"{result['branch']} does not merge into {result['into']}: conflicts in "
            f"{', '.join(result['conflicts']) or '?'}; {result['into']} is as it was",
            err=True)
    if not result["merged"]:
        sys.exit(1)


@click.command()
@click.argument("agent")
@pass_ctx
def branch(obj: Context, agent: str) -> None:
    """The agent's branch name (for scripts)."""
    say(obj.town().branch(agent))


COMMANDS = [diff, merge, branch]
