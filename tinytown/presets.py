"""Agent CLIs: the built-in presets, [agent_clis.<name>] from tinytown.toml, or a raw
command. Commands are split into argv with shlex and never run through a shell.

A CLI is described fully by a `CliCommand`: its argv, how it takes the prompt (never
an argument for a prompt that can be large: a preset uses stdin or a file), how to
ask it for structured output and in which format, how it continues or forks a
session, its environment and workdir. A `[agent_clis.<name>]` entry describes a CLI
of the user's own; one named like a preset extends the preset, key by key.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from tinytown.errors import UsageError

if TYPE_CHECKING:  # settings check [agent_clis] entries against the presets' names
    from tinytown.settings import AgentCliConfig, Settings

ARG_LIMIT = 128 * 1024  # Linux's limit on one argument (MAX_ARG_STRLEN), in bytes


class PromptVia(StrEnum):
    STDIN = "stdin"  # the prompt is written to the CLI's standard input
    FILE = "file"  # the prompt is in a file whose path follows `prompt_flag`
    ARG = "arg"  # the prompt is the last argument (after `prompt_flag` when set)


class OutputFormat(StrEnum):
    """What the CLI prints on stdout, and so where its answer, error and session are."""

    TEXT = "text"  # plain text: the answer is stdout's tail
    CLAUDE = "claude-json"  # Claude Code --output-format stream-json (JSONL) or json
    CODEX = "codex-jsonl"  # codex exec --json events
    GEMINI = "gemini-json"  # Gemini CLI --output-format stream-json (JSONL) or json
    COPILOT = "copilot-jsonl"  # Copilot CLI --output-format json events
    AIDER = "aider-text"  # aider's text: its API errors are lines on stdout (exit 0)


@dataclass(frozen=True)
class CliCommand:
    """One agent CLI, fully described. `resume_args`, `fork_args` and `session_args`
    are argv pieces with `{session}` (the session to continue or fork) and `{state}`
    (a folder of the agent's own that lasts across rounds) filled in per round;
    `output_args` may name `{usage_file}`, where the CLI writes its token counts."""

    name: str
    argv: list[str]
    prompt_via: PromptVia = PromptVia.STDIN
    prompt_flag: str | None = None
    workdir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    output: OutputFormat = OutputFormat.TEXT
    output_args: tuple[str, ...] = ()  # asks for `output` (added to every run)
    resume_args: tuple[str, ...] = ()  # continues session {session}
    fork_args: tuple[str, ...] = ()  # starts a new session from {session}
    session_args: tuple[str, ...] = ()  # every run, for CLIs that keep a session in a file
    fresh_args: tuple[str, ...] = ()  # instead of session_args when starting afresh
    new_session_args: tuple[str, ...] = ()  # names the session a first run starts
    session_lost: str = ""  # a regex of what the CLI says when a session is gone
    usage_totals: bool = False  # it reports a resumed session's totals, not the run's
    account: str = ""  # agents of one account pause together at its usage limit
    mcp: str = ""  # how it loads an MCP server: claude-json, codex-config, gemini-home
    description: str = ""

    @property
    def account_key(self) -> str:
        """The account its usage limits belong to: `account`, else the CLI's name."""
        return self.account or self.name

    @property
    def sessions(self) -> bool:
        """Whether the CLI can continue a session from one round to the next."""
        return bool(self.resume_args or self.session_args)

    def round_argv(self, session: str | None = None, fork: bool = False,
                   state: str = ".", new_session: str | None = None,
                   usage_file: str = "") -> list[str]:
        """The argv of one run: the command, its structured-output flags, then how
        this run continues (`session`), forks (`fork`) or starts its session."""
        extra = tuple(a.replace("{usage_file}", usage_file) for a in self.output_args)
        if session and fork and self.fork_args:
            extra += _fill(self.fork_args, session, state)
        elif session and self.resume_args:
            extra += _fill(self.resume_args, session, state)
        elif new_session and self.new_session_args:
            extra += _fill(self.new_session_args, new_session, state)
        if self.session_args:
            extra += _fill(self.session_args if session else self.fresh_args or (),
                           session or "", state)
        return [*self.argv, *extra]


def _fill(args: tuple[str, ...], session: str, state: str) -> tuple[str, ...]:
    return tuple(a.replace("{session}", session).replace("{state}", state) for a in args)


def _args(command: str) -> tuple[str, ...]:
    return tuple(shlex.split(command))


@dataclass(frozen=True)
class Preset:
    command: str
    agent: str
    prompt_via: PromptVia = PromptVia.STDIN
    prompt_flag: str | None = None
    output: OutputFormat = OutputFormat.TEXT
    output_args: str = ""
    resume_args: str = ""
    fork_args: str = ""
    session_args: str = ""
    fresh_args: str = ""
    new_session_args: str = ""
    session_lost: str = ""
    usage_totals: bool = False
    env: dict[str, str] = field(default_factory=dict)
    mcp: str = ""


_CODEX = "codex exec --dangerously-bypass-approvals-and-sandbox --skip-git-repo-check"
# Each preset asks for its CLI's streaming output (events, one JSON object a line, as they
# happen: `tt logs --follow` shows a round live), whose last event is its report.
PRESETS: dict[str, Preset] = {
    "claude": Preset(  # stream-json in --print mode needs --verbose
        "claude --print --dangerously-skip-permissions", "Anthropic Claude Code",
        output=OutputFormat.CLAUDE, output_args="--output-format stream-json --verbose",
        resume_args="--resume {session}", fork_args="--resume {session} --fork-session",
        session_lost="No conversation found with session ID", mcp="claude-json",
    ),
    "auggie": Preset(
        "auggie --print", "Augment Code", PromptVia.FILE, "--instruction-file",
        output=OutputFormat.CLAUDE, output_args="--output-format json",  # the same shape
        resume_args="--resume {session}",
    ),
    # `resume ID -` / `fork ID -`: subcommands of `exec`, the prompt still on stdin
    "codex": Preset(
        _CODEX, "OpenAI Codex", output=OutputFormat.CODEX, output_args="--json",
        resume_args="resume {session} -", fork_args="fork {session} -", usage_totals=True,
        mcp="codex-config",
    ),
    "codex-mini": Preset(
        f'{_CODEX} -m gpt-5.4-mini -c model_reasoning_effort="medium"', "OpenAI Codex",
        output=OutputFormat.CODEX, output_args="--json", resume_args="resume {session} -",
        fork_args="fork {session} -", usage_totals=True, mcp="codex-config",
    ),
    "gemini": Preset(
        "gemini --skip-trust --yolo", "Google Gemini CLI", output=OutputFormat.GEMINI,
        output_args="--output-format stream-json", resume_args="--resume {session}",
        session_lost="Error resuming session", mcp="gemini-home",
    ),
    # its token counts are in the file --usage-output-file writes, not in its events
    "copilot": Preset(
        "copilot --yolo", "GitHub Copilot CLI", output=OutputFormat.COPILOT,
        output_args="--output-format json --usage-output-file {usage_file}",
        resume_args="--resume {session}", usage_totals=True,  # the session's, resumed
    ),
    # the chat history (its session) and input history in a folder of the agent's own
    "aider": Preset(
        "aider --yes-always --no-auto-commits --no-check-update --no-analytics"
        " --no-pretty --no-stream",
        "Aider", PromptVia.FILE, "--message-file", output=OutputFormat.AIDER,
        session_args="--chat-history-file {state}/aider.chat.history.md"
                     " --input-history-file {state}/aider.input.history"
                     " --restore-chat-history",
        fresh_args="--chat-history-file {state}/aider.chat.history.md"
                   " --input-history-file {state}/aider.input.history",
    ),
    # not on any package registry (a curl installer): documented, not verified here
    "cursor": Preset("cursor-agent --print --force", "Cursor agent", PromptVia.ARG),
    # offline stand-in that summarizes its prompt: for demos and trying a town out
    "demo": Preset(f"{shlex.quote(sys.executable)} -m tinytown.demo_agent", "Tinytown demo"),
}


def _split(command: str, what: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"cannot parse the command of {what}: {exc}") from None
    if not argv:
        raise UsageError(f"the command of {what} is empty")
    return argv


def _from_preset(name: str, preset: Preset) -> CliCommand:
    return CliCommand(
        name, _split(preset.command, name), preset.prompt_via, preset.prompt_flag,
        env=dict(preset.env), output=preset.output, output_args=_args(preset.output_args),
        resume_args=_args(preset.resume_args), fork_args=_args(preset.fork_args),
        session_args=_args(preset.session_args), fresh_args=_args(preset.fresh_args),
        new_session_args=_args(preset.new_session_args), session_lost=preset.session_lost,
        usage_totals=preset.usage_totals, mcp=preset.mcp, description=preset.agent,
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
        changes["output"] = OutputFormat(config.output)
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
    preset = PRESETS.get(cli)
    base = _from_preset(cli, preset) if preset is not None else None
    configured = settings.agent_clis.get(cli)
    if configured is not None:
        return _configured(cli, configured, base)
    if base is not None:
        return base
    if not cli.strip():
        raise UsageError("--cli cannot be empty: give a preset name or a command")
    return CliCommand(cli, _split(cli, f"--cli {cli!r}"))


def with_prompt_limit(command: CliCommand, prompt: str) -> str | None:
    """Why `prompt` cannot be given to `command`, if it cannot: over Linux's limit on
    one argument when the CLI takes it as an argument."""
    size = len(prompt.encode())
    if command.prompt_via == PromptVia.ARG and size >= ARG_LIMIT:
        return (f"the prompt ({size // 1024} KiB) is too large to pass as one argument"
                f" (Linux allows {ARG_LIMIT // 1024} KiB): give {command.name!r} its prompt"
                ' on stdin or in a file (prompt = "stdin" or "file" in its [agent_clis] entry)')
    return None
