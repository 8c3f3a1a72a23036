"""Qwen Code (`qwen`, npm `@qwen-code/qwen-code`): a fork of Gemini CLI whose
`--output-format stream-json` events have Claude Code's shape (`system` init,
`assistant` / `user` messages, a closing `result`), so Claude Code's module shows them in
`tt logs`; its own reader adds what differs. The prompt on stdin, `--yolo`, `--resume
ID`; no fork; the round's MCP server in a file of the agent's own (`--mcp-config`). Its
provider: `--auth-type` or `security.auth.selectedType` in
~/.qwen/settings.json, with OPENAI_API_KEY / OPENAI_BASE_URL / OPENAI_MODEL for an
OpenAI-compatible API."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinytown.agent_clis.base import (
    AgentCli,
    CliCommand,
    CliReport,
    Credentials,
    McpServer,
    McpSetup,
    Preset,
    dict_of,
    int_of,
    objects,
    one_line,
    text,
)

# an API error is reported as a successful result whose text is `[API Error: <what>]`
_API_ERROR = re.compile(r"^\s*\[API Error: (.*?)\]\s*$", re.DOTALL)


class Qwen(AgentCli):
    name = "qwen"
    description = "Qwen Code"
    presets = {"qwen": Preset(
        "qwen --yolo", output_args="--output-format stream-json",
        resume_args="--resume {session}", session_lost="No saved session found",
        usage_totals=True,  # a resumed session's result counts the earlier runs too
    )}
    output_format = "qwen-json"  # --output-format stream-json (JSONL) or json
    mcp_mode = "qwen-mcp-config"  # --mcp-config FILE
    credentials = Credentials(
        ("OPENAI_API_KEY", "DASHSCOPE_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"),
        (".qwen/oauth_creds.json", ".qwen/settings.json"))
    install = "npm install -g @qwen-code/qwen-code"
    order = 45

    def read_report(self, stdout: str, stderr: str, usage_file: Path | None = None
                    ) -> CliReport:
        """The `result` event (the last line): `result`, `is_error`, `session_id`,
        `usage` {input_tokens (cached included, as OpenAI counts), output_tokens,
        cache_read_input_tokens}. A failed model request still ends in `subtype
        success`, `is_error` false and exit 0, its `result` `[API Error: <status>
        <message>]`: that is the error."""
        found = objects(stdout)
        results = [o for o in found if o.get("type") == "result"]
        if not results:
            return CliReport(found=False, result=stdout)
        last = results[-1]
        result = text(last.get("result"))
        error = None
        if said := _API_ERROR.match(result):
            error = one_line(said.group(1)) or "qwen reported an API error"
        elif last.get("is_error") or last.get("subtype", "success") != "success":
            error = one_line(result) or one_line(text(last.get("error"))) or \
                f"qwen reported {last.get('subtype', 'an error')}"
        raw = dict_of(last.get("usage"))
        usage: dict[str, Any] = {}
        if raw:
            cached = int_of(raw, "cache_read_input_tokens")
            usage = {"input_tokens": max(0, int_of(raw, "input_tokens") - cached),
                     "cached_input_tokens": cached,
                     "output_tokens": int_of(raw, "output_tokens")}
        session = last.get("session_id") or next(
            (o.get("session_id") for o in found if o.get("session_id")), None)
        return CliReport(True, result, error, text(session) or None, usage)

    def configure_mcp(self, command: CliCommand, argv: list[str], env: Mapping[str, str],
                      server: McpServer, state: Path) -> McpSetup:
        """`--mcp-config FILE` (`{"mcpServers": ...}`, as in its settings), a file of the
        agent's own; trusted, so its tools need no confirmation."""
        entry = {"command": server.command, "args": server.args, "env": server.env,
                 "trust": True}
        path = state / "qwen-mcp.json"
        return McpSetup([*argv, "--mcp-config", str(path)],
                        files={path: json.dumps({"mcpServers": {server.name: entry}},
                                                indent=1)})


CLI = Qwen()
