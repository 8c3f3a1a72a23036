"""Operations: the `Town` API and what stands behind it.

Everything a client of a town does (the CLI, a script, a cron job) goes through
`tinytown.ops.facade.Town`, a facade: the modules here implement its operations on a
`TownContext` (tinytown.ops.context), on top of `tinytown.db`. Nothing here imports
`redis`; only `control` (remote control) and `flower` reach Celery.

A module of this package is loaded when first used (`ops.control_plane.down(...)` imports
`tinytown.ops.control_plane` then): a `tt send` loads what sending needs, not the code of
every other command.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__all__ = ["access", "approving", "assignments", "control_plane", "mission_control", "flower",
           "hosting", "inquiries", "readiness", "reclaim", "ordering", "reviewing", "routing",
           "snapshot", "spawning",
           "starting", "usage_budgets", "workspaces"]

if TYPE_CHECKING:  # for type checkers: what `ops.<module>` gives
    from tinytown.ops import (
        access,
        approving,
        assignments,
        control_plane,
        flower,
        hosting,
        inquiries,
        mission_control,
        ordering,
        readiness,
        reclaim,
        reviewing,
        routing,
        snapshot,
        spawning,
        starting,
        usage_budgets,
        workspaces,
    )


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return import_module(f"{__name__}.{name}")
