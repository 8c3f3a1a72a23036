"""Cline CLI (`cline`, npm `cline`): JSONL events (`--json`), tools approved with
`--auto-approve true`, its provider from ~/.cline/data/settings/providers.json (written
by `cline auth -p <provider> -k <key> -m <model> [-b <base URL>]`).

Two things of Cline CLI 3.0 shape the preset. `--json` refuses to run without a prompt
argument, but joins a prompt argument and piped stdin as `<argument>\\n\\n<stdin>` after
trimming the argument: the preset passes " " and the prompt on stdin, so a prompt of any
size arrives whole and unchanged. And it cannot continue a session headless: `--id
<session>` always opens its terminal UI (it needs a TTY, and `--json` then refuses), and
its events do not name the session. So each task starts a new Cline session.

Its MCP servers are read from one settings file, whose path CLINE_MCP_SETTINGS_PATH may
choose: the round's is a file of the agent's own, the user's servers and Tinytown's."""

from __future__ import annotations

import json
from collections.abc import Mapping
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
    cut,
    dict_of,
    int_of,
    last_object,
    objects,
    one_line,
    text,
    tool_input,
)

_KINDS = frozenset({"hook_event", "agent_event", "run_result"})
# Seconds Cline waits for the MCP server, and for each of its tools' answers. Without a
# `timeout` it gives a stdio server no time to start: `python -m tinytown mcp`, a second
# or two, was left out of the run's tools.
_TIMEOUT = 300


class Cline(AgentCli):
    name = "cline"
    description = "Cline CLI"
    presets = {"cline": Preset(
        "cline --auto-approve true", output_args="--json ' '",  # ' ': see above
    )}
    output_format = "cline-jsonl"  # cline --json events
    mcp_mode = "cline-settings"  # CLINE_MCP_SETTINGS_PATH
    credentials = Credentials(("CLINE_API_KEY",), (".cline/data/settings/providers.json",))
    install = "npm install -g cline"
    order = 90

    def read_report(self, stdout: str, stderr: str, usage_file: Path | None = None
                    ) -> CliReport:
        """`cline --json` events: `agent_event`s (text, tool calls, `error` {error
        {message}}, usage) and a closing `run_result`: `finishReason` (completed, error,
        ...), `text` (the answer, or the error's message), `usage` {inputTokens (cached
        included), outputTokens, cacheReadTokens, cacheWriteTokens, totalCost}. An error
        before the run (no provider, a bad flag) is a `{"type": "error", "message"}` line
        on stderr; it exits 1 either way."""
        events = objects(stdout)
        results = [e for e in events if e.get("type") == "run_result"]
        if not results:
            said = last_object(stderr)
            if said is not None and said.get("type") == "error" and said.get("message"):
                return CliReport(True, "", one_line(text(said["message"])))
            return CliReport(found=False, result=stdout)
        last = results[-1]
        answer = text(last.get("text"))
        error = None
        if last.get("finishReason") not in ("completed", None):
            said_error = next(
                (text(dict_of(dict_of(e.get("event")).get("error")).get("message"))
                 for e in reversed(events) if e.get("type") == "agent_event"
                 and dict_of(e.get("event")).get("type") == "error"), "")
            error = one_line(said_error) or one_line(answer) or \
                f"cline finished with {last.get('finishReason')}"
        raw = dict_of(last.get("usage"))
        usage: dict[str, Any] = {}
        if raw:
            cached = int_of(raw, "cacheReadTokens")
            usage = {"input_tokens": max(0, int_of(raw, "inputTokens") - cached),
                     "cached_input_tokens": cached,
                     "output_tokens": int_of(raw, "outputTokens")}
            if isinstance(raw.get("totalCost"), int | float) and raw["totalCost"] > 0:
                usage["cost_usd"] = float(raw["totalCost"])
        return CliReport(True, answer, error, None, usage)

    def render_event(self, kind: str, event: dict[str, Any]) -> str | None | NotMine:
        if kind not in _KINDS:
            return NOT_MINE
        if kind == "run_result":
            if event.get("finishReason") == "completed":
                return "= done"
            return f"= error: {cut(event.get('text', ''), 10 * WIDTH)}"
        inner = dict_of(event.get("event"))
        what = inner.get("type")
        if what == "content_start" and inner.get("contentType") == "text":
            return f"» {cut(inner.get('text', ''), 10 * WIDTH)}"
        if what == "content_start" and inner.get("contentType") == "tool":
            return f"$ {inner.get('toolName', 'tool')}: {_tool_input(inner.get('input'))}"
        if what == "content_end" and inner.get("contentType") == "tool":
            output = inner.get("output")
            failed = isinstance(output, list) and any(
                dict_of(o).get("success") is False for o in output)
            said = " ".join(text(dict_of(o).get("result")) for o in output) \
                if isinstance(output, list) else text(output)
            return f"  {'✗' if failed else '↳'} {cut(said or '(no output)')}"
        if what == "error":
            return f"! {cut(dict_of(inner.get('error')).get('message', ''))}"
        return None  # hooks, iterations, usage, streaming updates


    def configure_mcp(self, command: CliCommand, argv: list[str], env: Mapping[str, str],
                      server: McpServer, state: Path) -> McpSetup:
        """CLINE_MCP_SETTINGS_PATH: the agent's own copy of the user's MCP settings (where
        Cline would read them: CLINE_MCP_SETTINGS_PATH, CLINE_DATA_DIR, CLINE_DIR, HOME)
        with the server added (and a `timeout`, see `_TIMEOUT`), written anew each round;
        the user's file is not written."""
        path = state / "cline_mcp_settings.json"
        settings: dict[str, Any] = {}
        try:
            loaded = json.loads(_user_mcp_settings(env).read_text())
            settings = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            settings = {}
        servers = settings.get("mcpServers")
        settings["mcpServers"] = {**(servers if isinstance(servers, dict) else {}),
                                  server.name: {"transport": {
                                      "type": "stdio", "command": server.command,
                                      "args": server.args, "env": server.env},
                                      "timeout": _TIMEOUT}}
        return McpSetup(argv, env={"CLINE_MCP_SETTINGS_PATH": str(path)},
                        files={path: json.dumps(settings, indent=1)})


def _user_mcp_settings(env: Mapping[str, str]) -> Path:
    """Where Cline CLI 3.0 reads its MCP settings from, as it decides it."""
    if own := env.get("CLINE_MCP_SETTINGS_PATH", "").strip():
        return Path(own)
    data = env.get("CLINE_DATA_DIR", "").strip() or str(
        Path(env.get("CLINE_DIR", "").strip() or
             Path(env.get("HOME") or Path.home()) / ".cline") / "data")
    return Path(data) / "settings" / "cline_mcp_settings.json"


def _tool_input(args: Any) -> str:
    """run_commands takes a list of commands: show them joined."""
    commands = dict_of(args).get("commands")
    if isinstance(commands, list):
        return cut(" ; ".join(text(c) for c in commands))
    return tool_input(args)


CLI = Cline()
