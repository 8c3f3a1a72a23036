"""`tt doctor`: whether this machine is ready for the town's agents."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from tinytown.cli.common import Context, emit_json, json_option, pass_ctx, print_table, say


@click.command()
@json_option
@pass_ctx
def doctor(obj: Context, as_json: bool) -> None:
    """Check the agent CLIs (installed, version, credentials, known problems) and the
    town (Redis, supervisor, workers per host). Exit 0 when the town's agents can run.
    Outside a town only the CLIs are checked (before `tt init`): exit 0 when the
    default CLI is ready."""
    from tinytown.core.errors import TownNotFound
    from tinytown.ops.checkup import diagnose, diagnose_clis

    try:
        settings = obj.settings()
    except TownNotFound:
        report = diagnose_clis(Path(obj.town_path or ".").resolve())
    else:
        report = diagnose(settings)
    if as_json:
        emit_json(report)
    else:
        _show(report)
    sys.exit(0 if report["ready"] else 1)


def _show(report: dict[str, Any]) -> None:
    if report["town"] is None:
        say(f"no town here (no tinytown.toml in {report['no_town']} or above): checking the"
            " agent CLIs anyway")
        _show_clis(report)
        return
    redis = report["redis"]
    say(f"town {report['town']} at {report['root']}")
    say(f"redis {redis['url']}: " + ("reachable" if redis["reachable"] else
                                     f"NOT reachable ({redis['error']})"))
    if redis["reachable"]:
        hosts = ", ".join(f"{h}: {n}" for h, n in sorted(report["workers_by_host"].items()))
        say(f"supervisor: {report['supervisor']}")
        say(f"live agents: {report['live_agents']}; running workers by host: {hosts or 'none'}")
        daemons = ", ".join(f"{h['name']} on {h['machine']} ({h['state']}, {h['load']} agents)"
                            for h in report["host_daemons"])
        say(f"host daemons: {daemons or 'none (workers start where `tt spawn` runs)'}")
        for stale in report["stale_worktrees"]:
            say(f"worktree of {stale['agent']} is gone ({stale['path']}): its next worker"
                f" start makes it again from {stale['branch']}")
    _show_clis(report)


def _show_clis(report: dict[str, Any]) -> None:
    rows = []
    for c in report["clis"]:
        if c["ready"]:
            state = "ready"
        elif not c["installed"]:
            state = "not installed" + (f" ({c['install']})" if c["install"] else "")
        else:
            state = "; ".join([*c["problems"], *([c["credentials_needed"]]
                                                 if c["credentials_needed"] else [])])
        rows.append([c["name"] + (" *" if c["used"] else ""), c["origin"],
                     c["version"] or "-", ", ".join(c["credentials_set"]) or "-", state])
    used = "this town's agents" if report["town"] else "default"
    print_table(f"agent CLIs (* {used})", ["cli", "from", "version", "credentials", "status"],
                rows)
    if not report["ready"]:
        say("not ready: see above")
    else:
        say("ready" if report["town"] else "ready: `tt init` makes a town here")


COMMANDS = [doctor]
