"""Whether an agent CLI can run on this machine: installed, its version, whether the
credentials it needs are set (variable names only, never values), and the problems
known to stop it (each CLI module's `known_problems`). For `tt doctor` and the spawn
warning. What to check comes from the CLI modules (tinytown.agent_clis).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tinytown.agent_clis import registry
from tinytown.agent_clis.base import CliCommand, Credentials

__all__ = ["CliHealth", "Credentials", "check", "known_problems", "version_of"]
_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?(?:[-.][0-9A-Za-z.]+)?")


@dataclass
class CliHealth:
    name: str
    executable: str
    path: str | None = None
    version: str | None = None
    credentials_set: list[str] = field(default_factory=list)  # names, never values
    credentials_needed: str | None = None  # what to set when none is
    problems: list[str] = field(default_factory=list)
    install: str | None = None

    @property
    def installed(self) -> bool:
        return self.path is not None

    @property
    def ready(self) -> bool:
        return self.installed and self.credentials_needed is None and not self.problems

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "executable": self.executable, "installed": self.installed,
                "path": self.path, "version": self.version, "ready": self.ready,
                "credentials_set": self.credentials_set,
                "credentials_needed": self.credentials_needed, "problems": self.problems,
                "install": self.install}


def known_problems(command: CliCommand, env: Mapping[str, str], euid: int) -> list[str]:
    """Problems known to stop this CLI here, each with what to do: what every CLI module
    known in this process says of the command."""
    return [p for cli in registry.loaded() for p in cli.known_problems(command, env, euid)]


def check(command: CliCommand, env: Mapping[str, str] | None = None,
          home: Path | None = None, version_timeout: float = 10) -> CliHealth:
    """This machine's view of `command` (its preset's CLI module names the credentials
    and how to install it)."""
    env = dict(os.environ) if env is None else env
    home = home or Path(env.get("HOME") or Path.home())
    merged = {**env, **command.env}
    found = registry.of(command.name) if command.name.split() == [command.name] else None
    cli = found.cli if found is not None else None
    health = CliHealth(command.name, command.argv[0],
                       install=(cli.install or None) if cli is not None else None)
    health.path = shutil.which(command.argv[0], path=merged.get("PATH"))
    if health.path is not None:
        health.version = version_of(health.path, merged, version_timeout)
    creds = cli.credentials if cli is not None else None
    if creds is not None and (creds.env or creds.files):
        health.credentials_set = [name for name in creds.env if merged.get(name)]
        files = [f for f in creds.files if (home / f).exists()]
        if not health.credentials_set and not files:
            where = " or ".join([f"${n}" for n in creds.env] + [f"~/{f}" for f in creds.files])
            health.credentials_needed = f"set one of {where} (or sign in with the CLI)"
        health.credentials_set += [f"~/{f}" for f in files]
    health.problems = known_problems(command, merged, os.geteuid())
    return health


def version_of(path: str, env: Mapping[str, str], timeout: float) -> str | None:
    """`<cli> --version`, as a version number (None when it does not say)."""
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True,
                              timeout=timeout, env=dict(env), stdin=subprocess.DEVNULL,
                              errors="replace")
    except (OSError, subprocess.SubprocessError):
        return None
    found = _VERSION.search(done.stdout + " " + done.stderr)
    return found.group(0) if found else None
