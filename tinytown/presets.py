"""Agent CLIs: the built-in presets, [agent_clis.<name>] from tinytown.toml, or a raw
command. Commands are split into argv with shlex and never run through a shell.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from enum import StrEnum

from tinytown.errors import UsageError
from tinytown.settings import Settings


class PromptVia(StrEnum):
    STDIN = "stdin"  # the prompt is written to the CLI's standard input
    FILE = "file"  # the prompt is in a file whose path follows `prompt_flag`
    ARG = "arg"  # the prompt is the last argument (after the command's last flag)


@dataclass(frozen=True)
class Preset:
    command: str
    agent: str
    prompt_via: PromptVia = PromptVia.STDIN
    prompt_flag: str | None = None


PRESETS: dict[str, Preset] = {
    "claude": Preset("claude --print --dangerously-skip-permissions", "Anthropic Claude"),
    "auggie": Preset("auggie --print", "Augment Code", PromptVia.FILE, "--instruction-file"),
    "codex": Preset("codex exec --dangerously-bypass-approvals-and-sandbox", "OpenAI Codex"),
    "codex-mini": Preset(
        "codex exec --dangerously-bypass-approvals-and-sandbox -m gpt-5.4-mini"
        ' -c model_reasoning_effort="medium"',
        "OpenAI Codex",
    ),
    "gemini": Preset("gemini", "Google Gemini"),
    "copilot": Preset("gh copilot", "GitHub Copilot"),
    # aider's --message takes the prompt as its value: passed as one argv element
    "aider": Preset("aider --yes --no-auto-commits --message", "Aider", PromptVia.ARG),
    "cursor": Preset("cursor", "Cursor"),
    # offline stand-in that summarizes its prompt: for demos and trying a town out
    "demo": Preset(f"{shlex.quote(sys.executable)} -m tinytown.demo_agent", "Tinytown demo"),
}


@dataclass(frozen=True)
class CliCommand:
    name: str
    argv: list[str]
    prompt_via: PromptVia = PromptVia.STDIN
    prompt_flag: str | None = None
    workdir: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def _split(command: str, what: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"cannot parse the command of {what}: {exc}") from None
    if not argv:
        raise UsageError(f"the command of {what} is empty")
    return argv


def resolve_cli(settings: Settings, cli: str) -> CliCommand:
    """What `cli` (a configured name, a preset name, or a raw command) runs."""
    configured = settings.agent_clis.get(cli)
    if configured is not None:
        return CliCommand(
            cli, _split(configured.command, f"[agent_clis.{cli}]"),
            workdir=configured.workdir, env=dict(configured.env),
        )
    preset = PRESETS.get(cli)
    if preset is not None:
        return CliCommand(cli, _split(preset.command, cli), preset.prompt_via, preset.prompt_flag)
    if not cli.strip():
        raise UsageError("--cli cannot be empty: give a preset name or a command")
    return CliCommand(cli, _split(cli, f"--cli {cli!r}"))
