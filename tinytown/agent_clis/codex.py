"""OpenAI Codex (`codex exec`): JSONL events, `resume ID -` / `fork ID -` (subcommands
of `exec`, the prompt still on stdin), MCP servers as `-c` overrides (nothing written)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tinytown.agent_clis.base import (
    NOT_MINE,
    WIDTH,
    AgentCli,
    CliCommand,
    CliReport,
    Credentials,
    McpServer,
    McpSetup,
    NotMine,
    Preset,
    clock,
    cut,
    dict_of,
    int_of,
    objects,
    one_line,
    text,
)

_EXEC = "codex exec --dangerously-bypass-approvals-and-sandbox --skip-git-repo-check"
# `try again at Jan 1st, 2030 12:00 AM`, `try again at 8:16 AM` (local time)
_WHEN = re.compile(
    r"try again at (?:([A-Z][a-z]{2}) (\d{1,2})(?:st|nd|rd|th), (\d{4}) )?(\d{1,2}):(\d\d)"
    r" (AM|PM)")


class Codex(AgentCli):
    name = "codex"
    description = "OpenAI Codex"
    presets = {
        "codex": Preset(_EXEC, output_args="--json", resume_args="resume {session} -",
                        fork_args="fork {session} -", usage_totals=True),
        "codex-mini": Preset(f'{_EXEC} -m gpt-5.4-mini -c model_reasoning_effort="medium"',
                             output_args="--json", resume_args="resume {session} -",
                             fork_args="fork {session} -", usage_totals=True),
    }
    output_format = "codex-jsonl"  # codex exec --json events
    mcp_mode = "codex-config"
    credentials = Credentials(("OPENAI_API_KEY", "CODEX_API_KEY"), (".codex/auth.json",))
    install = "npm install -g @openai/codex"
    order = 30

    def read_report(self, stdout: str, stderr: str, usage_file: Path | None = None
                    ) -> CliReport:
        """`codex exec --json` events: `thread.started` (thread_id), `item.completed` with
        an `agent_message` (the answer is the last one), `turn.completed` (usage),
        `turn.failed` / `error` (the error). Codex prints its transient retries as `error`
        events too ("Reconnecting... 1/5 (…)") and then goes on: an `error` counts only
        when no completed turn follows it."""
        found = objects(stdout)
        if not any(isinstance(o.get("type"), str) for o in found):
            return CliReport(found=False, result=stdout)
        session = None
        answer = ""
        error: str | None = None
        usage: dict[str, Any] = {}
        for event in found:
            kind = event.get("type")
            item = dict_of(event.get("item"))
            if kind == "thread.started":
                session = text(event.get("thread_id")) or session
            elif kind == "item.completed" and item.get("type") == "agent_message":
                answer = text(item.get("text"))
            elif kind == "turn.completed":
                error = None  # what went wrong before it was retried past
                raw = event.get("usage")  # OpenAI: cached input is part of input_tokens
                if isinstance(raw, dict):
                    cached = int_of(raw, "cached_input_tokens")
                    usage = {"input_tokens": max(0, int_of(raw, "input_tokens") - cached),
                             "cached_input_tokens": cached,
                             "output_tokens": int_of(raw, "output_tokens")}
            elif kind == "turn.failed":
                err = event.get("error")
                error = one_line(text(err.get("message") if isinstance(err, dict) else err))
            elif kind == "error":
                error = one_line(text(event.get("message")))
        completed = any(o.get("type") == "turn.completed" for o in found)
        if error is None and not completed and not answer:
            error = "codex ended without finishing its turn"
        return CliReport(True, answer, error or None, session, usage)

    def render_event(self, kind: str, event: dict[str, Any]) -> str | None | NotMine:
        item = dict_of(event.get("item"))
        if kind == "thread.started":
            return f"# session {event.get('thread_id', '?')}"
        if kind in ("item.started", "item.completed"):
            if item.get("type") == "command_execution":
                if kind == "item.started":
                    return f"$ {cut(item.get('command', ''))}"
                output = cut(item.get("aggregated_output") or "")
                return f"  ↳ exit {item.get('exit_code')}" + (f": {output}" if output else "")
            if item.get("type") == "agent_message" and kind == "item.completed":
                return f"» {cut(item.get('text', ''), 10 * WIDTH)}"
            return None
        if kind == "turn.completed":
            return "= turn completed"
        if kind == "turn.failed":
            return f"= error: {cut(dict_of(event.get('error')).get('message', ''))}"
        if kind in ("turn.started", "item.updated"):
            return None
        return NOT_MINE

    def reset_time(self, text: str, now: datetime) -> datetime | None:
        if found := _WHEN.search(text):
            mon, day, year, hour, minute, half = found.groups()
            return clock(now, mon, day, year, int(hour), int(minute), half, None)
        return None

    def configure_mcp(self, command: CliCommand, argv: list[str], env: Mapping[str, str],
                      server: McpServer, state: Path) -> McpSetup:
        """`-c mcp_servers.<name>.*=...` overrides, placed before `resume ID -` (a
        subcommand); the server inherits REDIS_URL, HOME and PATH. `required`: Codex
        waits for the server before the turn (else its first turn, sent at once, finds
        no tinytown tools while `tt mcp` is starting) and fails the run if it cannot
        start, rather than going on without the town's tools."""
        toml = {"command": json.dumps(server.command), "args": json.dumps(server.args),
                "env": "{" + ", ".join(f"{k} = {json.dumps(v)}"
                                       for k, v in server.env.items()) + "}",
                "env_vars": json.dumps(["REDIS_URL", "HOME", "PATH"]),
                "required": "true"}
        overrides = [x for key, value in toml.items()
                     for x in ("-c", f"mcp_servers.{server.name}.{key}={value}")]
        at = len(command.argv)
        return McpSetup([*argv[:at], *overrides, *argv[at:]])


CLI = Codex()
