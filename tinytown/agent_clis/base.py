"""The interface of an agent CLI: everything Tinytown knows about one CLI, in one object.

A CLI module (one file in this package, or a plug-in's module named by an entry point
of the group `tinytown.agent_clis`) defines a subclass of `AgentCli` and an instance of
it named `CLI`. The worker, `tt doctor` and the settings use only this interface; none
of them names a CLI. The class attributes are data (its presets, the names of its
output format and MCP mode, credentials, install line); the methods are hooks with
defaults that fit a CLI printing plain text.

Pure: no Redis, no Celery, no processes, and nothing written. What a CLI needs written
for its MCP configuration is returned (`McpSetup`) and the worker writes it.

Also here, for readers of the CLIs' structured output (built-in or plug-in): the
report type (`CliReport`) and small JSON helpers (`objects`, `text`, `int_of`,
`one_line`, `last_object`, `api_error`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tinytown.core.errors import one_line as one_line  # re-exported: a CLI error in one line

ARG_LIMIT = 128 * 1024  # Linux's limit on one argument (MAX_ARG_STRLEN), in bytes
TEXT = "text"  # the output format of a CLI without structured output: stdout is the answer


class PromptVia(StrEnum):
    STDIN = "stdin"  # the prompt is written to the CLI's standard input
    FILE = "file"  # the prompt is in a file whose path follows `prompt_flag`
    ARG = "arg"  # the prompt is the last argument (after `prompt_flag` when set)


@dataclass(frozen=True)
class CliCommand:
    """One agent CLI, resolved and fully described (see `tinytown.core.presets.resolve_cli`).
    `resume_args`, `fork_args` and `session_args` are argv pieces with `{session}` (the
    session to continue or fork) and `{state}` (a folder of the agent's own that lasts
    across rounds) filled in per round; `output_args` may name `{usage_file}`, where
    the CLI writes its token counts. `output` and `mcp` name an output format and an
    MCP mode, each provided by some `AgentCli` (`output_format`, `mcp_mode`)."""

    name: str
    argv: list[str]
    prompt_via: PromptVia = PromptVia.STDIN
    prompt_flag: str | None = None
    workdir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    output: str = TEXT
    output_args: tuple[str, ...] = ()  # asks for `output` (added to every run)
    resume_args: tuple[str, ...] = ()  # continues session {session}
    fork_args: tuple[str, ...] = ()  # starts a new session from {session}
    session_args: tuple[str, ...] = ()  # every run, for CLIs that keep a session in a file
    fresh_args: tuple[str, ...] = ()  # instead of session_args when starting afresh
    new_session_args: tuple[str, ...] = ()  # names the session a first run starts
    session_lost: str = ""  # a regex of what the CLI says when a session is gone
    usage_totals: bool = False  # it reports a resumed session's totals, not the run's
    account: str = ""  # agents of one account pause together at its usage limit
    mcp: str = ""  # how it loads an MCP server ("": not at all)
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


@dataclass(frozen=True)
class Preset:
    """A ready-made command line of a CLI: what `--cli <its name>` runs. The args are
    command-line text (split with shlex); `output` and `mcp` left empty mean the CLI's
    own (`AgentCli.output_format`, `AgentCli.mcp_mode`)."""

    command: str
    prompt_via: PromptVia = PromptVia.STDIN
    prompt_flag: str | None = None
    output: str = ""
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


@dataclass(frozen=True)
class Credentials:
    """Any one of these environment variables, or of these files under HOME, will do."""

    env: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


@dataclass
class CliReport:
    """What the CLI said of its run; `found` is False when its output held no report
    (it crashed first, or printed something else): the exit code decides then."""

    found: bool
    result: str = ""
    error: str | None = None  # the error the CLI reports, one line
    session_id: str | None = None
    # normalized: input_tokens (uncached), cached_input_tokens, output_tokens, cost_usd;
    # empty when the CLI reported none
    usage: dict[str, Any] = field(default_factory=dict)
    hint: str = ""  # without a report: the last line the CLI wrote on stderr


@dataclass(frozen=True)
class McpServer:
    """Tinytown's MCP server for one round: its command and the identity it speaks for
    (TINYTOWN_AGENT_ID / _NAME / _TASK_ID)."""

    name: str
    command: str
    args: list[str]
    env: dict[str, str]


@dataclass
class McpSetup:
    """How a round's CLI gets the MCP server: its argv, environment variables to add,
    and files the worker writes before the run (`files`: path -> text; `links`: link ->
    what it points to), each in a private folder of the agent's own."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    files: dict[Path, str] = field(default_factory=dict)
    links: dict[Path, Path] = field(default_factory=dict)


class NotMine:
    """What `AgentCli.render_event` returns for an event that is not its CLI's."""


NOT_MINE = NotMine()


