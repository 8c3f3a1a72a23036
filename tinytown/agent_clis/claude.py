"""Anthropic Claude Code (`claude`): stream-json events whose last line is the report,
`--resume` / `--fork-session`, an MCP config file (`--mcp-config`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
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
    tool_input,
)

# Claude Code: `resets 8:13am (Europe/Berlin)`, `resets Jan 1, 2030, 12am (UTC)`
_WHEN = re.compile(
    r"resets (?:([A-Z][a-z]{2}) (\d{1,2})(?:, (\d{4}))?, )?(\d{1,2})(?::(\d\d))?(am|pm)"
    r" \(([^)]+)\)")
_EPOCH = re.compile(r"limit reached\|(\d{9,11})")  # the older `…usage limit reached|<epoch>`
_REGAIN = re.compile(r"regain access on (\d{4}-\d\d-\d\d) at (\d\d:\d\d) UTC")  # the API's


class Claude(AgentCli):
    name = "claude"
    description = "Anthropic Claude Code"
    presets = {"claude": Preset(  # stream-json in --print mode needs --verbose
        "claude --print --dangerously-skip-permissions",
        output_args="--output-format stream-json --verbose",
        resume_args="--resume {session}", fork_args="--resume {session} --fork-session",
        session_lost="No conversation found with session ID",
    )}
    output_format = "claude-json"  # --output-format stream-json (JSONL) or json
    mcp_mode = "claude-json"
    reports_cost = True
    credentials = Credentials(("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
                               "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CODE_USE_BEDROCK",
                               "CLAUDE_CODE_USE_VERTEX"), (".claude/.credentials.json",))
    install = "npm install -g @anthropic-ai/claude-code"
    order = 10
    limit_text = r"hit your .{0,40}limit|out of usage|limiting requests"

    def read_report(self, stdout: str, stderr: str, usage_file: Path | None = None
                    ) -> CliReport:
        """`--output-format json` (one result object) or `stream-json` (its last line is
        the result): `result`, `is_error`, `session_id`, `usage`, `total_cost_usd`."""
        found = objects(stdout)
        results = [o for o in found if o.get("type") == "result"]
        if not results:
            return CliReport(found=False, result=stdout)
        last = results[-1]
        raw = last.get("usage") if isinstance(last.get("usage"), dict) else {}
        usage: dict[str, Any] = {}
        if raw:  # Anthropic: input_tokens leaves out what was read from, or written to, cache
            usage = {"input_tokens": int_of(raw, "input_tokens") +
                     int_of(raw, "cache_creation_input_tokens"),
                     "cached_input_tokens": int_of(raw, "cache_read_input_tokens"),
                     "output_tokens": int_of(raw, "output_tokens")}
        if isinstance(last.get("total_cost_usd"), int | float):
            usage["cost_usd"] = last["total_cost_usd"]
        result = text(last.get("result"))
        failed = bool(last.get("is_error")) or last.get("subtype", "success") != "success"
        error = None
        if failed:
            error = one_line(result) or one_line(text(last.get("errors"))) or \
                f"claude reported {last.get('subtype', 'an error')}"
        session = last.get("session_id") or next(
            (o.get("session_id") for o in found if o.get("session_id")), None)
        return CliReport(True, result, error, text(session) or None, usage)

    def render_event(self, kind: str, event: dict[str, Any]) -> str | None | NotMine:
        if kind == "system":
            if event.get("subtype") == "init":
                return f"# session {event.get('session_id', '?')} ({event.get('model', '?')})"
            return None
        if kind in ("assistant", "user"):
            lines = []
            for part in dict_of(event.get("message")).get("content") or []:
                part = dict_of(part)
                if part.get("type") == "text" and kind == "assistant":
                    lines.append(f"» {cut(part.get('text', ''), 10 * WIDTH)}")
                elif part.get("type") == "tool_use":
                    lines.append(f"$ {part.get('name', 'tool')}:"
                                 f" {tool_input(part.get('input'))}")
                elif part.get("type") == "tool_result":
                    mark = "✗" if part.get("is_error") else "↳"
                    lines.append(f"  {mark} {cut(_content_text(part.get('content')))}")
            return "\n".join(lines) if lines else None
        if kind == "result" and "is_error" in event:
            what = "error" if event.get("is_error") else "done"
            return f"= {what}: {cut(event.get('result', ''), 10 * WIDTH)}"
        if kind == "rate_limit_event":
            info = dict_of(event.get("rate_limit_info"))
            return f"! rate limit: {info.get('status', '?')} ({info.get('rateLimitType', '?')})"
        return NOT_MINE

    def reset_time(self, text: str, now: datetime) -> datetime | None:
        if found := _EPOCH.search(text):
            return datetime.fromtimestamp(int(found.group(1)), UTC)
        if found := _REGAIN.search(text):
            return datetime.fromisoformat(f"{found.group(1)}T{found.group(2)}+00:00")
        if found := _WHEN.search(text):
            mon, day, year, hour, minute, half, zone = found.groups()
            return clock(now, mon, day, year, int(hour), int(minute or 0), half, zone)
        return None

    def configure_mcp(self, command: CliCommand, argv: list[str], env: Mapping[str, str],
                      server: McpServer, state: Path) -> McpSetup:
        """`--mcp-config FILE`: a JSON file of the agent's own. alwaysLoad: Claude Code
        waits for the server before the first turn (else "still connecting")."""
        entry = {"command": server.command, "args": server.args, "env": server.env,
                 "alwaysLoad": True}
        path = state / "mcp.json"
        return McpSetup([*argv, "--mcp-config", str(path)],
                        files={path: json.dumps({"mcpServers": {server.name: entry}},
                                                indent=1)})

    def known_problems(self, command: CliCommand, env: Mapping[str, str], euid: int
                       ) -> list[str]:
        if Path(command.argv[0]).name == "claude" and \
                "--dangerously-skip-permissions" in command.argv and euid == 0 and \
                env.get("IS_SANDBOX") != "1":
            return ["Claude Code refuses --dangerously-skip-permissions as root: run the"
                    " worker as a normal user, or set IS_SANDBOX=1 if this machine is a"
                    " sandbox"]
        return []


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(dict_of(c).get("text", "")) for c in content)
    return content if isinstance(content, str) else json.dumps(content)


CLI = Claude()
