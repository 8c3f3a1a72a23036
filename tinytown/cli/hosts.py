"""`tt host` (run this machine's host daemon, or drain one) and `tt hosts`."""

from __future__ import annotations

import sys

import click

from tinytown.cli.common import Context, emit, emit_json, json_option, pass_ctx, print_table, say
from tinytown.core.errors import UsageError


@click.group(invoke_without_command=True)
@click.option("--name", help="This host's name in the town (default: the machine's hostname).")
@click.option("--max-agents", type=click.IntRange(min=0), default=0,
              help="Agents it runs at most (0: no limit).")
@click.option("--labels", default="", metavar="a,b", help="Labels `tt spawn --on` can ask for.")
@click.pass_context
def host(ctx: click.Context, name: str | None, max_agents: int, labels: str) -> None:
    """Run this machine's host daemon: it starts, watches and restarts the agents the
    town places here (until Ctrl-C or SIGTERM, which move its agents elsewhere)."""
    if ctx.invoked_subcommand is not None:
        return
    import socket

    from tinytown.host.host_worker import check_name, run_host

    name = name or socket.gethostname()
    problem = check_name(name)
    if problem:
        raise UsageError(problem)
    obj: Context = ctx.find_object(Context)  # type: ignore[assignment]
    town = obj.town()
    town.close()
    sys.exit(run_host(town.settings, name, max_agents,
                      [x.strip() for x in labels.split(",") if x.strip()]))


@host.command()
@click.argument("name")
@json_option
@pass_ctx
def drain(obj: Context, name: str, as_json: bool) -> None:
    """Move a host's agents elsewhere (each finishes its round); it takes no new ones
    until its daemon starts again."""
    report = obj.town().drain_host(name)
    emit(report, as_json, f"host {name}: draining; moving {len(report['agents'])} agent(s)")


@click.command()
@json_option
@pass_ctx
def hosts(obj: Context, as_json: bool) -> None:
    """The town's host daemons: state, load, labels, CLIs and agents."""
    report = obj.town().hosts()
    if as_json:
        emit_json(report)
        return
    if not report:
        say("no host daemons (start one with `tt host` on each machine)")
        return
    rows = [[h["name"], h["machine"], h["state"],
             f"{h['load']}/{h['max_agents'] or '-'}", ",".join(h["labels"]) or "-",
             ",".join(h["clis"]) or "-", f"{h['beat_age_secs']:g}s",
             ", ".join(f"{a['name']} ({a['state']})" for a in h["agents"]) or "-"]
            for h in report]
    print_table(None, ["NAME", "MACHINE", "STATE", "AGENTS", "LABELS", "CLIS", "BEAT",
                       "PLACED"], rows)


COMMANDS = [host, hosts]
