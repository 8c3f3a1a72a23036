"""A round's agent CLI gets Tinytown's MCP server (`tt mcp`, stdio) configured for its
agent, so that it coordinates through tools (send a message, assign, complete its task)
instead of shelling out to `tt`.

Each CLI loads MCP servers its own way: the CLI module that provides the command's MCP
mode (`CliCommand.mcp`, `AgentCli.mcp_mode`) says how — flags, environment variables,
and files to write — and this writes those files, in private folders of the agent's
own (nothing of the user's project or home is written).

The server learns whom it speaks for from TINYTOWN_AGENT_ID / _NAME / _TASK_ID, given
in its own configuration (a CLI may not pass its environment on); the town's Redis URL,
which may hold a password, is never written: the server inherits it from the CLI where
the CLI passes its environment on, and reads `tinytown.toml` otherwise.
`[agent] mcp = false` turns it all off.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tinytown.agent_clis import registry
from tinytown.agent_clis.base import CliCommand, McpServer, McpSetup
from tinytown.core.models import Agent
from tinytown.system.private import private_dir

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
    cli = registry.by_mcp(command.mcp) if command.mcp else None
    if cli is None:
        return argv
    exe, *args = server_argv(root)
    setup = cli.configure_mcp(command, argv, env, McpServer(SERVER, exe, args,
                                                             identity(agent, task_id)), state)
    write(setup)
    env.update(setup.env)
    return setup.argv


def write(setup: McpSetup) -> None:
    """The files and links a CLI's MCP setup asks for, each in a private folder; a link
    already there is left as it is."""
    for link, target in setup.links.items():
        private_dir(link.parent)
        if not link.exists() and not link.is_symlink():
            link.symlink_to(target)
    for path, text in setup.files.items():
        private_dir(path.parent)
        path.write_text(text)
