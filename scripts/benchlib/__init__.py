"""The phases of scripts/bench and what they share, split out so each reads alone.

PHASES maps each phase name (what --only takes) to its function, in the order a full
run measures them. The phases in OWN_TOWN make towns of their own and need no main
town: they run after it is down (or without it, when only they are asked for), "many"
last.
"""

from __future__ import annotations

from . import (
    cli,
    crash,
    dispatch,
    failover,
    fleet,
    many,
    memory,
    message,
    scale,
    throughput,
    wake,
)
from .harness import OWN_TOWN, Phase

PHASES: dict[str, Phase] = {
    "dispatch": dispatch.run,
    "message": message.run,
    "throughput": throughput.run,
    "memory": memory.run,
    "cli": cli.run,
    "crash": crash.run,
    "scale": scale.run,
    "failover": failover.run,
    "fleet": fleet.run,
    "wake": wake.run,
    "many": many.run,
}

__all__ = ["OWN_TOWN", "PHASES"]
