"""`tt events`, `history`, `logs`, `flower`: watching what the town and its agents do."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from tinytown.cli.common import Context, emit_json, json_option, pass_ctx, say, visible
from tinytown.core.errors import Refused

MAX_EVENTS = 10_000  # the stream keeps about this many


def _event_line(event: dict[str, str], names: dict[str, str]) -> str:
    who = names.get(event.get("agent", ""), event.get("name", ""))
    extra = " ".join(f"{k}={v}" for k, v in event.items()
                     if k not in ("id", "time", "kind", "agent", "name", "old", "new"))
    change = f" {event['old']} -> {event['new']}" if "new" in event else ""
    return f"{event['time']} {event['kind']:15} {who}{change} {extra}".rstrip()


@click.command()
@click.option("--agent", help="Only this agent's events.")
@click.option("--count", "-n", type=click.IntRange(min=1, max=MAX_EVENTS), default=20,
              show_default=True)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they come.")
@json_option
@pass_ctx
def events(obj: Context, agent: str | None, count: int, follow: bool, as_json: bool) -> None:
    """The town's event stream: state changes, spawns, assignments, outcomes, recoveries."""
    town = obj.town()
    agent_id = town.resolve(agent).id if agent else None
    names = {a.id: a.name for a in town.list_agents()}
    recent = town.events(count, agent)
    if as_json and not follow:
        emit_json(recent)
        return
    for event in recent:
        say(json.dumps(event) if as_json else _event_line(event, names))
    if not follow:
        return
    last = recent[-1]["id"] if recent else "$"
    while True:  # stops on Ctrl-C or a closed pipe
        for event in town.follow_events(last):
            last = event["id"]
            if agent_id is not None and event.get("agent") != agent_id:
                continue
            names.setdefault(event.get("agent", ""), event.get("name", ""))
            say(json.dumps(event) if as_json else _event_line(event, names))
            sys.stdout.flush()


HISTORY_KINDS = ("sent", "assigned", "queued", "task_completed", "task_failed",
                 "task_cancelled", "reclaimed")


@click.command()
@click.option("-n", "count", type=click.IntRange(min=1, max=MAX_EVENTS), default=20,
              show_default=True)
@click.option("--agent", help="Only what this agent sent, received or finished.")
@json_option
@pass_ctx
def history(obj: Context, count: int, agent: str | None, as_json: bool) -> None:
    """Recent messages and task outcomes between agents."""
    town = obj.town()
    agent_id = town.resolve(agent).id if agent else None
    found = [e for e in town.events(2000)
             if e["kind"] in HISTORY_KINDS
             and (agent_id is None or agent_id in (e.get("agent"), e.get("to")))][-count:]
    if as_json:
        emit_json(found)
        return
    names = {a.id: a.name for a in town.list_agents()}
    from tinytown.core import keys

    names[keys.SUPERVISOR_ID] = "supervisor"
    for e in found:
        if e["kind"] == "sent":
            say(f"{e['time']} {names.get(e.get('agent', ''), '?')} -> "
                       f"{names.get(e.get('to', ''), '?')}: {e.get('type')}")
        else:
            say(_event_line(e, names))


@click.command()
@click.argument("agent")
@click.option("--round", "round_no", type=click.IntRange(min=1), help="Default: the newest.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing what the round writes.")
@click.option("--worker", is_flag=True, help="The worker's own log instead of a round's.")
@click.option("--raw", is_flag=True,
              help="Bytes as written, control sequences included (default: made visible).")
@pass_ctx
def logs(obj: Context, agent: str, round_no: int | None, follow: bool, worker: bool,
         raw: bool) -> None:
    """Print an agent's round log (the agent CLI's output)."""
    town = obj.town()
    record = town.resolve(agent)
    folder = town.settings.logs_dir / record.name
    if worker:
        path = folder / "worker.log"
    elif round_no is not None:
        path = folder / f"round-{round_no}.log"
    else:
        from tinytown.system.logs import round_logs

        rounds = round_logs(folder)
        if not rounds:
            raise Refused(f"{record.name} has no round logs yet (in {folder})")
        path = rounds[-1]
    if not path.exists():
        what = f"round {round_no}" if round_no else "worker"
        raise Refused(f"{record.name} has no {what} log ({path})")
    newest = follow and not worker and round_no is None  # go on to the rounds that follow
    shown: Path | None = path
    while shown is not None:
        shown = _print_log(shown, raw, follow, folder if newest else None)


def _print_log(path: Path, raw: bool, follow: bool, rounds: Path | None) -> Path | None:
    """Print `path`; with `follow`, keep printing what is written to it, and (with
    `rounds`, the agent's log folder) move on to a newer round's log once one starts."""
    from tinytown.system.logs import round_logs

    pending = b""  # a line not finished yet: shown once its end is written
    with path.open("rb") as f:
        while True:
            chunk = f.read(65536)
            if chunk:
                if raw:
                    sys.stdout.buffer.write(chunk)
                else:
                    lines = (pending + chunk).split(b"\n")
                    pending = lines.pop()
                    sys.stdout.buffer.write(_shown(lines))
                sys.stdout.flush()
                continue
            if not follow or rounds is not None and _newer(round_logs(rounds), path):
                if pending:  # the log's last line, without its newline
                    sys.stdout.buffer.write(_shown([pending]))
                    pending = b""
            if not follow:
                return None
            if rounds is not None and (found := _newer(round_logs(rounds), path)):
                say(f"\n--- {found.name} ---")
                return found
            time.sleep(0.2)


def _newer(found: list[Path], path: Path) -> Path | None:
    return found[-1] if found and found[-1] != path else None


def _shown(lines: list[bytes]) -> bytes:
    """Whole log lines for a terminal: a streaming CLI's JSON events as what happened
    (tinytown.core.logview), escape sequences visible."""
    from tinytown.core.logview import render

    out = []
    for line in lines:
        shown = render(line.decode("utf-8", "replace"))
        if shown is not None:
            out.append(visible(shown) + "\n")
    return "".join(out).encode()


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), help="Default: [flower] port (5555).")
@click.option("--address", help="Default: 127.0.0.1. Anything else needs --basic-auth.")
@click.option("--basic-auth", envvar="TT_FLOWER_BASIC_AUTH", help="user:password.")
@pass_ctx
def flower(obj: Context, port: int | None, address: str | None, basic_auth: str | None) -> None:
    """Run Flower on the town's broker (agents are workers named NAME@HOST)."""
    obj.town().run_flower(port, address, basic_auth)


COMMANDS = [events, history, logs, flower]
