"""Tinytown: coordinate AI coding agents through Redis and Celery.

    from tinytown import Town, Task, MessageType
    town = Town.connect(".")
    handle = town.spawn_agent("worker-1", "claude")
    handle.assign(Task("Build the API"))

Names are imported on first use, so `import tinytown` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Town": "tinytown.ops.town",
    "AgentHandle": "tinytown.ops.handles",
    "Channel": "tinytown.ops.handles",
    "Agent": "tinytown.models",
    "AgentState": "tinytown.models",
    "AgentType": "tinytown.models",
    "SpawnMode": "tinytown.models",
    "Task": "tinytown.models",
    "TaskState": "tinytown.models",
    "Message": "tinytown.models",
    "MessageType": "tinytown.models",
    "Priority": "tinytown.models",
    "AckKind": "tinytown.models",
    "Settings": "tinytown.settings",
    "TinytownError": "tinytown.errors",
    "UsageError": "tinytown.errors",
    "TownNotFound": "tinytown.errors",
    "RedisUnreachable": "tinytown.errors",
    "AgentNotFound": "tinytown.errors",
    "AmbiguousReference": "tinytown.errors",
    "NameTaken": "tinytown.errors",
    "TaskNotFound": "tinytown.errors",
    "InvalidTransition": "tinytown.errors",
    "MessageTooLarge": "tinytown.errors",
    "WaitTimeout": "tinytown.errors",
    "SUPERVISOR_ID": "tinytown.keys",
}
__all__ = [
    "AckKind",
    "Agent",
    "AgentHandle",
    "AgentNotFound",
    "AgentState",
    "AgentType",
    "AmbiguousReference",
    "Channel",
    "InvalidTransition",
    "Message",
    "MessageTooLarge",
    "MessageType",
    "NameTaken",
    "Priority",
    "RedisUnreachable",
    "SUPERVISOR_ID",
    "Settings",
    "SpawnMode",
    "Task",
    "TaskNotFound",
    "TaskState",
    "TinytownError",
    "Town",
    "TownNotFound",
    "UsageError",
    "WaitTimeout",
]

if TYPE_CHECKING:
    from tinytown.errors import (
        AgentNotFound,
        AmbiguousReference,
        InvalidTransition,
        MessageTooLarge,
        NameTaken,
        RedisUnreachable,
        TaskNotFound,
        TinytownError,
        TownNotFound,
        UsageError,
        WaitTimeout,
    )
    from tinytown.keys import SUPERVISOR_ID
    from tinytown.models import (
        AckKind,
        Agent,
        AgentState,
        AgentType,
        Message,
        MessageType,
        Priority,
        SpawnMode,
        Task,
        TaskState,
    )
    from tinytown.ops.handles import AgentHandle, Channel
    from tinytown.ops.town import Town
    from tinytown.settings import Settings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tinytown' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
