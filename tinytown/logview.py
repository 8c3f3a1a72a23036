"""A round log's event stream as lines a person reads (`tt logs`, without `--raw`).

The presets run each CLI with its streaming output (Claude Code and Gemini CLI's
`stream-json`, Codex's and Copilot CLI's JSONL events), so the round log fills as the
agent works; but a page of JSON is not what someone following an agent wants to read.
`render` turns one line of it into what happened — the agent's text, a tool call, what
the tool gave back, the outcome — and keeps any line that is not such an event (a
plain-text CLI's output, stderr) as it is. Events that say nothing to a reader
(deltas of a tool call, bookkeeping) are left out: `--raw` shows everything.
"""

from __future__ import annotations

import json
from typing import Any

WIDTH = 200  # a tool's input or output is cut to this many characters on its line


def render(line: str) -> str | None:
    """One log line as shown; None when it is an event with nothing to show."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return line
    try:
        event = json.loads(stripped)
    except ValueError:
        return line
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return line
    kind: str = event["type"]
    for reader in (_claude, _gemini, _codex, _copilot):
        shown = reader(kind, event)
        if not isinstance(shown, _Unknown):
            return shown
    return None  # an event of a kind none of the readers shows


class _Unknown:
    """What a reader returns for an event kind that is not its CLI's."""


_UNKNOWN = _Unknown()
Shown = str | None | _Unknown


def _cut(text: Any, width: int = WIDTH) -> str:
    value = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    first, _, rest = value.strip().partition("\n")
    more = bool(rest.strip()) or len(first) > width
    return first[:width] + (" …" if more else "")


def _tool_input(args: Any) -> str:
    if isinstance(args, dict):
        for key in ("command", "cmd", "file_path", "path", "pattern", "query", "url"):
            if isinstance(args.get(key), str):
                return _cut(args[key])
    return _cut(args)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _claude(kind: str, event: dict[str, Any]) -> Shown:
    if kind == "system":
        if event.get("subtype") == "init":
            return f"# session {event.get('session_id', '?')} ({event.get('model', '?')})"
        return None
    if kind in ("assistant", "user"):
        lines = []
        for part in _dict(event.get("message")).get("content") or []:
            part = _dict(part)
            if part.get("type") == "text" and kind == "assistant":
                lines.append(f"» {_cut(part.get('text', ''), 10 * WIDTH)}")
            elif part.get("type") == "tool_use":
                lines.append(f"$ {part.get('name', 'tool')}: {_tool_input(part.get('input'))}")
            elif part.get("type") == "tool_result":
                mark = "✗" if part.get("is_error") else "↳"
                lines.append(f"  {mark} {_cut(_content_text(part.get('content')))}")
        return "\n".join(lines) if lines else None
    if kind == "result" and "is_error" in event:
        what = "error" if event.get("is_error") else "done"
        return f"= {what}: {_cut(event.get('result', ''), 10 * WIDTH)}"
    if kind == "rate_limit_event":
        info = _dict(event.get("rate_limit_info"))
        return f"! rate limit: {info.get('status', '?')} ({info.get('rateLimitType', '?')})"
    return _UNKNOWN


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(_dict(c).get("text", "")) for c in content)
    return content if isinstance(content, str) else json.dumps(content)


def _gemini(kind: str, event: dict[str, Any]) -> Shown:
    if kind == "init":
        return f"# session {event.get('session_id', '?')} ({event.get('model', '?')})"
    if kind == "message":
        if event.get("role") == "assistant":
            return f"» {_cut(event.get('content', ''), 10 * WIDTH)}"
        return None  # the prompt: round-<n>.prompt has it
    if kind == "tool_use":
        return f"$ {event.get('tool_name', 'tool')}: {_tool_input(event.get('parameters'))}"
    if kind == "tool_result":
        mark = "↳" if event.get("status") == "success" else "✗"
        return f"  {mark} {_cut(event.get('output') or event.get('error') or '(no output)')}"
    if kind == "result" and "status" in event:
        if event.get("status") == "success":
            return "= done"
        return f"= error: {_cut(_dict(event.get('error')).get('message', ''), 10 * WIDTH)}"
    if kind == "error":
        return f"! {_cut(event.get('message', ''))}"
    return _UNKNOWN


def _codex(kind: str, event: dict[str, Any]) -> Shown:
    item = _dict(event.get("item"))
    if kind == "thread.started":
        return f"# session {event.get('thread_id', '?')}"
    if kind in ("item.started", "item.completed"):
        if item.get("type") == "command_execution":
            if kind == "item.started":
                return f"$ {_cut(item.get('command', ''))}"
            output = _cut(item.get("aggregated_output") or "")
            return f"  ↳ exit {item.get('exit_code')}" + (f": {output}" if output else "")
        if item.get("type") == "agent_message" and kind == "item.completed":
            return f"» {_cut(item.get('text', ''), 10 * WIDTH)}"
        return None
    if kind == "turn.completed":
        return "= turn completed"
    if kind == "turn.failed":
        return f"= error: {_cut(_dict(event.get('error')).get('message', ''))}"
    if kind in ("turn.started", "item.updated"):
        return None
    return _UNKNOWN


def _copilot(kind: str, event: dict[str, Any]) -> Shown:
    data = _dict(event.get("data"))
    if kind == "assistant.message":
        text = data.get("content")
        return f"» {_cut(text, 10 * WIDTH)}" if isinstance(text, str) and text else None
    if kind == "tool.execution_start":
        return f"$ {data.get('toolName', 'tool')}: {_tool_input(data.get('arguments'))}"
    if kind == "tool.execution_complete":
        result = _dict(data.get("result"))
        mark = "↳" if data.get("success", True) else "✗"
        return f"  {mark} {_cut(result.get('content') or '')}"
    if kind == "session.error":
        return f"! {_cut(data.get('message', ''))}"
    if kind == "result":
        return "= done" if event.get("exitCode", 0) == 0 else f"= exit {event.get('exitCode')}"
    if "." in kind:
        return None  # the rest of Copilot's event kinds are bookkeeping
    return _UNKNOWN
