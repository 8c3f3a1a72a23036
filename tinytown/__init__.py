"""Tinytown: coordinate AI coding agents through Redis and Celery.

    from tinytown import Town, Task, MessageBody
    town = Town.connect(".")
    handle = town.spawn_agent("worker-1", "demo")   # a preset: tt doctor lists them
    handle.assign(Task("Build the API"))

Names are imported on first use, so `import tinytown` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Town": "tinytown.ops.facade",
    "AgentHandle": "tinytown.ops.handles",
    "Channel": "tinytown.ops.handles",
    "Agent": "tinytown.core.models",
    "AgentState": "tinytown.core.models",
    "AgentType": "tinytown.core.models",
    "SpawnMode": "tinytown.core.models",
    "Task": "tinytown.core.models",
    "TaskState": "tinytown.core.models",
    "Mission": "tinytown.core.models",
    "MissionState": "tinytown.core.models",
    "Plan": "tinytown.core.plans",
    "check_plan": "tinytown.core.plans",
    "Message": "tinytown.core.models",
    "MessageBody": "tinytown.core.models",
    "MessageType": "tinytown.core.models",  # MessageBody's name in the spec
    "Priority": "tinytown.core.models",
    "AckKind": "tinytown.core.models",
    "Settings": "tinytown.core.settings",
    "TinytownError": "tinytown.core.errors",
    "UsageError": "tinytown.core.errors",
    "TownNotFound": "tinytown.core.errors",
    "RedisUnreachable": "tinytown.core.errors",
    "AgentNotFound": "tinytown.core.errors",
    "AmbiguousReference": "tinytown.core.errors",
    "NameTaken": "tinytown.core.errors",
    "TaskNotFound": "tinytown.core.errors",
    "InvalidTransition": "tinytown.core.errors",
    "MessageTooLarge": "tinytown.core.errors",
    "WaitTimeout": "tinytown.core.errors",
    "MissionNotFound": "tinytown.core.errors",
    "PlanInvalid": "tinytown.core.errors",
    "SUPERVISOR_ID": "tinytown.core.keys",
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
    "MessageBody",
    "MessageTooLarge",
    "MessageType",
    "Mission",
    "MissionNotFound",
    "MissionState",
    "NameTaken",
    "Plan",
    "PlanInvalid",
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
    "check_plan",
]

if TYPE_CHECKING:
    from tinytown.core.errors import (
        AgentNotFound,
        AmbiguousReference,
        InvalidTransition,
        MessageTooLarge,
        MissionNotFound,
        NameTaken,
        PlanInvalid,
        RedisUnreachable,
        TaskNotFound,
        TinytownError,
        TownNotFound,
        UsageError,
        WaitTimeout,
    )
    from tinytown.core.keys import SUPERVISOR_ID
    from tinytown.core.models import (
        AckKind,
        Agent,
        AgentState,
        AgentType,
        Message,
        MessageBody,
        MessageType,
        Mission,
        MissionState,
        Priority,
        SpawnMode,
        Task,
        TaskState,
    )
    from tinytown.core.plans import Plan, check_plan
    from tinytown.core.settings import Settings
    from tinytown.ops.facade import Town
    from tinytown.ops.handles import AgentHandle, Channel


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tinytown' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
