"""`tt show AGENT`: one agent, every field, with the reasons `tt list` leaves out.

`tt list` and `tt status` keep a row a line (STATE is one word); why an agent is
paused (a budget, a usage limit) or halted (a crash loop) is read here.
"""

from __future__ import annotations

import click

from tinytown.cli.common import Context, age, emit_json, json_option, pass_ctx, say


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
    say(f"{'heartbeat_age':16} {age(record.last_heartbeat)}")
    if record.usage is not None:
        u = record.usage
        say(f"{'cost':16} {u.cost_text()} ({u.rounds} round(s): {u.input_tokens} input,"
            f" {u.cached_input_tokens} cached, {u.output_tokens} output tokens)")


COMMANDS = [show]
