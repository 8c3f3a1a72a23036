"""The town's settings: one struct built from tinytown.toml and the environment.

Built once (by the CLI, or by ``Town.connect``) and passed down; child processes get
the town's root folder and rebuild it, never a copied client.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from tinytown.agent_clis import DEFAULT_CLI
from tinytown.core.errors import ConfigError, TownNotFound, UsageError

CONFIG_FILE = "tinytown.toml"
RUNTIME_DIR = ".tt"
BUILTIN_ROLES: dict[str, str] = {
    "worker": "Executes assigned tasks",
    "reviewer": "Reviews changes and gives verdicts",
    "researcher": "Investigates questions and reports findings",
    "architect": "Designs systems and breaks work down",
    "tester": "Writes and runs tests",
    "devops": "Builds, deploys and operates",
    "conductor": "Plans a mission's tasks and decides what comes next",
}
_TOWN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


# msgspec's error text: "<what> - at `$.<path>`"; an unknown key is named in <what>
_ERROR_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN_KEY = re.compile(r"^Object contains unknown field `(?P<key>[^`]*)`$")


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A table of tinytown.toml: an unknown key is a mistake worth reporting."""


class RoleConfig(_Section):
    description: str = ""
    cli: str | None = None


class AgentCliConfig(_Section):
    """[agent_clis.<name>]: a CLI of the user's own (command required), or, named like
    a preset, the keys that change it. The args keys are command-line pieces with
    `{session}` / `{state}` filled in per run (see tinytown.core.presets)."""

    command: str | None = None
    prompt: Literal["stdin", "file", "arg"] | None = None
    prompt_flag: str | None = None  # before the prompt file's path (or the prompt)
    output: str | None = None  # an output format some CLI module reads (or "text")
    output_args: str | None = None
    resume_args: str | None = None
    fork_args: str | None = None
    session_args: str | None = None
    fresh_args: str | None = None
    new_session_args: str | None = None
    session_lost: str | None = None  # a regex of what the CLI says when a session is gone
    account: str | None = None  # agents of one account pause together at its usage limit
    workdir: str | None = None
    env: dict[str, str] = msgspec.field(default_factory=dict)
    # how its rounds are given Tinytown's MCP server (`tt mcp`); "none": not at all
    mcp: str | None = None  # an MCP mode some CLI module provides


class PriceConfig(_Section):
    """[prices.<cli>]: USD per million tokens, for a CLI that reports tokens but no cost."""

    input: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    cached_input: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    output: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class BudgetSettings(_Section):
    """[budget]: USD caps; an agent (or every agent of a town) past its cap runs no round."""

    town_usd: Annotated[float, msgspec.Meta(ge=0)] | None = None
    agent_usd: Annotated[float, msgspec.Meta(ge=0)] | None = None  # each agent's default
    # a usage limit that names no reset time: resume after this long
    usage_limit_backoff_secs: Annotated[float, msgspec.Meta(gt=0)] = 300


class WorkspaceSettings(_Section):
    """[workspace]: where agents' CLIs run, and whether their work is committed."""

    mode: Literal["worktree", "shared"] = "worktree"  # worktree: in a git work tree
    auto_commit: bool = True  # commit what each round changed on the agent's branch
    repo: str | None = None  # this host's clone (default: the one the town's folder is in)
    push: str | None = None  # a remote each round's commits are pushed to (tt/<agent>)


class GatesSettings(_Section):
    """[gates]: how a task's check gate runs (tinytown/worker/checking.py)."""

    check_timeout_secs: Annotated[float, msgspec.Meta(gt=0)] = 600  # then it failed


class AgentSettings(_Section):
    default_cli: str = DEFAULT_CLI
    round_timeout_secs: Annotated[float, msgspec.Meta(gt=0)] = 3600
    idle_timeout_secs: Annotated[float, msgspec.Meta(ge=0)] = 0
    context_rounds: Annotated[int, msgspec.Meta(ge=0)] = 3
    # a worker that cannot reach its town's Redis this long (the town is down) exits
    redis_lost_secs: Annotated[float, msgspec.Meta(gt=0)] = 300
    # an agent in `error` is restarted by its host (`tt host`; with none, by the supervisor
    # on the machine its worker ran on), with exponential backoff,
    # until it has crashed `crash_loop_limit` times within `crash_loop_window_secs`
    restart: Literal["on-failure", "never"] = "on-failure"
    mcp: bool = True  # rounds of a CLI that loads MCP servers get `tt mcp` configured
    restart_backoff_secs: Annotated[float, msgspec.Meta(gt=0)] = 1
    restart_backoff_max_secs: Annotated[float, msgspec.Meta(gt=0)] = 60
    crash_loop_limit: Annotated[int, msgspec.Meta(ge=1)] = 5
    crash_loop_window_secs: Annotated[float, msgspec.Meta(gt=0)] = 600


class SupervisorSettings(_Section):
    heartbeat_timeout_secs: Annotated[float, msgspec.Meta(gt=0)] = 15
    # 5 s: every heartbeat costs 50 idle agents and the supervisor CPU (BENCHMARKS.md)
    heartbeat_interval_secs: Annotated[int, msgspec.Meta(ge=1)] = 5  # Celery: whole seconds
    autostart: bool = True


