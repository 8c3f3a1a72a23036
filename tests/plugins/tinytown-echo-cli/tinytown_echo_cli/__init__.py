"""The echo agent CLI, as a plug-in: its command (`python -m tinytown_echo_cli.agent`)
prints a report in a format of its own, `echo-json`, which only this module reads."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from tinytown.agent_clis.base import (
    NOT_MINE,
    AgentCli,
    CliReport,
    Credentials,
    NotMine,
    Preset,
    objects,
)


class Echo(AgentCli):
    name = "echo"
    description = "Echo (a test plug-in)"
    presets = {"echo": Preset(f"{shlex.quote(sys.executable)} -m tinytown_echo_cli.agent",
                              output_args="--report echo")}
    output_format = "echo-json"
    credentials = Credentials(("ECHO_TOKEN",))
    install = "pip install tinytown-echo-cli"

    def read_report(self, stdout: str, stderr: str, usage_file: Path | None = None
                    ) -> CliReport:
        """`{"echo": {"said": ..., "trouble": ..., "spent": {"in": N, "out": N}}}`."""
        found = [o["echo"] for o in objects(stdout) if isinstance(o.get("echo"), dict)]
        if not found:
            return CliReport(found=False, result=stdout)
        last = found[-1]
        spent = last.get("spent") or {}
        return CliReport(True, f"echo heard: {last.get('said', '')}", last.get("trouble"),
                         usage={"input_tokens": spent.get("in", 0),
                                "output_tokens": spent.get("out", 0)})

    def render_event(self, kind: str, event: dict[str, Any]) -> str | None | NotMine:
        if kind == "echo_heard":
            return f"» heard {event.get('said', '')}"
        return NOT_MINE


CLI = Echo()
__all__ = ["CLI", "Echo"]
