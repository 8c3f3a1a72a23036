"""A round log's event stream as lines a person reads (`tt logs`, without `--raw`).

The presets run each CLI with its streaming output (events, one JSON object a line), so
the round log fills as the agent works; but a page of JSON is not what someone
following an agent wants to read. `render` turns one line of it into what happened —
the agent's text, a tool call, what the tool gave back, the outcome — as the CLI
modules (`AgentCli.render_event`, tried in their order, then plug-ins') show their events, and keeps
any line that is not such an event (a plain-text CLI's output, stderr) as it is.
Events that say nothing to a reader (deltas of a tool call, bookkeeping) are left out:
`--raw` shows everything.
"""

from __future__ import annotations

import json

from tinytown.agent_clis import registry
from tinytown.agent_clis.base import WIDTH, NotMine

__all__ = ["WIDTH", "render"]


def render(line: str) -> str | None:
    """One log line as shown; None when it is an event with nothing to show."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return line
    try:
        event = json.loads(stripped)
    except ValueError:
        return line
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return line
    kind: str = event["type"]
    for cli in registry.builtin().values():
        shown = cli.render_event(kind, event)
        if not isinstance(shown, NotMine):
            return shown
    for found in registry.plugins().values():  # looked for once, for a plug-in's events
        shown = found.cli.render_event(kind, event)
        if not isinstance(shown, NotMine):
            return shown
    return None  # an event of a kind none of the CLIs shows
