"""Google Gemini CLI (`gemini`): stream-json events (or the JSON report, which a failed
run writes on stderr), `--resume`, and a Gemini home of the agent's own for its MCP
server (it reads MCP servers only from settings files)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
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
    last_object,
    objects,
    one_line,
    text,
    tool_input,
)

_EVENTS = frozenset({"init", "message", "tool_use", "tool_result", "error", "result"})
_API_ERROR = re.compile(r"\[API Error: (.*?)\](?:\n|$)", re.DOTALL)
_DELAY = re.compile(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"')  # Google's RetryInfo


class Gemini(AgentCli):
    name = "gemini"
    description = "Google Gemini CLI"
    presets = {"gemini": Preset(
        "gemini --skip-trust --yolo", output_args="--output-format stream-json",
        resume_args="--resume {session}", session_lost="Error resuming session",
    )}
    output_format = "gemini-json"  # --output-format stream-json (JSONL) or json
    mcp_mode = "gemini-home"
    credentials = Credentials(("GEMINI_API_KEY", "GOOGLE_API_KEY",
                               "GOOGLE_GENAI_USE_VERTEXAI"), (".gemini/oauth_creds.json",))
    install = "npm install -g @google/gemini-cli"
    order = 40
    limit_text = r"resource.?exhausted"

    def read_report(self, stdout: str, stderr: str, usage_file: Path | None = None
                    ) -> CliReport:
        """The report in stdout; a failed run's (the old JSON format) is on stderr, after
        its stack trace."""
        report = _read(stdout)
        if not report.found and stderr:
            last = last_object(stderr)
            if last is not None and "error" in last:
                fallback = _read(json.dumps(last))
                report = fallback if fallback.found else report
        return report

    def render_event(self, kind: str, event: dict[str, Any]) -> str | None | NotMine:
        if kind == "init":
            return f"# session {event.get('session_id', '?')} ({event.get('model', '?')})"
        if kind == "message":
            if event.get("role") == "assistant":
                return f"» {cut(event.get('content', ''), 10 * WIDTH)}"
            return None  # the prompt: round-<n>.prompt has it
        if kind == "tool_use":
            return f"$ {event.get('tool_name', 'tool')}: {tool_input(event.get('parameters'))}"
        if kind == "tool_result":
            mark = "↳" if event.get("status") == "success" else "✗"
            return f"  {mark} {cut(event.get('output') or event.get('error') or '(no output)')}"
        if kind == "result" and "status" in event:
            if event.get("status") == "success":
                return "= done"
            return f"= error: {cut(dict_of(event.get('error')).get('message', ''), 10 * WIDTH)}"
        if kind == "error":
            return f"! {cut(event.get('message', ''))}"
        return NOT_MINE

    def reset_time(self, text: str, now: datetime) -> datetime | None:
        if found := _DELAY.search(text):
            return now + timedelta(seconds=float(found.group(1)))
        return None

    def configure_mcp(self, command: CliCommand, argv: list[str], env: Mapping[str, str],
                      server: McpServer, state: Path) -> McpSetup:
        """The agent's Gemini home (`GEMINI_CLI_HOME`): its `.gemini` links each entry of
        the user's (sessions, credentials, trusted folders...), and its `settings.json` is
        the user's with the server added, written anew each round (the user's changes
        are seen). The one settings file whose path can be chosen (system settings) must
        be root's, hence a home. Nothing of the user's project or home is written."""
        real = Path(env.get("GEMINI_CLI_HOME") or env.get("HOME") or Path.home()) / ".gemini"
        home = state / "gemini-home"
        dot = home / ".gemini"
        links: dict[Path, Path] = {}
        settings: dict[str, object] = {}
        if real.is_dir() and real.resolve() != dot.resolve():
            for entry in real.iterdir():
                if entry.name != "settings.json":
                    links[dot / entry.name] = entry
            try:
                loaded = json.loads((real / "settings.json").read_text())
                settings = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                settings = {}
        servers = settings.get("mcpServers")
        entry_ = {"command": server.command, "args": server.args, "env": server.env,
                  "trust": True}
        settings["mcpServers"] = {**(servers if isinstance(servers, dict) else {}),
                                  server.name: entry_}
        return McpSetup(argv, env={"GEMINI_CLI_HOME": str(home)},
                        files={dot / "settings.json": json.dumps(settings, indent=1)},
                        links=links)

    def known_problems(self, command: CliCommand, env: Mapping[str, str], euid: int
                       ) -> list[str]:
        if Path(command.argv[0]).name == "gemini" and "--skip-trust" not in command.argv:
            return ["Gemini CLI exits 55 in a folder it does not trust: add --skip-trust (and"
                    " --yolo for tools that write) to its command"]
        return []


def _read(stdout: str) -> CliReport:
    """`gemini --output-format json`: `response` (the answer), `error` ({type,
    message}), `session_id`, `stats` (per-model token counts); or its stream-json
    events (`_stream`)."""
    events = objects(stdout)
    if any(e.get("type") in _EVENTS for e in events):
        return _stream(events)
    found = [o for o in events if {"response", "error", "stats"} & o.keys()]
    if not found:
        return CliReport(found=False, result=stdout)
    last = found[-1]
    err = last.get("error")
    error = None
    if err:
        error = api_error(err.get("message") if isinstance(err, dict) else err) or \
            "gemini reported an error"
    usage: dict[str, Any] = {}
    stats = last.get("stats")
    models = stats.get("models") if isinstance(stats, dict) else None
    if isinstance(models, dict):  # per model: prompt (cached included), candidates, thoughts
        for model in models.values():
            tokens = model.get("tokens") if isinstance(model, dict) else None
            if isinstance(tokens, dict):
                cached = int_of(tokens, "cached")
                for key, value in (("input_tokens", int_of(tokens, "prompt") - cached),
                                   ("cached_input_tokens", cached),
                                   ("output_tokens", int_of(tokens, "candidates") +
                                    int_of(tokens, "thoughts"))):
                    usage[key] = usage.get(key, 0) + max(0, value)
    session = last.get("session_id") or last.get("sessionId")
    return CliReport(True, text(last.get("response")), error, text(session) or None, usage)


def _stream(events: list[dict[str, Any]]) -> CliReport:
    """`gemini --output-format stream-json` events: `init` (session_id), `message`
    (role assistant: the answer's pieces, `delta`), `tool_use`, `tool_result`, `error`
    (severity warning or error: the run goes on), then `result` (status success or error,
    `error` {type, message}, `stats`: per model input (cached included), cached and
    output tokens, and a total that counts the thoughts too). The answer is the text
    said after the last tool call (what the JSON report gives as `response`)."""
    session = next((text(e.get("session_id")) for e in events if e.get("type") == "init"),
                   None) or None
    results = [e for e in events if e.get("type") == "result"]
    if not results:  # it ended before its report (killed, crashed): the exit code decides
        return CliReport(found=False, result="", session_id=session)
    answer, before_tool, said_error = "", "", ""
    for event in events:
        kind = event.get("type")
        if kind == "message" and event.get("role") == "assistant":
            answer += text(event.get("content"))
        elif kind == "tool_use":
            before_tool, answer = answer or before_tool, ""
        elif kind == "error" and event.get("severity") == "error":
            said_error = text(event.get("message"))
    last = results[-1]
    error = None
    if last.get("status") not in ("success", None) or last.get("error"):
        err = last.get("error")
        message = text(err.get("message") if isinstance(err, dict) else err)
        if found := _API_ERROR.match(message):  # `[API Error: <the API's>]\n<advice>`
            message = found.group(1)
        error = api_error(message) or one_line(said_error) or "gemini reported an error"
    usage: dict[str, Any] = {}
    stats = dict_of(last.get("stats"))
    models = stats.get("models") if isinstance(stats.get("models"), dict) else None
    for tokens in (models.values() if models else [stats]):
        if isinstance(tokens, dict):
            given, cached = int_of(tokens, "input_tokens"), int_of(tokens, "cached")
            output = max(int_of(tokens, "output_tokens"), int_of(tokens, "total_tokens") - given)
            for key, value in (("input_tokens", given - cached), ("cached_input_tokens", cached),
                               ("output_tokens", output)):
                usage[key] = usage.get(key, 0) + max(0, value)
    return CliReport(True, answer or before_tool, error, session, usage)


CLI = Gemini()
