"""Agent CLIs: the built-in presets, [agent_clis.<name>] from tinytown.toml, or a raw
command. Commands are split into argv with shlex and never run through a shell.

A CLI is described fully by a `CliCommand` (tinytown.agent_clis.base): its argv, how
it takes the prompt (never an argument for a prompt that can be large: a preset uses
stdin or a file), how to ask it for structured output and in which format, how it
continues or forks a session, its environment and workdir. The presets come from the
CLI modules (tinytown.agent_clis, plug-ins included); a `[agent_clis.<name>]` entry
describes a CLI of the user's own, and one named like a preset extends the preset, key
by key.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import TYPE_CHECKING

from tinytown.agent_clis import registry
from tinytown.agent_clis.base import ARG_LIMIT, TEXT, AgentCli, CliCommand, Preset, PromptVia
from tinytown.core.errors import UsageError

if TYPE_CHECKING:  # settings check [agent_clis] entries against the presets' names
    from tinytown.core.settings import AgentCliConfig, Settings

__all__ = ["ARG_LIMIT", "CliCommand", "PromptVia", "builtin_presets", "resolve_cli",
           "with_prompt_limit"]


def _args(command: str) -> tuple[str, ...]:
    return tuple(shlex.split(command))


def builtin_presets() -> dict[str, Preset]:
    """The built-in CLIs' presets (a plug-in's are found when asked for by name)."""
    return {name: preset for cli in registry.builtin().values()
            for name, preset in cli.presets.items()}


def __getattr__(name: str) -> dict[str, Preset]:
    """`PRESETS`, built when first asked for: a resolve of one preset loads one module."""
    if name == "PRESETS":
        return builtin_presets()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _split(command: str, what: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"cannot parse the command of {what}: {exc}") from None
    if not argv:
        raise UsageError(f"the command of {what} is empty")
    return argv


def _from_preset(name: str, cli: AgentCli, preset: Preset) -> CliCommand:
    return CliCommand(
        name, _split(preset.command, name), preset.prompt_via, preset.prompt_flag,
        env=dict(preset.env), output=preset.output or cli.output_format or TEXT,
        output_args=_args(preset.output_args),
        resume_args=_args(preset.resume_args), fork_args=_args(preset.fork_args),
        session_args=_args(preset.session_args), fresh_args=_args(preset.fresh_args),
        new_session_args=_args(preset.new_session_args), session_lost=preset.session_lost,
        usage_totals=preset.usage_totals, mcp=preset.mcp or cli.mcp_mode,
        description=cli.description,
    )


def _configured(name: str, config: AgentCliConfig, base: CliCommand | None) -> CliCommand:
    """A [agent_clis.<name>] entry: a CLI of its own, or (named like a preset) the
    preset with the keys the entry sets."""
    what = f"[agent_clis.{name}]"
    if base is None:
        if not config.command:
            raise UsageError(f"{what} needs a command")
        base = CliCommand(name, _split(config.command, what))
    changes: dict[str, object] = {}
    if config.command:
        changes["argv"] = _split(config.command, what)
    if config.mcp is not None:
        changes["mcp"] = "" if config.mcp == "none" else config.mcp
    for key in ("prompt_flag", "workdir", "session_lost", "account"):
        if getattr(config, key) is not None:
            changes[key] = getattr(config, key)
    if config.prompt is not None:
        changes["prompt_via"] = PromptVia(config.prompt)
    if config.output is not None:
        changes["output"] = config.output
    for key in ("output_args", "resume_args", "fork_args", "session_args", "fresh_args",
                "new_session_args"):
        value = getattr(config, key)
        if value is not None:
            changes[key] = tuple(_split(value, what)) if value.strip() else ()
    if config.env:
        changes["env"] = {**base.env, **config.env}
    return replace(base, **changes)  # type: ignore[arg-type]


def resolve_cli(settings: Settings, cli: str) -> CliCommand:
    """What `cli` (a configured name, a preset name, or a raw command) runs."""
    found = registry.preset(cli) if cli.strip() and not _spaced(cli) else None
    base = _from_preset(cli, *found) if found is not None else None
    configured = settings.agent_clis.get(cli)
    if configured is not None:
        return _configured(cli, configured, base)
    if base is not None:
        return base
    if not cli.strip():
        raise UsageError("--cli cannot be empty: give a preset name or a command")
    return CliCommand(cli, _split(cli, f"--cli {cli!r}"))


def _spaced(cli: str) -> bool:
    """A raw command (no preset's name has a space): no need to look for plug-ins."""
    return any(c.isspace() for c in cli)


def with_prompt_limit(command: CliCommand, prompt: str) -> str | None:
    """Why `prompt` cannot be given to `command`, if it cannot: over Linux's limit on
    one argument when the CLI takes it as an argument."""
    size = len(prompt.encode())
    if command.prompt_via == PromptVia.ARG and size >= ARG_LIMIT:
        return (f"the prompt ({size // 1024} KiB) is too large to pass as one argument"
                f" (Linux allows {ARG_LIMIT // 1024} KiB): give {command.name!r} its prompt"
                ' on stdin or in a file (prompt = "stdin" or "file" in its [agent_clis] entry)')
    return None
