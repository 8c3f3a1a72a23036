"""The town's settings: one model built from tinytown.toml and the environment.

Built once (by the CLI, or by ``Town.connect``) and passed down; child processes get
the town's root folder and rebuild it, never a copied client.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tinytown.errors import ConfigError, TownNotFound, UsageError

CONFIG_FILE = "tinytown.toml"
RUNTIME_DIR = ".tt"
BUILTIN_ROLES: dict[str, str] = {
    "worker": "Executes assigned tasks",
    "reviewer": "Reviews changes and gives verdicts",
    "researcher": "Investigates questions and reports findings",
    "architect": "Designs systems and breaks work down",
    "tester": "Writes and runs tests",
    "devops": "Builds, deploys and operates",
}
_TOWN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoleConfig(_Section):
    description: str = ""
    cli: str | None = None


class AgentCliConfig(_Section):
    command: str
    workdir: str | None = None
    env: dict[str, str] = Field(default_factory=dict)


class AgentSettings(_Section):
    default_cli: str = "claude"
    round_timeout_secs: float = Field(default=3600, gt=0)
    idle_timeout_secs: float = Field(default=0, ge=0)
    context_rounds: int = Field(default=3, ge=0)


class SupervisorSettings(_Section):
    heartbeat_timeout_secs: float = Field(default=10, gt=0)
    heartbeat_interval_secs: int = Field(default=2, ge=1)  # Celery takes whole seconds
    autostart: bool = True


class FlowerSettings(_Section):
    address: str = "127.0.0.1"
    port: int = Field(default=5555, ge=0, le=65535)
    basic_auth: str | None = None


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: Path
    town: str
    redis_url: str | None = None  # None: the embedded redis-server on .tt/redis.sock
    agent: AgentSettings = Field(default_factory=AgentSettings)
    supervisor: SupervisorSettings = Field(default_factory=SupervisorSettings)
    flower: FlowerSettings = Field(default_factory=FlowerSettings)
    roles: dict[str, RoleConfig] = Field(default_factory=dict)
    agent_clis: dict[str, AgentCliConfig] = Field(default_factory=dict)

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
        try:
            validate_town_name(town)
            return cls(root=root.resolve(), town=town, redis_url=redis_url, **data)
        except (ValidationError, UsageError) as exc:
            first = exc.errors()[0] if isinstance(exc, ValidationError) else None
            detail = (
                f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}" if first else str(exc)
            )
            raise ConfigError(f"{path}: {detail}") from None


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


def default_town_name(folder: Path) -> str:
    """<repo>-<branch> inside a git work tree, else the folder's name; made valid."""
    name = folder.resolve().name
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=folder, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        branch = subprocess.run(
            ["git", "symbolic-ref", "--short", "-q", "HEAD"],
            cwd=folder, capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        name = f"{Path(top).name}-{branch}" if branch else Path(top).name
    except (OSError, subprocess.SubprocessError):
        pass
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:64]
    return cleaned or "town"


def config_template(name: str) -> str:
    text = resources.files("tinytown.config").joinpath("tinytown.toml").read_text()
    return text.replace("{name}", name)
