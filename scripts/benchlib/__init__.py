"""The phases of scripts/bench and what they share, split out so each reads alone.

PHASES maps each phase name (what --only takes) to its function, in the order a full
run measures them; "many" runs last, on its own town, after the main town is down.
"""

from __future__ import annotations

from . import cli, crash, dispatch, many, memory, message, throughput
from .harness import Phase

PHASES: dict[str, Phase] = {
    "dispatch": dispatch.run,
    "message": message.run,
    "throughput": throughput.run,
    "memory": memory.run,
    "cli": cli.run,
    "crash": crash.run,
    "many": many.run,
}
