"""Whether an agent CLI can run on this machine: installed, its version, whether the
credentials it needs are set (variable names only, never values), and the problems
known to stop it (Claude Code as root, say). For `tt doctor` and the spawn warning.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tinytown.presets import CliCommand


@dataclass(frozen=True)
class Credentials:
    """Any one of these environment variables, or of these files under HOME, will do."""

    env: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


# what each preset's CLI signs in with (checked 2026-12: each CLI's own docs)
CREDENTIALS: dict[str, Credentials] = {
    "claude": Credentials(("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
                           "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CODE_USE_BEDROCK",
                           "CLAUDE_CODE_USE_VERTEX"), (".claude/.credentials.json",)),
    "codex": Credentials(("OPENAI_API_KEY", "CODEX_API_KEY"), (".codex/auth.json",)),
    "gemini": Credentials(("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"),
                          (".gemini/oauth_creds.json",)),
    "copilot": Credentials(("COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN",
                            "COPILOT_PROVIDER_API_KEY"), (".copilot/config.json",)),
    "aider": Credentials(("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
                          "DEEPSEEK_API_KEY", "OPENROUTER_API_KEY", "AIDER_MODEL"),
                         (".aider.conf.yml",)),
    "auggie": Credentials(("AUGMENT_SESSION_AUTH",), (".augment/session.json",)),
    "cursor": Credentials(("CURSOR_API_KEY",), (".cursor/cli-config.json",)),
}
CREDENTIALS["codex-mini"] = CREDENTIALS["codex"]
INSTALL: dict[str, str] = {
    "claude": "npm install -g @anthropic-ai/claude-code",
    "codex": "npm install -g @openai/codex",
    "codex-mini": "npm install -g @openai/codex",
    "gemini": "npm install -g @google/gemini-cli",
    "copilot": "npm install -g @github/copilot",
    "aider": "pipx install aider-chat",
    "auggie": "npm install -g @augmentcode/auggie",
    "cursor": "curl https://cursor.com/install -fsS | bash (not on a package registry)",
}
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
    """Problems known to stop this CLI here, each with what to do."""
    problems = []
    argv0 = Path(command.argv[0]).name
    if argv0 == "claude" and "--dangerously-skip-permissions" in command.argv and euid == 0 \
            and env.get("IS_SANDBOX") != "1":
        problems.append(
            "Claude Code refuses --dangerously-skip-permissions as root: run the worker"
            " as a normal user, or set IS_SANDBOX=1 if this machine is a sandbox")
    if argv0 == "gemini" and "--skip-trust" not in command.argv:
        problems.append(
            "Gemini CLI exits 55 in a folder it does not trust: add --skip-trust (and --yolo"
            " for tools that write) to its command")
    if argv0 == "gh" and command.argv[1:2] == ["copilot"]:
        problems.append(
            "`gh copilot` is not the Copilot CLI agent: install @github/copilot and use"
            " `copilot --yolo`")
    return problems


def check(command: CliCommand, env: Mapping[str, str] | None = None,
          home: Path | None = None, version_timeout: float = 10) -> CliHealth:
    """This machine's view of `command` (its preset's name picks the credentials)."""
    env = dict(os.environ) if env is None else env
    home = home or Path(env.get("HOME") or Path.home())
    merged = {**env, **command.env}
    health = CliHealth(command.name, command.argv[0], install=INSTALL.get(command.name))
    health.path = shutil.which(command.argv[0], path=merged.get("PATH"))
    if health.path is not None:
        health.version = version_of(health.path, merged, version_timeout)
    creds = CREDENTIALS.get(command.name)
    if creds is not None:
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
