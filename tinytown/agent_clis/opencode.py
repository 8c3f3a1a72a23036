"""opencode (`opencode run`, npm `opencode-ai`): JSONL events (`--format json`), the prompt
on stdin, `--session ID` to continue and `--session ID --fork` to fork, `--auto` to
approve its tools. Its provider and model come from its own config
(~/.config/opencode/opencode.json, or OPENCODE_CONFIG / OPENCODE_CONFIG_CONTENT); the
round's MCP server comes in OPENCODE_CONFIG_CONTENT (nothing written)."""

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
    api_error,
    cut,
    dict_of,
    int_of,
    objects,
    text,
    tool_input,
)

_EVENTS = frozenset({"step_start", "step_finish", "text", "reasoning", "tool_use", "error"})


def _mine(event: dict[str, Any]) -> bool:
    """An opencode event: one of its kinds, with the session it belongs to."""
    return event.get("type") in _EVENTS and "sessionID" in event


class OpenCode(AgentCli):
    name = "opencode"
    description = "opencode"
    presets = {"opencode": Preset(
        "opencode run --auto", output_args="--format json",
        resume_args="--session {session}", fork_args="--session {session} --fork",
        session_lost="Session not found",
    )}
    output_format = "opencode-jsonl"  # opencode run --format json events
    mcp_mode = "opencode-config"  # OPENCODE_CONFIG_CONTENT's `mcp`
    # keys from `opencode auth login`, or in its config; the providers' own variables
    credentials = Credentials(
        ("OPENCODE_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY",
         "OPENCODE_CONFIG_CONTENT"),
        (".local/share/opencode/auth.json", ".config/opencode/opencode.json",
         ".config/opencode/opencode.jsonc"))
    install = "npm install -g opencode-ai"
    order = 35  # before Gemini CLI: both have `tool_use` and `error` events

    def read_report(self, stdout: str, stderr: str, usage_file: Path | None = None
                    ) -> CliReport:
        """`opencode run --format json` events, each with its `sessionID`: `step_start`,
        `text` (part.text: what the model said), `tool_use` (part.tool, part.state with
        its input and output), `step_finish` (part.tokens: input (uncached), output,
        reasoning, cache {read, write}; part.cost), `error` (error {name, data {message,
        statusCode}}; it then exits 1). The answer is the text said after the last tool
        call. There is no closing event: without an error, the exit code decides."""
        events = [e for e in objects(stdout) if _mine(e)]
        if not events:
            return CliReport(found=False, result=stdout)
        answer, before_tool = "", ""
        error: str | None = None
        usage: dict[str, Any] = {}
        cost = 0.0
        for event in events:
            kind = event.get("type")
            part = dict_of(event.get("part"))
            if kind == "text":
                answer += text(part.get("text"))
            elif kind == "tool_use":
                before_tool, answer = answer or before_tool, ""
            elif kind == "step_finish":
                tokens = dict_of(part.get("tokens"))
                cache = dict_of(tokens.get("cache"))
                for key, value in (("input_tokens", int_of(tokens, "input") +
                                    int_of(cache, "write")),
                                   ("cached_input_tokens", int_of(cache, "read")),
                                   ("output_tokens", int_of(tokens, "output") +
                                    int_of(tokens, "reasoning"))):
                    usage[key] = usage.get(key, 0) + value
                if isinstance(part.get("cost"), int | float):
                    cost += float(part["cost"])
            elif kind == "error":
                err = dict_of(event.get("error"))
                data = dict_of(err.get("data"))
                error = api_error(data.get("message") or err.get("message") or "") or \
                    f"opencode reported {text(err.get('name')) or 'an error'}"
        if cost > 0:  # 0 when it does not know the model's price (a custom provider)
            usage["cost_usd"] = cost
        session = next((text(e.get("sessionID")) for e in events if e.get("sessionID")), "")
        return CliReport(True, answer or before_tool, error, session or None, usage)

    def render_event(self, kind: str, event: dict[str, Any]) -> str | None | NotMine:
        if not _mine(event):
            return NOT_MINE
        part = dict_of(event.get("part"))
        if kind == "text":
            return f"» {cut(part.get('text', ''), 10 * WIDTH)}"
        if kind == "tool_use":
            state = dict_of(part.get("state"))
            mark = "✗" if state.get("status") == "error" else "↳"
            said = state.get("output") or state.get("error") or "(no output)"
            return (f"$ {part.get('tool', 'tool')}: {tool_input(state.get('input'))}\n"
                    f"  {mark} {cut(said)}")
        if kind == "error":
            err = dict_of(event.get("error"))
            message = dict_of(err.get("data")).get("message") or err.get("name") or ""
            return f"= error: {cut(message, 10 * WIDTH)}"
        return None  # step boundaries and reasoning

    def configure_mcp(self, command: CliCommand, argv: list[str], env: Mapping[str, str],
                      server: McpServer, state: Path) -> McpSetup:
        """A local server in `mcp` of OPENCODE_CONFIG_CONTENT, the config opencode merges
        over all its others (the user's own files stay as they are). A user's own
        OPENCODE_CONFIG_CONTENT keeps all it says, with the server added; one that is
        not a JSON object (JSONC, say) is left alone: no server then."""
        content: dict[str, Any] = {}
        if own := env.get("OPENCODE_CONFIG_CONTENT", "").strip():
            try:
                content = json.loads(own)
            except ValueError:
                return McpSetup(argv)
            if not isinstance(content, dict):
                return McpSetup(argv)
        servers = content.get("mcp")
        content["mcp"] = {**(servers if isinstance(servers, dict) else {}), server.name: {
            "type": "local", "command": [server.command, *server.args],
            "environment": server.env}}
        return McpSetup(argv, env={"OPENCODE_CONFIG_CONTENT": json.dumps(content)})


CLI = OpenCode()