class AgentCli:
    """One agent CLI. Subclass it, set the attributes, override the hooks it needs, and
    name an instance `CLI` in the module (a built-in one) or in an entry point of the
    group `tinytown.agent_clis` (a plug-in)."""

    name: ClassVar[str] = ""  # the CLI's name (its main preset's)
    description: ClassVar[str] = ""  # for people: "Anthropic Claude Code"
    # the `--cli` names it answers to: usually {name: Preset(...)}; may hold variants
    presets: ClassVar[Mapping[str, Preset]] = {}
    # the output format its `read_report` reads, by the name `[agent_clis.<x>] output`
    # gives it ("": it reads none of its own, e.g. it prints another CLI's format)
    output_format: ClassVar[str] = ""
    mcp_mode: ClassVar[str] = ""  # the MCP mode `configure_mcp` provides ("": none)
    reports_cost: ClassVar[bool] = False  # its report gives the run's cost in USD
    credentials: ClassVar[Credentials] = Credentials()  # what it signs in with
    install: ClassVar[str] = ""  # how to install it, one line
    order: ClassVar[int] = 100  # where `tt doctor` lists it; events are tried in order
    # a regex of what it (or its provider) says at a rate or usage limit
    limit_text: ClassVar[str] = ""

    def read_report(self, stdout: str, stderr: str, usage_file: Path | None = None
                    ) -> CliReport:
        """The report of a run in output format `output_format`. `usage_file`: where
        `{usage_file}` in `output_args` pointed (it may not exist)."""
        return CliReport(found=False, result=stdout)

    def render_event(self, kind: str, event: dict[str, Any]) -> str | None | NotMine:
        """One event of its streaming output as a line for `tt logs` (None: nothing to
        show; NOT_MINE: not an event of this CLI's)."""
        return NOT_MINE

    def reset_time(self, text: str, now: datetime) -> datetime | None:
        """When a limit resets, as this CLI writes it (None: not in its words)."""
        return None

    def configure_mcp(self, command: CliCommand, argv: list[str], env: Mapping[str, str],
                      server: McpServer, state: Path) -> McpSetup:
        """How a run of `command` (`argv`, environment `env`) gets `server`; `state` is a
        folder of the agent's own where files may be written (by the worker)."""
        return McpSetup(argv)

    def known_problems(self, command: CliCommand, env: Mapping[str, str], euid: int
                       ) -> list[str]:
        """Problems known to stop this CLI as `command` runs it here, each with what to
        do (asked of every CLI for every command: check `command.argv[0]`)."""
        return []


# Helpers for readers of JSON output.

def objects(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects in stdout: the whole of it, or one per line (JSONL)."""
    text_ = stdout.strip()
    if not text_:
        return []
    try:
        whole = json.loads(text_)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        return [whole]
    if isinstance(whole, list):
        return [x for x in whole if isinstance(x, dict)]
    found = []
    for line in text_.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


def last_object(text_: str) -> dict[str, Any] | None:
    """The last JSON object in `text_` that starts a line (pretty-printed or not)."""
    decoder = json.JSONDecoder()
    start = len(text_)
    while (start := text_.rfind("{", 0, start)) >= 0:
        if start == 0 or text_[start - 1] == "\n":
            try:
                value, _ = decoder.raw_decode(text_, start)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def text(value: Any) -> str:
    """A JSON value as text (a string as it is, null as "")."""
    return value if isinstance(value, str) else "" if value is None else json.dumps(value)


def int_of(doc: dict[str, Any], key: str) -> int:
    """A count in a JSON object (0 when missing or not a number)."""
    value = doc.get(key)
    return int(value) if isinstance(value, int | float) and value == value else 0


def dict_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def api_error(message: Any) -> str:
    """An error message in one line; one that is itself an API's JSON error body (some
    CLIs pass the body on) as `<code> <status>: <message>`."""
    said = text(message)
    try:
        body = json.loads(said)
    except ValueError:
        return one_line(said)
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict) and inner.get("message"):
        head = " ".join(str(inner[k]) for k in ("code", "status") if inner.get(k))
        return one_line(f"{head}: {inner['message']}" if head else text(inner["message"]))
    return one_line(said)


# Helpers for `render_event`.

WIDTH = 200  # a tool's input or output is cut to this many characters on its line


def cut(value: Any, width: int = WIDTH) -> str:
    """A value as the first line of its text, cut to `width` (" …" when more)."""
    said = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    first, _, rest = said.strip().partition("\n")
    more = bool(rest.strip()) or len(first) > width
    return first[:width] + (" …" if more else "")


def tool_input(args: Any) -> str:
    """A tool call's input in brief: its command, path, pattern... else all of it."""
    if isinstance(args, dict):
        for key in ("command", "cmd", "file_path", "path", "pattern", "query", "url"):
            if isinstance(args.get(key), str):
                return cut(args[key])
    return cut(args)


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def clock(now: datetime, mon: str | None, day: str | None, year: str | None, hour: int,
          minute: int, half: str, zone: str | None) -> datetime | None:
    """A wall-clock time in `zone` (None: this machine's), 12-hour, as a CLI wrote when a
    limit resets; without a date, its next occurrence."""
    try:
        tz: tzinfo = ZoneInfo(zone) if zone else datetime.now().astimezone().tzinfo or UTC
    except (ZoneInfoNotFoundError, ValueError):
        tz = UTC
    hour = hour % 12 + (12 if half.lower() == "pm" else 0)
    local = now.astimezone(tz)
    try:
        if mon and day and mon in MONTHS:
            when = local.replace(year=int(year) if year else local.year,
                                 month=MONTHS.index(mon) + 1, day=int(day), hour=hour,
                                 minute=minute, second=0, microsecond=0)
        else:
            when = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if when <= local:
                when += timedelta(days=1)
    except ValueError:
        return None
    return when.astimezone(UTC)
