"""A round's agent CLI gets Tinytown's MCP server (`tt mcp`, stdio) configured for its
agent, so that it coordinates through tools (send a message, assign, complete its task)
instead of shelling out to `tt`.

Each CLI loads MCP servers its own way (`CliCommand.mcp`):

- `claude-json`: Claude Code's `--mcp-config FILE` (a JSON file of the agent's own);
- `codex-config`: Codex's `-c mcp_servers.tinytown.*=...` overrides (nothing written);
- `gemini-home`: Gemini CLI reads MCP servers only from settings files (the one whose
  path can be chosen, its system settings, must be root's), so the agent gets a Gemini
  home of its own (`GEMINI_CLI_HOME`): a `.gemini` folder whose entries link to the
  user's, but for `settings.json`, the user's settings with the server added. Nothing
  of the user's project or home is written.

The server learns whom it speaks for from TINYTOWN_AGENT_ID / _NAME / _TASK_ID, given
in its own configuration (a CLI may not pass its environment on); the town's Redis URL,
which may hold a password, is never written: the server inherits it from the CLI where
the CLI passes its environment on, and reads `tinytown.toml` otherwise.
`[agent] mcp = false` turns it all off.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tinytown.models import Agent
from tinytown.presets import CliCommand
from tinytown.private import private_dir

SERVER = "tinytown"


def server_argv(root: Path) -> list[str]:
    return [sys.executable, "-m", "tinytown", "--town", str(root), "mcp"]


def identity(agent: Agent, task_id: str | None) -> dict[str, str]:
    env = {"TINYTOWN_AGENT_ID": agent.id, "TINYTOWN_AGENT_NAME": agent.name}
    if task_id:
        env["TINYTOWN_TASK_ID"] = task_id
    return env


def configure(command: CliCommand, argv: list[str], env: dict[str, str], root: Path,
              agent: Agent, task_id: str | None, state: Path) -> list[str]:
    """The round's argv with the MCP server configured (`env` may be added to); the
    argv as it was for a CLI that loads none."""
    if command.mcp not in ("claude-json", "codex-config", "gemini-home"):
        return argv
    exe, *args = server_argv(root)
    who = identity(agent, task_id)
    if command.mcp == "codex-config":
        toml = {"command": json.dumps(exe), "args": json.dumps(args),
                "env": "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in who.items()) + "}",
                "env_vars": json.dumps(["REDIS_URL", "HOME", "PATH"])}
        overrides = [x for key, value in toml.items()
                     for x in ("-c", f"mcp_servers.{SERVER}.{key}={value}")]
        at = len(command.argv)  # before `resume ID -`, a subcommand
        return [*argv[:at], *overrides, *argv[at:]]
    if command.mcp == "gemini-home":
        env["GEMINI_CLI_HOME"] = str(gemini_home(state, env, {"command": exe, "args": args,
                                                              "env": who, "trust": True}))
        return argv
    # alwaysLoad: Claude Code waits for it before the first turn (else "still connecting")
    server = {"command": exe, "args": args, "env": who, "alwaysLoad": True}
    servers = {"mcpServers": {SERVER: server}}
    private_dir(state)
    path = state / "mcp.json"
    path.write_text(json.dumps(servers, indent=1))
    return [*argv, "--mcp-config", str(path)]


def gemini_home(state: Path, env: dict[str, str], server: dict[str, object]) -> Path:
    """The agent's Gemini home: its `.gemini` links each entry of the user's (sessions,
    credentials, trusted folders...), and its `settings.json` is the user's with the
    server added, written anew each round (the user's changes are seen)."""
    real = Path(env.get("GEMINI_CLI_HOME") or env.get("HOME") or Path.home()) / ".gemini"
    home = state / "gemini-home"
    dot = home / ".gemini"
    private_dir(dot)
    settings: dict[str, object] = {}
    if real.is_dir() and real.resolve() != dot.resolve():
        for entry in real.iterdir():
            link = dot / entry.name
            if entry.name != "settings.json" and not link.exists() and not link.is_symlink():
                link.symlink_to(entry)
        try:
            loaded = json.loads((real / "settings.json").read_text())
            settings = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            settings = {}
    servers = settings.get("mcpServers")
    settings["mcpServers"] = {**(servers if isinstance(servers, dict) else {}), SERVER: server}
    (dot / "settings.json").write_text(json.dumps(settings, indent=1))
    return home
