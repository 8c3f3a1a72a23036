"""GitHub Copilot CLI (`copilot`): JSONL events, `--resume`; its token counts are in the
file `--usage-output-file` writes, not in its events."""

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
    NotMine,
    Preset,
    cut,
    dict_of,
    int_of,
    objects,
    one_line,
    text,
    tool_input,
)


class Copilot(AgentCli):
    name = "copilot"
    description = "GitHub Copilot CLI"
    presets = {"copilot": Preset(
        "copilot --yolo", output_args="--output-format json --usage-output-file {usage_file}",
        resume_args="--resume {session}", usage_totals=True,  # the session's, resumed
    )}
    output_format = "copilot-jsonl"  # --output-format json events
    credentials = Credentials(("COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN",
                               "COPILOT_PROVIDER_API_KEY"), (".copilot/config.json",))
    install = "npm install -g @github/copilot"
    order = 50

    def read_report(self, stdout: str, stderr: str, usage_file: Path | None = None
                    ) -> CliReport:
        """`copilot --output-format json` events: `assistant.message` (the answer is the
        last one with text), `session.error` (the error), `result` (sessionId, exitCode);
        the usage from `usage_file` when it was written."""
        found = objects(stdout)
        results = [o for o in found if o.get("type") == "result"]
        if not results:
            return CliReport(found=False, result=stdout)
        answer = ""
        error: str | None = None
        for event in found:
            data = dict_of(event.get("data"))
            if event.get("type") == "assistant.message" and text(data.get("content")).strip():
                answer = text(data.get("content"))
            elif event.get("type") == "session.error":
                error = one_line(text(data.get("message"))) or "copilot reported an error"
        last = results[-1]
        if error is None and last.get("exitCode") not in (0, None):
            error = f"copilot ended with exit code {last.get('exitCode')}"
        report = CliReport(True, answer, error, text(last.get("sessionId")) or None)
        if usage_file is not None and usage_file.exists():
            report.usage = usage_of(_json_file(usage_file))
        return report

    def render_event(self, kind: str, event: dict[str, Any]) -> str | None | NotMine:
        data = dict_of(event.get("data"))
        if kind == "assistant.message":
            said = data.get("content")
            return f"» {cut(said, 10 * WIDTH)}" if isinstance(said, str) and said else None
        if kind == "tool.execution_start":
            return f"$ {data.get('toolName', 'tool')}: {tool_input(data.get('arguments'))}"
        if kind == "tool.execution_complete":
            result = dict_of(data.get("result"))
            mark = "↳" if data.get("success", True) else "✗"
            return f"  {mark} {cut(result.get('content') or '')}"
        if kind == "session.error":
            return f"! {cut(data.get('message', ''))}"
        if kind == "result":
            return "= done" if event.get("exitCode", 0) == 0 else f"= exit {event.get('exitCode')}"
        if "." in kind:
            return None  # the rest of Copilot's event kinds are bookkeeping
        return NOT_MINE

    def known_problems(self, command: CliCommand, env: Mapping[str, str], euid: int
                       ) -> list[str]:
        if Path(command.argv[0]).name == "gh" and command.argv[1:2] == ["copilot"]:
            return ["`gh copilot` is not the Copilot CLI agent: install @github/copilot and"
                    " use `copilot --yolo`"]
        return []


def usage_of(doc: Any) -> dict[str, Any]:
    """Token counts from the file `copilot --usage-output-file` writes: per model,
    `usage {inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens}` (no cost)."""
    models = doc.get("modelMetrics") if isinstance(doc, dict) else None
    usage: dict[str, Any] = {}
    for model in (models or {}).values() if isinstance(models, dict) else ():
        raw = model.get("usage") if isinstance(model, dict) else None
        if isinstance(raw, dict):
            for key, value in (("input_tokens", int_of(raw, "inputTokens") +
                                int_of(raw, "cacheWriteTokens")),
                               ("cached_input_tokens", int_of(raw, "cacheReadTokens")),
                               ("output_tokens", int_of(raw, "outputTokens"))):
                usage[key] = usage.get(key, 0) + value
    return usage


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


CLI = Copilot()