class MissionSettings(_Section):
    """[missions]: how work that waits for a person is watched."""

    # a question to a person unanswered this long: a `question_timeout` event (and a
    # message to its mission's conductor); 0: never
    question_timeout_secs: Annotated[float, msgspec.Meta(ge=0)] = 3600


class FlowerSettings(_Section):
    address: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 5555
    basic_auth: str | None = None


class Settings(_Section):
    root: Path
    town: str
    redis_url: str | None = None  # None: the embedded redis-server on .tt/redis.sock
    agent: AgentSettings = msgspec.field(default_factory=AgentSettings)
    supervisor: SupervisorSettings = msgspec.field(default_factory=SupervisorSettings)
    flower: FlowerSettings = msgspec.field(default_factory=FlowerSettings)
    roles: dict[str, RoleConfig] = msgspec.field(default_factory=dict)
    agent_clis: dict[str, AgentCliConfig] = msgspec.field(default_factory=dict)
    prices: dict[str, PriceConfig] = msgspec.field(default_factory=dict)
    budget: BudgetSettings = msgspec.field(default_factory=BudgetSettings)
    workspace: WorkspaceSettings = msgspec.field(default_factory=WorkspaceSettings)
    missions: MissionSettings = msgspec.field(default_factory=MissionSettings)
    gates: GatesSettings = msgspec.field(default_factory=GatesSettings)

    @property
    def runtime_dir(self) -> Path:
        return self.root / RUNTIME_DIR

    @property
    def logs_dir(self) -> Path:
        return self.runtime_dir / "logs"

    @property
    def embedded(self) -> bool:
        return self.redis_url is None

    def known_roles(self) -> dict[str, RoleConfig]:
        roles = {rid: RoleConfig(description=desc) for rid, desc in BUILTIN_ROLES.items()}
        roles.update(self.roles)
        return roles

    @classmethod
    def load(cls, root: Path, env: dict[str, str] | None = None) -> Settings:
        """Read <root>/tinytown.toml; REDIS_URL in the environment wins over [redis] url."""
        env = dict(os.environ) if env is None else env
        path = root / CONFIG_FILE
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise TownNotFound(f"no {CONFIG_FILE} in {root}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        return cls.from_mapping(root, data, env)

    @classmethod
    def from_mapping(cls, root: Path, data: dict[str, Any], env: dict[str, str]) -> Settings:
        path = root / CONFIG_FILE
        data = dict(data)
        town = data.pop("town", {}).get("name")
        if not town:
            raise ConfigError(f"{path}: [town] name is missing")
        redis_url = env.get("REDIS_URL") or data.pop("redis", {}).get("url") or None
        data.pop("redis", None)
        for key in ("root", "redis_url"):  # set here, never by the file
            if key in data:
                raise ConfigError(f"{path}: {key}: unknown key")
        fields = {**data, "root": root.resolve(), "town": town, "redis_url": redis_url}
        try:
            validate_town_name(town)
            # lax, like the pydantic models were: "10" or 2.0 still read as numbers
            settings = msgspec.convert(fields, cls, strict=False)
        except (msgspec.ValidationError, UsageError) as exc:
            detail = _detail(exc) if isinstance(exc, msgspec.ValidationError) else str(exc)
            raise ConfigError(f"{path}: {detail}") from None
        _check_clis(path, settings)
        return settings


def _check_clis(path: Path, settings: Settings) -> None:
    """[agent_clis] entries name known output formats and MCP modes (of the CLI modules,
    plug-ins included); one without a command is named like a preset."""
    if not settings.agent_clis:
        return
    from tinytown.agent_clis import registry

    for name, entry in settings.agent_clis.items():
        where = f"{path}: agent_clis.{name}"
        if entry.output is not None and not registry.known_output(entry.output):
            raise ConfigError(f"{where}.output: unknown output format {entry.output!r}")
        if entry.mcp is not None and not registry.known_mcp(entry.mcp):
            raise ConfigError(f"{where}.mcp: unknown MCP mode {entry.mcp!r}")
        if entry.command is None and registry.preset(name) is None:
            raise ConfigError(f"{where}: missing required field `command` (only an entry"
                              " named like a preset may leave it out)")


def _detail(exc: msgspec.ValidationError) -> str:
    """One line naming the key: ``agent.round_timeout_secs: Expected `float` > 0.0``."""
    found = _ERROR_AT.match(str(exc))
    msg, where = (found["msg"], found["path"] or "") if found else (str(exc), "")
    unknown = _UNKNOWN_KEY.match(msg)
    if unknown:
        msg, where = "unknown key", f"{where}.{unknown['key']}".lstrip(".")
    return f"{where}: {msg}" if where else msg


def validate_town_name(name: str) -> str:
    if not _TOWN_NAME.match(name):
        raise UsageError(
            f"invalid town name {name!r}: use 1-64 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


def find_root(start: Path) -> Path:
    """Walk up from `start` to the nearest folder holding tinytown.toml, as git does."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise TownNotFound(f"not inside a town (no {CONFIG_FILE} in {start} or above); run `tt init`")


def config_template(name: str) -> str:
    text = resources.files("tinytown.config").joinpath("tinytown.toml").read_text()
    return text.replace("{name}", name)
