"""Aider (`aider`): plain text whose API errors are lines on stdout (exit 0), usage
lines per model request, and its chat history (its session) in a folder of the agent's
own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tinytown.agent_clis.base import AgentCli, CliReport, Credentials, Preset, PromptVia, one_line

_ERROR = re.compile(r"^litellm\.(\w+Error): (?:\w+Error: )?(?:\w+Exception - )?(.+)$",
                    re.MULTILINE)
_TOKENS = re.compile(
    r"^Tokens: ([\d.]+)(k?) sent(?:, ([\d.]+)(k?) cache hit)?, ([\d.]+)(k?) received\."
    r"(?: Cost: \$([\d.]+) message)?", re.MULTILINE)
_HISTORY = ("--chat-history-file {state}/aider.chat.history.md"
            " --input-history-file {state}/aider.input.history")


class Aider(AgentCli):
    name = "aider"
    description = "Aider"
    presets = {"aider": Preset(
        "aider --yes-always --no-auto-commits --no-check-update --no-analytics"
        " --no-pretty --no-stream", PromptVia.FILE, "--message-file",
        session_args=f"{_HISTORY} --restore-chat-history", fresh_args=_HISTORY,
    )}
    output_format = "aider-text"  # its API errors are lines on stdout (exit 0)
    reports_cost = True
    credentials = Credentials(("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
                               "DEEPSEEK_API_KEY", "OPENROUTER_API_KEY", "AIDER_MODEL"),
                              (".aider.conf.yml",))
    install = "pipx install aider-chat"
    order = 60
    limit_text = r"rate limited you"

    def read_report(self, stdout: str, stderr: str, usage_file: Path | None = None
                    ) -> CliReport:
        """aider prints its model API's errors as lines on stdout and still exits 0
        (`litellm.BadRequestError: OpenAIException - <message>`): such a line is the
        error; otherwise the exit code decides. Its usage is a line per model request:
        `Tokens: 2.4k sent, 16 received. Cost: $0.0061 message, $0.0061 session.`"""
        usage: dict[str, Any] = {}
        for m in _TOKENS.finditer(stdout):
            for key, number, kilo in (("input_tokens", m.group(1), m.group(2)),
                                      ("cached_input_tokens", m.group(3), m.group(4)),
                                      ("output_tokens", m.group(5), m.group(6))):
                if number:
                    usage[key] = usage.get(key, 0) + round(float(number) * (1000 if kilo else 1))
            if m.group(7):
                usage["cost_usd"] = usage.get("cost_usd", 0.0) + float(m.group(7))
        found = _ERROR.search(stdout)
        if found is None:
            return CliReport(found=False, result=stdout, usage=usage)
        return CliReport(True, stdout, one_line(f"{found.group(1)}: {found.group(2)}"),
                         usage=usage)


CLI = Aider()
