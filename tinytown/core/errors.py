"""One exception hierarchy for everything Tinytown raises on purpose.

Library errors (redis-py, kombu) are turned into these at the boundary
(`tinytown.db.connection.map_redis_errors`), so callers handle one family. Each class
carries the process exit code the CLI uses for it.
"""

from __future__ import annotations

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REDIS_UNREACHABLE = 69  # sysexits EX_UNAVAILABLE
EXIT_TIMEOUT = 124  # as timeout(1)


class TinytownError(Exception):
    """Base class: raised when Tinytown refuses or fails an operation."""

    exit_code = EXIT_ERROR


class UsageError(TinytownError):
    """Raised when arguments or input are invalid (bad name, empty description...)."""

    exit_code = EXIT_USAGE


class TownNotFound(TinytownError):
    """Raised when no tinytown.toml is found from the given folder upwards."""


class TownExists(TinytownError):
    """Raised when `init` finds a town already there."""


class ConfigError(TinytownError):
    """Raised when tinytown.toml or the environment holds an invalid setting."""


class RedisUnreachable(TinytownError):
    """Raised when the town's Redis cannot be reached or started."""

    exit_code = EXIT_REDIS_UNREACHABLE


class AgentNotFound(TinytownError):
    """Raised when an agent reference matches no agent."""


class AmbiguousReference(TinytownError):
    """Raised when an agent reference matches more than one agent."""


class NameTaken(TinytownError):
    """Raised when a new agent's (or API key's) name is already used in the town."""


class Refused(TinytownError):
    """Raised when the town's state, not the command's arguments, does not allow an
    operation (exit 1: exit 2 is for bad usage only)."""


class DependencyCycle(Refused):
    """Raised when dependencies between tasks would make a cycle (which it names): no
    task of it could ever start."""


class WorkspaceError(Refused):
    """Raised when an agent's workspace cannot be made or used: another agent works in
    the folder, there is no git work tree or branch, or work is not committed."""


class NotRunning(Refused):
    """Raised when a wait would outlast an agent that does not run (stopped or error):
    its work waits until a restart, so the wait ends at once instead of at its timeout."""


class TaskNotFound(TinytownError):
    """Raised when a task id matches no task."""


class MissionNotFound(TinytownError):
    """No mission of that name in the town."""


class PlanInvalid(TinytownError):
    """A plan (file or request body) with problems; the message lists them, one a line."""


class InvalidRecord(TinytownError, ValueError):
    """Raised when a stored document is not JSON, or not a valid record of its kind."""


class WrongType(InvalidRecord):
    """Raised when a key holds another Redis type than Tinytown keeps there."""


class InvalidTransition(TinytownError):
    """Raised when a state change is not allowed from the current state."""


class MessageTooLarge(TinytownError):
    """Raised when a message's JSON is over the size limit."""


class WaitTimeout(TinytownError):
    """Raised when a wait runs out of time."""

    exit_code = EXIT_TIMEOUT


class WorkerError(TinytownError):
    """Raised when an agent worker or the supervisor cannot be started."""


class LeaseHeld(WorkerError):
    """Raised when a worker would start for an agent that a live worker serves."""


class HostNameTaken(TinytownError):
    """Raised when a host daemon would start under the name of one that runs."""


class Fenced(TinytownError):
    """Raised when a worker writes with a stale fencing token: a newer start serves the agent."""


class KeyRefused(TinytownError):
    """Raised when a request to `tt serve` has no API key, or one the town does not know."""


class NotPermitted(TinytownError):
    """Raised when an API key's scope does not allow the operation asked for."""


class ApiKeyNotFound(TinytownError):
    """Raised when `tt auth revoke` names no API key of the town."""


def one_line(what: BaseException | str, limit: int = 500) -> str:
    """An error (or a text) as one line, for stderr, a log, a tool's or an HTTP answer:
    its first line that says something, trimmed and cut to `limit`. An exception with no
    text gives its class name; a text with none gives ""."""
    text = what if isinstance(what, str) else str(what)
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return "" if isinstance(what, str) else type(what).__name__
